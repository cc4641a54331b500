"""Fidelity of ``hifst`` to the authors' own output maps.

For each photo in ``shared/data/real/cuhk_samples/images`` that has an authors' map in ``.../hifst_official``
(``NAME_FinalMap.png``: ``mat2gray(FinalMap)`` written by the authors' MATLAB code, high = in focus), prints the
Pearson correlation between our sharpness (``1 − predict``) and theirs, plus the mean absolute difference of the
two [0, 1] maps and the mean of our unnormalised FinalMap (the authors' demo states mean2(FinalMap) = 0.1809 for
motion0138.jpg).

    python benchmarks/hifst_fidelity.py                  # default settings
    python benchmarks/hifst_fidelity.py --no-match-uint8 # without the uint8 rounding of the pre-smoothing
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import defocus
from defocus.io import read_image, read_map
from defocus.methods.hifst import hifst_sharpness

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "real" / "cuhk_samples"


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel().astype(np.float64) - a.mean()
    b = b.ravel().astype(np.float64) - b.mean()
    return float((a @ b) / np.sqrt((a @ a) * (b @ b)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="folder with images/ and hifst_official/")
    parser.add_argument("--no-match-uint8", action="store_true", help="skip the uint8 rounding of the grey image")
    args = parser.parse_args(argv)
    official = args.samples / "hifst_official"
    if not official.is_dir():
        print(f"no authors' maps in {official}", file=sys.stderr)
        return 1
    method = defocus.load("hifst", match_uint8=not args.no_match_uint8)
    print("| photo | Pearson r (sharpness) | mean abs diff | mean FinalMap | s |")
    print("|---|---|---|---|---|")
    rs = []
    for ref_path in sorted(official.glob("*_FinalMap.png")):
        name = ref_path.name[: -len("_FinalMap.png")]
        image = read_image(args.samples / "images" / f"{name}.jpg")
        ref = read_map(ref_path)
        t = time.perf_counter()
        ours = 1.0 - method.predict(image)
        seconds = time.perf_counter() - t
        final = hifst_sharpness(image, match_uint8=not args.no_match_uint8)
        r = pearson(ours, ref)
        rs.append(r)
        print(f"| {name} | {r:.4f} | {np.abs(ours - ref).mean():.4f} | {final.mean():.4f} | {seconds:.2f} |")
    print(f"\nmin r = {min(rs):.4f}, mean r = {np.mean(rs):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
