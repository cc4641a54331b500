"""The ``defocus`` command line.

``defocus detect``, ``estimate``, ``evaluate``, ``synth``, ``train`` and ``methods``. Per-file problems are reported
on one line each and the batch goes on; the exit code is 1 if any file failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, registry
from .errors import DefocusError, OutputExistsError


def _error(msg: str) -> None:
    print(f"defocus: error: {msg}", file=sys.stderr)


def _check_device(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DefocusError(f"--device {device}: no CUDA device is available on this machine")


def _load_method(name: str, task: str, device: str) -> registry.Method:
    cls = registry.describe(name)
    if cls.task != task:
        other = "detect" if cls.task == "dbd" else "estimate"
        raise DefocusError(f"method {name!r} is a {cls.task.upper()} method; use 'defocus {other}'")
    _check_device(device)
    return registry.load(name, device=device)


def run_batch(
    inputs: list[str],
    outputs_of: Callable[[Path], list[Path]],
    process: Callable[[Path], None],
    *,
    force: bool,
    desc: str,
) -> int:
    """Run ``process`` on every image found in ``inputs``; report failures on one line each; return the exit code.

    ``outputs_of(path)`` lists the files ``process`` would write, so existing ones are refused before any work.
    """
    from tqdm import tqdm

    from .io import find_images

    paths, failures = find_images(inputs)
    for msg in failures:
        _error(msg)
    n_failed = len(failures)
    for path in tqdm(paths, desc=desc, unit="img", disable=None, file=sys.stderr):
        try:
            if not force:
                for out in outputs_of(path):
                    if out.exists():
                        raise OutputExistsError(f"{out}: exists already (use --force to overwrite)")
            process(path)
        except DefocusError as exc:
            n_failed += 1
            tqdm.write(f"defocus: error: {exc}", file=sys.stderr)
        except (MemoryError, RuntimeError, ValueError, OSError) as exc:
            n_failed += 1
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            tqdm.write(f"defocus: error: {path}: {type(exc).__name__}: {first}", file=sys.stderr)
    total = len(paths) + len(failures)
    if n_failed:
        _error(f"{n_failed} of {total} input(s) failed")
        return 1
    if total == 0:
        _error("no input images")
        return 1
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from .io import read_image, write_npy, write_overlay, write_png8

    method = _load_method(args.method, "dbd", args.device)
    out = Path(args.output)
    suffix = "_focus" if args.focus else "_blur"

    def outputs_of(path: Path) -> list[Path]:
        files = [out / f"{path.stem}{suffix}.png", out / f"{path.stem}_overlay.jpg"]
        return files + ([out / f"{path.stem}{suffix}.npy"] if args.npy else [])

    def process(path: Path) -> None:
        image = read_image(path)
        blur = np.clip(method.predict(image), 0.0, 1.0).astype(np.float32)
        saved = 1.0 - blur if args.focus else blur
        files = outputs_of(path)
        write_png8(files[0], saved, force=args.force)
        write_overlay(files[1], image, blur, force=args.force)
        if args.npy:
            write_npy(files[2], saved, force=args.force)

    return run_batch(args.inputs, outputs_of, process, force=args.force, desc=f"detect [{args.method}]")


def cmd_estimate(args: argparse.Namespace) -> int:
    from .io import read_image, write_defocus_png, write_npy
    from .units import convert

    if args.method is None:
        raise DefocusError("no defocus-map method is registered yet")
    method = _load_method(args.method, "dme", args.device)
    out = Path(args.output)
    unit_label = "px sigma" if args.units == "sigma" else "px radius"

    def outputs_of(path: Path) -> list[Path]:
        return [out / f"{path.stem}_defocus.npy", out / f"{path.stem}_defocus.png"]

    def process(path: Path) -> None:
        image = read_image(path)
        sigma = np.maximum(np.nan_to_num(method.predict(image).astype(np.float32)), 0.0)
        values = convert(sigma, args.units)
        files = outputs_of(path)
        write_npy(files[0], values, force=args.force)
        write_defocus_png(files[1], values, unit=unit_label, force=args.force)

    return run_batch(args.inputs, outputs_of, process, force=args.force, desc=f"estimate [{args.method}]")


def cmd_methods(args: argparse.Namespace) -> int:
    for name in registry.available(args.task):
        cls = registry.describe(name)
        print(f"{name}\t{cls.task}\t{cls.summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="defocus",
        description="Defocus blur detection (blur maps, 1 = out of focus) and defocus map estimation (σ in px).",
    )
    parser.add_argument("--version", action="version", version=f"defocus {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def common(p: argparse.ArgumentParser, default_method: str | None) -> None:
        p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
        p.add_argument("-m", "--method", default=default_method, help=f"method name (default: {default_method})")
        p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results")
        p.add_argument("--force", action="store_true", help="overwrite existing output files")
        p.add_argument("--device", default="cpu", help="cpu or cuda (learned methods)")

    p = sub.add_parser("detect", help="blur maps: <stem>_blur.png (255 = out of focus) and <stem>_overlay.jpg")
    common(p, registry.DEFAULT_DETECTOR)
    p.add_argument("--focus", action="store_true", help="write the in-focus map (the complement) instead")
    p.add_argument("--npy", action="store_true", help="also write the float32 map as <stem>_blur.npy")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("estimate", help="defocus maps: <stem>_defocus.npy (float32 px) and a colourised PNG")
    common(p, registry.DEFAULT_ESTIMATOR)
    p.add_argument("--units", choices=("sigma", "radius"), default="sigma",
                   help="Gaussian sigma (default) or disk (CoC) radius via the RTF table, both in px")
    p.set_defaults(func=cmd_estimate)

    from .evaluate import command as evaluate_command

    p = sub.add_parser("evaluate", help="score predicted maps against ground truth under a named protocol")
    evaluate_command.add_arguments(p)
    p.set_defaults(func=evaluate_command.run)

    from .synth import command as synth_command

    p = sub.add_parser("synth", help="render a synthetic defocus dataset (images, blur masks, sigma and radius maps)")
    synth_command.add_arguments(p)
    p.set_defaults(func=synth_command.run)

    from .train import command as train_command

    p = sub.add_parser("train", help="train a blur detector (synthetic defocus and/or real labelled folders)")
    train_command.add_arguments(p)
    p.set_defaults(func=train_command.run)

    p = sub.add_parser("methods", help="list methods: name, task, summary")
    p.add_argument("--task", choices=registry.TASKS, help="only DBD or only DME methods")
    p.set_defaults(func=cmd_methods)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DefocusError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
