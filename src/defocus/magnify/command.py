"""The ``defocus magnify`` sub-command: photos re-rendered with K times their defocus blur.

    defocus magnify PATHS... -o DIR [--amount K] [-m ESTIMATOR | --defocus-map FILE|DIR] [--in-front FILE|DIR]

writes ``DIR/<stem>_magnified.jpg`` per photo. The defocus map comes from a ``dme`` method (default
:data:`defocus.registry.DEFAULT_ESTIMATOR`) or from a saved map: one ``.npy``/``.mat`` file of σ in px, or a folder
holding ``<stem>_defocus.npy`` for each photo (what ``defocus estimate -o DIR`` writes). ``--in-front`` marks the
blurred pixels in front of the focal plane (a mask file, or a folder of ``<stem>_front.png``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import registry
from ..cli import finite_number
from ..errors import DefocusError, UsageError
from .rerender import HIGHLIGHT_GAIN

SUFFIX = "_magnified.jpg"
FACTOR = finite_number(1.0, inclusive=True)  # the amount K, the highlight gain


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``magnify`` options to an argparse (sub)parser."""
    from ..cli import add_batch_arguments

    add_batch_arguments(parser, registry.DEFAULT_ESTIMATOR, "dme", engines=False)
    # None marks "-m not given", so that -m and --defocus-map can be refused together; the help above still names
    # the estimator used by default.
    parser.set_defaults(method=None)
    parser.add_argument("--amount", "-k", type=FACTOR, default=2.0, metavar="K",
                        help="multiply every pixel's blur (disk radius) by K >= 1 (default 2)")
    parser.add_argument("--defocus-map", metavar="FILE|DIR",
                        help="use a saved defocus map (σ px) instead of estimating one: a .npy/.mat file, or a "
                             "folder with <stem>_defocus.npy per photo (as 'defocus estimate' writes)")
    parser.add_argument("--in-front", metavar="FILE|DIR",
                        help="a mask of the blurred parts that lie in front of the focus (white: >= 0.5), which then "
                             "spread over the subject; a mask file, or a folder with <stem>_front.png per photo "
                             "(default: everything blurred lies behind)")
    parser.add_argument("--highlight-gain", type=FACTOR, default=HIGHLIGHT_GAIN, metavar="G",
                        help=f"brighten clipped highlights by up to G before blurring so they bloom into discs "
                             f"(default {HIGHLIGHT_GAIN:g}; 1 = off)")
    parser.add_argument("--psf", choices=("disk", "gaussian"), default="disk",
                        help="shape of the added blur (default disk: a lens's hard-edged bokeh)")


def read_front_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A saved mask (image or array, ≥ 0.5 = in front of the focus) checked against a photo's H×W; DefocusError
    naming the file."""
    from ..io import read_map

    mask = read_map(path)
    if mask.shape != tuple(shape):
        raise DefocusError(f"{path}: mask is {mask.shape[0]}×{mask.shape[1]}, the photo {shape[0]}×{shape[1]}")
    return np.nan_to_num(mask, nan=0.0) >= 0.5


def _per_photo(given: Path | None, stem: str, name: str) -> Path | None:
    """The file of one photo: ``given`` itself, or ``given/<stem><name>`` when ``given`` is a folder."""
    if given is None:
        return None
    return given / f"{stem}{name}" if given.is_dir() else given


def run(args: argparse.Namespace) -> int:
    """Run ``defocus magnify``; returns the exit code."""
    from ..cli import _finite_map, run_batch
    from ..io import read_image, read_photo_defocus_map, write_image
    from .rerender import magnify

    saved = Path(args.defocus_map) if args.defocus_map else None
    if saved is not None and args.method is not None:
        raise UsageError("-m/--method and --defocus-map exclude each other: estimate a map or read one")
    front = Path(args.in_front) if args.in_front else None
    for option, given in (("--defocus-map", saved), ("--in-front", front)):
        if given is not None and not given.exists():
            raise UsageError(f"{option} {given}: no such file or folder")
    name = args.method or registry.DEFAULT_ESTIMATOR
    method = None if saved is not None else registry.load_from_args(
        name, task="dme", device=args.device, weights=args.weights, options=args.option, runtime=args.runtime)
    out = Path(args.output)

    def outputs_of(stem: str) -> list[Path]:
        return [out / f"{stem}{SUFFIX}"]

    def process(path: Path, files: list[Path], stage) -> None:
        image = read_image(path, max_pixels=args.max_pixels)
        stem = files[0].name[: -len(SUFFIX)]
        front_path = _per_photo(front, stem, "_front.png")
        in_front = read_front_mask(front_path, image.shape[:2]) if front_path is not None else None
        if method is not None:
            sigma = np.maximum(_finite_map(method.predict(image), path, name), 0.0)
        else:
            sigma = read_photo_defocus_map(saved, stem, image.shape[:2])
        result = magnify(image, sigma, args.amount, highlight_gain=args.highlight_gain, psf=args.psf,
                         in_front=in_front)
        write_image(files[0], result, stage=stage)

    desc = f"magnify ×{args.amount:g} [{saved.name if saved is not None else name}]"
    return run_batch(args.inputs, out, outputs_of, process, force=args.force, desc=desc)
