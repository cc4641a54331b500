"""Weighted TV-L1 structure-texture decomposition, solved by Chambolle & Pock's primal-dual algorithm (JMIV 2011).

``u = argmin Σ_i w_i·|∇u|_i + λ·Σ_i |u_i − f_i|`` keeps, in ``u`` (the *structure*), the regions of ``f`` that are
large compared with their contrast-independent scale ``≈ 2·w/λ`` px (a disk of radius r survives TV-L1 if
r > 2w/λ, whatever its contrast) and moves smaller ones — texture — into ``f − u``. A per-pixel weight ``w`` makes the
removal stronger (w > 1) or weaker (w < 1) locally: Liu, Zhou & Liao (TIP 2016) raise it on pattern edges and lower
it on structural ones.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tv_l1"]


def _grad(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences along x (columns) and y (rows), zero across the last column / row (Neumann)."""
    gx = np.zeros_like(u)
    gy = np.zeros_like(u)
    gx[:, :-1] = u[:, 1:] - u[:, :-1]
    gy[:-1] = u[1:] - u[:-1]
    return gx, gy


def _div(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Divergence, the negative adjoint of :func:`_grad`."""
    d = np.zeros_like(px)
    d[:, 0] = px[:, 0]
    d[:, 1:-1] = px[:, 1:-1] - px[:, :-2]
    d[:, -1] = -px[:, -2]
    d[0] += py[0]
    d[1:-1] += py[1:-1] - py[:-2]
    d[-1] -= py[-2]
    return d


def tv_l1(
    image: np.ndarray,
    lam: float = 0.5,
    weight: np.ndarray | None = None,
    iterations: int = 100,
) -> np.ndarray:
    """Structure component of a weighted TV-L1 decomposition.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), float
        Any range; each channel is decomposed on its own (vectorised over channels).
    lam : float > 0
        Fidelity weight λ in 1/px: features smaller than about ``2·w/λ`` px (radius) go to the texture.
    weight : ndarray (H, W), float >= 0, optional
        Per-pixel TV weight w (default 1 everywhere).
    iterations : int
        Primal-dual iterations (step sizes τ = σ = 1/√8, over-relaxation θ = 1). The energy falls fast in the first
        few tens; 100 leaves fine residual oscillations of a few 1e-3 of the contrast.

    Returns
    -------
    ndarray, same shape as ``image``, float32
        The structure ``u``; the texture is ``image − u``.
    """
    f = np.asarray(image, dtype=np.float32)
    if f.ndim not in (2, 3) or f.shape[0] < 2 or f.shape[1] < 2:
        if f.ndim in (2, 3):
            return f.copy()  # a single row or column: nothing to decompose
        raise ValueError(f"tv_l1 needs an H×W or H×W×C array, got shape {f.shape}")
    if lam <= 0:
        raise ValueError(f"lam must be > 0, got {lam}")
    w = np.ones(f.shape[:2], np.float32) if weight is None else np.asarray(weight, dtype=np.float32)
    if w.shape != f.shape[:2] or np.any(w < 0):
        raise ValueError(f"weight must be a non-negative H×W array of shape {f.shape[:2]}, got {w.shape}")
    if f.ndim == 3:
        w = w[:, :, None]
    tau = sigma = np.float32(1.0 / np.sqrt(8.0))
    shrink = np.float32(tau * lam)
    u = f.copy()
    u_bar = f.copy()
    px = np.zeros_like(f)
    py = np.zeros_like(f)
    for _ in range(int(iterations)):
        gx, gy = _grad(u_bar)
        px += sigma * gx
        py += sigma * gy
        # Projection onto |p_i| <= w_i (the dual ball of the weighted isotropic TV).
        scale = np.maximum(1.0, np.sqrt(px * px + py * py) / np.maximum(w, 1e-12))
        px /= scale
        py /= scale
        v = u + tau * _div(px, py) - f
        u_new = f + np.sign(v) * np.maximum(np.abs(v) - shrink, 0.0)  # prox of τλ|u − f|
        u_bar = 2.0 * u_new - u
        u = u_new
    return u.astype(np.float32, copy=False)
