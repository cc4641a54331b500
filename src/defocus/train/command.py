"""``defocus train --config NAME|FILE [--out DIR] [--resume]``: train a network; ``--list`` shows the recipes.

Examples::

    defocus train --list                                                      # every recipe, one line each
    defocus train --config light-dffnet-mobilenetv2-cpu --out runs/bundled          # the bundled model's recipe
    defocus train --config light-dffnet-mobilenetv2-cpu --out runs/bundled --resume # continue after a crash / kill
    defocus train --config light-dffnet-mobilenetv2-real --real cuhk:/data/CUHK --real dut:/data/DUT --out runs/real
    defocus train --config benet --out runs/benet                             # Karaali 2022's B-Net, then E-Net
    torchrun --nproc_per_node 4 -m defocus train --config light-dffnet-mobilenetv2 --out runs/gpu
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import UsageError


def _at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``defocus train``."""
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", metavar="NAME|FILE",
                      help="a recipe (see --list) or a JSON file (fields of TrainConfig; 'base' names a recipe to "
                           "start from)")
    what.add_argument("--list", action="store_true", help="list the recipes (name, what it trains, description)")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in --out")
    p.add_argument("--real", action="append", default=[], metavar="KIND:ROOT",
                   help="add a real labelled folder (kinds of defocus.data.open_dataset, e.g. cuhk:/data/CUHK); "
                        "repeatable")
    p.add_argument("--steps", type=_at_least(1), default=None, help="override the number of steps (≥ 1)")
    p.add_argument("--batch-size", type=_at_least(1), default=None, help="override the batch size per process (≥ 1)")
    p.add_argument("--workers", type=_at_least(0), default=None, help="override the data-loader workers (≥ 0)")
    p.add_argument("--seed", type=int, default=None, help="override the seed")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")


def recipe_lines() -> list[str]:
    """One line per recipe: name, what it trains (task and architecture), description."""
    from .config import RECIPES

    width = max(map(len, RECIPES))
    return [f"{name:<{width}}  {cfg.task:<5}  {cfg.model['arch']:<12}  {cfg.description}"
            for name, cfg in RECIPES.items()]


def resolve_config(args: argparse.Namespace):
    """The :class:`~defocus.train.config.TrainConfig` the arguments describe."""
    from dataclasses import replace

    from .config import RealData, get_config

    cfg = get_config(args.config)
    for spec in args.real:
        kind, sep, root = spec.partition(":")
        if not sep or not root:
            raise UsageError(f"--real {spec!r}: expected KIND:ROOT, e.g. cuhk:/data/CUHK")
        cfg.real.append(RealData(kind=kind, root=root))
    overrides = {name: getattr(args, name) for name in ("steps", "batch_size", "workers", "seed")
                 if getattr(args, name) is not None}
    return replace(cfg, **overrides)


def run(args: argparse.Namespace) -> int:
    """Run ``defocus train``; returns the exit code (errors a user can cause raise DefocusError, a wrong command line
    UsageError)."""
    from pathlib import Path

    from ..io import writable_folder

    if args.list:
        print("\n".join(recipe_lines()))
        return 0
    cfg = resolve_config(args)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=1))
        return 0
    out = writable_folder(Path(args.out) if args.out else Path("runs") / cfg.name, "--out")
    from .trainer import describe_scores, train

    result = train(cfg, out, resume=args.resume, device=args.device, progress=not args.no_progress)
    if result.get("val"):
        print(describe_scores(result["val"]), file=sys.stderr)
    if result.get("model"):
        print(result["model"])
    return 0
