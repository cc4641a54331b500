"""The ``defocus`` command line.

``defocus detect``, ``estimate``, ``evaluate``, ``synth``, ``train`` and ``methods``. Per-file problems are reported
on one line each and the batch goes on; the exit code is 1 if any file failed, 2 for a usage error (nothing run).
A photo's output files appear together or not at all, so an interrupted or failed photo never blocks a re-run.
"""

from __future__ import annotations

import argparse
import importlib
import math
import signal
import sys
import threading
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, registry
from .errors import DefocusError, UsageError


def _error(msg: str) -> None:
    print(f"defocus: error: {msg}", file=sys.stderr, flush=True)


def _info(msg: str) -> None:
    print(f"defocus: {msg}", file=sys.stderr, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"defocus: warning: {message}", file=sys.stderr, flush=True)


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """The name each input's outputs start with: its stem, or its whole file name where two inputs of the batch
    share a stem (``a.jpg`` and ``a.png`` -> ``a.jpg``, ``a.png``). Two inputs with the same file name in different
    folders cannot be told apart that way: a :class:`UsageError` names both before any work."""
    by_stem: dict[str, list[Path]] = {}
    for p in paths:
        by_stem.setdefault(p.stem, []).append(p)
    stems = {p: (p.stem if len(group) == 1 else p.name) for group in by_stem.values() for p in group}
    seen: dict[str, Path] = {}
    for p, stem in stems.items():
        if stem in seen:
            raise UsageError(f"{seen[stem]} and {p} would write the same output files; run them into separate "
                             f"folders")
        seen[stem] = p
    return stems


def run_batch(
    inputs: list[str],
    out: Path,
    outputs_of: Callable[[str], list[Path]],
    process: Callable[..., object],
    *,
    force: bool,
    desc: str,
    args: argparse.Namespace | None = None,
    read: Callable[[Path], object] | None = None,
    found: tuple[list[Path], list[str]] | None = None,
    names: Callable[[list[Path]], dict[Path, str]] = output_stems,
    on_failure: Callable[[Path, str], None] | None = None,
    on_success: Callable[[Path, object], None] | None = None,
) -> int:
    """Run ``process`` on every image found in ``inputs``; report failures on one line each; return the exit code.

    ``outputs_of(stem)`` lists the files a photo writes. Two ways to say what is done to a photo:

    * with ``args`` (the namespace of a parser set up by :func:`add_batch_arguments`): run_batch loads the method
      of ``-m`` itself (once per worker), decodes each photo with ``read(path)`` (default: ``io.read_image`` under
      ``--max-pixels``) and calls ``process(method, path, image)``, which returns the photo's ``write(files,
      stage)``; the engine of ``--engine`` runs these steps (locally, decoding and writing in background threads:
      ``--prefetch``; or on Ray). A photo's files are the same whichever engine wrote them.
    * without: ``process(path, files, stage)`` reads, computes and writes one photo, in this thread, photo after
      photo.

    Either way the files are written into a stage (:class:`io.StagedFiles`) that puts them in place together once
    every one is written (or removes them all), and existing files are refused without ``force``.

    ``found``: the result of :func:`defocus.io.find_images` where the caller expanded ``inputs`` itself;
    ``names(paths)``: each photo's output stem (default :func:`output_stems`); ``on_failure(path, message)`` is
    called for each photo that failed, with the message printed for it; ``on_success(path, value)`` for each photo
    written, with what its write step returned (a small JSON-able value, which comes back from Ray workers too).
    A command with ``on_success`` needs every photo's value, so ``--engine ray`` then skips no finished photo.
    """
    from tqdm import tqdm

    from .engines import PhotoJob, PhotoSteps, MethodRequest
    from .io import find_images, read_image, writable_folder

    if args is not None:
        request = MethodRequest(args.method, args.method_task, args.device, args.weights, tuple(args.option),
                                getattr(args, "runtime", None))
        engine = _engine_options(args)
        method = request.load("cpu" if engine.name == "ray" else None)  # every usage error before any work
        steps = PhotoSteps(read or partial(read_image, max_pixels=args.max_pixels), process, request, force)
    else:
        engine, method = _engine_options(None), None
        steps = PhotoSteps(lambda path: path, lambda _method, path, _loaded: partial(process, path), None, force,
                           overlappable=False)
    paths, failures = found if found is not None else find_images(inputs)
    writable_folder(out, "-o")
    stems = names(paths)
    for msg in failures:
        _error(msg)
    jobs = [PhotoJob(i, path, outputs_of(stems[path])) for i, path in enumerate(paths, 1)]
    if engine.name == "ray":
        from .engines.ray_engine import finished, run_ray

        done = [] if force or on_success is not None else finished(jobs)
        if done:
            _info(f"skipping {len(done)} photo(s) whose outputs all exist (use --force to recompute them)")
        skip = {job.index for job in done}
        outcomes = run_ray(steps, [job for job in jobs if job.index not in skip], engine)
    else:
        from .engines.local import run_local

        done, outcomes = [], run_local(steps, jobs, method, prefetch=engine.prefetch)
    n_failed, n_written = len(failures), 0
    interactive = sys.stderr.isatty()
    bar = tqdm(total=len(paths), initial=len(done), desc=desc, unit="img", file=sys.stderr,
               disable=not interactive)
    try:
        for outcome in outcomes:
            if outcome.failure is not None:
                n_failed += 1
                if on_failure is not None:
                    on_failure(outcome.job.path, outcome.failure)
                (tqdm.write if interactive else print)(f"defocus: error: {outcome.failure}", file=sys.stderr)
            else:
                n_written += len(outcome.job.files)
                if on_success is not None:
                    on_success(outcome.job.path, outcome.value)
            n_files = len(outcome.job.files)
            status = "failed" if outcome.failure else f"wrote {n_files} files ({outcome.seconds:.1f} s)"
            if interactive:
                bar.update(1)
            else:
                _info(f"[{outcome.job.index}/{len(paths)}] {outcome.job.path}: {status}")
    finally:  # on Ctrl-C too: the engine's threads or Ray end here, their current photos whole or gone
        outcomes.close()
    bar.close()
    total = len(paths) + len(failures)
    skipped = f" ({len(done)} skipped: done before)" if done else ""
    _info(f"wrote {n_written} files for {total - n_failed - len(done)} of {total} photo(s) into {out}{skipped}")
    if n_failed:
        _error(f"{n_failed} of {total} input(s) failed")
        return 1
    if total == 0:
        _error("no input images")
        return 1
    return 0


@dataclass(frozen=True)
class EngineOptions:
    """Where a batch runs: ``--engine``, ``--prefetch`` (local) and ``--address``, ``--num-actors``, ``--num-cpus``,
    ``--num-gpus`` (Ray, per actor)."""

    name: str = "local"
    prefetch: int = 0
    address: str | None = None
    num_actors: int | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0


def _engine_options(args: argparse.Namespace | None) -> EngineOptions:
    if args is None:
        return EngineOptions()
    if args.engine != "ray":
        for flag, value in (("--address", args.address), ("--num-actors", args.num_actors),
                            ("--num-cpus", args.num_cpus), ("--num-gpus", args.num_gpus)):
            if value is not None:
                raise UsageError(f"{flag}: only with --engine ray")
    else:
        from .engines.ray_engine import import_ray

        import_ray()
        if args.num_actors == 0:
            raise UsageError("--num-actors: must be 1 or more")
        if args.device != "cpu" and not args.num_gpus:
            raise UsageError(f"--device {args.device}: on Ray, ask for GPUs per actor with --num-gpus G instead")
    return EngineOptions(args.engine, args.prefetch, args.address, args.num_actors, args.num_cpus or 1.0,
                         args.num_gpus or 0.0)


def _finite_map(values: np.ndarray, path: Path, method: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if bad:
        raise DefocusError(f"{path}: method {method!r} returned {bad} non-finite value(s); nothing written")
    return values


def cmd_detect(args: argparse.Namespace) -> int:
    from .io import write_npy, write_overlay, write_png8

    out = Path(args.output)
    suffix = "_focus" if args.focus else "_blur"

    def outputs_of(stem: str) -> list[Path]:
        files = [out / f"{stem}{suffix}.png", out / f"{stem}_overlay.jpg"]
        return files + ([out / f"{stem}{suffix}.npy"] if args.npy else [])

    def process(method, path: Path, image: np.ndarray):
        blur = np.clip(_finite_map(method.predict(image), path, args.method), 0.0, 1.0)
        saved = 1.0 - blur if args.focus else blur

        def write(files: list[Path], stage) -> None:
            write_png8(files[0], saved, stage=stage)
            write_overlay(files[1], image, blur, stage=stage)
            if args.npy:
                write_npy(files[2], saved, stage=stage)
        return write

    return run_batch(args.inputs, out, outputs_of, process, force=args.force, desc=f"detect [{args.method}]",
                     args=args)


def cmd_estimate(args: argparse.Namespace) -> int:
    from .io import write_defocus_png, write_npy
    from .units import convert

    out = Path(args.output)
    unit_label = "px sigma" if args.units == "sigma" else "px radius"

    def outputs_of(stem: str) -> list[Path]:
        return [out / f"{stem}_defocus.npy", out / f"{stem}_defocus.png"]

    def process(method, path: Path, image: np.ndarray):
        sigma = np.maximum(_finite_map(method.predict(image), path, args.method), 0.0)
        values = convert(sigma, args.units)

        def write(files: list[Path], stage) -> None:
            write_npy(files[0], values, stage=stage)
            write_defocus_png(files[1], values, unit=unit_label, stage=stage)
        return write

    return run_batch(args.inputs, out, outputs_of, process, force=args.force, desc=f"estimate [{args.method}]",
                     args=args)


def cmd_methods(args: argparse.Namespace) -> int:
    for name in registry.available(args.task):
        info = registry.describe(name)
        also = f" (also: {', '.join(info.aliases)})" if info.aliases else ""
        runs = f" [runtime: {info.pretrained.default_runtime()}]" if info.pretrained is not None else ""
        print(f"{name}\t{info.task}\t{info.summary}{also}{runs}")
    return 0


class _CommandParser(argparse.ArgumentParser):
    """A sub-command's parser; with ``command=`` (a module with ``add_arguments(parser)`` and ``run(args)``) its
    arguments are added only when that sub-command is parsed or its help is shown, so building the CLI imports no
    sub-command's code (``defocus --version`` and ``defocus methods`` stay free of torch and the synthetic engine)."""

    def __init__(self, *args, command: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._command = command

    def _attach(self) -> None:
        if self._command is not None:
            module, self._command = importlib.import_module(self._command), None
            module.add_arguments(self)
            self.set_defaults(func=module.run)

    def parse_known_args(self, args=None, namespace=None):
        self._attach()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._attach()
        return super().format_help()

    def format_usage(self) -> str:
        self._attach()
        return super().format_usage()


def finite_number(low: float, *, inclusive: bool = False):
    """An argparse ``type``: a finite float above ``low`` (at least ``low`` when ``inclusive``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and (value >= low if inclusive else value > low)):
            raise argparse.ArgumentTypeError(f"must be a finite number {'>=' if inclusive else '>'} {low:g}, "
                                             f"not {text}")
        return value

    return parse


def _positive_pixels(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_batch_arguments(p: argparse.ArgumentParser, default_method: str | None, task: str, *,
                        engines: bool = True) -> None:
    """The arguments every photo-batch command shares: inputs, ``-m``, ``-o``, ``--force``, ``--device``,
    ``--weights``, ``--option``, ``--runtime``, ``--max-pixels`` and, with ``engines`` (a command that passes
    ``args=`` to :func:`run_batch`), where the batch runs (``--engine``, ``--prefetch``, ``--address``,
    ``--num-actors``, ``--num-gpus``); ``task`` picks which methods ``-m`` lists and loads (the namespace's
    ``method_task``, read by :func:`run_batch`)."""
    from .io import MAX_PIXELS

    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("-m", "--method", default=default_method, metavar="NAME",
                   help=f"one of {', '.join(registry.available(task))} (default: {default_method}; "
                        "aliases: see 'defocus methods')")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (learned methods)")
    p.add_argument("--weights", metavar="FILE",
                   help="a learned method's model file from 'defocus train' (OUT/model.safetensors) instead of "
                        "its bundled weights")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option (repeatable); VALUE is read as a Python literal, else as a string")
    p.add_argument("--runtime", choices=("torch", "onnx"),
                   help="what runs a learned method's network: torch, or onnxruntime on its ONNX export (needs "
                        "'defocus[onnx]'); default: as 'defocus methods' shows")
    p.add_argument("--max-pixels", type=_positive_pixels, default=MAX_PIXELS, metavar="N",
                   help=f"refuse images with more pixels than N (default {MAX_PIXELS:.0e}; bounds memory)")
    p.set_defaults(method_task=task)
    if not engines:
        return
    g = p.add_argument_group("where the batch runs")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: a Ray cluster (pip install 'defocus[ray]'), resumable")
    g.add_argument("--prefetch", type=_count, default=2, metavar="N",
                   help="local engine: photos decoded ahead and written behind in background threads (default 2; "
                        "0: read, compute and write each photo in turn)")
    g.add_argument("--address", metavar="ADDR",
                   help="Ray: the cluster to join (host:port of 'ray start --head', or auto); default: RAY_ADDRESS, "
                        "else a Ray instance started on this machine for the run")
    g.add_argument("--num-actors", type=_count, metavar="N",
                   help="Ray: actors running the method, each loading it once (default: as many as the cluster's "
                        "CPUs, or GPUs with --num-gpus, allow)")
    g.add_argument("--num-cpus", type=float, metavar="C",
                   help="Ray: CPUs per actor (default 1); the method runs with that many threads in each")
    g.add_argument("--num-gpus", type=float, metavar="G",
                   help="Ray: GPUs per actor (fractions share one); the actors run the method on CUDA")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="defocus",
        description="Defocus blur detection (blur maps, 1 = out of focus) and defocus map estimation (σ in px).",
    )
    parser.add_argument("--version", action="version", version=f"defocus {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    sub.required = True

    p = sub.add_parser("detect", help="blur maps: <stem>_blur.png (255 = out of focus) and <stem>_overlay.jpg")
    add_batch_arguments(p, registry.DEFAULT_DETECTOR, "dbd")
    p.add_argument("--focus", action="store_true", help="write the in-focus map (the complement) instead")
    p.add_argument("--npy", action="store_true", help="also write the float32 map as <stem>_blur.npy")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("estimate", help="defocus maps: <stem>_defocus.npy (float32 px) and a colourised PNG")
    add_batch_arguments(p, registry.DEFAULT_ESTIMATOR, "dme")
    p.add_argument("--units", choices=("sigma", "radius"), default="sigma",
                   help="Gaussian sigma (default) or disk (CoC) radius via the RTF table, both in px")
    p.set_defaults(func=cmd_estimate)

    sub.add_parser("cull", help="focus verdicts (sharp, shallow-dof, missed-focus): report.csv/.json/.html, XMP",
                   command="defocus.cull.command")
    sub.add_parser("deblur", help="deblur by the defocus map: <stem>_deblurred.png", command="defocus.deblur.command")
    sub.add_parser("magnify", help="defocus magnification: <stem>_magnified.jpg with K times the blur (bokeh)",
                   command="defocus.magnify.command")
    sub.add_parser("evaluate", help="score predicted maps against ground truth under a named protocol",
                   command="defocus.evaluate.command")
    sub.add_parser("synth", help="render a synthetic defocus dataset (images, blur masks, sigma and radius maps)",
                   command="defocus.synth.command")
    sub.add_parser("train", help="train a blur detector (synthetic defocus and/or real labelled folders)",
                   command="defocus.train.command")
    sub.add_parser("export", help="a network as an ONNX file (working size, normalisation in its metadata)",
                   command="defocus.export.command")
    sub.add_parser("serve", help="a web page and HTTP API on this machine for blur and defocus maps of photos",
                   command="defocus.serve.command")

    p = sub.add_parser("methods", help="list methods: name, task, summary")
    p.add_argument("--task", choices=registry.TASKS, help="only DBD or only DME methods")
    p.set_defaults(func=cmd_methods)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so every temporary file is removed on the way out (as for Ctrl-C)."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    previous_show, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        _error(str(exc))
        return 2
    except DefocusError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Terminated:
        _error("terminated")
        return 143
    finally:
        warnings.showwarning = previous_show
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
