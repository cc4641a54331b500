"""Ablations of the blur detectors' training data, each change alone on the same budget, as one Markdown table.

Every arm fine-tunes the bundled ``dffnet`` (all its tensors) for the same steps, crops, schedule and seed on the CPU
recipe ``ddffnet-stage1-mobilenetv2-cpu``; arms differ only in their data:

* ``control``  — a fresh pool of standard synthetic scenes (the engine as the bundled models saw it);
* ``lens``     — the same scenes with lens-profile discs in half the disk-PSF samples (soap-bubble rims,
                 spherical-aberration cores, onion rings: ``synth.lens_psfs = 0.5``);
* ``demosaic`` — Bayer sampling and demosaicing in half the camera passes (``synth.demosaic = 0.5``);
* ``chromatic`` — axial and lateral chromatic aberration in half the scenes (``synth.chromatic = 0.5``);
* ``cats_eye`` — cat's-eye discs towards the corners in half the disk-PSF samples (``synth.cats_eye = 0.5``);
* ``pseudo``   — the control's scenes plus real unlabelled photos (the train split of ``B_shallow_dof`` and of the
                 masked photos) labelled by the bundled ``dffnet`` with flips, the photos it leaves ≤ 20 % undecided
                 (:mod:`defocus.train.pseudo`).

``a+b`` combines arms. Scores (protocol ``ddffnet``): the real samples (7 images; they were validation sets of the
bundled models — a sanity check, never used to choose), the synthetic test set (60 scenes of held-out photos) with
the standard engine and with both realism options on (``synth_test_realism``), and, on the held-out real bokeh photos
(``B_shallow_dof`` of the val/test splits, no labels), the share of pixels the map leaves undecided (0.1 < p < 0.9)
— lower is more decided, not necessarily more right.

    python benchmarks/dbd_ablation.py --out runs/ablation --steps 300 --arms control lens demosaic pseudo --jobs 2
    python benchmarks/dbd_ablation.py --out runs/ablation --eval-only --arms control lens     # table only
    python benchmarks/dbd_ablation.py --out runs/final --eval-only --arms dffnet light --baselines dffnet light-dffnet
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

BUNDLED = "bundled:dffnet_mobilenetv2_synth.safetensors"

#: Each arm's differences from the fine-tuning recipe (``PSEUDO`` is replaced by the pseudo-label folder).
ARMS = {
    "control": {},
    "lens": {"synth": {"lens_psfs": 0.5}},
    "demosaic": {"synth": {"demosaic": 0.5}},
    "chromatic": {"synth": {"chromatic": 0.5}},
    "cats_eye": {"synth": {"cats_eye": 0.5}},
    "pseudo": {"real": [{"kind": "folder", "root": "PSEUDO", "options": {"polarity": "blur"}}]},
}


def arm_config(arm: str, steps: int, pseudo: Path) -> dict:
    cfg = {"base": "ddffnet-stage1-mobilenetv2-cpu", "name": f"ablation-{arm}", "pretrained": False,
           "init_from": BUNDLED, "init_prefix": "", "steps": steps, "lr": 3e-4, "warmup_steps": 0, "seed": 5,
           "synth": {"length": 2000, "seed": 11}, "val_every": 0, "val_synth": 0, "val_real": False,
           "checkpoint_every": 50}
    for part in arm.split("+"):
        if part not in ARMS:
            raise SystemExit(f"unknown arm {part!r}: one of {', '.join(ARMS)} (joined with +)")
        for key, value in ARMS[part].items():
            if key == "synth":
                cfg["synth"] = {**cfg["synth"], **value}
            elif key == "real":
                cfg["real"] = [{**r, "root": str(pseudo)} for r in value]
            else:
                cfg[key] = value
    return cfg


def held_out_bokeh(shared: Path) -> list[Path]:
    """Real bokeh photos of the val and test splits (never trained on, not even as pseudo-labels)."""
    from defocus.synth.sources import IMAGE_SUFFIXES, split_of

    return [p for folder in sorted((shared / "data" / "photos").glob("*/B_shallow_dof")) for p in sorted(folder.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES and split_of(folder.parent.name, p.name) != "train"]


def train(arms: list[str], out: Path, steps: int, pseudo: Path, jobs: int) -> None:
    running: list[tuple[str, subprocess.Popen, float]] = []
    todo = [a for a in arms if not (out / a / "model.safetensors").exists()]
    while todo or running:
        while todo and len(running) < jobs:
            arm = todo.pop(0)
            (out / arm).mkdir(parents=True, exist_ok=True)
            config = out / arm / "config.json"
            config.write_text(json.dumps(arm_config(arm, steps, pseudo), indent=1))
            log = open(out / arm / "train.log", "a")
            cmd = [sys.executable, "-m", "defocus.train", "--config", str(config), "--out", str(out / arm), "--resume"]
            running.append((arm, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), time.time()))
            print(f"started {arm}", file=sys.stderr)
        time.sleep(5)
        for item in list(running):
            arm, proc, t0 = item
            if proc.poll() is not None:
                running.remove(item)
                print(f"{arm}: rc {proc.returncode} after {time.time() - t0:.0f} s", file=sys.stderr)
                if proc.returncode:
                    raise SystemExit(f"{arm} failed: see {out / arm / 'train.log'}")


def scores(method, sets, bokeh: list[Path]) -> list[str]:
    from defocus.evaluate import evaluate_method
    from defocus.synth.sources import load_rgb
    from defocus.train.pseudo import undecided_fraction

    cells = []
    for _, ds in sets:
        res = evaluate_method(method, ds, "ddffnet", on_error=lambda m: print(f"error: {m}", file=sys.stderr))
        s = res.summary
        cells.append(f"{s['mae']:.4f} / {s['fbeta']:.4f} / {s['iou']:.4f}")
    shares = [undecided_fraction(method.predict(np.asarray(load_rgb(p, 640), np.float32) / 255.0)) for p in bokeh]
    cells.append(f"{np.mean(shares):.3f}")
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs (one sub-folder per arm)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once (one thread each)")
    parser.add_argument("--synth", type=int, default=60, help="synthetic test scenes")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--eval-only", action="store_true")
    parser.add_argument("--baselines", nargs="*", default=["dffnet"], help="registered detectors scored as they are")
    parser.add_argument("--flip", action="store_true", help="also score every row with flip test-time augmentation")
    args = parser.parse_args(argv)

    import defocus
    from defocus.data import open_dataset

    pseudo = args.out / "pseudo-labels"
    if any("pseudo" in a.split("+") for a in args.arms) and not (pseudo / "labels.csv").exists() and not args.eval_only:
        from defocus.train.data import unlabelled_photos
        from defocus.train.pseudo import write_pseudo_labels

        stats = write_pseudo_labels(defocus.load("dffnet", flip=True), unlabelled_photos(args.shared), pseudo,
                                    progress=True)
        print(f"pseudo-labels: {stats}", file=sys.stderr)
    if not args.eval_only:
        train(args.arms, args.out, args.steps, pseudo, args.jobs)

    real = args.shared / "data" / "real"
    sets = [("cuhk_samples", open_dataset("cuhk", real / "cuhk_samples", subset="defocus")),
            ("cuhk_te1_320", open_dataset("cuhk", real / "cuhk_te1_320")),
            ("synth_test", open_dataset("synth", args.shared, n=args.synth)),
            ("synth_test_realism", open_dataset("synth", args.shared, n=args.synth, lens_psfs=0.5, demosaic=0.5))]
    bokeh = held_out_bokeh(args.shared)
    print(f"| arm ({args.steps} steps) | " + " | ".join(f"{n} MAE ↓ / Fβ ↑ / IoU ↑" for n, _ in sets)
          + f" | undecided share, {len(bokeh)} held-out bokeh photos |")
    print("|---" * (len(sets) + 2) + "|")
    rows = [(f"bundled `{name}`", name, {}) for name in args.baselines]
    rows += [(arm, "dffnet", {"weights": str(args.out / arm / "model.safetensors")}) for arm in args.arms]
    for label, name, options in rows:
        for flip in (False, True) if args.flip else (False,):
            method = defocus.load(name, flip=flip, **options)  # a weights file names its own architecture
            print(f"| {label}{', flip' if flip else ''} | " + " | ".join(scores(method, sets, bokeh)) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
