"""Culling accuracy of ``defocus cull`` beside the two rules a user would reach for instead, in one run.

Sets (real photos of the shared folder, ``data/photos/*/``):

* (a) ``B_shallow_dof``: real shallow depth-of-field photos — correct is ``shallow-dof`` or ``sharp``;
* (b) the same photos disk-blurred everywhere (radius ``--blur-radius`` × the long side, 1.5 % by default: at least
  10 px on every photo here, nothing stays sharp) — correct is ``missed-focus``;
* (c) ``A_sharp``: all-in-focus photos — correct is ``sharp`` (the ``sharp or shallow`` column: not rejected);
* (d) resolution invariance: share of photos whose verdict is unchanged when the photo is upscaled 3× (bicubic),
  on every (a) photo and every ``--step``-th (c) photo.

Baselines: the variance of the Laplacian of the grey photo at full resolution, blurry below OpenCV tutorials' usual
threshold 100; and cleanvision's ``blurry`` issue with its default parameters, run by cleanvision itself in its own
environment (``--cleanvision-python``, default /work/cv-venv/bin/python; ``n/a`` where it is missing). For both,
"blurry" counts as missed-focus and anything else as sharp or shallow-dof (neither tells those apart).

``--calibrate`` instead prints the scores and verdicts of :func:`defocus.cull.assess` on synthetic scenes of known
blur (``defocus.synth``, validation split): what the thresholds of :mod:`defocus.cull.core` were chosen on.

    nice python benchmarks/cull.py                 # the table of docs/cull.md
    nice python benchmarks/cull.py --calibrate
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import defocus
from defocus.cull import assess
from defocus.cull.core import DETECTOR
from defocus.paths import shared_dir

_CLEANVISION = r"""
import json, sys
from cleanvision import Imagelab
paths = json.load(sys.stdin)
lab = Imagelab(filepaths=paths)
lab.find_issues({"blurry": {}}, n_jobs=1, verbose=False)
print(json.dumps([bool(v) for v in lab.issues.loc[paths, "is_blurry_issue"]]))
"""


def disk_blur(image: np.ndarray, radius: float) -> np.ndarray:
    """The image convolved with a disk of ``radius`` px (reflected borders)."""
    k = int(np.ceil(radius))
    y, x = np.mgrid[-k:k + 1, -k:k + 1]
    kernel = (x * x + y * y <= radius * radius).astype(np.float32)
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def laplacian_blurry(image: np.ndarray, threshold: float = 100.0) -> bool:
    """Variance of the Laplacian of the 8-bit grey image below ``threshold``."""
    grey = cv2.cvtColor(np.round(image * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return bool(cv2.Laplacian(grey, cv2.CV_64F).var() < threshold)


def cleanvision_blurry(python: str | None, images: list[np.ndarray]) -> list[bool] | None:
    """cleanvision's verdicts on 8-bit ``images`` (written as PNG files for it), or None without cleanvision."""
    if python is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, image in enumerate(images):
            paths.append(str(Path(tmp) / f"{i:04d}.png"))
            cv2.imwrite(paths[-1], cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        run = subprocess.run([python, "-c", _CLEANVISION], input=json.dumps(paths), capture_output=True, text=True)
    if run.returncode:
        print(f"cleanvision failed: {run.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


class Tally:
    """Per-set counts of each rule's verdicts (and of unchanged verdicts for the invariance set)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, list]] = {}

    def add(self, set_name: str, rule: str, value) -> None:
        self.rows.setdefault(set_name, {}).setdefault(rule, []).append(value)


def share(values, test) -> str:
    if values is None or not values or any(v is None for v in values):
        return "n/a"
    return f"{sum(bool(test(v)) for v in values) / len(values):.1%}"


def judge_set(photos, transform, detector, cv_python, chunk: int = 12):
    """Verdicts of the three rules on ``transform(image)`` of each photo; cleanvision in chunks (bounded disk)."""
    ours, lap, clean = [], [], []
    pending = []
    for path in photos:
        image = transform(defocus.read_image(path))
        ours.append(assess(image, detector).verdict)
        lap.append(laplacian_blurry(image))
        pending.append(np.round(image * 255).astype(np.uint8))
        if len(pending) == chunk or path == photos[-1]:
            got = cleanvision_blurry(cv_python, pending) if cv_python else None
            clean.extend(got if got is not None else [None] * len(pending))
            pending = []
    return ours, lap, clean


def upscale3(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return np.clip(cv2.resize(image, (3 * w, 3 * h), interpolation=cv2.INTER_CUBIC), 0, 1)


def main_table(args) -> None:
    root = shared_dir() / "data" / "photos"
    shallow = sorted(p for p in root.glob("*/B_shallow_dof/*") if p.is_file())
    sharp = sorted(p for p in root.glob("*/A_sharp/*") if p.is_file())
    cv_python = args.cleanvision_python if Path(args.cleanvision_python).exists() else None
    detector = defocus.load(args.method)
    start = time.perf_counter()

    def blurred(image):
        return disk_blur(image, args.blur_radius * max(image.shape[:2]))

    ours_a, lap_a, cv_a = judge_set(shallow, lambda x: x, detector, cv_python)
    ours_b, lap_b, cv_b = judge_set(shallow, blurred, detector, cv_python)
    ours_c, lap_c, cv_c = judge_set(sharp, lambda x: x, detector, cv_python)
    subset_c = sharp[::args.step]
    ours_c_sub = [ours_c[sharp.index(p)] for p in subset_c]
    lap_c_sub = [lap_c[sharp.index(p)] for p in subset_c]
    cv_c_sub = [cv_c[sharp.index(p)] for p in subset_c]
    ours_d, lap_d, cv_d = judge_set(shallow + subset_c, upscale3, detector, cv_python, chunk=6)
    seconds = time.perf_counter() - start

    def same(before, after):
        if any(v is None for v in before + after):
            return None
        return [b == a for b, a in zip(before, after)]

    good = {"sharp", "shallow-dof"}
    rows = [
        (f"(a) shallow-DOF photos (n={len(shallow)}): sharp or shallow-dof",
         share(ours_a, lambda v: v in good), share(lap_a, lambda v: not v), share(cv_a, lambda v: not v)),
        (f"(b) their disk-blurred copies (r = {args.blur_radius:.1%} of the long side): missed-focus",
         share(ours_b, lambda v: v == "missed-focus"), share(lap_b, bool), share(cv_b, bool)),
        (f"(c) all-in-focus photos (n={len(sharp)}): sharp", share(ours_c, lambda v: v == "sharp"), "–", "–"),
        (f"(c) all-in-focus photos (n={len(sharp)}): sharp or shallow-dof (not rejected)",
         share(ours_c, lambda v: v in good), share(lap_c, lambda v: not v), share(cv_c, lambda v: not v)),
        (f"(d) verdict unchanged at 3× upscale (n={len(shallow) + len(subset_c)}: all of (a), every "
         f"{args.step}th of (c))",
         share(same(ours_a + ours_c_sub, ours_d), bool), share(same(lap_a + lap_c_sub, lap_d), bool),
         share(same(list(cv_a) + list(cv_c_sub), list(cv_d)), bool)),
    ]
    print(f"| set: correct verdict | defocus cull ({args.method}) | Laplacian variance < 100 | cleanvision blurry |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\n{seconds:.0f} s in all; verdict counts of defocus cull: "
          + "; ".join(f"{name} {dict((v, ours.count(v)) for v in ('sharp', 'shallow-dof', 'missed-focus'))}"
                      for name, ours in (("(a)", ours_a), ("(b)", ours_b), ("(c)", ours_c))))


def calibrate(args) -> None:
    from defocus.synth import dataset

    def spread(values) -> str:
        if not values:
            return "n/a"
        q10, q50, q90 = np.percentile(values, [10, 50, 90])
        return f"{q50:.2f} ({q10:.2f}–{q90:.2f})"

    detector = defocus.load(args.method)
    expected = {"all_sharp": "sharp", "object_sharp": "shallow-dof", "all_blurred": "missed-focus"}
    print("| synthetic scenes (val split, 480×640) | n | sharp | shallow-dof | missed-focus | in focus, ground truth "
          "| focus_fraction | crispness |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, want in expected.items():
        verdicts, truth, fractions, crisp = [], [], [], []
        for i in range(args.n):
            sample = dataset.render_sample(dataset.sample_rng(args.seed, i, "val"), size=(480, 640), split="val",
                                           kind=kind)
            a = assess(sample.image, detector)
            verdicts.append(a.verdict)
            truth.append(1.0 - float(sample.blur_mask.mean()))
            fractions.append(a.scores["focus_fraction"])
            if np.isfinite(a.scores["crispness"]):
                crisp.append(a.scores["crispness"])
        counts = " | ".join(f"{verdicts.count(v)}" + (" ✓" if v == want else "")
                            for v in ("sharp", "shallow-dof", "missed-focus"))
        print(f"| {kind} (expected {want}) | {args.n} | {counts} | {spread(truth)} | {spread(fractions)} | "
              f"{spread(crisp)} |")
    print("\nmedian (10th–90th percentile) over the scenes; crispness where measurable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--method", default=DETECTOR)
    parser.add_argument("--blur-radius", type=float, default=0.015, help="disk radius of set (b), share of long side")
    parser.add_argument("--step", type=int, default=6, help="every STEP-th sharp photo goes into set (d)")
    parser.add_argument("--cleanvision-python", default="/work/cv-venv/bin/python",
                        help="python of an environment with cleanvision installed")
    parser.add_argument("--calibrate", action="store_true", help="print the synthetic calibration table instead")
    parser.add_argument("--n", type=int, default=20, help="scenes per kind for --calibrate")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    (calibrate if args.calibrate else main_table)(args)


if __name__ == "__main__":
    main()
