"""Calibration of a network's blur probability: a monotone map from the raw probability to a calibrated one.

A bundled network's :class:`~defocus.pretrained.Pretrained` entry may carry a ``calibration`` literal, fitted on
held-out synthetic scenes by ``benchmarks/calibrate.py`` (docs/calibration.md):

* ``{"temperature": T, "bias": b}`` — Platt-style scaling of the logit: ``p' = sigmoid(logit(p) / T + b)``
  (T > 0; T < 1 sharpens the map, T > 1 softens it);
* ``{"isotonic": [[x0, x1, ...], [y0, y1, ...]]}`` — a non-decreasing piecewise-linear curve through the knots
  ``(x_i, y_i)`` (x increasing in [0, 1], y non-decreasing in [0, 1]), as isotonic regression fits it.

The map is applied to the working-size probability, before the guided-filter upsampling
(:func:`defocus.nets.predict.predict_blur`). Everything here is numpy/scipy: no torch.
"""

from __future__ import annotations

import numpy as np

#: Probabilities are clipped to [EPS, 1 - EPS] before taking logits (float32 sigmoid outputs reach 0 and 1).
EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of probabilities clipped to [EPS, 1 - EPS]; float64."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow; float64."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def check_calibration(calibration: dict | None) -> None:
    """Raise ``ValueError`` unless ``calibration`` is None or one of the two forms of the module docstring."""
    if calibration is None:
        return
    if set(calibration) <= {"temperature", "bias"} and "temperature" in calibration:
        if not float(calibration["temperature"]) > 0 or not np.isfinite(float(calibration.get("bias", 0.0))):
            raise ValueError(f"calibration {calibration!r}: temperature must be > 0 and bias finite")
        return
    if set(calibration) == {"isotonic"}:
        x, y = (np.asarray(v, dtype=np.float64) for v in calibration["isotonic"])
        if x.ndim != 1 or x.shape != y.shape or x.size < 2 or np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0) \
                or x[0] < 0 or x[-1] > 1 or y[0] < 0 or y[-1] > 1:
            raise ValueError("isotonic calibration: x must increase within [0, 1], y must not decrease within [0, 1]")
        return
    raise ValueError(f"calibration {calibration!r}: expected {{'temperature', 'bias'}} or {{'isotonic'}}")


def apply_calibration(prob: np.ndarray, calibration: dict | None) -> np.ndarray:
    """The calibrated probability of ``prob`` (any shape, in [0, 1]); ``prob`` itself as float32 if None.

    Returns float32 of the same shape, in [0, 1], finite, non-decreasing in ``prob``.
    """
    prob = np.asarray(prob, dtype=np.float32)
    if calibration is None:
        return prob
    check_calibration(calibration)
    if "isotonic" in calibration:
        x, y = calibration["isotonic"]
        out = np.interp(prob, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    else:
        t, b = float(calibration["temperature"]), float(calibration.get("bias", 0.0))
        out = sigmoid(logit(prob) / t + b)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------------------------
# Fitting (benchmarks/calibrate.py)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, bias: bool = True) -> dict:
    """Temperature (and bias) minimising the mean binary cross-entropy of ``sigmoid(logits / T + b)``.

    Parameters
    ----------
    logits : ndarray, any shape
        Raw logits (e.g. :func:`logit` of a network's probability).
    labels : ndarray, same size
        Ground truth in {0, 1} (1 = out of focus).
    bias : bool
        Fit b as well (Platt scaling); else b = 0 (temperature scaling).

    Returns
    -------
    dict ``{"temperature": T, "bias": b}`` (T > 0)
    """
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()

    def nll(params):
        a = np.exp(params[0])  # a = 1 / T > 0
        b = params[1] if bias else 0.0
        s = a * z + b
        # mean of log(1 + e^s) - y s, and its gradient in (log a, b)
        loss = np.mean(np.logaddexp(0.0, s) - y * s)
        r = sigmoid(s) - y
        grad = [np.mean(r * z) * a, np.mean(r) if bias else 0.0]
        return loss, np.array(grad)

    res = minimize(nll, np.zeros(2), jac=True, method="L-BFGS-B")
    a = float(np.exp(res.x[0]))
    return {"temperature": round(1.0 / a, 4), "bias": round(float(res.x[1]) if bias else 0.0, 4)}


def fit_temperature_mae(logits: np.ndarray, labels: np.ndarray, *, bias: bool = True) -> dict:
    """Temperature and bias minimising the mean absolute error of ``sigmoid(logits / T + b)`` to the labels.

    Not a probability calibration: the MAE against binary labels is smallest for a hard map (the error rate of a
    threshold), so this fit sharpens a map where that lowers the MAE and trades the ECE for it; it shows what a
    monotone map could buy in MAE (docs/calibration.md). A grid search (the MAE is not smooth) over the threshold
    ``c = -b T`` (the logit mapped to 0.5; -4 … 4 in steps of 0.125) and T (1/16 … 4, 25 steps, geometric), on the
    counts of positive and negative pixels in 4096 bins of the logit over [-16, 16] (exact to the bin width, 0.008).
    ``bias=False`` keeps the threshold at p = 0.5 (c = 0) and fits T alone: the decided map of
    :attr:`defocus.pretrained.Pretrained.decisive`, which keeps the network's own decision at every pixel.

    Returns
    -------
    dict ``{"temperature": T, "bias": b}``
    """
    z = np.clip(np.asarray(logits, dtype=np.float64).ravel(), -16.0, 16.0)
    y = np.asarray(labels, dtype=bool).ravel()
    edges = np.linspace(-16.0, 16.0, 4097)
    centres = 0.5 * (edges[1:] + edges[:-1])
    pos = np.histogram(z[y], edges)[0].astype(np.float64)
    neg = np.histogram(z[~y], edges)[0].astype(np.float64)
    total = max(pos.sum() + neg.sum(), 1.0)
    best = (np.inf, 1.0, 0.0)
    for t in np.geomspace(1 / 16, 4.0, 25):
        for c in np.arange(-4.0, 4.0 + 1e-9, 0.125) if bias else (0.0,):
            s = sigmoid((centres - c) / t)
            mae = float((pos @ (1.0 - s) + neg @ s) / total)
            if mae < best[0]:
                best = (mae, float(t), float(-c / t) + 0.0)  # + 0.0: no "-0.0" in the literal
    return {"temperature": round(best[1], 4), "bias": round(best[2], 4)}


def fit_isotonic(prob: np.ndarray, labels: np.ndarray, *, knots: int = 32) -> dict:
    """Isotonic regression of ``labels`` on ``prob``, kept as at most ``knots`` knots of a piecewise-linear curve.

    The pixels are grouped into ``4 * knots`` quantile bins of ``prob`` (bins are what keep the fit to a few
    numbers); pool-adjacent-violators fits a non-decreasing curve to the bins' mean labels, weighted by their pixel
    counts; the knots are the bins' mean probabilities at ``knots`` evenly spaced bins, with the ends pinned to
    x = 0 and x = 1.

    Returns
    -------
    dict ``{"isotonic": [x, y]}`` (lists of floats rounded to 4 digits)
    """
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    order = np.argsort(p, kind="stable")
    p, y = p[order], y[order]
    edges = np.linspace(0, p.size, 4 * knots + 1).astype(int)
    edges = np.unique(edges)
    counts = np.diff(edges).astype(np.float64)
    keep = counts > 0
    x_bin = np.add.reduceat(p, edges[:-1])[keep] / counts[keep]
    y_bin = np.add.reduceat(y, edges[:-1])[keep] / counts[keep]
    fitted = pool_adjacent_violators(y_bin, counts[keep])
    pick = np.unique(np.linspace(0, x_bin.size - 1, knots).round().astype(int))
    x, yk = x_bin[pick], fitted[pick]
    x, idx = np.unique(np.round(x, 4), return_index=True)
    yk = np.maximum.accumulate(np.round(yk[idx], 4))
    if x[0] > 0:
        x, yk = np.r_[0.0, x], np.r_[yk[0], yk]
    if x[-1] < 1:
        x, yk = np.r_[x, 1.0], np.r_[yk, yk[-1]]
    return {"isotonic": [[float(v) for v in x], [float(v) for v in np.clip(yk, 0, 1)]]}


def pool_adjacent_violators(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted least-squares non-decreasing fit to ``values`` (1-D), by pool-adjacent-violators."""
    means, sizes, counts = [], [], []
    for v, w in zip(np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)):
        means.append(v), sizes.append(w), counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            w2 = sizes[-2] + sizes[-1]
            m = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / w2
            c = counts[-2] + counts[-1]
            del means[-1], sizes[-1], counts[-1]
            means[-1], sizes[-1], counts[-1] = m, w2, c
    return np.repeat(means, counts)


def reliability(prob: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict:
    """Reliability of probabilities: per equal-width bin of ``prob`` its pixel count, mean probability and
    fraction of positives, and the expected calibration error (count-weighted mean |confidence - accuracy|).

    Returns
    -------
    dict with ``counts``, ``confidence``, ``accuracy`` (arrays of length ``bins``, NaN in empty bins) and ``ece``
    """
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    idx = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(idx, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(idx, weights=p, minlength=bins) / counts
        acc = np.bincount(idx, weights=y, minlength=bins) / counts
    filled = counts > 0
    ece = float(np.sum(counts[filled] * np.abs(conf[filled] - acc[filled])) / max(counts.sum(), 1.0))
    return {"counts": counts, "confidence": conf, "accuracy": acc, "ece": ece}
