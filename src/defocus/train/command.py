"""``defocus train --config NAME|FILE [--out DIR] [--resume]``: train a blur detector.

Examples::

    defocus train --config dffnet-mobilenetv2-cpu --out runs/bundled          # the bundled model's recipe
    defocus train --config dffnet-mobilenetv2-cpu --out runs/bundled --resume # continue after a crash / kill
    defocus train --config dffnet-mobilenetv2-real --real cuhk:/data/CUHK --real dut:/data/DUT --out runs/real
    torchrun --nproc_per_node 4 -m defocus train --config dffnet-mobilenetv2 --out runs/gpu
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import DefocusError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``defocus train``."""
    from .config import RECIPES

    p.add_argument("--config", required=True, metavar="NAME|FILE",
                   help=f"a recipe ({', '.join(RECIPES)}) or a JSON file (fields of TrainConfig; "
                        "'base' names a recipe to start from)")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--real", action="append", default=[], metavar="KIND:ROOT",
                   help="add a real labelled folder (kinds of defocus.data.open_dataset, e.g. cuhk:/data/CUHK); "
                        "repeatable")
    p.add_argument("--steps", type=int, default=None, help="override the number of steps")
    p.add_argument("--batch-size", type=int, default=None, help="override the batch size (per process)")
    p.add_argument("--workers", type=int, default=None, help="override the data-loader workers")
    p.add_argument("--seed", type=int, default=None, help="override the seed")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")


def resolve_config(args: argparse.Namespace):
    """The :class:`~defocus.train.config.TrainConfig` the arguments describe."""
    from .config import RealData, get_config

    cfg = get_config(args.config)
    for spec in args.real:
        kind, sep, root = spec.partition(":")
        if not sep or not root:
            raise DefocusError(f"--real {spec!r}: expected KIND:ROOT, e.g. cuhk:/data/CUHK")
        cfg.real.append(RealData(kind=kind, root=root))
    for name in ("steps", "batch_size", "workers", "seed"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    return cfg


def run(args: argparse.Namespace) -> int:
    """Run ``defocus train``; returns the exit code (errors a user can cause raise DefocusError)."""
    from pathlib import Path

    cfg = resolve_config(args)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=1))
        return 0
    from .trainer import train

    out = Path(args.out) if args.out else Path("runs") / cfg.name
    result = train(cfg, out, resume=args.resume, device=args.device, progress=not args.no_progress)
    for name, r in (result.get("val") or {}).items():
        print(f"{name}: MAE {r['mae']:.4f}  Fβ {r['fbeta']:.4f}  (n={r['n']})", file=sys.stderr)
    if result.get("model"):
        print(result["model"])
    return 0
