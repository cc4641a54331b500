"""Deblurring with defocus maps, in the form of Table II of Karaali et al. (TIP 2022): PSNR/SSIM of the blurry
input, of the result deblurred with the ground-truth σ map (the ceiling) and with every registered estimator's map.

    nice python benchmarks/deblur.py [--n 24] [--size 320] [--seed 777]
    nice python benchmarks/deblur.py --ablation [--n 12]    # the choices of docs/deblur.md, ground-truth maps only
    nice python benchmarks/deblur.py --figures docs/img       # the before/after crops of docs/deblur.md

Scenes come from the synthetic engine's test split: ``render_scaled(rng, (0, 1), size, split="test")`` renders one
scene all in focus (×0, the sharp reference) and defocused (×1, the blurry photo) through the same camera draw (noise,
JPEG, ...), with the exact σ map of the blurry one; scenes of the kind "all_sharp" (nothing defocused) are skipped.
Also times ``defocus.deblur.deblur`` on the bundled 640×427 photo ``examples/flower.jpg``, alone and with the default
estimator.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from defocus import read_image, registry
from defocus.deblur import DEFAULTS, deblur
from defocus.synth import render_scaled, sample_rng

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flower.jpg"


def scores(result: np.ndarray, sharp: np.ndarray) -> tuple[float, float]:
    return (peak_signal_noise_ratio(sharp, result, data_range=1.0),
            structural_similarity(sharp, result, channel_axis=2, data_range=1.0))


def synthetic_scenes(n: int, size: int, seed: int):
    """The first ``n`` scenes of the test split that have something defocused: (sharp, blurry, σ map, sample)."""
    index = 0
    while n > 0:
        sharp_sample, blurry_sample = render_scaled(sample_rng(seed, index, "test"), (0.0, 1.0), size, split="test")
        index += 1
        if blurry_sample.kind == "all_sharp":  # nothing to deblur (and PSNR of identical images is infinite)
            continue
        n -= 1
        yield sharp_sample.image, blurry_sample.image, blurry_sample.sigma, blurry_sample


#: One change from the defaults per row of the ablation.
VARIANTS = {
    "defaults": {},
    "sRGB values instead of linear light": dict(linear=False),
    "disk PSF instead of Gaussian": dict(psf="disk"),
    "data weight 100": dict(data_weight=100.0),
    "data weight 1000": dict(data_weight=1000.0),
    "alpha 1/2": dict(alpha=0.5),
    "level ratio 1.5": dict(ratio=1.5),
}


def ablation(args: argparse.Namespace) -> None:
    results: dict[str, list[tuple[float, float]]] = {"blurry input": [], **{v: [] for v in VARIANTS}}
    for sharp, blurry, sigma, _ in synthetic_scenes(args.n, args.size, args.seed):
        results["blurry input"].append(scores(blurry, sharp))
        for name, change in VARIANTS.items():
            results[name].append(scores(deblur(blurry, sigma, **change), sharp))
    print(f"\n{args.n} scenes, {args.size}×{args.size} px, synth test split, seed {args.seed}, ground-truth σ maps\n")
    print("| variant | PSNR | SSIM |\n|---|---|---|")
    for name, values in results.items():
        m = np.mean(values, axis=0)
        print(f"| {name} | {m[0]:.2f} | {m[1]:.3f} |")


#: Example photo → crop (top, left, height, width) in px shown before/after in docs/deblur.md.
FIGURES = {"tulips": (120, 0, 240, 300), "quokka": (150, 560, 240, 400)}


def figures(folder: Path) -> None:
    """Side-by-side crops (left: the photo, right: deblurred with the default estimator's map), JPEG."""
    from defocus.io import write_image

    for name, (top, left, height, width) in FIGURES.items():
        photo = read_image(EXAMPLE.with_name(f"{name}.jpg"))
        result = deblur(photo)
        crop = (slice(top, top + height), slice(left, left + width))
        gap = np.ones((height, 6, 3), np.float32)
        path = write_image(folder / f"deblur_{name}.jpg", np.concatenate([photo[crop], gap, result[crop]], axis=1),
                           quality=88, force=True)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="number of scenes (default 24)")
    parser.add_argument("--size", type=int, default=320, help="scene side in px (default 320)")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--ablation", action="store_true", help="compare the solver's choices on ground-truth maps")
    parser.add_argument("--figures", type=Path, metavar="DIR", help="write the before/after crops into DIR")
    args = parser.parse_args()
    if args.figures:
        figures(args.figures)
        return
    if args.ablation:
        ablation(args)
        return

    estimators = {name: registry.load(name) for name in registry.available("dme")}
    other_psf = "disk" if DEFAULTS["psf"] == "gaussian" else "gaussian"
    columns = ["Blurry", f"GT map ({DEFAULTS['psf']} PSF)", f"GT map ({other_psf} PSF)", *estimators]
    table: dict[str, list[tuple[float, float]]] = {c: [] for c in columns}
    seconds = {name: 0.0 for name in estimators}
    for sharp, blurry, sigma, blurry_sample in synthetic_scenes(args.n, args.size, args.seed):
        table["Blurry"].append(scores(blurry, sharp))
        table[columns[1]].append(scores(deblur(blurry, sigma), sharp))
        table[columns[2]].append(scores(deblur(blurry, sigma, psf=other_psf), sharp))
        for name, method in estimators.items():
            start = time.perf_counter()
            estimate = method.predict(blurry)
            seconds[name] += time.perf_counter() - start
            table[name].append(scores(deblur(blurry, estimate), sharp))
        print(f"scene {len(table['Blurry'])}/{args.n} ({blurry_sample.kind}, {blurry_sample.psf} PSF) done",
              flush=True)

    base = np.mean(table["Blurry"], axis=0)
    print(f"\n{args.n} scenes, {args.size}×{args.size} px, synth test split, seed {args.seed}; deblur defaults "
          f"{DEFAULTS}\n")
    print("| | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    means = {c: np.mean(table[c], axis=0) for c in columns}
    print("| PSNR/SSIM | " + " | ".join(f"{m[0]:.2f}/{m[1]:.3f}" for m in means.values()) + " |")
    print("| Gain | N/A | " + " | ".join(f"{m[0] - base[0]:+.2f}/{m[1] - base[1]:+.3f}"
                                         for c, m in means.items() if c != "Blurry") + " |")
    wins = {c: int(np.sum(np.array(table[c])[:, 0] > np.array(table["Blurry"])[:, 0] + 1e-6)) for c in columns[1:]}
    print("| scenes with PSNR gain | – | " + " | ".join(f"{wins[c]}/{args.n}" for c in columns[1:]) + " |")
    print("\nEstimator seconds per scene: " + ", ".join(f"{n} {s / args.n:.2f}" for n, s in seconds.items()))

    photo = read_image(EXAMPLE)
    method = estimators[registry.DEFAULT_ESTIMATOR]
    sigma = method.predict(photo)
    deblur(photo, sigma)  # warm the PSF and shrinkage caches
    start = time.perf_counter()
    deblur(photo, sigma)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    deblur(photo, estimator=method)
    both = time.perf_counter() - start
    print(f"\n{EXAMPLE.name} ({photo.shape[1]}×{photo.shape[0]}): deconvolution {alone:.2f} s, with "
          f"{registry.DEFAULT_ESTIMATOR} {both:.2f} s (σ max {float(sigma.max()):.2f} px)")


if __name__ == "__main__":
    main()
