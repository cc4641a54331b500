"""The ``defocus deblur`` subcommand: remove defocus blur from photos, writing ``<stem>_deblurred.png``.

    defocus deblur PATHS... -o DIR [-m ESTIMATOR] [--option KEY=VALUE ...]
    defocus deblur PATHS... -o DIR --defocus-map MAPS/           # <stem>_defocus.npy from 'defocus estimate'
    defocus deblur photo.jpg -o DIR --defocus-map photo_sigma.npy  # one photo, one map

The defocus map (Gaussian σ in px, the size of the photo) is estimated by ``-m`` (default: the default estimator)
or read from ``--defocus-map``: a ``.npy``/``.mat`` file for a single photo, or a folder holding
``<stem>_defocus.npy`` per photo as ``defocus estimate`` writes it (σ units, not ``--units radius``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..cli import finite_number
from ..errors import DefocusError, UsageError
from . import DEFAULTS, PSFS

SUFFIX = "_deblurred.png"
POSITIVE = finite_number(0.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``deblur`` options to an argparse (sub)parser."""
    from .. import registry
    from ..cli import add_batch_arguments

    add_batch_arguments(parser, registry.DEFAULT_ESTIMATOR, "dme", engines=False)
    parser.set_defaults(method=None)  # so that -m given together with --defocus-map can be refused
    parser.add_argument("--defocus-map", metavar="PATH",
                        help="use this defocus map (σ px) instead of estimating one: a .npy/.mat file for one photo, "
                             "or a folder of <stem>_defocus.npy files as 'defocus estimate' writes")
    parser.add_argument("--psf", choices=PSFS, default=DEFAULTS["psf"],
                        help=f"PSF per blur level: Gaussian of the map's σ, or the equivalent disk "
                             f"(default {DEFAULTS['psf']})")
    parser.add_argument("--data-weight", type=POSITIVE, default=DEFAULTS["data_weight"], metavar="LAMBDA",
                        help=f"weight of the data term: higher is sharper and noisier (default "
                             f"{DEFAULTS['data_weight']:g}, for 8-bit JPEG noise)")
    parser.add_argument("--alpha", type=POSITIVE, default=DEFAULTS["alpha"],
                        help=f"exponent of the hyper-Laplacian prior, in (0, 1] (default {DEFAULTS['alpha']:.3g})")
    parser.add_argument("--min-sigma", type=POSITIVE, default=DEFAULTS["min_sigma"], metavar="PX",
                        help=f"σ at or below which a pixel is left as it is (default {DEFAULTS['min_sigma']:g} px)")
    space = parser.add_mutually_exclusive_group()
    space.add_argument("--linear", dest="linear", action="store_true", default=DEFAULTS["linear"],
                       help="deconvolve in linear light" + (" (default)" if DEFAULTS["linear"] else ""))
    space.add_argument("--srgb", dest="linear", action="store_false",
                       help="deconvolve the sRGB values" + ("" if DEFAULTS["linear"] else " (default)"))
    parser.add_argument("--tile", type=int, default=DEFAULTS["tile"], metavar="PX",
                        help=f"tile side for bounded memory (default {DEFAULTS['tile']} px)")


def _check_map_source(args: argparse.Namespace) -> Path:
    """``--defocus-map``, after checking it fits the inputs (usage errors): a folder of ``<stem>_defocus.npy``, or
    one map file for one photo."""
    from ..io import find_images

    source = Path(args.defocus_map)
    if source.is_dir():
        return source
    if not source.exists():
        raise UsageError(f"--defocus-map {source}: no such file or folder")
    photos, _ = find_images(args.inputs)
    if len(photos) > 1:
        raise UsageError(f"--defocus-map {source}: one map file fits one photo, but {len(photos)} were given; "
                         f"give a folder of <stem>_defocus.npy files instead")
    return source


def run(args: argparse.Namespace) -> int:
    """Run ``defocus deblur``; returns the exit code."""
    from .. import registry
    from ..cli import _finite_map, run_batch
    from ..errors import InputArrayError
    from ..io import read_image, read_photo_defocus_map, write_image
    from . import deblur

    if not 0 < args.alpha <= 1:
        raise UsageError(f"--alpha {args.alpha:g}: must be in (0, 1]")
    if args.tile < 16:
        raise UsageError(f"--tile {args.tile}: must be at least 16 px")
    if args.defocus_map is not None and (args.method is not None or args.option or args.weights):
        raise UsageError("--defocus-map replaces the estimator; do not combine it with -m, --option or --weights")
    if args.defocus_map is not None:
        source, name = _check_map_source(args), "--defocus-map"
        estimator = None
    else:
        name = args.method or registry.DEFAULT_ESTIMATOR
        estimator = registry.load_from_args(name, task="dme", device=args.device, weights=args.weights,
                                            options=args.option, runtime=args.runtime)
    out = Path(args.output)
    params = dict(psf=args.psf, data_weight=args.data_weight, alpha=args.alpha, linear=args.linear,
                  min_sigma=args.min_sigma, tile=args.tile)

    def outputs_of(stem: str) -> list[Path]:
        return [out / f"{stem}{SUFFIX}"]

    def process(path: Path, files: list[Path], stage) -> None:
        image = read_image(path, max_pixels=args.max_pixels)
        if estimator is not None:
            sigma = np.maximum(_finite_map(estimator.predict(image), path, name), 0.0)
        else:
            sigma = read_photo_defocus_map(source, files[0].name[: -len(SUFFIX)], image.shape[:2])
        try:
            result = deblur(image, sigma, **params)
        except InputArrayError as exc:
            raise DefocusError(f"{path}: {exc}") from None
        write_image(files[0], result, stage=stage)

    return run_batch(args.inputs, out, outputs_of, process, force=args.force, desc=f"deblur [{name}]")
