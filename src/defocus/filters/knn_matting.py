"""KNN matting (Chen, Li & Tang, CVPR 2012) as an interpolator of sparse values over a photo.

Each pixel is a feature vector ``X = (cos h, sin h, s, v, x·p, y·p)`` (HSV colour, hue on the circle; position in
units of the image's longer side, times a position weight ``p``). Every pixel is linked to its K nearest neighbours
in feature space with affinity ``k(i, j) = 1 − ‖X_i − X_j‖ / C`` (C the largest such distance, so 0 ≤ k ≤ 1); the
affinity matrix is symmetrised, ``L = D − A``, and the dense map solves ``(L + λ·M)·x = λ·M·x̂`` with ``M`` the
diagonal indicator of known pixels (the paper's closed form; λ = 100 in the paper). Unlike the 3×3-window matting
Laplacian, the neighbours are *non-local*: pixels of similar colour anywhere nearby share a value, which carries
values across thin structures the local Laplacian would stop at.

The solve is by Jacobi-preconditioned conjugate gradients, started from the normalised-convolution (domain-transform)
interpolation of the same values. For speed and bounded memory the problem is solved on a working grid of at most
``max_pixels`` pixels and brought back to full resolution by guided upsampling (:func:`defocus.filters.guided_upsample`).
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from .domain_transform import interpolate
from .guided import guided_upsample
from .poisson import sparse_conjugate_gradients

__all__ = ["knn_features", "knn_laplacian", "knn_interpolate", "shrink_sparse", "upsample_values"]


def knn_features(image: np.ndarray, position_weight: float = 1.0) -> np.ndarray:
    """KNN-matting feature vectors of an RGB image: (H·W, 6) float64, row-major pixel order.

    Colour terms lie in [−1, 1] (hue on the unit circle) and [0, 1]; positions are x and y divided by the longer
    image side, times ``position_weight``.
    """
    img = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    h, w = img.shape[:2]
    hsv = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2HSV)  # float input: H in degrees, S and V in [0, 1]
    hue = np.deg2rad(hsv[..., 0].astype(np.float64))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) * (position_weight / max(h, w))
    feats = np.stack([np.cos(hue), np.sin(hue), hsv[..., 1], hsv[..., 2], xx, yy], axis=-1)
    return feats.reshape(h * w, 6)


def knn_laplacian(features: np.ndarray, k: int = 10) -> sp.csr_matrix:
    """The KNN-matting Laplacian ``D − A`` of N feature vectors (N × N, symmetric, ``L·1 = 0``).

    Parameters
    ----------
    features : ndarray (N, F), float
    k : int
        Neighbours per point (the point itself not counted); clipped to N − 1.
    """
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    k = min(int(k), n - 1)
    if k < 1:
        return sp.csr_matrix((n, n))
    dist, idx = cKDTree(x).query(x, k=k + 1)
    dist, idx = dist[:, 1:], idx[:, 1:]  # drop the point itself
    scale = max(float(dist.max()), 1e-12)
    rows = np.repeat(np.arange(n), k)
    affinity = sp.csr_matrix(((1.0 - dist / scale).ravel(), (rows, idx.ravel())), shape=(n, n))
    affinity = 0.5 * (affinity + affinity.T)
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    return (sp.diags(degree) - affinity).tocsr()


def shrink_sparse(
    image: np.ndarray, sparse: np.ndarray, weights: np.ndarray, max_pixels: int, min_side: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A photo and its sparse values on a working grid of at most ``max_pixels`` pixels.

    The photo is area-resized; the values are area-averaged with their weights, and a working pixel's weight is the
    sum of the weights it covers (clipped to 1), so that one edge pixel among many still counts as known.

    Returns
    -------
    small : ndarray (h, w, C), float32
    values, weights : ndarray (h, w), float64
    factor : float
        Working-grid size over the photo's (1 when no resizing was needed).
    """
    h, w = image.shape[:2]
    factor = min(1.0, float(np.sqrt(max_pixels / float(h * w))))
    sh, sw = max(min_side, int(round(h * factor))), max(min_side, int(round(w * factor)))
    wts = np.asarray(weights, dtype=np.float64)
    vals = np.where(wts > 0, np.asarray(sparse, dtype=np.float64), 0.0)
    if (sh, sw) == (h, w):
        return np.asarray(image, dtype=np.float32), vals, wts, 1.0
    small = cv2.resize(np.asarray(image, dtype=np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    num = cv2.resize(vals * wts, (sw, sh), interpolation=cv2.INTER_AREA)
    den = cv2.resize(wts, (sw, sh), interpolation=cv2.INTER_AREA)
    values = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    return small, values, np.clip(den * (h * w) / float(sh * sw), 0.0, 1.0), factor


def upsample_values(dense: np.ndarray, image: np.ndarray, lo: float, hi: float, radius: int = 4,
                    eps: float = 1e-4) -> np.ndarray:
    """Working-grid values in [lo, hi] guided-upsampled to the photo's size (float32 (H, W), within [lo, hi])."""
    span = max(hi - lo, 1e-12)
    # guided_upsample works on maps in [0, 1]: scale the values into it and back.
    up = guided_upsample((np.asarray(dense, np.float32) - lo) / span, image, radius, eps)
    return (lo + span * up).astype(np.float32)


def knn_interpolate(
    image: np.ndarray,
    sparse: np.ndarray,
    known: np.ndarray,
    k: int = 10,
    lam: float = 100.0,
    position_weight: float = 1.0,
    max_pixels: int = 60_000,
    max_iter: int = 300,
    tol: float = 1e-5,
    upsample_radius: int = 4,
    upsample_eps: float = 1e-4,
) -> np.ndarray:
    """Dense map from sparse values by KNN matting.

    Parameters
    ----------
    image : ndarray (H, W, 3), float32 RGB in [0, 1]
    sparse : ndarray (H, W), float
        Values, read where ``known``.
    known : ndarray (H, W), bool or float in [0, 1]
        Known pixels (a weight per pixel is used as its share of λ).
    k, lam, position_weight
        Neighbours, data weight λ, weight of position against colour in the features.
    max_pixels : int
        Largest working grid; a larger photo is solved at a reduced size (values and weights area-averaged) and
        guided-upsampled (``upsample_radius`` px, ``upsample_eps``) back.
    max_iter, tol : int, float
        Conjugate-gradient iterations and relative residual at which they stop.

    Returns
    -------
    ndarray (H, W), float32
        Interpolated values, within the range of the known values. Zeros if nothing is known.
    """
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape[:2]
    wts = np.clip(np.asarray(known, dtype=np.float64), 0.0, 1.0)
    vals = np.where(wts > 0, np.asarray(sparse, dtype=np.float64), 0.0)
    if wts.shape != (h, w) or vals.shape != (h, w):
        raise ValueError(f"sparse and known must be H×W = {(h, w)}, got {vals.shape} and {wts.shape}")
    if wts.sum() <= 0:
        return np.zeros((h, w), np.float32)
    lo, hi = float(vals[wts > 0].min()), float(vals[wts > 0].max())
    small, vals_s, wts_s, _ = shrink_sparse(img, vals, wts, max_pixels)
    sh, sw = wts_s.shape
    lap = knn_laplacian(knn_features(small, position_weight), k)
    d = lam * wts_s.ravel()
    # A tiny pull towards the mean keeps components of the KNN graph without known pixels well defined.
    mean = float((vals_s * wts_s).sum() / wts_s.sum())
    reg = 1e-6 * lam
    a = (lap + sp.diags(d + reg)).tocsr()
    b = d * vals_s.ravel() + reg * mean
    x0 = interpolate(vals_s, wts_s, small, max(min(sh, sw) / 8.0, 1.0), 3.75).astype(np.float64).ravel()
    x, _, _ = sparse_conjugate_gradients(a, b, x0, max_iter, tol)
    dense = np.clip(x.reshape(sh, sw), lo, hi).astype(np.float32)
    if (sh, sw) == (h, w):
        return dense
    return upsample_values(dense, img, lo, hi, upsample_radius, upsample_eps)
