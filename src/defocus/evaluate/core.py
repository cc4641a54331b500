"""Running a protocol over pairs of maps: :class:`Evaluation`, :func:`evaluate_maps`, :func:`evaluate_method`.

Pairs are scored one at a time (each protocol keeps per-image counts, not pixels), so memory does not grow with the
size of the dataset. A pair that cannot be scored (missing file, unreadable map, NaNs, shape mismatch) becomes one
line in :attr:`Result.failures` and the run goes on.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from ..errors import DefocusError
from .protocols import POSITIVES, PROTOCOLS, EvaluationError, Protocol, get_protocol

#: A map, or a function that loads it (so a dataset never has to sit in memory).
MapSource = Union[np.ndarray, Callable[[], np.ndarray]]

#: The protocol used when none is named: the D-DFFNet scripts' for blur maps, RTF's for defocus maps.
DEFAULT_PROTOCOLS = {"dbd": "ddffnet", "dme": "rtf"}

#: Blur maps look inverted (1 = in focus) when their MAE is above this …
INVERTED_MAE = 0.5
#: … and their complement (1 − map) has an MAE lower by at least this much (for binary masks the complement's
#: MAE is exactly 1 − MAE, so the warning starts at MAE 0.6).
INVERTED_MARGIN = 0.2


@dataclass
class Result:
    """The outcome of scoring one method on one set of maps under one protocol.

    Attributes
    ----------
    protocol : str
        Protocol name.
    task : {"dbd", "dme"}
    summary : dict
        Dataset-level figures. DBD: ``mae``, ``fbeta`` (β² = 0.3), ``iou``, ``accuracy``, ``precision``, ``recall``
        and protocol-specific extras (e.g. ``fbeta_adaptive``); DME: ``mae``/``mse`` (σ px), ``mae_sigma``,
        ``mse_sigma``, ``mae_radius``, ``mse_radius``, ``mae_rel``, ``mse_rel``. Every summary also has
        ``n_images`` (pairs scored) and ``n_failed``.
    per_image : list of dict
        One row per scored pair: ``name`` and that image's figures (and ``seconds`` when the method was run).
    curves : dict or None
        DBD only: ``thresholds`` (256 values t/255), ``precision``, ``recall``, ``fbeta`` (lists of 256 floats,
        aggregated the protocol's way) and ``rule`` (how pixels are compared with a threshold).
    seconds_per_image : float or None
        Mean time of ``method.predict`` per image when the method was run (:func:`evaluate_method`).
    failures : list of str
        One line per pair that could not be scored.
    warnings : list of str
        One line per doubt about the scores themselves (e.g. blur maps that look inverted).
    method, dataset : str or None
        Labels for reports.
    options : dict
        The protocol's options as used.
    """

    protocol: str
    task: str
    summary: dict[str, Any]
    per_image: list[dict[str, Any]]
    curves: dict[str, Any] | None
    seconds_per_image: float | None = None
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    method: str | None = None
    dataset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.per_image)

    def to_dict(self, *, per_image: bool = True, curves: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        out: dict[str, Any] = {
            "method": self.method,
            "dataset": self.dataset,
            "protocol": self.protocol,
            "task": self.task,
            "n_images": self.n_images,
            "n_failed": len(self.failures),
            "seconds_per_image": self.seconds_per_image,
            "summary": self.summary,
            "options": self.options,
            "failures": self.failures,
            "warnings": self.warnings,
        }
        if per_image:
            out["per_image"] = self.per_image
        if curves:
            out["curves"] = self.curves
        return _json_clean(out)


def _json_clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return None if math.isnan(v) or math.isinf(v) else v
    return obj


def _load(source: MapSource) -> np.ndarray:
    return np.asarray(source() if callable(source) else source)


def _as_map(arr: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[-1] == 1:  # H×W×1
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[0] == 1:  # 1×H×W (a tensor's layout)
        arr = arr[0]
    if arr.ndim != 2:
        raise EvaluationError(f"{what} must be a 2-D map, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise EvaluationError(f"{what} has non-numeric type {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise EvaluationError(f"{what} contains NaN or infinite values")
    return arr


class Evaluation:
    """Scores pairs one by one under a protocol; :meth:`result` aggregates them.

    Parameters
    ----------
    protocol : Protocol
    pred_polarity, gt_polarity : {"blur", "focus"}
        DBD only: whether the maps given to :meth:`add` have 1 = out of focus (``"blur"``, our convention) or
        1 = in focus (``"focus"``, e.g. DUT/EBD GT, D-DFFNet outputs); ``"focus"`` maps are complemented.
    on_error : callable, optional
        Called with each failure line as it happens (the CLI prints it).
    """

    def __init__(self, protocol: Protocol, *, pred_polarity: str = "blur", gt_polarity: str = "blur",
                 on_error: Callable[[str], None] | None = None) -> None:
        for what, pol in (("pred_polarity", pred_polarity), ("gt_polarity", gt_polarity)):
            if pol not in POSITIVES:
                raise EvaluationError(f"{what} {pol!r}: choose 'blur' or 'focus'")
        self.protocol = protocol
        self.pred_polarity = pred_polarity
        self.gt_polarity = gt_polarity
        self.on_error = on_error
        self.accumulator = protocol.accumulator()
        self.failures: list[str] = []
        self.seconds: list[float] = []
        # Per-image MAE of each blur map and of its complement, for the inverted-polarity check.
        self._mae: list[float] = []
        self._complement_mae: list[float] = []

    def fail(self, message: str) -> None:
        """Record a pair that could not be scored (one line)."""
        line = " ".join(str(message).split())
        self.failures.append(line)
        if self.on_error is not None:
            self.on_error(line)

    def add(self, name: str, pred: MapSource, gt: MapSource, *, seconds: float | None = None,
            label: str | None = None) -> dict | None:
        """Score one pair; returns its per-image row, or None (and records a failure) if it cannot be scored.

        ``label`` names the pair in failure messages (default ``name``; the CLI gives the prediction's path).
        """
        try:
            p = _as_map(_load(pred), "prediction")
            g = _as_map(_load(gt), "ground truth")
            if self.protocol.task == "dbd":
                p = np.clip(p, 0.0, 1.0)
                g = np.clip(g, 0.0, 1.0)
                if self.pred_polarity == "focus":
                    p = 1.0 - p
                if self.gt_polarity == "focus":
                    g = 1.0 - g
            p, g = self.protocol.align(p, g)
            row = self.accumulator.add(name, p, g)
            if self.protocol.task == "dbd":
                self._mae.append(float(np.mean(np.abs(p - g))))
                self._complement_mae.append(float(np.mean(np.abs(1.0 - p - g))))
        except EvaluationError as exc:
            self.fail(f"{label or name}: {exc}")
            return None
        except DefocusError as exc:  # reader errors name the file already
            self.fail(str(exc))
            return None
        if seconds is not None:
            row["seconds"] = float(seconds)
            self.seconds.append(float(seconds))
        return row

    def warnings(self) -> list[str]:
        """Doubts about the scores so far: blur maps whose MAE is above :data:`INVERTED_MAE` while their complement
        scores at least :data:`INVERTED_MARGIN` better look inverted (1 = in focus)."""
        if not self._mae:
            return []
        mae, complement = float(np.mean(self._mae)), float(np.mean(self._complement_mae))
        if mae > INVERTED_MAE and complement <= mae - INVERTED_MARGIN:
            return [f"the blur maps look inverted: MAE {mae:.3f}, but their complement (1 - map) scores MAE "
                    f"{complement:.3f}; are they in-focus maps (--pred-polarity focus) or is the ground truth's "
                    f"polarity wrong?"]
        return []

    def result(self, *, method: str | None = None, dataset: str | None = None) -> Result:
        summary, rows, curves = self.accumulator.finish()
        if not rows:  # pooled counts of nothing would read as 0, not as "undefined"
            summary = {k: float("nan") if isinstance(v, (float, int)) else v for k, v in summary.items()}
            curves = None
        summary = {**summary, "n_images": len(rows), "n_failed": len(self.failures)}
        options = self.protocol.options()
        if self.protocol.task == "dbd":
            options = {**options, "pred_polarity": self.pred_polarity, "gt_polarity": self.gt_polarity}
        return Result(
            protocol=self.protocol.name,
            task=self.protocol.task,
            summary=summary,
            per_image=rows,
            curves=curves,
            seconds_per_image=float(np.mean(self.seconds)) if self.seconds else None,
            failures=list(self.failures),
            warnings=self.warnings(),
            method=method,
            dataset=dataset,
            options=options,
        )


def evaluate_maps(
    preds: Iterable[tuple[str, MapSource]] | Mapping[str, MapSource],
    gts: Iterable[tuple[str, MapSource]] | Mapping[str, MapSource],
    protocol: str | Protocol = "ddffnet",
    *,
    pred_polarity: str = "blur",
    gt_polarity: str = "blur",
    method: str | None = None,
    dataset: str | None = None,
    on_error: Callable[[str], None] | None = None,
    **options: Any,
) -> Result:
    """Score predicted maps against ground truth, pairing them by name.

    Parameters
    ----------
    preds : iterable of (name, map) or mapping name -> map
        DBD: blur maps, float H×W in [0, 1] (1 = out of focus unless ``pred_polarity="focus"``);
        DME: defocus maps, Gaussian σ in px (see the ``rtf`` protocol's ``pred_units``). A map may be given as a
        zero-argument function returning it, so that maps are loaded one at a time.
    gts : iterable of (name, map) or mapping name -> map
        DBD: GT masks in [0, 1], soft or binary (1 = out of focus unless ``gt_polarity="focus"``);
        DME: disk radius in px (``gt_units="radius"``, the ``rtf`` default) or σ in px. Loaders allowed as above.
    protocol : str or Protocol
        A name from :data:`PROTOCOLS` (``ddffnet``, ``dd``, ``zhao``, ``pysod``, ``br2net``, ``rtf``).
    **options
        Protocol options, e.g. ``size=320``, ``interp="bilinear"``, ``positive="focus"``, ``drop_right=0``.

    Returns
    -------
    Result
        Names present on one side only become failures ("no ground truth" / "no prediction").
    """
    proto = get_protocol(protocol, **options)
    ev = Evaluation(proto, pred_polarity=pred_polarity, gt_polarity=gt_polarity, on_error=on_error)
    gt_index = dict(gts.items() if isinstance(gts, Mapping) else gts)
    pred_items = preds.items() if isinstance(preds, Mapping) else preds
    seen: set[str] = set()
    for name, pred in pred_items:
        if name in seen:
            ev.fail(f"{name}: more than one prediction with this name")
            continue
        seen.add(name)
        if name not in gt_index:
            ev.fail(f"{name}: no ground truth for this prediction")
            continue
        ev.add(name, pred, gt_index[name])
    for name in gt_index:
        if name not in seen:
            ev.fail(f"{name}: no prediction for this ground truth")
    return ev.result(method=method, dataset=dataset)


def _ground_truth(sample: Any, proto: Protocol) -> np.ndarray | None:
    if proto.task == "dbd":
        return sample.blur_mask()
    if getattr(proto, "gt_units", "radius") == "radius":
        return sample.radius()
    return sample.sigma()


def evaluate_method(
    method: Any,
    dataset: Sequence[Any],
    protocol: str | Protocol | None = None,
    *,
    limit: int | None = None,
    device: str = "cpu",
    method_options: Mapping[str, Any] | None = None,
    progress: bool = False,
    on_error: Callable[[str], None] | None = None,
    **options: Any,
) -> Result:
    """Run a method on every sample of a dataset and score it; also times ``predict``.

    The one evaluation path: ``defocus evaluate --method`` and the benchmark scripts call it.

    Parameters
    ----------
    method : str or defocus.registry.Method
        A registry name (built with ``defocus.registry.load(name, device=device, **method_options)``) or a built
        method.
    dataset : sequence of samples
        E.g. :func:`defocus.data.open_dataset`. Each sample needs ``name``, ``image()`` and, for DBD,
        ``blur_mask()`` (our polarity); for DME ``radius()`` (``gt_units="radius"``) or ``sigma()``.
    protocol : str or Protocol, optional
        Must be of the method's task; default :data:`DEFAULT_PROTOCOLS` of that task (``ddffnet`` / ``rtf``).
    limit : int, optional
        Score only the first ``limit`` samples.
    method_options : mapping, optional
        Options of the method when ``method`` is a name (e.g. ``{"weights": "model.pth"}``).
    progress : bool
        Show a progress bar on stderr (a terminal only).
    **options
        Protocol options (see :func:`evaluate_maps`; ``None`` = the protocol's default). A protocol given by name
        also takes the dataset's ``protocol_defaults`` for the options not given (the synthetic σ maps of
        :mod:`defocus.data.synth` are scored over the whole frame). For a protocol with ``drop_right`` (``rtf``)
        the image's last ``drop_right`` columns are removed before ``predict``, as in Karaali & Jung's RTF demo.

    Returns
    -------
    Result
        With :attr:`Result.seconds_per_image` = mean wall time of ``predict`` (image reading excluded).
    """
    if isinstance(method, str):
        from .. import registry

        method = registry.load(method, device=device, **dict(method_options or {}))
    elif method_options:
        raise EvaluationError("method_options are for a method given by name; this one is built already")
    if protocol is None:
        protocol = DEFAULT_PROTOCOLS.get(getattr(method, "task", None), "ddffnet")
    named = PROTOCOLS.get(protocol) if isinstance(protocol, str) else None
    if named is not None and named.task == getattr(dataset, "task", None):
        given = {k: v for k, v in options.items() if v is not None}
        options = {**getattr(dataset, "protocol_defaults", {}), **given}
    proto = get_protocol(protocol, **options)
    task = getattr(method, "task", None)
    if task != proto.task:
        raise EvaluationError(f"method {getattr(method, 'name', method)!r} is a {task} method; protocol "
                              f"{proto.name!r} scores {proto.task} maps")
    ev = Evaluation(proto, on_error=on_error)
    samples = list(dataset)[: limit if limit is not None else None]
    iterator: Iterable[Any] = samples
    if progress:
        from tqdm import tqdm

        iterator = tqdm(samples, desc=f"evaluate [{getattr(method, 'name', '')}]", unit="img", file=sys.stderr,
                        disable=None)
    drop = int(getattr(proto, "drop_right", 0) or 0)
    for sample in iterator:
        name = str(sample.name)
        try:
            gt = _ground_truth(sample, proto)
            if gt is None:
                ev.fail(f"{name}: the dataset has no ground truth for this sample")
                continue
            image = sample.image()
            if drop and image.shape[1] > drop:
                image = image[:, : image.shape[1] - drop]
            start = time.perf_counter()
            pred = method.predict(image)
            seconds = time.perf_counter() - start
        except DefocusError as exc:
            ev.fail(str(exc))
            continue
        except (MemoryError, RuntimeError, ValueError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            ev.fail(f"{name}: {type(exc).__name__}: {first}")
            continue
        ev.add(name, pred, gt, seconds=seconds)
    return ev.result(method=getattr(method, "name", None) or type(method).__name__,
                     dataset=getattr(dataset, "name", None))
