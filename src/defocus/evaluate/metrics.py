"""Small, pure building blocks of the evaluation protocols.

Everything here works on one image at a time and returns counts or scalars, so a protocol can keep a few hundred
numbers per image (histograms over 256 thresholds) instead of every pixel of the dataset.

Conventions
-----------
* Maps are float arrays; a *binary* map is a boolean array; ``positive`` masks mark the class being detected.
* F-measure is F-beta with ``beta**2 = 0.3`` (:data:`BETA2`), the value every DBD paper uses.
* Division by zero gives 0 (a method that predicts no positive pixel has precision 0), as in scikit-learn's
  ``zero_division`` default and PySODMetrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: beta^2 of the F-measure used by every DBD protocol.
BETA2 = 0.3
#: Number of thresholds of the precision-recall and F curves.
N_THRESHOLDS = 256
#: The thresholds of the curves, t/255 for t = 0..255 (on maps in [0, 1]).
THRESHOLDS = np.arange(N_THRESHOLDS, dtype=np.float64) / 255.0

# A map read from an 8-bit PNG holds k/255; flipping its polarity in float32 (1 - k/255) and scaling back by 255 can
# land a hair below the integer k', which a plain cast would truncate to k' - 1. This tolerance (in 8-bit levels)
# maps such values back to k' and changes nothing else measurably.
U8_TOLERANCE = 1e-3


def ratio(num, den) -> np.ndarray | float:
    """``num / den`` element-wise, 0 where ``den == 0``. Scalars in, float out."""
    num_a = np.asarray(num, dtype=np.float64)
    den_a = np.asarray(den, dtype=np.float64)
    out = np.divide(num_a, den_a, out=np.zeros(np.broadcast(num_a, den_a).shape), where=den_a != 0)
    return float(out) if out.ndim == 0 else out


def f_beta(precision, recall, beta2: float = BETA2) -> np.ndarray | float:
    """F-beta of precision and recall, element-wise; 0 where precision = recall = 0.

    ``F = (1 + beta2) * P * R / (beta2 * P + R)``.
    """
    p = np.asarray(precision, dtype=np.float64)
    r = np.asarray(recall, dtype=np.float64)
    return ratio((1.0 + beta2) * p * r, beta2 * p + r)


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error of two maps of the same shape (float64 arithmetic)."""
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(gt, np.float64))))


def to_u8_floor(x: np.ndarray) -> np.ndarray:
    """``uint8(x * 255)`` with C truncation, as ``np.uint8(...)`` or ``ToPILImage`` do, for ``x`` in [0, 1].

    Values outside [0, 1] are clipped. See :data:`U8_TOLERANCE`.
    """
    y = np.floor(np.asarray(x, dtype=np.float64) * 255.0 + U8_TOLERANCE)
    return np.clip(y, 0, 255).astype(np.uint8)


def to_u8_round(x: np.ndarray) -> np.ndarray:
    """``x * 255`` rounded to the nearest 8-bit level, as when a map is saved as an 8-bit PNG. Clipped to [0, 255]."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def u8_at_least(x: np.ndarray, level: float) -> np.ndarray:
    """``x * 255 >= level`` for a map ``x`` in [0, 1] with 8-bit content (tolerant to float rounding, see above)."""
    return np.asarray(x, dtype=np.float64) * 255.0 >= level - U8_TOLERANCE


def histograms(levels: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of 8-bit ``levels`` over the positive and the negative pixels.

    Parameters
    ----------
    levels : ndarray of uint8, any shape
    positive : ndarray of bool, same shape
        Ground-truth positives.

    Returns
    -------
    pos, neg : ndarray of shape (256,), int64
        ``pos[k]`` = number of positive pixels with level ``k``; ``neg`` likewise for negatives.
    """
    lv = levels.ravel()
    pos_mask = positive.ravel()
    pos = np.bincount(lv[pos_mask], minlength=256).astype(np.int64)
    neg = np.bincount(lv[~pos_mask], minlength=256).astype(np.int64)
    return pos, neg


def at_least(hist: np.ndarray) -> np.ndarray:
    """From a 256-bin histogram, the number of pixels with level ``>= t`` for t = 0..255."""
    return np.cumsum(hist[::-1])[::-1].copy()


def above(hist: np.ndarray) -> np.ndarray:
    """From a 256-bin histogram, the number of pixels with level ``> t`` for t = 0..255."""
    ge = at_least(hist)
    return np.concatenate([ge[1:], [0]])


def count_at_least(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Number of entries of ``sorted_values`` (ascending) that are ``>= t`` for each threshold ``t`` (exact)."""
    return sorted_values.size - np.searchsorted(sorted_values, thresholds, side="left")


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of a binary decision against binary ground truth.

    Add two ``Confusion`` objects to pool pixels over images.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @classmethod
    def of(cls, pred: np.ndarray, gt: np.ndarray) -> "Confusion":
        """Counts of boolean ``pred`` against boolean ``gt`` (same shape)."""
        pred = np.asarray(pred, dtype=bool)
        gt = np.asarray(gt, dtype=bool)
        tp = int(np.count_nonzero(pred & gt))
        pp = int(np.count_nonzero(pred))
        t = int(np.count_nonzero(gt))
        return cls(tp=tp, fp=pp - tp, fn=t - tp, tn=gt.size - pp - t + tp)

    @classmethod
    def from_counts(cls, tp: int, pp: int, t: int, n: int) -> "Confusion":
        """From true positives, predicted positives, actual positives and the number of pixels."""
        return cls(tp=int(tp), fp=int(pp - tp), fn=int(t - tp), tn=int(n - pp - t + tp))

    def __add__(self, other: "Confusion") -> "Confusion":
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0 when nothing is predicted positive."""
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0 when the ground truth has no positive."""
        return ratio(self.tp, self.tp + self.fn)

    @property
    def fbeta(self) -> float:
        """F-beta (beta^2 = 0.3) of :attr:`precision` and :attr:`recall`; 0 when both are 0."""
        return f_beta(self.precision, self.recall)

    @property
    def iou(self) -> float:
        """TP / (TP + FP + FN) of the positive class; 0 when both prediction and ground truth are empty."""
        return ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def accuracy(self) -> float:
        """(TP + TN) / all pixels."""
        return ratio(self.tp + self.tn, self.n)


class CurveStack:
    """Per-image curves (e.g. precision at 256 thresholds), kept as one small row per image."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []

    def add(self, curve: np.ndarray) -> None:
        self.rows.append(np.asarray(curve, dtype=np.float64))

    def mean(self, denominator: int | None = None) -> np.ndarray:
        """Mean over images; ``denominator`` replaces the number of rows (sum / denominator)."""
        if not self.rows:
            return np.full(N_THRESHOLDS, np.nan)
        total = np.sum(np.stack(self.rows), axis=0)
        return total / (denominator if denominator is not None else len(self.rows))
