"""Noise level of a photo: Immerkær's fast estimate of the standard deviation of additive white noise.

J. Immerkær, "Fast noise variance estimation", Computer Vision and Image Understanding 64(2), 300–302, 1996: the
image is filtered by the difference of two 3×3 Laplacians, a mask that cancels every linear (and most smooth)
structure, and σ = √(π/2) · mean |response| / 6. Edges and fine texture leak through, so the estimate is an upper
bound on photos with much fine detail.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["noise_std"]

_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_std(gray: np.ndarray) -> float:
    """Standard deviation of the white noise in a grey image, in its units (≥ 0).

    Parameters
    ----------
    gray : ndarray (H, W), float
        Images smaller than 3×3 give 0.
    """
    g = np.asarray(gray, np.float32)
    if g.ndim != 2:
        raise ValueError(f"noise_std needs a 2-D grey image, got shape {g.shape}")
    if min(g.shape) < 3:
        return 0.0
    response = cv2.filter2D(g, cv2.CV_32F, _MASK)[1:-1, 1:-1]  # interior only: no border assumptions
    return float(math.sqrt(math.pi / 2.0) * np.abs(response, dtype=np.float64).mean() / 6.0)
