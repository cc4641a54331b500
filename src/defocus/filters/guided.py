"""The guided filter (He, Sun & Tang, ECCV 2010) and guided upsampling of a low-resolution map.

The guided filter smooths ``src`` with a local linear model of the guide, so an edge of the guide survives in the
output where a box mean of the same radius would smear it. Upsampling a network's working-size map through it moves
the map's borders onto the photo's edges.
"""

from __future__ import annotations

import cv2
import numpy as np

from .color import gray as to_gray


def box_mean(a: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size``×``size`` window (reflected borders), float32 in the dtype of ``a``."""
    return cv2.boxFilter(a, -1, (size, size), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` steered by a grey ``guide``.

    Parameters
    ----------
    guide, src : ndarray of shape (H, W), float32
    radius : int
        Window radius in pixels.
    eps : float
        Regularisation in squared guide units: edges of the guide weaker than about sqrt(eps) are smoothed over.

    Returns
    -------
    ndarray of shape (H, W), float32
    """
    size = 2 * radius + 1
    mean_i = box_mean(guide, size)
    mean_p = box_mean(src, size)
    cov_ip = box_mean(guide * src, size) - mean_i * mean_p
    var_i = box_mean(guide * guide, size) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, size) * guide + box_mean(b, size)


def guided_upsample(prob: np.ndarray, image: np.ndarray, radius: int, eps: float, stripe: int = 1024) -> np.ndarray:
    """Upsample a low-resolution map to an image's size, then snap it to the image's edges with a guided filter.

    Parameters
    ----------
    prob : ndarray (h, w) float32 in [0, 1]
        Low-resolution map.
    image : ndarray (H, W, 3) float32 RGB in [0, 1]
        Full-resolution guide (its grey version is used).
    radius : int
        Guided-filter window radius in full-resolution px; 0 gives plain bilinear upsampling.
    eps : float
        Guided-filter regularisation (squared grey levels).
    stripe : int
        Rows filtered at a time; each stripe is padded by 2·radius + 1 rows of context, so the result equals a
        whole-image filter while memory stays at a few full-width planes of ``stripe`` rows.

    Returns
    -------
    ndarray (H, W) float32 in [0, 1]
    """
    h, w = image.shape[:2]
    gray = to_gray(image)
    up = cv2.resize(prob.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    if radius <= 0:
        return np.clip(up, 0.0, 1.0)
    out = np.empty((h, w), np.float32)
    margin = 2 * radius + 1  # the filter box-averages twice, so a pixel depends on rows within 2·radius
    for y0 in range(0, h, stripe):
        y1 = min(h, y0 + stripe)
        a, b = max(0, y0 - margin), min(h, y1 + margin)
        res = guided_filter(gray[a:b], up[a:b], radius, eps)
        out[y0:y1] = res[y0 - a : y1 - a]
    return np.clip(out, 0.0, 1.0, out=out)
