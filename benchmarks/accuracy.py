"""Accuracy of registered methods on the real labelled samples in ``shared/data/real``, as one Markdown table.

* DBD: ``cuhk_samples`` (its defocus images only; GT 255 = blurred) and ``cuhk_te1_320`` (CUHK-TE-1 as distributed
  at 320×320; GT 255 = in focus) under ``--protocol`` (default ``ddffnet``).
* DME: ``rtf_sample`` (disk-radius GT) under ``rtf`` (last 20 columns dropped, DMENet's nearest table lookup).
* ``synth_test`` (``--synth N``, default 60): the fixed synthetic test set, dataset kind ``synth`` of
  :mod:`defocus.data` (320 px, seed 777, split ``test``) — scenes built only from photos held out of training and
  validation. DBD under ``--protocol``; DME under ``rtf`` with nothing dropped and σ ground truth (MAE in σ px).

Every set is read by its :mod:`defocus.data` loader (which converts its polarity to ours; the loader used is printed
on stderr) and scored by :func:`defocus.evaluate.evaluate_method`, as ``defocus evaluate --method NAME --dataset
KIND`` does. s/img is the mean wall time of ``predict`` alone.

    python benchmarks/accuracy.py                                 # every registered method
    python benchmarks/accuracy.py --methods gradient-energy lbp --protocol zhao --out docs/accuracy.md
    python benchmarks/accuracy.py --task dme --synth 0               # RTF sample only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def datasets(shared: Path, task: str, synth: int = 0) -> list[tuple[str, object]]:
    """(table label, dataset) of every set of ``task``, each read by its :mod:`defocus.data` loader."""
    from defocus.data import open_dataset

    real = shared / "data" / "real"
    specs: list[tuple[str, Path, dict]] = []
    if task in ("dbd", "all"):
        specs.append(("cuhk", real / "cuhk_samples", {"subset": "defocus"}))
        specs.append(("cuhk", real / "cuhk_te1_320", {}))  # recognised as the 320 px CUHK-TE-1
        if synth > 0:
            specs.append(("synth", shared, {"n": synth, "task": "dbd"}))
    if task in ("dme", "all"):
        specs.append(("rtf", real / "rtf_sample", {}))
        if synth > 0:
            specs.append(("synth", shared, {"n": synth, "task": "dme"}))
    out = []
    for kind, root, options in specs:
        ds = open_dataset(kind, root, **options)
        label = ds.name if kind == "synth" else root.name  # the real sets are labelled by their folder
        print(f"{label}: {len(ds)} samples via defocus.data '{kind}' loader ({ds.name}; {ds.layout})",
              file=sys.stderr)
        out.append((label, ds))
    return out


def _row(name: str, label: str, protocol: str, res) -> str:
    """One line of the table: DBD MAE / Fβ / IoU, DME MAE in σ px (and relative)."""

    def f(key):
        v = res.summary.get(key)
        return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"

    spi = f"{res.seconds_per_image:.3g}" if res.seconds_per_image is not None else "–"
    head = f"| {name} | {res.task} | {label} | {protocol} | {res.n_images} |"
    if res.task == "dbd":
        return f"{head} {f('mae')} | {f('fbeta')} | {f('iou')} | {spi} |"
    return f"{head} {f('mae')} σ px (rel {f('mae_rel')}) | – | – | {spi} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared/ folder")
    parser.add_argument("--task", choices=("dbd", "dme", "all"), default="all")
    parser.add_argument("--methods", nargs="+", help="method names (default: every registered one of the task)")
    parser.add_argument("--protocol", default="ddffnet", help="DBD protocol (default ddffnet)")
    parser.add_argument("--synth", type=int, default=60, help="synthetic test scenes per task (0 = none)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)

    import defocus
    from defocus.evaluate import PROTOCOLS, evaluate_method

    if args.protocol not in PROTOCOLS or PROTOCOLS[args.protocol].task != "dbd":
        parser.error(f"--protocol must be a DBD protocol: {', '.join(n for n, p in PROTOCOLS.items() if p.task == 'dbd')}")
    if not (args.shared / "data" / "real").is_dir():
        parser.error(f"{args.shared}/data/real not found (use --shared)")

    lines = ["| Method | Task | Dataset | Protocol | Images | MAE ↓ | Fβ ↑ | IoU ↑ | s/img |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    failed = 0
    for label, ds in datasets(args.shared, args.task, args.synth):
        protocol = args.protocol if ds.task == "dbd" else "rtf"
        for name in args.methods or defocus.available(ds.task):
            try:
                if defocus.describe(name).task != ds.task:
                    continue
                method = defocus.load(name, device=args.device)
            except Exception as exc:  # e.g. missing weights: report and go on with the others
                print(f"{name}: cannot load ({type(exc).__name__}: {exc})", file=sys.stderr)
                failed += 1
                continue
            res = evaluate_method(method, ds, protocol, on_error=lambda m: print(f"error: {m}", file=sys.stderr))
            failed += len(res.failures)
            lines.append(_row(name, label, protocol, res))
    table = "\n".join(lines)
    print(table)
    if args.out:
        from defocus.io import atomic_write

        text = table + "\n"
        atomic_write(args.out, lambda fobj: fobj.write(text.encode("utf-8")), force=True)
        print(f"wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
