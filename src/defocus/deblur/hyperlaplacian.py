"""Non-blind deconvolution with a hyper-Laplacian gradient prior, by half-quadratic splitting in the Fourier domain.

Written from the description in Krishnan & Fergus, "Fast Image Deconvolution using Hyper-Laplacian Priors",
NIPS 2009. For an observation ``y`` blurred by a known PSF ``k`` the sharp image ``x`` minimises

    λ/2 · ‖k ⊛ x − y‖² + Σ_pixels (|∂x x|^α + |∂y x|^α),        0 < α < 1 (α = 2/3 or 1/2 in the paper)

Auxiliary gradients ``w`` split the problem into two easy ones, solved alternately while a coupling weight β grows
(β/2 · ‖∂x − w‖² ties them; β → ∞ gives back the original energy):

* **w-step** — independent per pixel: ``w = argmin |w|^α + β/2 (w − v)²`` with ``v`` the current gradient. It is
  the same scalar function of ``v`` for every pixel, so it is tabulated once per (α, β) (:func:`shrinkage_table`)
  and read by interpolation — the paper's lookup-table variant.
* **x-step** — quadratic, and diagonal in the Fourier domain under circular boundary conditions:
  ``X = (λ K̄ Y + β Σ D̄_j W_j) / (λ |K|² + β Σ |D_j|²)``; one pair of real FFTs per gradient.

The image is taken to be periodic; :func:`defocus.deblur.levels` pads and tapers tiles so that it nearly is.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.fft

#: The paper's continuation: β from 1 to 256, multiplied by 2√2 each outer iteration, one inner iteration each.
BETA_START = 1.0
BETA_MAX = 256.0
BETA_RATE = 2.0 * math.sqrt(2.0)

#: Gradient magnitudes covered by the shrinkage table; beyond it the shrinkage offset is held constant (images are
#: in [0, 1], so finite differences rarely leave ±1 even with overshoot).
_TABLE_RANGE = 4.0
_TABLE_SIZE = 1 << 14


def _shrink_exact(v: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """argmin_w |w|^α + β/2 (w − v)² for v ≥ 0 (float64), by Newton's method on the stationarity condition.

    For w > 0 the derivative is g(w) = α w^(α−1) + β (w − v), convex in w; the local minimum of the energy is its
    larger root, reached monotonically by Newton's method started at w = v (where g > 0). Where no root exists (or
    the iterate leaves (0, v]) the minimiser is 0. The root still has to beat w = 0 on energy.
    """
    v = np.asarray(v, dtype=np.float64)
    w = v.copy()
    alive = v > 0
    for _ in range(40):
        safe = np.where(alive, w, 1.0)
        g = alpha * safe ** (alpha - 1.0) + beta * (safe - v)
        dg = alpha * (alpha - 1.0) * safe ** (alpha - 2.0) + beta
        step = np.where(dg > 0, g / np.where(dg > 0, dg, 1.0), np.inf)
        w = safe - step
        alive &= np.isfinite(w) & (w > 0)
        w = np.where(alive, w, 0.0)
    energy_root = np.abs(w) ** alpha + 0.5 * beta * (w - v) ** 2
    return np.where(alive & (energy_root < 0.5 * beta * v**2), w, 0.0)


@lru_cache(maxsize=64)
def shrinkage_table(alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The w-step as a table: grid ``v`` in [0, 4] (16 384 points) and the minimiser ``w(v)`` (both float32,
    read-only). The function is odd, so negative ``v`` use ``−w(−v)``."""
    grid = np.linspace(0.0, _TABLE_RANGE, _TABLE_SIZE)
    table = _shrink_exact(grid, alpha, beta)
    grid, table = grid.astype(np.float32), table.astype(np.float32)
    grid.setflags(write=False)
    table.setflags(write=False)
    return grid, table


def shrink(v: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Per-pixel solution of ``argmin_w |w|^α + β/2 (w − v)²`` for an array ``v`` (float32, same shape)."""
    grid, table = shrinkage_table(float(alpha), float(beta))
    magnitude = np.abs(v)
    w = np.interp(magnitude, grid, table).astype(np.float32)
    beyond = magnitude > grid[-1]
    if beyond.any():
        w[beyond] = magnitude[beyond] - (grid[-1] - table[-1])
    return np.copysign(w, v)


def _transfer(psf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """rfft2 of ``psf`` zero-padded to ``shape`` with its centre moved to the origin (no phase shift)."""
    kh, kw = psf.shape
    padded = np.zeros(shape, np.float32)
    padded[:kh, :kw] = psf
    padded = np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return scipy.fft.rfft2(padded)


def _gradients(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Circular forward differences along x (columns) and y (rows)."""
    return np.roll(x, -1, axis=1) - x, np.roll(x, -1, axis=0) - x


@lru_cache(maxsize=8)
def _difference_transfers(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    dx = np.zeros((1, 3), np.float32)
    dx[0, 1], dx[0, 2] = -1.0, 1.0  # centred at index 1: x[j+1] − x[j], as _gradients computes
    return _transfer(dx[:, ::-1].copy(), shape), _transfer(dx.T[::-1].copy(), shape)


def deconvolve(
    observed: np.ndarray,
    psf: np.ndarray,
    *,
    weight: float = 300.0,
    alpha: float = 2.0 / 3.0,
    beta_start: float = BETA_START,
    beta_max: float = BETA_MAX,
    beta_rate: float = BETA_RATE,
    inner: int = 1,
    reinject: bool = True,
    workers: int = 2,
) -> np.ndarray:
    """Deconvolve a periodic image by a known PSF under a hyper-Laplacian gradient prior.

    Parameters
    ----------
    observed : ndarray (H, W) or (H, W, C), float
        The blurred image, values roughly in [0, 1]; treated as periodic (pad and taper it first).
    psf : ndarray (h, w), float
        The blur kernel, odd-sized, summing to 1, h ≤ H and w ≤ W.
    weight : float
        λ, the data term's weight (> 0). Larger trusts the observation more: sharper, noisier. With values in
        [0, 1], ~300 suits 8-bit JPEG photos in linear light (docs/deblur.md); the paper used 2000.
    alpha : float
        Exponent of the prior, in (0, 1]; natural images' gradients follow α ≈ 0.5–0.8.
    beta_start, beta_max, beta_rate : float
        Continuation of the coupling weight β (the paper's 1 → 256, × 2√2).
    inner : int
        Alternations per β value (the paper: 1).
    reinject : bool
        Add the residual ``y − k ⊛ x`` back to the result (not in the paper). The residual is what the blur model
        cannot explain — sensor noise, JPEG artefacts, texture the prior flattened — which a photo's grain is made of;
        keeping it makes the result look like a photo, not a painting, and scores higher against a real sharp photo.
    workers : int
        Threads for scipy.fft.

    Returns
    -------
    ndarray, float32, shape of ``observed``.
    """
    if not (weight > 0 and 0 < alpha <= 1 and beta_start > 0 and beta_rate > 1 and inner >= 1):
        raise ValueError("deconvolve: need weight > 0, 0 < alpha <= 1, beta_start > 0, beta_rate > 1, inner >= 1")
    y = np.asarray(observed, dtype=np.float32)
    squeeze = y.ndim == 2
    if squeeze:
        y = y[..., None]
    shape = y.shape[:2]
    if psf.shape[0] > shape[0] or psf.shape[1] > shape[1]:
        raise ValueError(f"deconvolve: PSF {psf.shape} larger than the image {shape}")
    k = _transfer(np.asarray(psf, np.float32), shape)[..., None]
    dx, dy = (d[..., None] for d in _difference_transfers(shape))
    fft = dict(axes=(0, 1), workers=workers)
    data = (weight * np.conj(k) * scipy.fft.rfft2(y, **fft)).astype(np.complex64)
    data_gain = (weight * np.abs(k) ** 2).astype(np.float32)
    prior_gain = (np.abs(dx) ** 2 + np.abs(dy) ** 2).astype(np.float32)
    conj_dx, conj_dy = np.conj(dx).astype(np.complex64), np.conj(dy).astype(np.complex64)
    x, spectrum = y.copy(), None
    beta = beta_start
    while beta <= beta_max * (1 + 1e-9):
        for _ in range(inner):
            gx, gy = _gradients(x)
            wx, wy = shrink(gx, alpha, beta), shrink(gy, alpha, beta)
            numerator = data + beta * (conj_dx * scipy.fft.rfft2(wx, **fft) + conj_dy * scipy.fft.rfft2(wy, **fft))
            spectrum = numerator / (data_gain + beta * prior_gain)
            x = scipy.fft.irfft2(spectrum, s=shape, **fft).astype(np.float32)
        beta *= beta_rate
    if reinject and spectrum is not None:
        # x + (y − k ⊛ x) = y + (δ − k) ⊛ x, from the last spectrum: no extra forward transform.
        x = (y + scipy.fft.irfft2(spectrum * (1 - k), s=shape, **fft)).astype(np.float32)
    return x[..., 0] if squeeze else x
