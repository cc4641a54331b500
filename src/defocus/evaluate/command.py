"""``defocus evaluate``: score a method on a dataset, or saved maps against ground truth, under a named protocol.

Two modes:

* ``--method NAME --dataset KIND [--root DIR]``: run a registered method (``--weights FILE``, ``--option KEY=VALUE``)
  on every sample of a :mod:`defocus.data` dataset through :func:`defocus.evaluate.evaluate_method` and score it.
* ``--pred DIR``: score saved maps. Predictions are matched to ground truth by stem: ``<stem><suffix>.<ext>`` in a
  ``--pred`` folder pairs with ``<stem>.*`` in ``--gt`` (or with the sample named ``<stem>`` of ``--dataset``), by
  :func:`defocus.data.layout.index_files`, the pairing the dataset loaders use.

Each pair that cannot be scored is reported on one line and skipped; the exit code is 1 at the end if any pair
failed, 2 for a usage error. Output paths are checked before anything is scored.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.layout import MAP_SUFFIXES, index_files, match_key
from ..errors import DefocusError, UsageError
from ..io import ARRAY_SUFFIXES, IMAGE_SUFFIXES, read_map
from ..registry import parse_options
from .core import DEFAULT_PROTOCOLS
from .protocols import KERNELS, PROTOCOLS, EvaluationError, get_protocol

#: Prediction files in order of preference where one stem has several: arrays keep the exact floats.
DBD_EXTS = ARRAY_SUFFIXES + IMAGE_SUFFIXES
DME_EXTS = MAP_SUFFIXES
#: Suffixes written by ``defocus detect`` / ``estimate``, tried when --pred-suffix is not given.
AUTO_SUFFIXES = {"dbd": ("_blur", "_focus"), "dme": ("_defocus",)}
#: Largest value of a blur map stored as an array that is read as 8-bit grey (0–255) and divided by 255; arrays
#: with values above 1 + :data:`UNIT_SLACK` and up to this are rescaled with a warning, larger ones refused.
EIGHT_BIT_TOP = 255.0
UNIT_SLACK = 1e-3


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``defocus evaluate``."""
    from ..data import dataset_kinds
    from ..registry import available

    p.description = ("Run a method on a dataset (--method), or take saved maps (--pred), score them against ground "
                     "truth under a named protocol and print a Markdown table. Protocols: "
                     + "; ".join(f"{n}: {pr.title}" for n, pr in PROTOCOLS.items()))
    run_ = p.add_argument_group("running a method")
    run_.add_argument("--method", metavar="NAME", help="run this method on --dataset: " + ", ".join(available()))
    run_.add_argument("--weights", metavar="FILE", help="with --method: a model file written by defocus train")
    run_.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="with --method: a method option (repeatable; values are Python literals or strings)")
    run_.add_argument("--device", default="cpu", help="with --method: cpu or cuda (learned methods)")
    run_.add_argument("--limit", type=int, metavar="N", help="with --method: only the first N samples")
    src = p.add_argument_group("inputs")
    src.add_argument("--pred", action="append", default=[], metavar="[NAME=]DIR",
                     help="folder of predicted maps; repeat for several methods (NAME labels the method)")
    src.add_argument("--gt", metavar="DIR", help="folder of ground-truth maps, matched by stem")
    src.add_argument("--dataset", metavar="KIND", help="take photos and ground truth from a defocus.data loader ("
                     + ", ".join(dataset_kinds()) + ") instead of --gt; needs --root (synth: optional)")
    src.add_argument("--root", metavar="DIR", help="dataset folder for --dataset (synth: the shared data folder)")
    src.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                     help="extra option for the dataset loader (e.g. polarity=focus for 'folder', n=16 for 'synth')")
    src.add_argument("--pred-suffix", metavar="S", default=None,
                     help="prediction files are <stem>S.<ext> (default: _blur/_focus/_defocus if such files are "
                          "there, else empty)")
    src.add_argument("--pred-ext", metavar="EXT", help="use only prediction files with this extension "
                     "(default: prefer .npy, then images)")
    src.add_argument("--match", choices=("stem", "number"), default="stem",
                     help="pair files by whole stem (default) or by the last number in the stem "
                          "(image_01 <-> map_01)")

    prot = p.add_argument_group("protocol")
    prot.add_argument("--protocol", default=None, choices=list(PROTOCOLS),
                      help="scoring protocol (default ddffnet; with --method: ddffnet for blur maps, rtf for defocus "
                           "maps); see docs/evaluation.md")
    prot.add_argument("--pred-polarity", choices=("blur", "focus"), default=None,
                      help="DBD: predictions have 255/1 = out of focus (blur, default) or = in focus (focus)")
    prot.add_argument("--gt-polarity", choices=("blur", "focus"), default=None,
                      help="DBD with --gt: 255 = blurred (blur: CUHK, CTCUG raw) or 255 = in focus (focus: DUT, EBD, "
                           "CUHK-TE-1 320px as distributed); required for DBD with --gt; with --dataset folder it "
                           "sets the folder's polarity (default blur)")
    prot.add_argument("--positive", choices=("blur", "focus"), default=None,
                      help="override the protocol's positive class")
    prot.add_argument("--size", default=None, metavar="native|N|HxW",
                      help="evaluation resolution (default: the protocol's, 'native' = GT size)")
    prot.add_argument("--interp", choices=("none",) + KERNELS, default=None,
                      help="resize kernel for predictions whose size differs (default: the protocol's; "
                           "'none' = report a shape mismatch)")
    prot.add_argument("--gt-interp", choices=KERNELS, default=None,
                      help="resize kernel for the GT at a fixed --size (default nearest)")
    prot.add_argument("--empty-gt", choices=("toolbox", "invert"), default=None,
                      help="zhao: handling of all-zero GT (default: as the toolbox does)")
    dme = p.add_argument_group("defocus maps (protocol rtf)")
    dme.add_argument("--pred-units", choices=("sigma", "radius"), default=None,
                     help="predicted maps are Gaussian sigma px (default) or disk radius px")
    dme.add_argument("--gt-units", choices=("sigma", "radius"), default=None,
                     help="GT maps are disk radius px (default, RTF) or Gaussian sigma px")
    dme.add_argument("--drop-right", type=int, default=None, metavar="N",
                     help="drop the last N columns (default 20 for rtf)")
    dme.add_argument("--no-crop-common", action="store_true",
                     help="report a shape mismatch instead of cropping both maps to their common size")
    dme.add_argument("--lookup", choices=("nearest", "linear"), default=None,
                     help="radius -> sigma through the RTF table: nearest row (DMENet, default) or linear")

    out = p.add_argument_group("outputs")
    out.add_argument("--json", metavar="FILE", help="summary JSON (mae, fbeta, iou, … + per-method details)")
    out.add_argument("--csv", metavar="FILE", help="per-image CSV")
    out.add_argument("--markdown", metavar="FILE", help="the printed table as a Markdown file")
    out.add_argument("--plots", metavar="DIR", help="write pr_curve.png and f_curve.png (all methods in one figure)")
    out.add_argument("--curves", metavar="DIR", help="write the protocol's threshold sweep: <protocol>_curves.csv "
                     "(method, dataset, threshold, precision, recall, fbeta) and <protocol>_curves.png (PR curve and F "
                     "vs threshold; no matplotlib needed)")
    out.add_argument("--out", metavar="DIR", help="write scores.json, per_image.csv, table.md and the plots here")
    out.add_argument("--force", action="store_true", help="overwrite existing output files")


# --------------------------------------------------------------------------------------------------------------------
# Indexing files


def _error(msg: str) -> None:
    print(f"defocus: error: {msg}", file=sys.stderr)


def _note(msg: str) -> None:
    print(f"defocus: {msg}", file=sys.stderr)


def _warn(msg: str) -> None:
    print(f"defocus: warning: {msg}", file=sys.stderr)


def index_folder(folder: Path, suffix: str, exts: tuple[str, ...], match: str = "stem",
                 only_ext: str | None = None) -> tuple[dict[str, Path], list[str]]:
    """Map each key (stem without ``suffix``, or its last number) to one file; problems as one-line messages.

    When several files share a key, the extension earliest in ``exts`` wins (``.npy`` before images).
    """
    if not folder.is_dir():
        raise DefocusError(f"{folder}: not a folder")
    if only_ext:
        exts = ("." + only_ext.lower().lstrip("."),)
    index, problems = index_files(folder, exts, lambda stem: match_key(stem, match), strip=suffix)
    if match == "number":
        problems = [f"{msg} (--match number)" if msg.endswith("to match by") else msg for msg in problems]
    return index, problems  # type: ignore[return-value]


#: Folder names too generic to label a dataset with (the parent folder's name is used instead).
GENERIC_NAMES = {"gt", "gts", "mask", "masks", "groundtruth", "ground_truth", "labels", "maps", "images"}


def _folder_label(folder: Path) -> str:
    resolved = folder.resolve()
    if resolved.name.lower() in GENERIC_NAMES and resolved.parent.name:
        return resolved.parent.name
    return resolved.name or str(folder)


def _auto_suffix(folder: Path, task: str, exts: tuple[str, ...]) -> str:
    if not folder.is_dir():
        return ""
    stems = [q.stem for q in folder.iterdir() if q.is_file() and q.suffix.lower() in exts]
    for suffix in AUTO_SUFFIXES[task]:
        if any(s.endswith(suffix) for s in stems):
            return suffix
    return ""


def _parse_pred(spec: str) -> tuple[str, Path]:
    name, sep, folder = spec.partition("=")
    if sep and name and not Path(spec).exists():
        return name, Path(folder)
    path = Path(spec)
    return (path.resolve().name or str(path)), path


def _options(args: argparse.Namespace, protocol: str) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "positive": args.positive, "size": args.size, "interp": args.interp, "gt_interp": args.gt_interp,
    }
    if protocol == "zhao":
        opts["empty_gt"] = args.empty_gt
    if PROTOCOLS[protocol].task == "dme":
        opts.update(pred_units=args.pred_units, gt_units=args.gt_units, drop_right=args.drop_right,
                    lookup=args.lookup, crop_common=False if args.no_crop_common else None)
    else:
        given = [flag for flag, v in (("--pred-units", args.pred_units), ("--gt-units", args.gt_units),
                                      ("--drop-right", args.drop_right), ("--lookup", args.lookup)) if v is not None]
        if given or args.no_crop_common:
            raise UsageError(f"{', '.join(given) or '--no-crop-common'}: only for defocus-map protocols (rtf)")
    return opts


def _open_dataset(args: argparse.Namespace, task: str) -> Any:
    """The ``--dataset`` of ``task``; a loader that serves both tasks (synth) is asked for ``task``, and the folder
    loader takes ``--gt-polarity`` as its polarity."""
    from ..data import dataset_options, open_dataset, root_is_optional

    options = parse_options(args.dataset_option, "--dataset-option")
    accepted = dataset_options(args.dataset)
    if "task" in accepted:
        options.setdefault("task", task)
    if "polarity" in accepted and "units" not in options and args.gt_polarity is not None:
        options.setdefault("polarity", args.gt_polarity)
    elif task == "dbd" and args.gt_polarity is not None:
        _note("--gt-polarity ignored: dataset loaders already give masks with 1 = out of focus")
    if not args.root and not root_is_optional(args.dataset):
        raise UsageError(f"--dataset {args.dataset} needs --root DIR")
    ds = open_dataset(args.dataset, args.root or None, **options)
    if ds.task != task:
        raise UsageError(f"dataset {args.dataset!r} is a {ds.task} dataset; the {task} maps here need "
                         f"{'a blur-mask' if task == 'dbd' else 'a defocus-map'} dataset")
    return ds


class _ArrayScale:
    """Reads blur maps for scoring: arrays (``.npy``/``.mat``) holding 0–255 are divided by 255 and counted (one
    warning per folder at the end); arrays with other values outside [0, 1] are refused."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.rescaled: dict[Path, int] = {}

    def read(self, path: Path) -> np.ndarray:
        arr = read_map(path)
        if self.task != "dbd" or path.suffix.lower() not in ARRAY_SUFFIXES or arr.size == 0:
            return arr
        finite = arr[np.isfinite(arr)]
        if finite.size == 0:
            return arr  # all NaN: the scorer reports it
        low, top = float(finite.min()), float(finite.max())
        if low >= -UNIT_SLACK and top <= 1.0 + UNIT_SLACK:
            return arr
        if low >= -UNIT_SLACK and top <= EIGHT_BIT_TOP:
            self.rescaled[path.parent] = self.rescaled.get(path.parent, 0) + 1
            return arr / np.float32(EIGHT_BIT_TOP)
        raise EvaluationError(f"{path.name} holds values {low:g} … {top:g}: a blur map must be in [0, 1] (or "
                              f"0–255 for 8-bit grey)")

    def report(self) -> None:
        for folder, n in self.rescaled.items():
            _warn(f"{folder}: {n} array map(s) hold values above 1 (up to 255); read as 8-bit grey, divided by 255")
        self.rescaled.clear()


class _GroundTruth:
    """Where GT comes from: a folder of maps or a defocus.data dataset; gives key -> (label, loader)."""

    def __init__(self, args: argparse.Namespace, task: str, gt_units: str, reader: _ArrayScale) -> None:
        self.items: dict[str, tuple[str, Callable[[], Any]]] = {}
        self.problems: list[str] = []
        self.label: str | None = None
        if args.gt and args.dataset:
            raise UsageError("give either --gt DIR or --dataset KIND --root DIR, not both")
        if args.gt:
            folder = Path(args.gt)
            index, self.problems = index_folder(folder, "", DME_EXTS if task == "dme" else DBD_EXTS, args.match)
            self.items = {k: (str(p), (lambda q=p: reader.read(q))) for k, p in index.items()}
            self.label = _folder_label(folder)
            self.where = str(folder)
        elif args.dataset:
            ds = _open_dataset(args, task)
            for sample in ds:
                key = match_key(str(sample.name), args.match)
                if key is None:
                    self.problems.append(f"{sample.name}: no number in the sample name to match by")
                    continue
                where = getattr(sample, "target_path", None) or sample.name
                self.items[key] = (str(where), self._loader(sample, task, gt_units))
            self.label = getattr(ds, "name", args.dataset)
            self.where = f"{args.dataset} dataset at {args.root or 'its default place'}"
        else:
            raise UsageError("give the ground truth: --gt DIR (with --gt-polarity for blur maps) or "
                             "--dataset KIND --root DIR")

    @staticmethod
    def _loader(sample: Any, task: str, gt_units: str) -> Callable[[], Any]:
        def load():
            if task == "dbd":
                value = sample.blur_mask()
            else:
                value = sample.radius() if gt_units == "radius" else sample.sigma()
            if value is None:
                raise EvaluationError("the dataset has no ground truth for this sample")
            return value

        return load


# --------------------------------------------------------------------------------------------------------------------
# Running


def run(args: argparse.Namespace) -> int:
    """Run ``defocus evaluate``; returns the exit code (1 if any pair failed or nothing was scored, 2 for a usage
    error)."""
    if bool(args.pred) == bool(args.method):
        raise UsageError("give --method NAME (run a method on --dataset) or --pred DIR (score saved maps)"
                         + (", not both" if args.pred else ""))
    if not args.method:
        given = [flag for flag, v in (("--weights", args.weights), ("--option", args.option),
                                      ("--limit", args.limit)) if v]
        if given:
            raise UsageError(f"{', '.join(given)}: only with --method")
    elif args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: expected a whole number >= 1")
    targets = _output_targets(args)
    check_outputs(targets, force=args.force, protocol=args.protocol or DEFAULT_PROTOCOLS["dbd"])
    results, n_failed = _run_method(args) if args.method else _run_pred(args)

    from .report import summary_table

    print(summary_table(results))
    for r in results:
        for line in r.warnings:
            _warn(f"{r.method or '-'} on {r.dataset or '-'}: {line}")
    n_failed += _write_outputs(results, targets, args.force)
    total = sum(r.n_images for r in results)
    if n_failed:
        _error(f"{n_failed} pair(s) or file(s) could not be scored")
        return 1
    if total == 0:
        _error("no prediction/ground-truth pairs were scored")
        return 1
    return 0


def _run_method(args: argparse.Namespace) -> tuple[list, int]:
    """``--method``: load the method, open the dataset, :func:`evaluate_method`."""
    from .. import registry
    from .core import evaluate_method

    if not args.dataset:
        raise UsageError("--method needs --dataset KIND (and --root DIR): the photos to run it on")
    if args.gt:
        raise UsageError("--gt is for --pred; with --method the dataset gives the ground truth")
    method = registry.load_from_args(args.method, device=args.device, weights=args.weights, options=args.option)
    task = method.task
    proto_name = args.protocol or DEFAULT_PROTOCOLS[task]
    if PROTOCOLS[proto_name].task != task:
        raise UsageError(f"--protocol {proto_name} scores {PROTOCOLS[proto_name].task} maps; {args.method} makes "
                         f"{task} maps")
    if args.pred_polarity is not None:
        raise UsageError("--pred-polarity is for --pred; a method's blur maps have 1 = out of focus")
    opts = _options(args, proto_name)
    get_protocol(proto_name, **opts)  # bad protocol options fail before the method runs
    ds = _open_dataset(args, task)
    result = evaluate_method(method, ds, proto_name, limit=args.limit, progress=True,
                             on_error=lambda msg: _error(msg), **opts)
    return [result], len(result.failures)


def _run_pred(args: argparse.Namespace) -> tuple[list, int]:
    """``--pred``: score the saved maps of each folder against the ground truth."""
    from .core import Evaluation

    proto_name = args.protocol or DEFAULT_PROTOCOLS["dbd"]
    task = PROTOCOLS[proto_name].task
    protocol = get_protocol(proto_name, **_options(args, proto_name))
    gt_units = getattr(protocol, "gt_units", "radius")

    if task == "dbd" and args.gt and args.gt_polarity is None:
        raise UsageError("--gt-polarity blur|focus is required with --gt: CUHK/CTCUG masks as distributed have "
                         "255 = blurred (blur); DUT, EBD and the 320 px CUHK-TE-1 have 255 = in focus (focus)")
    reader = _ArrayScale(task)
    gt = _GroundTruth(args, task, gt_units, reader)
    for msg in gt.problems:
        _error(msg)

    exts = DME_EXTS if task == "dme" else DBD_EXTS
    results = []
    n_failed = len(gt.problems)
    for spec in args.pred:
        label, folder = _parse_pred(spec)
        suffix = args.pred_suffix
        polarity = args.pred_polarity
        if suffix is None:
            suffix = _auto_suffix(folder, task, exts)
            if suffix:
                _note(f"{folder}: matching prediction files <stem>{suffix}.* (set --pred-suffix to change)")
            if suffix == "_focus" and polarity is None:
                polarity = "focus"
                _note(f"{folder}: *_focus maps are read as in-focus maps (--pred-polarity focus)")
        polarity = polarity or "blur"
        try:
            index, problems = index_folder(folder, suffix, exts, args.match, args.pred_ext)
        except DefocusError as exc:
            _error(str(exc))
            n_failed += 1
            continue
        for msg in problems:
            _error(msg)
        n_failed += len(problems)

        results.append(_evaluate_one(label, folder, suffix, index, gt, protocol, polarity, args, Evaluation,
                                     reader))
        reader.report()
        n_failed += len(results[-1].failures)
        if index and gt.items and not set(index) & set(gt.items):
            _note(f"{folder}: no prediction name matches a ground-truth name (e.g. {sorted(index)[0]!r} vs "
                  f"{sorted(gt.items)[0]!r}); check --pred-suffix, --match, or a loader's naming option "
                  f"(cuhk: --dataset-option names=file)")
    return results, n_failed


def _evaluate_one(label, folder, suffix, index, gt, protocol, polarity, args, Evaluation, reader):
    from tqdm import tqdm

    bar = None

    def on_error(msg: str) -> None:
        (bar.write if bar is not None else print)(f"defocus: error: {msg}", file=sys.stderr)

    gt_polarity = args.gt_polarity if (args.gt and protocol.task == "dbd") else "blur"
    ev = Evaluation(protocol, pred_polarity=polarity, gt_polarity=gt_polarity or "blur", on_error=on_error)
    keys = sorted(set(index) | set(gt.items), key=_natural)
    bar = tqdm(keys, desc=f"evaluate [{label}]", unit="img", disable=None, file=sys.stderr)
    for key in bar:
        if key not in gt.items:
            ev.fail(f"{index[key]}: no ground truth for '{key}' in {gt.where}")
        elif key not in index:
            ev.fail(f"{gt.items[key][0]}: no prediction '{key}{suffix}.*' in {folder}")
        else:
            ev.add(key, (lambda q=index[key]: reader.read(q)), gt.items[key][1],
                   label=f"{index[key]} vs {gt.items[key][0]}")
    bar.close()
    return ev.result(method=label, dataset=gt.label)


def _natural(key: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key))


# --------------------------------------------------------------------------------------------------------------------
# Outputs


def _output_targets(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """(kind, path) of every report asked for: ``json``/``csv``/``markdown`` files, ``plots`` folders."""
    targets = []
    if args.out:
        out = Path(args.out)
        targets += [("json", out / "scores.json"), ("csv", out / "per_image.csv"), ("markdown", out / "table.md"),
                    ("plots", out)]
    for kind in ("json", "csv", "markdown", "plots"):
        if getattr(args, kind):
            targets.append((kind, Path(getattr(args, kind))))
    if getattr(args, "curves", None):
        targets.append(("curves", Path(args.curves)))
    return targets


#: The figures ``--plots DIR`` writes.
PLOT_FILES = ("pr_curve.png", "f_curve.png")


def check_outputs(targets: list[tuple[str, Path]], *, force: bool = False, protocol: str = "ddffnet") -> None:
    """Raise a one-line :class:`DefocusError` naming the path if a report could not be written there.

    Checked before anything is scored: a file path must not be a folder (nor exist, without ``force``); a folder
    (``plots``, ``curves``: the files of ``protocol``) must not be a file; the nearest existing folder above each path
    must be a writable folder.
    """
    from .report import curve_files

    for kind, path in targets:
        is_dir = kind in ("plots", "curves")
        if path.is_dir() and not is_dir:
            raise DefocusError(f"{path}: is a folder; --{kind} needs a file name")
        if path.exists() and not path.is_dir() and is_dir:
            raise DefocusError(f"{path}: exists and is not a folder")
        files = [path / name for name in PLOT_FILES] if kind == "plots" else \
            list(curve_files(path, protocol)) if kind == "curves" else [path]
        for file in files:
            if file.exists() and not force:
                raise DefocusError(f"{file}: exists already (use --force to overwrite)")
        folder = path if is_dir else path.parent
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise DefocusError(f"{path}: cannot be written, {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise DefocusError(f"{path}: cannot be written, {existing} is read-only")


def _write_outputs(results, targets: list[tuple[str, Path]], force: bool) -> int:
    """Write the requested files; returns the number that could not be written."""
    from . import report

    failed = 0
    for kind, path in targets:
        try:
            if kind == "json":
                report.write_json(results, path, force=force)
            elif kind == "csv":
                report.write_csv(results, path, force=force)
            elif kind == "markdown":
                report.write_markdown(results, path, force=force)
            elif kind == "curves":
                written = report.write_curves(results, path, force=force)
                if not written:
                    _note("no curves to write (defocus-map protocols have no threshold sweep)")
                    continue
                path = ", ".join(str(w) for w in written)
            else:
                written = report.plot_curves(results, path, force=force)
                if not written:
                    _note("no curves to plot (defocus-map protocols have none)")
                    continue
                path = ", ".join(str(w) for w in written)
            _note(f"wrote {path}")
        except DefocusError as exc:
            _error(str(exc))
            failed += 1
        except OSError as exc:  # e.g. the disk filled up or the folder went away after the check
            _error(f"{exc.filename or path}: cannot be written ({exc.strerror or exc})")
            failed += 1
    return failed
