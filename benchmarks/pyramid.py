"""Single-scale estimators against their pyramid combination (``defocus.methods.pyramid``), as one Markdown table.

Synthetic scenes of the engine's test split (seed 777, the benchmarks' seed) at several sizes: the engine scales
blur with the image (σ reaches about 6 px at 320 px, about 24 px at 1280 px), so a larger size is a photo of the
same scene with more pixels. MAE in σ px over the whole frame, as ``defocus evaluate --dataset synth`` computes it
(protocol ``rtf`` with nothing dropped and σ ground truth), with the mean seconds per image of ``predict``.

    python benchmarks/pyramid.py --sizes 320 1280 --n 8                  # karaali-jung-2018 and its pyramid
    python benchmarks/pyramid.py --bases zhuo-sim xu-2017 --sizes 640
    python benchmarks/pyramid.py --figures docs/img                      # maps of examples/, single vs pyramid
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def table(bases: list[str], sizes: list[int], n: int) -> None:
    import defocus
    from defocus.data import open_dataset
    from defocus.evaluate import evaluate_method

    print(f"| base estimator | size (px) | scenes | σ max in the scenes (px) | single-scale MAE σ px | pyramid MAE σ px "
          f"| single s/img | pyramid s/img |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        ds = open_dataset("synth", None, n=n, size=size, task="dme")
        top = max(float(np.max(ds[i].sigma())) for i in range(len(ds)))
        for base in bases:
            cells = []
            for method in (defocus.load(base), defocus.load("pyramid", base=base)):
                res = evaluate_method(method, ds, "rtf")  # the synth loader sets σ ground truth, no column drop
                cells.append((res.summary["mae_sigma"], res.seconds_per_image))
            (m0, t0), (m1, t1) = cells
            print(f"| `{base}` | {size} | {len(ds)} | {top:.1f} | {m0:.3f} | {m1:.3f} | {t0:.2f} | {t1:.2f} |",
                  flush=True)


def figures(out: Path, base: str) -> None:
    import cv2

    import defocus
    from defocus.io import colorize_defocus, find_images, read_image, write_image

    single, pyramid = defocus.load(base), defocus.load("pyramid", base=base)
    paths, _ = find_images([str(ROOT / "examples")])
    for path in paths:
        image = read_image(path)
        maps = [single.predict(image), pyramid.predict(image)]
        top = max(1.0, max(float(np.percentile(m, 99.9)) for m in maps))
        panels = [image] + [colorize_defocus(m, vmax=top, unit="px sigma") for m in maps]
        row = np.concatenate([cv2.resize(p, (round(p.shape[1] * 240 / p.shape[0]), 240),
                                         interpolation=cv2.INTER_AREA) for p in panels], axis=1)
        target = out / f"pyramid_{path.stem}.jpg"
        write_image(target, row, force=True)
        print(f"{target}: {base} max {maps[0].max():.2f} px, pyramid max {maps[1].max():.2f} px")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bases", nargs="+", default=["karaali-jung-2018"])
    p.add_argument("--sizes", nargs="+", type=int, default=[320, 1280])
    p.add_argument("--n", type=int, default=8, help="scenes per size (default 8)")
    p.add_argument("--figures", type=Path, help="write photo | single-scale | pyramid panels of examples/ here")
    args = p.parse_args()
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        figures(args.figures, args.bases[0])
    else:
        table(args.bases, args.sizes, args.n)


if __name__ == "__main__":
    main()
