"""``defocus evaluate``: score saved maps against ground truth under a named protocol.

Predictions are matched to ground truth by stem: ``<stem><suffix>.<ext>`` in a ``--pred`` folder pairs with
``<stem>.*`` in ``--gt`` (or with the sample named ``<stem>`` of ``--dataset KIND --root DIR``). Each pair that
cannot be scored is reported on one line and skipped; the exit code is 1 at the end if any pair failed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Callable

from ..errors import DefocusError
from ..io import read_map
from .protocols import KERNELS, PROTOCOLS, EvaluationError, get_protocol

DBD_EXTS = (".npy", ".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp", ".gif", ".mat")
DME_EXTS = (".npy", ".mat")
#: Suffixes written by ``defocus detect`` / ``estimate``, tried when --pred-suffix is not given.
AUTO_SUFFIXES = {"dbd": ("_blur", "_focus"), "dme": ("_defocus",)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``defocus evaluate``."""
    p.description = ("Score predicted maps against ground truth under a named protocol and print a Markdown table. "
                     "Protocols: " + "; ".join(f"{n}: {pr.title}" for n, pr in PROTOCOLS.items()))
    src = p.add_argument_group("inputs")
    src.add_argument("--pred", action="append", required=True, metavar="[NAME=]DIR",
                     help="folder of predicted maps; repeat for several methods (NAME labels the method)")
    src.add_argument("--gt", metavar="DIR", help="folder of ground-truth maps, matched by stem")
    src.add_argument("--dataset", metavar="KIND", help="take the ground truth from a defocus.data loader "
                     "(cuhk, dut, ctcug, ebd, rtf, folder) instead of --gt; needs --root")
    src.add_argument("--root", metavar="DIR", help="dataset folder for --dataset")
    src.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                     help="extra option for the dataset loader (e.g. polarity=focus for 'folder')")
    src.add_argument("--pred-suffix", metavar="S", default=None,
                     help="prediction files are <stem>S.<ext> (default: _blur/_focus/_defocus if such files are "
                          "there, else empty)")
    src.add_argument("--pred-ext", metavar="EXT", help="use only prediction files with this extension "
                     "(default: prefer .npy, then images)")
    src.add_argument("--match", choices=("stem", "number"), default="stem",
                     help="pair files by whole stem (default) or by the last number in the stem "
                          "(image_01 <-> map_01)")

    prot = p.add_argument_group("protocol")
    prot.add_argument("--protocol", default="ddffnet", choices=list(PROTOCOLS),
                      help="scoring protocol (default ddffnet); see docs/evaluation.md")
    prot.add_argument("--pred-polarity", choices=("blur", "focus"), default=None,
                      help="DBD: predictions have 255/1 = out of focus (blur, default) or = in focus (focus)")
    prot.add_argument("--gt-polarity", choices=("blur", "focus"), default=None,
                      help="DBD with --gt: 255 = blurred (blur: CUHK, CTCUG raw) or 255 = in focus (focus: DUT, EBD, "
                           "CUHK-TE-1 320px as distributed); required for DBD with --gt")
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
    out.add_argument("--out", metavar="DIR", help="write scores.json, per_image.csv, table.md and the plots here")
    out.add_argument("--force", action="store_true", help="overwrite existing output files")


# --------------------------------------------------------------------------------------------------------------------
# Indexing files


def _error(msg: str) -> None:
    print(f"defocus: error: {msg}", file=sys.stderr)


def _note(msg: str) -> None:
    print(f"defocus: {msg}", file=sys.stderr)


def _key(stem: str, match: str) -> str | None:
    if match == "stem":
        return stem
    numbers = re.findall(r"\d+", stem)
    return str(int(numbers[-1])) if numbers else None


def index_folder(folder: Path, suffix: str, exts: tuple[str, ...], match: str = "stem",
                 only_ext: str | None = None) -> tuple[dict[str, Path], list[str]]:
    """Map each key (stem without ``suffix``, or its last number) to one file; problems as one-line messages.

    When several files share a key, the extension earliest in ``exts`` wins (``.npy`` before images).
    """
    if not folder.is_dir():
        raise DefocusError(f"{folder}: not a folder")
    if only_ext:
        exts = ("." + only_ext.lower().lstrip("."),)
    files: dict[str, list[Path]] = {}
    problems = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in exts or path.name.startswith("."):
            continue
        stem = path.stem
        if suffix:
            if not stem.endswith(suffix):
                continue
            stem = stem[: -len(suffix)]
        key = _key(stem, match)
        if key is None:
            problems.append(f"{path}: no number in the file name to match by (--match number)")
            continue
        files.setdefault(key, []).append(path)
    index = {}
    for key, paths in files.items():
        paths.sort(key=lambda q: exts.index(q.suffix.lower()))
        stems = {q.stem for q in paths}
        if len(stems) > 1:
            problems.append(f"{folder}: files {', '.join(q.name for q in paths)} all match {key!r}; using "
                            f"{paths[0].name}")
        index[key] = paths[0]
    return index, problems


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


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "positive": args.positive, "size": args.size, "interp": args.interp, "gt_interp": args.gt_interp,
    }
    if args.protocol == "zhao":
        opts["empty_gt"] = args.empty_gt
    if PROTOCOLS[args.protocol].task == "dme":
        opts.update(pred_units=args.pred_units, gt_units=args.gt_units, drop_right=args.drop_right,
                    lookup=args.lookup, crop_common=False if args.no_crop_common else None)
    else:
        given = [flag for flag, v in (("--pred-units", args.pred_units), ("--gt-units", args.gt_units),
                                      ("--drop-right", args.drop_right), ("--lookup", args.lookup)) if v is not None]
        if given or args.no_crop_common:
            raise DefocusError(f"{', '.join(given) or '--no-crop-common'}: only for defocus-map protocols (rtf)")
    return opts


def _dataset_options(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DefocusError(f"--dataset-option {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


class _GroundTruth:
    """Where GT comes from: a folder of maps or a defocus.data dataset; gives key -> (label, loader)."""

    def __init__(self, args: argparse.Namespace, task: str, gt_units: str) -> None:
        self.items: dict[str, tuple[str, Callable[[], Any]]] = {}
        self.problems: list[str] = []
        self.label: str | None = None
        if args.gt and args.dataset:
            raise DefocusError("give either --gt DIR or --dataset KIND --root DIR, not both")
        if args.gt:
            folder = Path(args.gt)
            index, self.problems = index_folder(folder, "", DME_EXTS if task == "dme" else DBD_EXTS, args.match)
            self.items = {k: (str(p), (lambda q=p: read_map(q))) for k, p in index.items()}
            self.label = _folder_label(folder)
            self.where = str(folder)
        elif args.dataset:
            if not args.root:
                raise DefocusError("--dataset needs --root DIR")
            try:
                from ..data import open_dataset
            except ImportError as exc:
                raise DefocusError(f"--dataset: the dataset loaders are not available ({exc})") from None
            ds = open_dataset(args.dataset, args.root, **_dataset_options(args.dataset_option))
            if getattr(ds, "task", task) != task:
                raise DefocusError(f"dataset {args.dataset!r} is a {ds.task} dataset; protocol {args.protocol!r} "
                                   f"scores {task}")
            for sample in ds:
                key = _key(str(sample.name), args.match)
                if key is None:
                    self.problems.append(f"{sample.name}: no number in the sample name to match by")
                    continue
                where = getattr(sample, "target_path", None) or sample.name
                self.items[key] = (str(where), self._loader(sample, task, gt_units))
            self.label = getattr(ds, "name", args.dataset)
            self.where = f"{args.dataset} dataset at {args.root}"
        else:
            raise DefocusError("give the ground truth: --gt DIR (with --gt-polarity for blur maps) or "
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


def run(args: argparse.Namespace) -> int:
    """Run ``defocus evaluate``; returns the exit code (1 if any pair failed or nothing was scored)."""
    from . import report
    from .core import Evaluation

    proto_name = args.protocol
    task = PROTOCOLS[proto_name].task
    protocol = get_protocol(proto_name, **_options(args))
    gt_units = getattr(protocol, "gt_units", "radius")

    if task == "dbd" and args.gt and args.gt_polarity is None:
        raise DefocusError("--gt-polarity blur|focus is required with --gt: CUHK/CTCUG masks as distributed have "
                           "255 = blurred (blur); DUT, EBD and the 320 px CUHK-TE-1 have 255 = in focus (focus)")
    if task == "dbd" and args.dataset and args.gt_polarity is not None:
        _note("--gt-polarity ignored: dataset loaders already give masks with 1 = out of focus")
    gt = _GroundTruth(args, task, gt_units)
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

        results.append(_evaluate_one(label, folder, suffix, index, gt, protocol, polarity, args, Evaluation))
        n_failed += len(results[-1].failures)
        if index and gt.items and not set(index) & set(gt.items):
            _note(f"{folder}: no prediction name matches a ground-truth name (e.g. {sorted(index)[0]!r} vs "
                  f"{sorted(gt.items)[0]!r}); check --pred-suffix, --match, or a loader's naming option "
                  f"(cuhk: --dataset-option names=file)")

    print(report.summary_table(results))
    n_failed += _write_outputs(results, args)
    total = sum(r.n_images for r in results)
    if n_failed:
        _error(f"{n_failed} pair(s) or file(s) could not be scored")
        return 1
    if total == 0:
        _error("no prediction/ground-truth pairs were scored")
        return 1
    return 0


def _evaluate_one(label, folder, suffix, index, gt, protocol, polarity, args, Evaluation):
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
            ev.add(key, (lambda q=index[key]: read_map(q)), gt.items[key][1],
                   label=f"{index[key]} vs {gt.items[key][0]}")
    bar.close()
    return ev.result(method=label, dataset=gt.label)


def _natural(key: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key))


def _write_outputs(results, args) -> int:
    """Write the requested files; returns the number that could not be written."""
    from . import report

    force = args.force
    failed = 0
    targets = []
    if args.out:
        out = Path(args.out)
        targets += [("json", out / "scores.json"), ("csv", out / "per_image.csv"), ("markdown", out / "table.md"),
                    ("plots", out)]
    for kind in ("json", "csv", "markdown", "plots"):
        if getattr(args, kind):
            targets.append((kind, Path(getattr(args, kind))))
    for kind, path in targets:
        try:
            if kind == "json":
                report.write_json(results, path, force=force)
            elif kind == "csv":
                report.write_csv(results, path, force=force)
            elif kind == "markdown":
                report.write_markdown(results, path, force=force)
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
    return failed
