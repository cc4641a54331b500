"""Named evaluation protocols: each reproduces one research group's published way of scoring.

DBD papers disagree on almost every detail of "MAE and F-measure" (which class is positive, the threshold rule,
per-image vs dataset-pooled averaging, max-F definition, map normalisation, GT binarisation, resolution), so a number
is only comparable with numbers computed the same way. Every protocol here states its definition in its docstring;
``docs/evaluation.md`` has the same text for users.

Inputs, whatever the protocol: a predicted map and a ground-truth map in **our** conventions — DBD: float H×W in
[0, 1], 1 = out of focus (GT may be soft/grey, each protocol binarises it itself); DME: Gaussian σ in px for the
prediction, disk radius or σ in px for the GT (see :class:`RTF`). Each protocol converts to its own positive class.

Every DBD protocol reports ``mae``, ``fbeta`` (β² = 0.3), ``iou``, ``accuracy``, ``precision`` and ``recall`` and
precision/recall/F curves at 256 thresholds. Where the source defines no IoU or accuracy, the docstring says how
they are defined here.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import DefocusError
from . import metrics as M
from .metrics import Confusion, CurveStack

KERNELS = ("nearest", "bilinear", "bicubic", "area", "matlab-bicubic")
POSITIVES = ("blur", "focus")


class EvaluationError(DefocusError):
    """A prediction/ground-truth pair cannot be scored (wrong shape, NaN values, bad option)."""


# --------------------------------------------------------------------------------------------------------------------
# Resolution handling


def parse_size(size: Any) -> tuple[int, int] | None:
    """``"native"``/``None`` -> None (evaluate at the GT's size); ``320`` or ``"320"`` -> (320, 320); ``"240x320"``
    or ``(240, 320)`` -> (height, width)."""
    if size is None or (isinstance(size, str) and size.lower() == "native"):
        return None
    try:
        if isinstance(size, str):
            parts = size.lower().split("x")
            dims = tuple(int(p) for p in parts)
        elif isinstance(size, (tuple, list)):
            dims = tuple(int(p) for p in size)
        else:
            dims = (int(size),)
    except (TypeError, ValueError):
        raise EvaluationError(f"evaluation size {size!r}: expected 'native', N or HxW") from None
    if len(dims) == 1:
        dims = (dims[0], dims[0])
    if len(dims) != 2 or min(dims) < 1:
        raise EvaluationError(f"evaluation size {size!r}: expected 'native', N or HxW")
    return dims  # type: ignore[return-value]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``imresize`` bicubic)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _matlab_weights(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) matrix of MATLAB ``imresize(..., 'bicubic')`` along one axis: antialiased when shrinking,
    symmetric (mirror) boundary, weights normalised per output pixel."""
    scale = n_out / n_in
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    d = u[:, None] - idx
    w = scale * _cubic(scale * d) if scale < 1 else _cubic(d)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), taps), cols.ravel()), w.ravel())
    return m


def matlab_resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """MATLAB ``imresize(x, shape)`` with its default bicubic kernel, for a double 2-D map (as the Zhao toolbox
    resizes ``im2double`` maps). Returns float64, not clipped (bicubic overshoots)."""
    x = np.asarray(x, dtype=np.float64)
    return _matlab_weights(x.shape[0], int(shape[0])) @ x @ _matlab_weights(x.shape[1], int(shape[1])).T


def resize_map(x: np.ndarray, shape: tuple[int, int], kernel: str) -> np.ndarray:
    """Resize a 2-D float map to ``shape = (H, W)`` with ``kernel``.

    ``nearest``/``bilinear``/``bicubic``/``area`` use OpenCV (half-pixel centres, no antialiasing; ``nearest``
    picks ``floor(i * in / out)`` like PyTorch's ``nearest``; ``bicubic`` has a = -0.75 like PyTorch);
    ``matlab-bicubic`` reproduces MATLAB's ``imresize`` (a = -0.5, antialiased when shrinking). Returns float64,
    not clipped.
    """
    import cv2

    if kernel not in KERNELS:
        raise EvaluationError(f"resize kernel {kernel!r}: choose one of {', '.join(KERNELS)}")
    if x.shape == tuple(shape):
        return np.asarray(x, dtype=np.float64)
    if kernel == "matlab-bicubic":
        return matlab_resize(x, shape)
    flags = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
             "area": cv2.INTER_AREA}
    out = cv2.resize(np.asarray(x, dtype=np.float64), (int(shape[1]), int(shape[0])), interpolation=flags[kernel])
    return out.astype(np.float64)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


# --------------------------------------------------------------------------------------------------------------------
# Base classes


class Accumulator:
    """Scores images one by one and aggregates them at the end. One per evaluation run."""

    def __init__(self, protocol: "Protocol") -> None:
        self.protocol = protocol
        self.rows: list[dict[str, Any]] = []

    def add(self, name: str, pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
        """Score one aligned pair (same shape, our conventions); returns and keeps the per-image row."""
        row = {"name": name, **self.score(pred, gt)}
        self.rows.append(row)
        return row

    def score(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def finish(self) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, list[float]] | None]:
        """Summary, per-image rows (possibly completed), curves (or None)."""
        raise NotImplementedError

    def _positive(self, x: np.ndarray) -> np.ndarray:
        """A blur-polarity map turned into the protocol's positive class (1 = positive)."""
        return x if self.protocol.positive == "blur" else 1.0 - x


@dataclass(frozen=True)
class Protocol:
    """Base of all protocols. Fields are the options; subclasses set their defaults to the source's choices.

    Attributes
    ----------
    positive : {"blur", "focus"}
        The class whose precision/recall/IoU is measured.
    size : "native", int or (H, W)
        Evaluation resolution. ``"native"``: the ground truth's own size.
    interp : {"nearest", "bilinear", "bicubic", "area", "matlab-bicubic"} or None
        How a prediction whose shape differs from the evaluation size is resized. ``None``: it is not, and such a
        pair is reported as a shape mismatch (at a fixed ``size``, ``None`` means bilinear).
    gt_interp : str
        Kernel used on the ground truth when ``size`` is not native.
    """

    name: ClassVar[str] = ""
    task: ClassVar[str] = "dbd"
    title: ClassVar[str] = ""

    positive: str = "blur"
    size: Any = "native"
    interp: str | None = None
    gt_interp: str = "nearest"

    def __post_init__(self) -> None:
        if isinstance(self.interp, str) and self.interp.lower() == "none":
            object.__setattr__(self, "interp", None)  # "none" = do not resize (None itself means "default")
        if self.positive not in POSITIVES:
            raise EvaluationError(f"positive class {self.positive!r}: choose 'blur' or 'focus'")
        for k in (self.interp, self.gt_interp):
            if k is not None and k not in KERNELS:
                raise EvaluationError(f"resize kernel {k!r}: choose one of {', '.join(KERNELS)}")
        parse_size(self.size)

    # -- options -------------------------------------------------------------------------------------------------
    def with_options(self, **options: Any) -> "Protocol":
        """A copy with some options changed; ``None`` values keep the default."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise EvaluationError(f"protocol {self.name!r} has no option {', '.join(unknown)}; options: "
                                  f"{', '.join(sorted(known))}")
        changes = {k: v for k, v in options.items() if v is not None}
        return dataclasses.replace(self, **changes) if changes else self

    def options(self) -> dict[str, Any]:
        """The options as a JSON-friendly dict."""
        out = dataclasses.asdict(self)
        if isinstance(out.get("size"), tuple):
            out["size"] = list(out["size"])
        return out

    @classmethod
    def definition(cls) -> str:
        """The protocol's definition (its docstring)."""
        return inspect.cleandoc(cls.__doc__ or "")

    # -- per-pair work -------------------------------------------------------------------------------------------
    def align(self, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bring a prediction and its ground truth to the evaluation resolution.

        Raises
        ------
        EvaluationError
            On a shape mismatch that the options do not resolve.
        """
        target = parse_size(self.size)
        if target is None:
            if pred.shape != gt.shape:
                if self.interp is None:
                    raise EvaluationError(
                        f"prediction is {_shape_text(pred.shape)} but ground truth is {_shape_text(gt.shape)} "
                        f"(protocol {self.name!r} does not resize; set interp / --interp to allow it)"
                    )
                pred = resize_map(pred, gt.shape, self.interp)
            return np.asarray(pred, np.float64), np.asarray(gt, np.float64)
        pred = resize_map(pred, target, self.interp or "bilinear")
        gt = resize_map(gt, target, self.gt_interp)
        return pred, gt

    def accumulator(self) -> Accumulator:
        raise NotImplementedError


def _curves(precision: np.ndarray, recall: np.ndarray, fbeta: np.ndarray, thresholds: np.ndarray,
            rule: str) -> dict[str, Any]:
    return {
        "thresholds": [float(t) for t in thresholds],
        "rule": rule,
        "precision": [float(v) for v in precision],
        "recall": [float(v) for v in recall],
        "fbeta": [float(v) for v in fbeta],
    }


def _per_image_curve(levels: np.ndarray, positive_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image precision, recall, F at ``level >= t`` for t = 0..255 (0 where undefined)."""
    pos, neg = M.histograms(levels, positive_gt)
    tp = M.at_least(pos)
    pp = tp + M.at_least(neg)
    p = M.ratio(tp, pp)
    r = M.ratio(tp, int(np.count_nonzero(positive_gt)))
    return p, r, M.f_beta(p, r)


# --------------------------------------------------------------------------------------------------------------------
# D-DFFNet


@dataclass(frozen=True)
class DDFFNet(Protocol):
    """``ddffnet`` — D-DFFNet (Jin et al., ICME 2023), its offline scripts ``test1.py`` and ``test_iou1.py``.

    This is the protocol behind the D-DFFNet comparison table, in which all baselines were re-scored.

    * Resolution: native (GT size); the prediction must already have the GT's size (``test1.py`` skips other
      pairs; here they are reported as shape mismatches unless a resize kernel is chosen).
    * MAE: per image, ``mean |g - f|`` between the binarised GT ``g`` (in-focus map ``>= 0.5``) and the
      *continuous* predicted in-focus map ``f = 1 - blur``; mean over images (polarity does not change it).
    * F-measure: positive class = **blur region**. The prediction is binarised as in ``test1.py``: in focus iff
      ``f >= 0.5`` (i.e. blurred iff ``blur > 0.5``); the GT likewise (in focus iff ``>= 0.5``). Precision and recall
      of the blurred region per image (0 when undefined, as scikit-learn's default), F with β² = 0.3 (0 when
      P = R = 0), **mean over images**. ``precision``/``recall`` are the per-image means too. (``test.py`` also runs
      a 255-threshold sweep on the already-binary map and keeps the maximum, which lets the "everything blurred"
      F compete; ``test1.py`` — reproduced here — does not.)
    * IoU (``test_iou1.py``): binarise with a strict ``> 0.5`` on the in-focus map and GT (so blurred iff
      ``blur >= 0.5``), positive = blur region, intersection and union **pooled over all pixels of the dataset**.
      Per-image IoU is also listed in the CSV.
    * Accuracy (not in the source): pixel accuracy of the F binarisation, mean over images.
    * Curves (not in the source): per image P/R/F of the positive-class map at ``>= t/255``, mean over images.
    """

    name: ClassVar[str] = "ddffnet"
    title: ClassVar[str] = "D-DFFNet test1.py/test_iou1.py: fixed 0.5, blur positive, per-image F, pooled IoU"

    positive: str = "blur"
    interp: str | None = None

    def accumulator(self) -> Accumulator:
        return _DDFFNetAccumulator(self)


class _DDFFNetAccumulator(Accumulator):
    def __init__(self, protocol: Protocol) -> None:
        super().__init__(protocol)
        self.iou_pool = Confusion()
        self.curve_p, self.curve_r, self.curve_f = CurveStack(), CurveStack(), CurveStack()

    def score(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
        blur_pos = self.protocol.positive == "blur"
        focus, gt_focus = 1.0 - pred, 1.0 - gt
        gt_focus_bin = gt_focus >= 0.5
        mae = M.mae(focus, gt_focus_bin)
        pred_focus_bin = focus >= 0.5
        pp, gp = (~pred_focus_bin, ~gt_focus_bin) if blur_pos else (pred_focus_bin, gt_focus_bin)
        conf = Confusion.of(pp, gp)
        # test_iou1.py binarises with a strict '>' (F uses '>='): only exact 0.5 values differ.
        iou_focus, iou_gt_focus = focus > 0.5, gt_focus > 0.5
        ip, ig = (~iou_focus, ~iou_gt_focus) if blur_pos else (iou_focus, iou_gt_focus)
        iou_conf = Confusion.of(ip, ig)
        self.iou_pool = self.iou_pool + iou_conf
        p, r, f = _per_image_curve(M.to_u8_floor(self._positive(pred)), gp)
        self.curve_p.add(p), self.curve_r.add(r), self.curve_f.add(f)
        return {"mae": mae, "fbeta": conf.fbeta, "precision": conf.precision, "recall": conf.recall,
                "iou": iou_conf.iou, "accuracy": conf.accuracy}

    def finish(self):
        rows = self.rows
        summary = {
            "mae": _mean(rows, "mae"),
            "fbeta": _mean(rows, "fbeta"),
            "iou": self.iou_pool.iou,
            "accuracy": _mean(rows, "accuracy"),
            "precision": _mean(rows, "precision"),
            "recall": _mean(rows, "recall"),
        }
        curves = _curves(self.curve_p.mean(), self.curve_r.mean(), self.curve_f.mean(), M.THRESHOLDS,
                         ">= t, per-image P/R/F averaged over images")
        return summary, rows, curves


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(vals)) if vals else float("nan")


# --------------------------------------------------------------------------------------------------------------------
# DD (depth distillation)


@dataclass(frozen=True)
class DD(Protocol):
    """``dd`` — Cun & Pun, "Defocus Blur Detection via Depth Distillation" (ECCV 2020), ``eval.ipynb``.

    * Resolution: native; the prediction is resized to the GT size **bilinearly** (their ``resize_to_match``).
    * Positive class: the map's own class, which for DD is **in focus** (DD flips CUHK GT to DUT polarity).
    * MAE: per image ``mean |gt - pred|`` with the **continuous** (unbinarised) GT; mean over images.
    * Binarisation: both maps as 8-bit (``uint8(x * 255)``, truncating); **adaptive threshold**
      ``min(1.5 * mean, 255)`` with a strict ``>``, applied to the prediction **and also to the GT** (so a GT whose
      positive area exceeds 2/3 of the image binarises to all-negative, exactly as in the source).
    * F-measure: binary pixels **pooled over the whole dataset** (scikit-learn precision and recall of the
      concatenated pixels), one F with β² = 0.3 for the dataset.
    * IoU and accuracy (not in the source): pooled over the dataset with the same binarisation.
    * Curves (not in the source): prediction ``>= t/255`` against the adaptively binarised GT, counts pooled over
      the dataset.
    """

    name: ClassVar[str] = "dd"
    title: ClassVar[str] = "DD eval.ipynb: adaptive 1.5*mean on pred and GT, in-focus positive, dataset-pooled F"

    positive: str = "focus"
    interp: str | None = "bilinear"

    def accumulator(self) -> Accumulator:
        return _DDAccumulator(self)


def _dd_binarise(levels: np.ndarray) -> tuple[np.ndarray, float]:
    threshold = min(1.5 * float(np.mean(levels)), 255.0)
    return levels > threshold, threshold


class _DDAccumulator(Accumulator):
    def __init__(self, protocol: Protocol) -> None:
        super().__init__(protocol)
        self.pool = Confusion()
        self.tp = np.zeros(M.N_THRESHOLDS, np.int64)
        self.pp = np.zeros(M.N_THRESHOLDS, np.int64)
        self.t = 0

    def score(self, pred, gt):
        x, y = self._positive(pred), self._positive(gt)
        mae = M.mae(x, y)
        xl, yl = M.to_u8_floor(x), M.to_u8_floor(y)
        pbin, thr = _dd_binarise(xl)
        gbin, _ = _dd_binarise(yl)
        conf = Confusion.of(pbin, gbin)
        self.pool = self.pool + conf
        pos, neg = M.histograms(xl, gbin)
        tp = M.at_least(pos)
        self.tp += tp
        self.pp += tp + M.at_least(neg)
        self.t += int(np.count_nonzero(gbin))
        return {"mae": mae, "fbeta": conf.fbeta, "precision": conf.precision, "recall": conf.recall,
                "iou": conf.iou, "accuracy": conf.accuracy, "threshold": thr / 255.0}

    def finish(self):
        summary = {
            "mae": _mean(self.rows, "mae"),
            "fbeta": self.pool.fbeta,
            "iou": self.pool.iou,
            "accuracy": self.pool.accuracy,
            "precision": self.pool.precision,
            "recall": self.pool.recall,
        }
        p = M.ratio(self.tp, self.pp)
        r = M.ratio(self.tp, self.t)
        curves = _curves(p, r, M.f_beta(p, r), M.THRESHOLDS, ">= t vs adaptively binarised GT, pixels pooled")
        return summary, self.rows, curves


# --------------------------------------------------------------------------------------------------------------------
# Zhao / DLUT toolbox


#: The toolbox's threshold step (``i * 0.00392157``, slightly above 1/255, so its 255th threshold exceeds 1).
ZHAO_STEP = 0.00392157
ZHAO_THRESHOLDS = np.arange(1, 256, dtype=np.float64) * ZHAO_STEP


@dataclass(frozen=True)
class Zhao(Protocol):
    """``zhao`` — Wenda Zhao's DLUT MATLAB toolbox (``evaluate_dbd``, shipped with APL/MLDBD; used for BTBNet,
    CENet, DENets and their successors).

    * Resolution: native; the prediction is resized to the GT size with MATLAB's ``imresize`` bicubic
      (``matlab-bicubic``: a = -0.5, antialiased when shrinking). Use ``size=160``/``320`` for the papers that
      score at that size.
    * Positive class: **in focus** (GT white in DUT polarity).
    * GT: positive iff ``gt >= 0.1`` (in-focus map).
    * Map: negatives set to 0, then **divided by its maximum**. An all-zero map is not counted in the average's
      denominator (its F still enters the sum, as in ``performCalcu.m``).
    * F-measure (``Fmeasure_calu.m``): per image, **maximum over 255 thresholds** ``i * 0.00392157`` (i = 1..255,
      ``map >= thr``) of F (β² = 0.3; 0 when no true positive); then **mean over images** of these per-image maxima.
      If the GT is all zero the toolbox sets it to all ones and inverts the map — but inside its threshold loop, so
      only the first threshold sees the inverted map (``empty_gt="toolbox"``, the default, reproduces this;
      ``empty_gt="invert"`` inverts both at every threshold as intended).
    * ``precision``/``recall``: those of each image's best F, averaged the same way.
    * MAE (``evaluate.m``): the resized, un-normalised map against the GT binarised at 125/255
      (in focus iff ``>= 125``); mean over all images.
    * IoU and accuracy (not in the source): per image at the threshold that gave the image's maximum F, mean over
      images with a non-zero map.
    * Curves: per-image P/R at ``>= t/255`` (both inverted when the GT is empty, as ``Pre_Recall_hitRate.m``;
      P = R = 0 when no true positive), summed and divided by the number of non-zero maps; the F curve is F of the
      mean P and mean R (the toolbox's ``mFmeasureWF``; the toolbox samples 21 thresholds, here 256).
    """

    name: ClassVar[str] = "zhao"
    title: ClassVar[str] = "Zhao/DLUT toolbox: map/max, GT>=0.1, mean over images of per-image max F (255 thr)"

    positive: str = "focus"
    interp: str | None = "matlab-bicubic"
    empty_gt: str = "toolbox"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.empty_gt not in ("toolbox", "invert"):
            raise EvaluationError(f"empty_gt {self.empty_gt!r}: choose 'toolbox' or 'invert'")

    def accumulator(self) -> Accumulator:
        return _ZhaoAccumulator(self)


def zhao_max_f(s: np.ndarray, gt: np.ndarray, empty_gt: str = "toolbox") -> tuple[float, float, float, int]:
    """Per-image maximum F of the Zhao toolbox.

    Parameters
    ----------
    s : ndarray of float
        Map in [0, 1] (already divided by its maximum).
    gt : ndarray of bool
        Positive pixels.
    empty_gt : {"toolbox", "invert"}
        Handling of an all-zero GT (see :class:`Zhao`).

    Returns
    -------
    fbeta, precision, recall : float
        The best F and the P/R at which it was first reached (all 0 if no threshold gives a true positive).
    index : int
        0-based index ``i - 1`` of the best threshold, or -1 if none.
    """
    values = np.sort(s.ravel())
    n = values.size
    pp = M.count_at_least(values, ZHAO_THRESHOLDS)
    if np.count_nonzero(gt):
        tp = M.count_at_least(np.sort(s[gt]), ZHAO_THRESHOLDS)
        t = np.full_like(tp, np.count_nonzero(gt))
    elif empty_gt == "invert":
        # GT becomes all ones and the map 1 - s: predicted positive iff 1 - s >= thr.
        inv = np.sort(1.0 - s.ravel())
        pp = M.count_at_least(inv, ZHAO_THRESHOLDS)
        tp, t = pp, np.full_like(pp, n)
    else:
        # Fmeasure_calu.m: GT := ones and the label map inverted at the first threshold only.
        tp, t = pp.copy(), np.full_like(pp, n)
        tp[0] = pp[0] = n - pp[0]
    precision = M.ratio(tp, pp)
    recall = M.ratio(tp, t)
    f = np.where(tp == 0, 0.0, M.f_beta(precision, recall))
    best = int(np.argmax(f))
    if f[best] <= 0:
        return 0.0, 0.0, 0.0, -1
    return float(f[best]), float(precision[best]), float(recall[best]), best


def _zhao_binary_at(s: np.ndarray, gt: np.ndarray, index: int, empty_gt: str) -> tuple[np.ndarray, np.ndarray]:
    """The binary prediction and GT at the toolbox threshold ``index`` (same rules as :func:`zhao_max_f`)."""
    thr = ZHAO_THRESHOLDS[index] if index >= 0 else np.inf
    if np.count_nonzero(gt):
        return s >= thr, gt
    ones = np.ones_like(gt)
    if empty_gt == "invert":
        return (1.0 - s) >= thr, ones
    if index == 0:  # the toolbox inverts the label map at its first threshold only
        return ~(s >= thr), ones
    return s >= thr, ones


class _ZhaoAccumulator(Accumulator):
    def __init__(self, protocol: Protocol) -> None:
        super().__init__(protocol)
        self.n_zero_maps = 0
        self.curve_p, self.curve_r = CurveStack(), CurveStack()

    def score(self, pred, gt):
        proto: Zhao = self.protocol  # type: ignore[assignment]
        x = self._positive(pred).copy()
        gt_pos_map = self._positive(gt)
        # evaluate.m: the un-normalised map against the GT binarised at 125 of 255 on the in-focus map.
        gt_focus_bin = M.u8_at_least(1.0 - gt, 125)
        mae = M.mae(x, gt_focus_bin if proto.positive == "focus" else ~gt_focus_bin)
        x[x < 0] = 0
        peak = float(x.max()) if x.size else 0.0
        zero_map = peak == 0
        self.n_zero_maps += int(zero_map)
        s = np.zeros_like(x) if zero_map else x / peak
        gtb = gt_pos_map >= 0.1
        f, p, r, idx = zhao_max_f(s, gtb, proto.empty_gt)
        bin_pred, bin_gt = _zhao_binary_at(s, gtb, idx, proto.empty_gt)
        conf = Confusion.of(bin_pred, bin_gt)
        # Pre_Recall_hitRate.m: with an empty GT both maps are inverted at every threshold.
        if np.count_nonzero(gtb):
            levels, gcurve = M.to_u8_floor(s), gtb
        else:
            levels, gcurve = M.to_u8_floor(1.0 - s), np.ones_like(gtb)
        pos, neg = M.histograms(levels, gcurve)
        tp = M.at_least(pos)
        pp = tp + M.at_least(neg)
        cp = np.where(tp == 0, 0.0, M.ratio(tp, pp))
        cr = np.where(tp == 0, 0.0, M.ratio(tp, int(np.count_nonzero(gcurve))))
        self.curve_p.add(cp), self.curve_r.add(cr)
        return {"mae": mae, "fbeta": f, "precision": p, "recall": r,
                "iou": None if zero_map else conf.iou, "accuracy": None if zero_map else conf.accuracy,
                "threshold": float(ZHAO_THRESHOLDS[idx]) if idx >= 0 else None, "zero_map": zero_map}

    def finish(self):
        n_valid = len(self.rows) - self.n_zero_maps

        def toolbox_mean(key: str) -> float:
            return float(sum(r[key] for r in self.rows) / n_valid) if n_valid > 0 else float("nan")

        summary = {
            "mae": _mean(self.rows, "mae"),
            "fbeta": toolbox_mean("fbeta"),
            "iou": _mean(self.rows, "iou"),
            "accuracy": _mean(self.rows, "accuracy"),
            "precision": toolbox_mean("precision"),
            "recall": toolbox_mean("recall"),
            "zero_maps": self.n_zero_maps,
        }
        denominator = max(n_valid, 1)
        mp, mr = self.curve_p.mean(denominator), self.curve_r.mean(denominator)
        curves = _curves(mp, mr, M.f_beta(mp, mr), M.THRESHOLDS,
                         ">= t on map/max, per-image P/R averaged, F of mean P and R")
        return summary, self.rows, curves


# --------------------------------------------------------------------------------------------------------------------
# PySODMetrics


@dataclass(frozen=True)
class PySOD(Protocol):
    """``pysod`` — PySODMetrics (lartpang/PySODMetrics, Fan et al.'s SOD toolbox conventions) as used in DBD.

    * Resolution: native; no resizing (PySODMetrics refuses different shapes).
    * Positive class: **in focus** (PySODMetrics scores the GT's white class, and DBD works that use it feed
      DUT-polarity GT, white = in focus).
    * Inputs as 8-bit images: the prediction is rounded to 8 bits (as a saved PNG), divided by 255 and
      **min-max normalised per image** (unless constant); GT positive iff ``> 128``.
    * MAE: per image on the normalised map, mean over images.
    * Adaptive F: threshold ``min(2 * mean, 1)``, ``map >= thr``; per image, mean over images (``fbeta_adaptive``).
    * Dynamic F curve: 256 thresholds, ``uint8(map * 255) >= t`` (truncating); per-image P, R, F; averaged over
      images per threshold. ``fbeta`` = **maxF = maximum of the mean F curve**; ``fbeta_mean`` = its mean.
      ``precision``/``recall`` are the mean curves at the maxF threshold.
    * IoU and accuracy: PySODMetrics' adaptive, sample-based IoU and overall accuracy (same adaptive threshold),
      mean over images.
    * Structure and enhanced-alignment measures, computed by the ``pysodmetrics`` package itself
      (``pip install 'defocus[eval]'``; without it these keys are absent and a warning says so): S-measure
      (Fan et al. ICCV 2017, α = 0.5) ``s_measure``; E-measure (Fan et al. IJCAI 2018) at the adaptive threshold
      ``e_measure_adaptive`` and over 256 thresholds, ``e_measure_mean`` / ``e_measure_max`` of the mean curve;
      weighted F-measure (Margolin et al. CVPR 2014, β² = 1) ``weighted_f``. Each on the 8-bit prediction and GT
      of the positive class, as PySODMetrics reads saved PNGs; per image, then averaged over images.
    """

    name: ClassVar[str] = "pysod"
    title: ClassVar[str] = "PySODMetrics: min-max per image, adaptive 2*mean, maxF of mean curve, GT>128"

    positive: str = "focus"
    interp: str | None = None

    def accumulator(self) -> Accumulator:
        return _PySODAccumulator(self)


def _pysodmetrics():
    """The ``py_sod_metrics`` module of the pysodmetrics package, or None (with a warning) if it is not installed."""
    try:
        import py_sod_metrics
    except ImportError:
        import warnings

        warnings.warn("protocol pysod: S-measure, E-measure and weighted F need the pysodmetrics package "
                      "(pip install 'defocus[eval]'); they are left out", stacklevel=3)
        return None
    return py_sod_metrics


class _PySODAccumulator(Accumulator):
    def __init__(self, protocol: Protocol) -> None:
        super().__init__(protocol)
        self.curve_p, self.curve_r, self.curve_f = CurveStack(), CurveStack(), CurveStack()
        sod = _pysodmetrics()
        self.structure = (sod.Smeasure(), sod.Emeasure(), sod.WeightedFmeasure()) if sod is not None else None

    def _structure_scores(self, pred_u8: np.ndarray, gt_u8: np.ndarray) -> dict[str, float]:
        if self.structure is None:
            return {}
        import warnings

        sm, em, wfm = self.structure
        with warnings.catch_warnings():  # maps a few px high give NaN there (empty windows), as PySODMetrics does
            warnings.simplefilter("ignore", RuntimeWarning)
            for measure in self.structure:
                measure.step(pred=pred_u8, gt=gt_u8)
        return {"s_measure": float(sm.sms[-1]), "e_measure_adaptive": float(em.adaptive_ems[-1]),
                "e_measure_mean": float(np.mean(em.changeable_ems[-1])), "weighted_f": float(wfm.weighted_fms[-1])}

    def score(self, pred, gt):
        u = M.to_u8_round(self._positive(pred))
        gtb = M.to_u8_round(self._positive(gt)) > 128
        x = u / 255
        if x.max() != x.min():
            x = (x - x.min()) / (x.max() - x.min())
        mae = M.mae(x, gtb)
        thr = min(2 * x.mean(), 1)
        conf = Confusion.of(x >= thr, gtb)
        adaptive_f = 0.0 if conf.tp == 0 else conf.fbeta
        levels = (x * 255).astype(np.uint8)  # PySODMetrics truncates here
        pos, neg = M.histograms(levels, gtb)
        tp = M.at_least(pos)
        pp = tp + M.at_least(neg)
        p = tp / np.maximum(pp, 1)
        r = tp / max(int(np.count_nonzero(gtb)), 1)
        f = M.f_beta(p, r)
        self.curve_p.add(p), self.curve_r.add(r), self.curve_f.add(f)
        return {"mae": mae, "fbeta": float(f.max()), "fbeta_adaptive": adaptive_f, "precision": conf.precision,
                "recall": conf.recall, "iou": conf.iou, "accuracy": conf.accuracy, "threshold": float(thr),
                **self._structure_scores(u, M.to_u8_round(self._positive(gt)))}

    def finish(self):
        mp, mr, mf = self.curve_p.mean(), self.curve_r.mean(), self.curve_f.mean()
        best = int(np.argmax(mf)) if self.rows else 0
        summary = {
            "mae": _mean(self.rows, "mae"),
            "fbeta": float(mf[best]) if self.rows else float("nan"),
            "iou": _mean(self.rows, "iou"),
            "accuracy": _mean(self.rows, "accuracy"),
            "precision": float(mp[best]) if self.rows else float("nan"),
            "recall": float(mr[best]) if self.rows else float("nan"),
            "fbeta_max": float(mf[best]) if self.rows else float("nan"),
            "fbeta_mean": float(np.mean(mf)) if self.rows else float("nan"),
            "fbeta_adaptive": _mean(self.rows, "fbeta_adaptive"),
        }
        if self.structure is not None and self.rows:
            sm, em, wfm = (m.get_results() for m in self.structure)
            curve = em["em"]["curve"]
            summary.update(s_measure=float(sm["sm"]), e_measure_adaptive=float(em["em"]["adp"]),
                           e_measure_mean=float(np.mean(curve)), e_measure_max=float(np.max(curve)),
                           weighted_f=float(wfm["wfm"]))
        curves = _curves(mp, mr, mf, M.THRESHOLDS, ">= t on uint8(minmax(map)*255), per-image P/R/F averaged")
        return summary, self.rows, curves


# --------------------------------------------------------------------------------------------------------------------
# BR2Net


@dataclass(frozen=True)
class BR2Net(Protocol):
    """``br2net`` — BR²Net (Tang et al., IEEE TMM 2020), ``misc.py`` (the R³Net saliency helpers).

    * Resolution: native, no resizing (the source asserts equal shapes).
    * Positive class: the map's own class, **blur** (BR²Net is trained on CUHK masks as distributed,
      255 = blurred).
    * Inputs as 8-bit images: prediction ``uint8(map * 255)`` (truncating, as ``ToPILImage`` saves it); GT 8-bit.
    * MAE: per image ``mean |pred/255 - gt/255|`` with the **continuous** GT, mean over images.
    * Curves: GT positive iff ``gt/255 > 0.5``; 256 thresholds ``pred > t/255`` (t = 0..255, strict); per image
      ``P = (TP + 1e-4) / (PP + 1e-4)`` and ``R = (TP + 1e-4) / (T + 1e-4)``; P and R averaged over images per
      threshold; F curve = F(mean P, mean R); ``fbeta`` = **max of that curve**; ``precision``/``recall`` at it.
    * IoU and accuracy (not in the source): per image at the threshold of the maximum F, mean over images.
    """

    name: ClassVar[str] = "br2net"
    title: ClassVar[str] = "BR2Net misc.py: 256 thr pred > t/255, per-image P/R (eps 1e-4) averaged, max F"

    positive: str = "blur"
    interp: str | None = None

    def accumulator(self) -> Accumulator:
        return _BR2NetAccumulator(self)


BR2NET_EPS = 1e-4


class _BR2NetAccumulator(Accumulator):
    def __init__(self, protocol: Protocol) -> None:
        super().__init__(protocol)
        self.counts: list[tuple[np.ndarray, np.ndarray, int, int]] = []  # tp[t], pp[t], T, N per image
        self.curve_p, self.curve_r = CurveStack(), CurveStack()

    def score(self, pred, gt):
        u = M.to_u8_floor(self._positive(pred))
        g = M.to_u8_round(self._positive(gt))
        mae = M.mae(u / 255.0, g / 255.0)
        hard = g > 127  # gt/255 > 0.5
        pos, neg = M.histograms(u, hard)
        tp = M.above(pos)
        pp = tp + M.above(neg)
        t = int(np.count_nonzero(hard))
        self.counts.append((tp, pp, t, u.size))
        self.curve_p.add((tp + BR2NET_EPS) / (pp + BR2NET_EPS))
        self.curve_r.add((tp + BR2NET_EPS) / (t + BR2NET_EPS))
        return {"mae": mae}

    def finish(self):
        if not self.rows:
            nan = float("nan")
            return {"mae": nan, "fbeta": nan, "iou": nan, "accuracy": nan, "precision": nan, "recall": nan}, [], None
        mp, mr = self.curve_p.mean(), self.curve_r.mean()
        mf = M.f_beta(mp, mr)
        best = int(np.argmax(mf))
        for row, (tp, pp, t, n) in zip(self.rows, self.counts):
            conf = Confusion.from_counts(tp[best], pp[best], t, n)
            p = (tp[best] + BR2NET_EPS) / (pp[best] + BR2NET_EPS)
            r = (tp[best] + BR2NET_EPS) / (t + BR2NET_EPS)
            row.update(fbeta=M.f_beta(p, r), precision=float(p), recall=float(r), iou=conf.iou,
                       accuracy=conf.accuracy, threshold=best / 255.0)
        summary = {
            "mae": _mean(self.rows, "mae"),
            "fbeta": float(mf[best]),
            "iou": _mean(self.rows, "iou"),
            "accuracy": _mean(self.rows, "accuracy"),
            "precision": float(mp[best]),
            "recall": float(mr[best]),
            "threshold": best / 255.0,
        }
        curves = _curves(mp, mr, mf, M.THRESHOLDS, "> t (strict), per-image P/R with eps 1e-4 averaged")
        return summary, self.rows, curves


# --------------------------------------------------------------------------------------------------------------------
# DME: RTF / DMENet


@dataclass(frozen=True)
class RTF(Protocol):
    """``rtf`` — defocus-map error on the RTF dataset (D'Andrès et al., TIP 2016) as scored by DMENet
    (``evaluation/RTF/quantitative_RTF.m``) and Karaali & Jung (RTF demo).

    * Prediction: defocus map, Gaussian σ in px (``pred_units="radius"`` for disk radius in px).
    * Ground truth: RTF gives the **disk (pillbox) radius** in px (``gt_units="radius"``; ``"sigma"`` for σ maps).
      Radius → σ through the RTF ``convertion.mat`` table (:data:`defocus.units.RTF_SIGMA_RADIUS`):
      ``lookup="nearest"`` takes the table row nearest to each radius (DMENet), ``"linear"`` interpolates
      (:func:`defocus.units.radius_to_sigma`). σ → radius for the radius errors uses
      :func:`defocus.units.sigma_to_radius`.
    * Cropping: the last ``drop_right = 20`` columns are dropped from the GT, and from the prediction if it has the
      GT's full width (Karaali's demo crops the image before estimating); then, if the shapes still differ and
      ``crop_common`` is set, both are cropped to their common top-left part (DMENet).
    * Metrics: per image mean absolute and mean squared error, averaged over images, in three units:
      σ px (``mae_sigma``, ``mse_sigma``; also ``mae``/``mse``), disk-radius px (``mae_radius``, ``mse_radius``)
      and **relative** (DMENet: σ clipped to [0, 3.275] and divided by 3.275; ``mae_rel``, ``mse_rel``).
    """

    name: ClassVar[str] = "rtf"
    task: ClassVar[str] = "dme"
    title: ClassVar[str] = "RTF/DMENet: per-image MAE/MSE in sigma px, radius px and relative (clip 3.275)"

    drop_right: int = 20
    crop_common: bool = True
    gt_units: str = "radius"
    pred_units: str = "sigma"
    lookup: str = "nearest"
    clip_sigma: float = 3.275

    def __post_init__(self) -> None:
        super().__post_init__()
        for field, value in (("gt_units", self.gt_units), ("pred_units", self.pred_units)):
            if value not in ("sigma", "radius"):
                raise EvaluationError(f"{field} {value!r}: choose 'sigma' or 'radius'")
        if self.lookup not in ("nearest", "linear"):
            raise EvaluationError(f"lookup {self.lookup!r}: choose 'nearest' or 'linear'")
        if self.drop_right < 0 or self.clip_sigma <= 0:
            raise EvaluationError("drop_right must be >= 0 and clip_sigma > 0")

    def align(self, pred, gt):
        pred = np.asarray(pred, np.float64)
        gt = np.asarray(gt, np.float64)
        if parse_size(self.size) is not None:
            raise EvaluationError("defocus maps are scored at native size (resizing would change their pixel units)")
        d = int(self.drop_right)
        if d:
            width = gt.shape[1]
            if width <= d:
                raise EvaluationError(f"ground truth is {width} px wide; cannot drop {d} columns")
            if pred.shape[1] == width:
                pred = pred[:, : width - d]
            gt = gt[:, : width - d]
        if pred.shape != gt.shape:
            if not self.crop_common:
                raise EvaluationError(f"prediction is {_shape_text(pred.shape)} but ground truth is "
                                      f"{_shape_text(gt.shape)}")
            h, w = min(pred.shape[0], gt.shape[0]), min(pred.shape[1], gt.shape[1])
            pred, gt = pred[:h, :w], gt[:h, :w]
        return pred, gt

    def accumulator(self) -> Accumulator:
        return _RTFAccumulator(self)


@dataclass(frozen=True)
class RTFDMENet(RTF):
    """``rtf-dmenet`` — the RTF error exactly as DMENet's ``evaluation/RTF/quantitative_RTF.m`` computes it, with
    nothing dropped.

    * Differences from ``rtf``: no column is dropped (``drop_right = 0``); prediction and ground truth are only
      cropped to their common top-left part. ``rtf`` drops the 20 rightmost columns as Karaali & Jung's RTF demo
      does, so its figures are not DMENet's.
    * Everything else as ``rtf``: GT disk radius → σ by the nearest row of the RTF table, per image MAE/MSE
      averaged over images, in σ px, disk-radius px and relative units; DMENet's published figures are the
      relative ones (``mae_rel``, ``mse_rel``: σ clipped to [0, 3.275] and divided by 3.275).
    """

    name: ClassVar[str] = "rtf-dmenet"
    title: ClassVar[str] = "RTF as DMENet's script scores it: no column drop, common crop, relative MAE/MSE (clip 3.275)"

    drop_right: int = 0


def radius_to_sigma_nearest(radius: np.ndarray) -> np.ndarray:
    """Disk radius → Gaussian σ by the nearest row of the RTF table (ties to the smaller radius), as DMENet does."""
    from ..units import RTF_SIGMA_RADIUS

    radii = RTF_SIGMA_RADIUS[:, 1]
    sigmas = RTF_SIGMA_RADIUS[:, 0]
    r = np.asarray(radius, dtype=np.float64)
    hi = np.clip(np.searchsorted(radii, r, side="left"), 1, radii.size - 1)
    lo = hi - 1
    take_lo = np.abs(r - radii[lo]) <= np.abs(radii[hi] - r)
    return np.where(take_lo, sigmas[lo], sigmas[hi])


class _RTFAccumulator(Accumulator):
    KEYS = ("mae_sigma", "mse_sigma", "mae_radius", "mse_radius", "mae_rel", "mse_rel")

    def score(self, pred, gt):
        from ..units import radius_to_sigma, sigma_to_radius

        proto: RTF = self.protocol  # type: ignore[assignment]
        if proto.pred_units == "sigma":
            sp = np.maximum(pred, 0)
            rp = sigma_to_radius(sp).astype(np.float64)
        else:
            rp = np.maximum(pred, 0)
            sp = radius_to_sigma(rp).astype(np.float64)
        if proto.gt_units == "radius":
            rg = gt
            sg = radius_to_sigma_nearest(gt) if proto.lookup == "nearest" else radius_to_sigma(gt).astype(np.float64)
        else:
            sg = gt
            rg = sigma_to_radius(gt).astype(np.float64)
        c = proto.clip_sigma
        rel_p, rel_g = np.clip(sp, 0, c) / c, np.clip(sg, 0, c) / c
        row = {
            "mae_sigma": M.mae(sp, sg), "mse_sigma": float(np.mean((sp - sg) ** 2)),
            "mae_radius": M.mae(rp, rg), "mse_radius": float(np.mean((rp - rg) ** 2)),
            "mae_rel": M.mae(rel_p, rel_g), "mse_rel": float(np.mean((rel_p - rel_g) ** 2)),
        }
        return {"mae": row["mae_sigma"], "mse": row["mse_sigma"], **row}

    def finish(self):
        summary = {k: _mean(self.rows, k) for k in ("mae", "mse", *self.KEYS)}
        return summary, self.rows, None


# --------------------------------------------------------------------------------------------------------------------

#: Every protocol by name, with its default options.
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (DDFFNet(), DD(), Zhao(), PySOD(), BR2Net(), RTF(),
                                                       RTFDMENet())}


def get_protocol(protocol: str | Protocol = "ddffnet", **options: Any) -> Protocol:
    """The protocol named ``protocol`` (or the given instance) with ``options`` applied (``None`` = default)."""
    if isinstance(protocol, Protocol):
        base = protocol
    else:
        try:
            base = PROTOCOLS[protocol]
        except KeyError:
            raise EvaluationError(f"unknown protocol {protocol!r}; available: {', '.join(PROTOCOLS)}") from None
    return base.with_options(**options)
