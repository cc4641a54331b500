"""``defocus cull PATHS... -o DIR``: focus verdicts for a folder of photos (see :mod:`defocus.cull`)."""

from __future__ import annotations

import argparse

from .core import DETECTOR


def _region(text: str):
    from .core import parse_region

    try:
        return parse_region(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..cli import add_batch_arguments

    add_batch_arguments(p, DETECTOR, "dbd")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="also the photos in sub-folders of folder inputs (and '**' in patterns)")
    p.add_argument("--subject", type=_region, metavar="X,Y,W,H",
                   help="the region the subject is in, in fractions of width and height (e.g. 0.3,0.2,0.4,0.6); "
                        "default: the largest, most central in-focus region")
    p.add_argument("--xmp", action="store_true",
                   help="write an XMP sidecar (xmp:Rating, xmp:Label) beside each photo; an existing one is "
                        "replaced only with --force")
    p.add_argument("--xmp-name", choices=("full", "stem"), default="full",
                   help="sidecar name: full = IMG_1.CR2.xmp (darktable, digiKam; default), stem = IMG_1.xmp "
                        "(Lightroom)")


def run(args: argparse.Namespace) -> int:
    from .batch import cull

    result = cull(args.inputs, args.output, subject=args.subject, recursive=args.recursive, xmp=args.xmp,
                  xmp_naming=args.xmp_name, force=args.force, max_pixels=args.max_pixels, args=args)
    return result.exit_code
