"""Defocus magnification against the synthetic engine's own K-times rendering, with two baselines in the same run.

Scenes: ``defocus.synth.render_scaled(sample_rng(SEED, i, "test"), (1, 2, 3), SIZE, split="test")`` — one scene at
its blur and at 2× and 3× the blur, through the same camera draw — skipping the scenes with nothing out of focus
(the all-sharp kind: there the K× rendering is the photo itself and PSNR is infinite). Each row magnifies the ×1
photo with a defocus map (the ground-truth σ map, or an estimator's map of the ×1 photo) and compares it with the
×K rendering: PSNR (dB) and mean absolute error in sRGB [0, 1], SSIM (scikit-image, per channel), means over the
scenes. Rows:

* ``input``: the ×1 photo unchanged (the trivial baseline);
* ``per-pixel blur``: every pixel takes the colour of the whole photo blurred (in linear light) by its own extra
  disk radius — a spatially varying filter with no layers, no occlusion handling and no highlight un-clipping, but
  the same radii and in-focus limit as ``magnify``;
* ``magnify``: :func:`defocus.magnify.magnify` with its defaults (and once with ``highlight_gain=1``).

Seconds per 640×427 photo (``examples/flower.jpg``, median of 3 after a warm-up) for ``magnify`` and the baseline,
given the map, and for the default estimator; ``--megapixels`` adds one ``magnify`` call on the photo resized to that
size in a fresh process (seconds and peak RSS of the call).

    nice python benchmarks/magnify.py --scenes 20 --size 320 --megapixels 24
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import defocus
from defocus import registry
from defocus.magnify import extra_radius, magnify
from defocus.synth import SHARP_RADIUS, linear_to_srgb, render_scaled, sample_rng, srgb_to_linear
from defocus.synth import psf as _psf
from defocus.synth.render import quantize_radius
from defocus.units import sigma_to_radius
from timing import median_seconds, run_child

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "flower.jpg"
AMOUNTS = (2.0, 3.0)

_LARGE = r"""
import json, sys, time
import numpy as np
from defocus.magnify import magnify
from timing import reset_peak_rss, rss_mb, upscaled_photo
photo, mp = sys.argv[1], float(sys.argv[2])
image = upscaled_photo(photo, mp)
h, w = image.shape[:2]
# A map like a shallow-depth-of-field portrait's: a sharp ellipse in a background blurred up to σ = 12 px.
yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
d = np.hypot((yy - h / 2) / (0.3 * h), (xx - w / 2) / (0.25 * w))
sigma = np.where(d < 1, 0.0, np.minimum(12.0, 3.0 + 6.0 * (d - 1))).astype(np.float32)
del yy, xx, d
base = rss_mb("VmRSS:")
reset_peak_rss()
t = time.perf_counter()
out = magnify(image, sigma, 3.0)
seconds = time.perf_counter() - t
print(json.dumps({"base_mb": base, "peak_mb": rss_mb("VmHWM:"), "seconds": seconds, "h": h, "w": w}))
"""


def per_pixel_blur(image: np.ndarray, sigma: np.ndarray, amount: float) -> np.ndarray:
    """The naive baseline: each pixel gathers the photo blurred by its own extra radius (one layer, no occlusion)."""
    radius = sigma_to_radius(sigma)
    extra = quantize_radius(extra_radius(np.where(radius > SHARP_RADIUS, radius, 0), amount))
    linear = srgb_to_linear(image)
    out = linear.copy()
    for r in np.unique(extra[extra > 0]):
        here = extra == r
        out[here] = _psf.blur(linear, float(r))[here]
    return linear_to_srgb(out)


def scores(result: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    """(PSNR dB, mean absolute error, SSIM) of an sRGB result against the reference."""
    return (peak_signal_noise_ratio(reference, result, data_range=1.0),
            float(np.abs(result - reference).mean()),
            structural_similarity(reference, result, channel_axis=2, data_range=1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=20, help="scenes with something out of focus (default 20)")
    parser.add_argument("--size", type=int, default=320, help="scene side in px (default 320)")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--estimators", nargs="*", help="dme methods (default: every registered one)")
    parser.add_argument("--megapixels", type=float, default=0.0, help="size of the large-photo run (0 = skip)")
    args = parser.parse_args()

    estimators = {name: defocus.load(name) for name in (args.estimators if args.estimators is not None
                                                          else registry.available("dme"))}
    rows: dict[str, dict[float, list]] = {}

    def add(row: str, amount: float, result: np.ndarray, reference: np.ndarray) -> None:
        rows.setdefault(row, {a: [] for a in AMOUNTS})[amount].append(scores(result, reference))

    used, index, kinds = 0, 0, []
    while used < args.scenes:
        samples = render_scaled(sample_rng(args.seed, index, "test"), (1.0,) + AMOUNTS, args.size, split="test")
        index += 1
        photo = samples[0]
        if float(photo.coc_radius.max()) <= SHARP_RADIUS:
            continue
        used += 1
        kinds.append(photo.kind)
        maps = {"true map": photo.sigma}
        for name, method in estimators.items():
            maps[f"{name} map"] = np.maximum(np.nan_to_num(method.predict(photo.image)), 0.0).astype(np.float32)
        for amount, reference in zip(AMOUNTS, samples[1:]):
            add("input (unchanged)", amount, photo.image, reference.image)
            for label, sigma in maps.items():
                add(f"per-pixel blur, {label}", amount, per_pixel_blur(photo.image, sigma, amount), reference.image)
                add(f"magnify, {label}", amount, magnify(photo.image, sigma, amount), reference.image)
            add("magnify, true map, highlight gain 1", amount,
                magnify(photo.image, photo.sigma, amount, highlight_gain=1.0), reference.image)
        print(f"scene {index - 1}: {photo.kind} ({photo.psf})", file=sys.stderr, flush=True)

    order = ["input (unchanged)", "per-pixel blur, true map", "magnify, true map", "magnify, true map, highlight gain 1"]
    order += [r for r in rows if r not in order]
    counts = {k: kinds.count(k) for k in sorted(set(kinds))}
    print(f"{used} scenes ({', '.join(f'{k} {n}' for k, n in counts.items())}), {args.size} px, seed {args.seed}")
    print()
    head = " | ".join(f"K={a:g} PSNR | K={a:g} MAE | K={a:g} SSIM" for a in AMOUNTS)
    print(f"| result vs engine's K× rendering | {head} |")
    print("|---|" + "---:|" * (3 * len(AMOUNTS)))
    for row in order:
        cells = []
        for a in AMOUNTS:
            p, m, s = np.mean(np.array(rows[row][a]), axis=0)
            cells += [f"{p:.2f}", f"{m:.4f}", f"{s:.3f}"]
        print(f"| {row} | " + " | ".join(cells) + " |")

    # Where layering helps and where the "blur is behind the focal plane" assumption costs: MAE at the largest K by
    # scene kind, with the true map.
    by_kind = order[:3]
    a = AMOUNTS[-1]
    print()
    print(f"| K={a:g}, MAE by scene kind (true map) | scenes | " + " | ".join(by_kind) + " |")
    print("|---|---:|" + "---:|" * len(by_kind))
    for kind in counts:
        picked = [i for i, k in enumerate(kinds) if k == kind]
        cells = [f"{np.mean([rows[r][a][i][1] for i in picked]):.4f}" for r in by_kind]
        print(f"| {kind} | {len(picked)} | " + " | ".join(cells) + " |")

    image = defocus.read_image(PHOTO)
    image = cv2.resize(image, (640, 427), interpolation=cv2.INTER_AREA) if image.shape[:2] != (427, 640) else image
    default = defocus.load(registry.DEFAULT_ESTIMATOR)
    sigma = default.predict(image)
    print()
    print(f"seconds per 640×427 photo ({PHOTO.name}, K = 3): magnify {median_seconds(lambda: magnify(image, sigma, 3.0), 3):.2f}, "
          f"per-pixel blur {median_seconds(lambda: per_pixel_blur(image, sigma, 3.0), 3):.2f}, "
          f"map by {registry.DEFAULT_ESTIMATOR} {median_seconds(lambda: default.predict(image), 1):.2f}")
    if args.megapixels > 0:
        r = run_child(_LARGE, PHOTO, args.megapixels)
        if "error" in r:
            raise SystemExit(f"{args.megapixels:g} MP: failed: {r['error']}")
        print(f"{r['w']}×{r['h']} ({r['w'] * r['h'] / 1e6:.1f} MP), K = 3, σ up to 12 px: {r['seconds']:.1f} s, "
              f"peak RSS {r['peak_mb'] / 1024:.2f} GiB ({r['base_mb'] / 1024:.2f} GiB before the call: photo and map)")


if __name__ == "__main__":
    main()
