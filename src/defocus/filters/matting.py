"""Levin, Lischinski & Weiss's closed-form matting Laplacian with 3×3 windows (IEEE TPAMI 30(2), 2008).

For every full 3×3 window ``k`` with colour mean ``μ_k`` and covariance ``Σ_k``, pixels ``i, j`` of the window are
linked with affinity ``(1 + (I_i − μ_k)ᵀ (Σ_k + ε/9·Id)⁻¹ (I_j − μ_k)) / 9``; ``L = D − A`` sums these over the
windows. ``αᵀLα`` is the cost of α departing from a linear function of the colour inside each window, so solving
``(L + λD)α = λD·α̂`` spreads sparse values ``α̂`` along regions of similar colour and stops at colour edges. ``L`` is
symmetric positive semi-definite and ``L·1 = 0`` (a constant map costs nothing).

:class:`MattingLaplacian` holds the window statistics once; it applies ``L`` matrix-free (``O(H·W)`` memory, He, Sun
& Tang's fast matting, CVPR 2010) or assembles it as a sparse matrix for a direct solve.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse as sp

__all__ = ["MattingLaplacian"]

_N = 9.0  # pixels per window


def _box3(a: np.ndarray, border: int) -> np.ndarray:
    """3×3 box sums of each channel of a 2-D or 3-D float64 array (cv2 handles up to 4 channels at once)."""
    if a.ndim == 2:
        return cv2.boxFilter(a, -1, (3, 3), normalize=False, borderType=border)
    parts = []
    for i in range(0, a.shape[2], 4):
        chunk = np.ascontiguousarray(a[:, :, i : i + 4])
        parts.append(cv2.boxFilter(chunk, -1, (3, 3), normalize=False, borderType=border).reshape(chunk.shape))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def _window_sums(a: np.ndarray) -> np.ndarray:
    """Sum over each full 3×3 window, indexed by window centre: (H, W[, C]) → (H-2, W-2[, C])."""
    return _box3(np.ascontiguousarray(a), cv2.BORDER_REFLECT)[1:-1, 1:-1]


def _scatter_windows(a: np.ndarray) -> np.ndarray:
    """Σ over the 3×3 windows containing each pixel of per-window values a (H-2, W-2[, C]) → (H, W[, C])."""
    pad = [(1, 1), (1, 1)] + [(0, 0)] * (a.ndim - 2)
    return _box3(np.pad(a, pad), cv2.BORDER_CONSTANT)


def _matvec3(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-pixel 3×3 matrix times 3-vector: m (..., 3, 3), v (..., 3) → (..., 3)."""
    return np.stack([m[..., i, 0] * v[..., 0] + m[..., i, 1] * v[..., 1] + m[..., i, 2] * v[..., 2] for i in range(3)], -1)


def _dot3(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[..., 0] * v[..., 0] + u[..., 1] * v[..., 1] + u[..., 2] * v[..., 2]


class MattingLaplacian:
    """The matting Laplacian of a colour image (3×3 windows).

    Parameters
    ----------
    image : ndarray (H, W, 3), float
        Colour image in [0, 1], at least 3×3.
    eps : float
        Regulariser ε of the window colour covariance: colour edges with a contrast below about √ε no longer stop
        propagation.
    """

    def __init__(self, image: np.ndarray, eps: float = 1e-7) -> None:
        img = np.ascontiguousarray(image, dtype=np.float64)
        if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 3:
            raise ValueError(f"matting Laplacian needs an H×W×3 image of at least 3×3 px, got {img.shape}")
        h, w, _ = img.shape
        self.image = img
        self.shape = (h, w)
        mean = _window_sums(img) / _N
        outer = (img[:, :, :, None] * img[:, :, None, :]).reshape(h, w, 9)
        cov = (_window_sums(outer) / _N).reshape(h - 2, w - 2, 3, 3)
        cov -= mean[..., :, None] * mean[..., None, :]
        #: Per window (indexed by its centre minus 1): colour mean (H-2, W-2, 3), regularised inverse covariance.
        self.mean = mean
        self.inv = np.linalg.inv(cov + (eps / _N) * np.eye(3))
        #: Number of windows containing each pixel, (H, W).
        self.count = _scatter_windows(np.ones((h - 2, w - 2)))
        self._diag: np.ndarray | None = None

    @property
    def diag(self) -> np.ndarray:
        """diag(L), (H, W) float64 (for a Jacobi preconditioner)."""
        if self._diag is None:
            # diag(L)_i = Σ_k [1 − (1 + (I_i−μ_k)ᵀ Δ_k⁻¹ (I_i−μ_k)) / 9], expanded so that it is a few window sums.
            h, w = self.shape
            img, mean = self.image, self.mean
            inv_mu = _matvec3(self.inv, mean)
            s_inv = _scatter_windows(self.inv.reshape(h - 2, w - 2, 9)).reshape(h, w, 3, 3)
            s_inv_mu = _scatter_windows(inv_mu)
            s_quad = _scatter_windows(_dot3(mean, inv_mu))
            quad = _dot3(img, _matvec3(s_inv, img)) - 2 * _dot3(img, s_inv_mu) + s_quad
            self._diag = self.count * (1 - 1 / _N) - quad / _N
        return self._diag

    def matvec(self, p: np.ndarray) -> np.ndarray:
        """L·p for p of shape (H, W), without forming L; returns (H, W) float64."""
        p = np.ascontiguousarray(p, dtype=np.float64)
        p_mean = _window_sums(p) / _N
        ip_mean = _window_sums(self.image * p[:, :, None]) / _N
        a = _matvec3(self.inv, ip_mean - self.mean * p_mean[..., None])
        b = p_mean - _dot3(a, self.mean)
        sa = _scatter_windows(a)
        sb = _scatter_windows(b)
        return self.count * p - (_dot3(sa, self.image) + sb)

    def matrix(self, skip: np.ndarray | None = None) -> sp.csr_matrix:
        """L as a sparse N×N matrix (N = H·W, row-major pixel order).

        Parameters
        ----------
        skip : ndarray (H, W) of bool, optional
            Windows centred on these pixels are left out (e.g. windows wholly inside the known region of a trimap,
            where the data term decides α anyway).
        """
        h, w = self.shape
        n = h * w
        use = np.ones((h - 2, w - 2), bool) if skip is None else ~np.asarray(skip, bool)[1:-1, 1:-1]
        wy, wx = np.nonzero(use)  # window (wy, wx) is centred on pixel (wy + 1, wx + 1)
        if len(wy) == 0:
            return sp.csr_matrix((n, n))
        dy, dx = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
        py, px = wy[:, None] + dy.ravel(), wx[:, None] + dx.ravel()  # (K, 9) pixels of each window
        idx = py * w + px
        centred = self.image[py, px] - self.mean[wy, wx][:, None, :]  # (K, 9, 3)
        vals = (1.0 + np.einsum("kic,kcd,kjd->kij", centred, self.inv[wy, wx], centred)) / _N  # (K, 9, 9)
        rows = np.repeat(idx, 9, axis=1).ravel()
        cols = np.tile(idx, (1, 9)).ravel()
        affinity = sp.csr_matrix((vals.ravel(), (rows, cols)), shape=(n, n))
        degree = np.asarray(affinity.sum(axis=1)).ravel()
        return (sp.diags(degree) - affinity).tocsr()
