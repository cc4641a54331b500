"""Reports of evaluation results: Markdown table, summary JSON, per-image CSV, PR and F-vs-threshold plots, and
the threshold sweep of each protocol as CSV and PNG (:func:`write_curves`, no matplotlib needed).

All writers go through :func:`defocus.io.atomic_write` (no overwrite without ``force``). Several
:class:`~defocus.evaluate.core.Result` objects (methods, datasets) can share one table, file or figure.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io import atomic_write
from .core import Result, _json_clean
from .protocols import PROTOCOLS

#: Column order of the per-image CSV (other keys follow alphabetically).
CSV_FIRST = ("method", "dataset", "name", "mae", "fbeta", "precision", "recall", "iou", "accuracy", "threshold",
             "mse", "mae_sigma", "mse_sigma", "mae_radius", "mse_radius", "mae_rel", "mse_rel", "seconds")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}"


def summary_table(results: Sequence[Result]) -> str:
    """A Markdown table with one row per result.

    DBD: method, dataset, protocol, images, MAE, Fβ, IoU, accuracy, s/img (and, where the protocol computed them,
    a second table of S-measure, E-measure and weighted F). DME: method, dataset, images, MAE and
    MSE in σ px, disk-radius px and relative units, s/img. Mixed tasks give one table per task.
    """
    parts = []
    dbd = [r for r in results if r.task == "dbd"]
    dme = [r for r in results if r.task == "dme"]
    if dbd:
        lines = ["| Method | Dataset | Protocol | Images | MAE ↓ | Fβ ↑ | IoU ↑ | Acc ↑ | s/img |",
                 "|---|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in dbd:
            s = r.summary
            lines.append(f"| {r.method or '–'} | {r.dataset or '–'} | {r.protocol} | {r.n_images} | "
                         f"{_fmt(s.get('mae'))} | {_fmt(s.get('fbeta'))} | {_fmt(s.get('iou'))} | "
                         f"{_fmt(s.get('accuracy'))} | {_seconds(r.seconds_per_image)} |")
        parts.append("\n".join(lines))
        structured = [r for r in dbd if "s_measure" in r.summary]
        if structured:
            lines = ["| Method | Dataset | Protocol | Sα ↑ | Eφ adaptive ↑ | Eφ mean ↑ | Eφ max ↑ | weighted F ↑ |",
                     "|---|---|---|---:|---:|---:|---:|---:|"]
            for r in structured:
                s = r.summary
                lines.append(f"| {r.method or '–'} | {r.dataset or '–'} | {r.protocol} | {_fmt(s['s_measure'])} | "
                             f"{_fmt(s['e_measure_adaptive'])} | {_fmt(s['e_measure_mean'])} | "
                             f"{_fmt(s['e_measure_max'])} | {_fmt(s['weighted_f'])} |")
            parts.append("\n".join(lines))
    if dme:
        lines = ["| Method | Dataset | Protocol | Images | MAE σ px ↓ | MSE σ px² ↓ | MAE radius px ↓ | "
                 "MSE radius px² ↓ | MAE rel ↓ | MSE rel ↓ | s/img |",
                 "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in dme:
            s = r.summary
            lines.append(f"| {r.method or '–'} | {r.dataset or '–'} | {r.protocol} | {r.n_images} | "
                         f"{_fmt(s.get('mae_sigma'))} | {_fmt(s.get('mse_sigma'))} | {_fmt(s.get('mae_radius'))} | "
                         f"{_fmt(s.get('mse_radius'))} | {_fmt(s.get('mae_rel'))} | {_fmt(s.get('mse_rel'))} | "
                         f"{_seconds(r.seconds_per_image)} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def to_json(results: Sequence[Result]) -> dict[str, Any]:
    """The summary JSON document.

    Top level: ``protocol``, ``task``, ``definition`` (one line), the first result's summary figures
    (``mae``, ``fbeta``, ``iou``, … so a single-method file reads directly), and ``results``: one entry per result
    as :meth:`Result.to_dict` (summary, options, failures, per-image rows, curves).
    """
    if not results:
        return {"results": []}
    first = results[0]
    proto = PROTOCOLS.get(first.protocol)
    doc: dict[str, Any] = {
        "protocol": first.protocol,
        "task": first.task,
        "definition": getattr(proto, "title", ""),
        **first.summary,
        "seconds_per_image": first.seconds_per_image,
        "results": [r.to_dict() for r in results],
    }
    return _json_clean(doc)


def write_json(results: Sequence[Result], path: str | Path, *, force: bool = False) -> Path:
    """Write :func:`to_json` of ``results``."""
    text = json.dumps(to_json(results), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")), force=force)


def write_markdown(results: Sequence[Result], path: str | Path, *, force: bool = False) -> Path:
    """Write :func:`summary_table` of ``results`` as a Markdown file."""
    text = summary_table(results) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")), force=force)


def per_image_rows(results: Sequence[Result]) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and rows of the per-image CSV (``method``, ``dataset``, ``name``, then the figures)."""
    rows = []
    for r in results:
        for row in r.per_image:
            rows.append({"method": r.method or "", "dataset": r.dataset or "", **row})
    keys: set[str] = set()
    for row in rows:
        keys.update(row)
    columns = [k for k in CSV_FIRST if k in keys] + sorted(keys - set(CSV_FIRST))
    return columns, rows


def write_csv(results: Sequence[Result], path: str | Path, *, force: bool = False) -> Path:
    """Write the per-image CSV: one line per scored image and result; empty cells where a figure is undefined."""
    columns, rows = per_image_rows(results)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    data = buf.getvalue().encode("utf-8")
    return atomic_write(path, lambda f: f.write(data), force=force)


def _csv_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(v)
    return v


def _label(r: Result) -> str:
    parts = [p for p in (r.method, r.dataset) if p]
    return " / ".join(parts) if parts else r.protocol


def plot_curves(results: Sequence[Result], out_dir: str | Path, *, force: bool = False,
                prefix: str = "") -> list[Path]:
    """Draw every result's curves into two PNG figures in ``out_dir``.

    ``<prefix>pr_curve.png``: precision against recall; ``<prefix>f_curve.png``: Fβ against threshold. One line
    per result (method and dataset in the legend). Results without curves (DME) are skipped; if none has curves
    nothing is written and an empty list is returned.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawable = [r for r in results if r.curves]
    if not drawable:
        return []
    out_dir = Path(out_dir)
    protocols = sorted({r.protocol for r in drawable})
    positives = sorted({str(r.options.get("positive", "")) for r in drawable})
    subtitle = f"protocol {', '.join(protocols)}; positive class: {', '.join(positives)}"
    written = []
    for kind in ("pr", "f"):
        fig = Figure(figsize=(6.0, 4.8), dpi=120)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for r in drawable:
            c = r.curves
            if kind == "pr":
                ax.plot(c["recall"], c["precision"], label=_label(r), linewidth=1.6)
            else:
                ax.plot(c["thresholds"], c["fbeta"], label=_label(r), linewidth=1.6)
        if kind == "pr":
            ax.set_xlabel("Recall")
            ax.set_ylabel("Precision")
            ax.set_title(f"Precision–recall ({subtitle})", fontsize=9)
        else:
            ax.set_xlabel("Threshold")
            ax.set_ylabel("Fβ (β² = 0.3)")
            ax.set_title(f"F-measure vs threshold ({subtitle})", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left" if kind == "pr" else "lower center", fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        data = buf.getvalue()
        path = out_dir / f"{prefix}{kind}_curve.png"
        written.append(atomic_write(path, lambda f, d=data: f.write(d), force=force))
    return written


#: Columns of :func:`write_curves`' CSV.
CURVE_COLUMNS = ("method", "dataset", "threshold", "precision", "recall", "fbeta")


def curve_files(out_dir: str | Path, protocol: str) -> tuple[Path, Path]:
    """The CSV and PNG that :func:`write_curves` writes for ``protocol`` in ``out_dir``."""
    out_dir = Path(out_dir)
    return out_dir / f"{protocol}_curves.csv", out_dir / f"{protocol}_curves.png"


def write_curves(results: Sequence[Result], out_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Write the threshold sweep of every protocol among ``results`` that has one (all DBD protocols).

    Per protocol: ``<protocol>_curves.csv`` — one line per result and threshold (``method``, ``dataset``,
    ``threshold`` in [0, 1], ``precision``, ``recall``, ``fbeta`` (β² = 0.3), each as the protocol computes its
    curves, see its docstring) — and ``<protocol>_curves.png``: the precision–recall curve beside Fβ against
    threshold, one line per result. Written atomically; an existing file is refused unless ``force``. Results
    without curves (DME) are skipped; returns the paths written (empty if none had curves).
    """
    import numpy as np

    from .lineplot import line_chart, png_bytes

    written = []
    for protocol in sorted({r.protocol for r in results if r.curves}):
        group = [r for r in results if r.curves and r.protocol == protocol]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CURVE_COLUMNS)
        for r in group:
            c = r.curves
            for t, p, rc, f in zip(c["thresholds"], c["precision"], c["recall"], c["fbeta"]):
                writer.writerow([r.method or "", r.dataset or "", repr(float(t)), repr(float(p)), repr(float(rc)),
                                 repr(float(f))])
        positive = ", ".join(sorted({str(r.options.get("positive", "")) for r in group}))
        pr = line_chart([(_label(r), r.curves["recall"], r.curves["precision"]) for r in group],
                        xlabel="recall", ylabel="precision", title=f"Precision-recall, protocol {protocol} "
                        f"(positive: {positive})")
        fc = line_chart([(f"{_label(r)} (max {max(r.curves['fbeta']):.3f})", r.curves["thresholds"],
                          r.curves["fbeta"]) for r in group],
                        xlabel="threshold", ylabel="F-beta (beta^2 = 0.3)", title=f"F vs threshold, protocol {protocol}")
        png = png_bytes(np.concatenate([pr, fc], axis=1))
        csv_path, png_path = curve_files(out_dir, protocol)
        text = buf.getvalue().encode("utf-8")
        written.append(atomic_write(csv_path, lambda f, d=text: f.write(d), force=force))
        written.append(atomic_write(png_path, lambda f, d=png: f.write(d), force=force))
    return written
