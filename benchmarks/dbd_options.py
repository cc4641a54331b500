"""Score a grid of a blur detector's options on a synthetic split (never the real samples), one Markdown row each.

The classic detectors whose papers leave a threshold or a parameter open pick it here, on the ``train`` split, and
confirm the pick on ``val``; the ``test`` split stays the benchmark's. Scores: MAE, Fβ and IoU under the
``ddffnet`` protocol, as benchmarks/accuracy.py reports them.

    python benchmarks/dbd_options.py -m ltcop --split train --grid threshold=0.008,0.016,0.03 lowest=5,6,7
    python benchmarks/dbd_options.py -m ltcop --split val --grid "patterns=('upper',),('lower',),('upper','lower')"

A grid value is a Python literal (``ast.literal_eval``); values are split on commas outside brackets.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _values(text: str) -> list:
    """``"0.1,0.2"`` → [0.1, 0.2]; ``"('a',),('a','b')"`` → [('a',), ('a', 'b')] (commas inside brackets kept)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([" and 1 or ch in ")]" and -1 or 0
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [ast.literal_eval(p) for p in parts if p.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--method", required=True)
    parser.add_argument("--grid", nargs="*", default=[], help="option=v1,v2,… (Python literals)")
    parser.add_argument("--split", choices=("train", "val"), default="train")
    parser.add_argument("-n", type=int, default=40, help="scenes (default 40)")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args(argv)

    from defocus.data import open_dataset
    from defocus.evaluate import evaluate_method

    grid = {}
    for item in args.grid:
        key, _, text = item.partition("=")
        if not re.fullmatch(r"[A-Za-z_]\w*", key) or not text:
            parser.error(f"--grid takes option=v1,v2,…, got {item!r}")
        grid[key] = _values(text)
    ds = open_dataset("synth", args.shared, n=args.n, split=args.split, task="dbd")
    print(f"| {args.method} options ({ds.name}, {len(ds)} scenes) | MAE | Fβ | IoU |\n|---|---:|---:|---:|")
    for combo in itertools.product(*grid.values()):
        options = dict(zip(grid, combo))
        res = evaluate_method(args.method, ds, "ddffnet", method_options=options)
        s = res.summary
        print(f"| {options or 'defaults'} | {s['mae']:.4f} | {s['fbeta']:.4f} | {s['iou']:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
