"""The ``defocus synth`` subcommand: write a synthetic defocus dataset to a folder.

    defocus synth --out DIR --n N --seed S [--size 320] [--split train|val|test] [--kinds object_sharp,layout]

writes ``DIR/images/*.png``, ``DIR/masks/*.png`` (255 = out of focus), ``DIR/sigma/*.npy``, ``DIR/radius/*.npy``
and ``DIR/samples.csv``; ``defocus.data.open_dataset("folder", DIR, polarity="blur")`` reads it.
"""

from __future__ import annotations

import argparse
import sys

from .scenes import KINDS
from .sources import SPLITS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``synth`` options to an argparse (sub)parser."""
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--n", type=int, required=True, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0); equal seeds give equal files")
    parser.add_argument("--size", type=int, default=320, help="image side in px (default 320)")
    parser.add_argument("--split", choices=SPLITS, default="train",
                        help="source photos to use: train, or the held-out val/test photos (default train)")
    parser.add_argument("--kinds", default=None,
                        help=f"comma-separated scene kinds to draw from (default all: {','.join(KINDS)})")
    parser.add_argument("--shared", default=None,
                        help="the shared data folder (default $DEFOCUS_SHARED, else shared/ beside the repository)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")


def run(args: argparse.Namespace) -> int:
    """Run ``defocus synth``; returns the exit code (errors a user can cause raise DefocusError)."""
    from ..errors import DefocusError
    from .dataset import write_dataset

    if args.n < 1:
        raise DefocusError(f"--n must be at least 1, not {args.n}")
    if args.size < 32:
        raise DefocusError(f"--size must be at least 32, not {args.size}")
    kinds = None
    if args.kinds:
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise DefocusError(f"--kinds: unknown scene kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    from ..io import writable_folder

    writable_folder(args.out, "--out")
    # A bar on a terminal; in a log file its carriage returns would make one endless line, so a plain line there.
    live = sys.stderr.isatty()
    if not live:
        print(f"defocus synth: rendering {args.n} samples into {args.out}", file=sys.stderr, flush=True)
    try:
        write_dataset(args.out, args.n, args.seed, args.size, args.split, kinds=kinds, shared=args.shared,
                      force=args.force, progress=live)
    except ValueError as exc:
        raise DefocusError(str(exc)) from None
    print(f"wrote {args.n} samples to {args.out}")
    return 0
