"""Per-photo min-max normalisation, and the sharpness → blur map conversion the classic detectors share.

Most classic sharpness measures (LBP, FISH, S3, HiFST, …) have no absolute scale, so their authors show the map
min-max normalised over the photo; the blur map is then one minus it. Methods differ only in how small a range they
still stretch (``eps``) and what a flat map becomes (``fallback``), so both are parameters here.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np

#: What a map whose range is at most ``eps`` becomes: a fill value, or a function of the map.
Fallback = Union[float, Callable[[np.ndarray], np.ndarray]]


def minmax(a: np.ndarray, eps: float = 0.0, fallback: Fallback = 0.0) -> np.ndarray:
    """``(a − min a) / (max a − min a)``, in [0, 1], computed in the dtype of ``a`` (float64 for integers).

    Parameters
    ----------
    a : ndarray
    eps : float
        Ranges ``max − min <= eps`` are treated as a constant map.
    fallback : float or callable
        For a constant map: the value of every pixel, or a function returning the map to use instead (for example
        ``lambda a: a`` to keep it as it is).
    """
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi - lo <= eps:
        return fallback(a) if callable(fallback) else np.full(a.shape, fallback, dtype=a.dtype)
    return (a - lo) / (hi - lo)


def sharpness_to_blur(sharpness: np.ndarray, eps: float = 0.0, fallback: Fallback = 0.0) -> np.ndarray:
    """Blur map ``1 − minmax(sharpness)``: float32 (H, W) in [0, 1], 1 = the least sharp pixel of the photo.

    ``eps`` and ``fallback`` are those of :func:`minmax` (a constant sharpness map gives ``1 − fallback``).
    """
    return np.clip(1.0 - minmax(sharpness, eps, fallback), 0.0, 1.0).astype(np.float32)
