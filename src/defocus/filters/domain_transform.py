"""Domain-transform recursive filter (Gastal & Oliveira, SIGGRAPH 2011) with an optional edge penalty.

The domain transform maps each image row (then column) to a 1-D line on which the distance between neighbouring
pixels ``x-1`` and ``x`` is

    dH/dx = 1 + Ψ(x) + (σs / σr) · Σ_c |I_c(x) - I_c(x-1)|

(``I`` is the guide, ``Ψ`` an optional per-pixel penalty: Karaali, Harte & Jung, TIP 2022, Eq. 2–3). Filtering
along that line with a fixed 1-D kernel is edge-preserving in the image. The recursive-filter (RF) variant used
here runs a first-order causal and anti-causal recursion ``J[x] = (1 - a^d) I[x] + a^d J[x-1]`` with
``a = exp(-√2 / σH)``, alternating horizontal and vertical passes; the per-iteration σH shrinks so that the
iterations together have standard deviation σs (Gastal & Oliveira, Eq. 14).

The recursion runs along one axis; with numba it is a compiled loop (rows are independent and contiguous), without
numba it is a NumPy loop over the recursion axis that updates all rows at once. Memory is O(H·W·C) float32.
"""

from __future__ import annotations

import math

import numpy as np

try:  # numba makes the recursion ~10x faster; the NumPy fallback gives identical results.
    import numba as _numba
except ImportError:  # pragma: no cover - numba is optional
    _numba = None

__all__ = ["recursive_filter", "interpolate", "propagate", "domain_derivatives", "iteration_sigmas"]


def iteration_sigmas(sigma_s: float, iterations: int) -> list[float]:
    """σH of each RF iteration: σs·√3·2^(N-i) / √(4^N - 1), i = 1 … N (their variances sum to σs²)."""
    n = int(iterations)
    return [sigma_s * math.sqrt(3.0) * 2.0 ** (n - i) / math.sqrt(4.0**n - 1.0) for i in range(1, n + 1)]


def _as_hwc(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 2:
        return a[:, :, None]
    if a.ndim == 3:
        return a
    raise ValueError(f"{name} must be H×W or H×W×C, got shape {a.shape}")


def domain_derivatives(
    guide: np.ndarray, sigma_s: float, sigma_r: float, penalty: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distances between neighbouring pixels in the transformed domain.

    Parameters
    ----------
    guide : ndarray (H, W) or (H, W, C), float
        Guide image (any range; σr is in its units, [0, 1] for photos).
    sigma_s, sigma_r : float
        Spatial (px) and range standard deviations.
    penalty : ndarray (H, W), float >= 0, optional
        Ψ of each pixel. A link between two pixels gets the mean of their Ψ (the trapezoid rule for the integral of
        Ψ over the link), so crossing a one-pixel-wide marked line costs Ψ in total.

    Returns
    -------
    dx, dy : ndarray (H, W), float32
        ``dx[y, x]`` is the distance from ``(y, x-1)`` to ``(y, x)`` (column 0 unused, set to 1); ``dy[y, x]`` from
        ``(y-1, x)`` to ``(y, x)`` (row 0 unused).
    """
    g = _as_hwc(guide, "guide")
    h, w, _ = g.shape
    ratio = np.float32(sigma_s / sigma_r)
    dx = np.ones((h, w), np.float32)
    dy = np.ones((h, w), np.float32)
    # Accumulate channel by channel to keep the temporaries at H×W.
    for c in range(g.shape[2]):
        ch = g[:, :, c]
        dx[:, 1:] += ratio * np.abs(ch[:, 1:] - ch[:, :-1])
        dy[1:, :] += ratio * np.abs(ch[1:, :] - ch[:-1, :])
    if penalty is not None:
        psi = np.asarray(penalty, dtype=np.float32)
        if psi.shape != (h, w):
            raise ValueError(f"penalty must be H×W = {(h, w)}, got shape {psi.shape}")
        if np.any(psi < 0):
            raise ValueError("penalty must be >= 0")
        dx[:, 1:] += 0.5 * (psi[:, 1:] + psi[:, :-1])
        dy[1:, :] += 0.5 * (psi[1:, :] + psi[:-1, :])
    return dx, dy


# --- the 1-D recursion ------------------------------------------------------------------------------------------
# Both kernels filter img (H, W, C) in place with feedback weights v (H, W): v[y, x] links x-1 -> x (rows) or
# y-1 -> y (columns). Causal pass then anti-causal pass.


def _rows_numpy(img: np.ndarray, v: np.ndarray) -> None:
    # Work on the transposed copy so that each step of the recursion touches a contiguous block.
    t = np.ascontiguousarray(img.transpose(1, 0, 2))
    _cols_numpy(t, np.ascontiguousarray(v.T))
    img[...] = t.transpose(1, 0, 2)


def _cols_numpy(img: np.ndarray, v: np.ndarray) -> None:
    n = img.shape[0]
    v3 = v[:, :, None]
    for y in range(1, n):
        img[y] += v3[y] * (img[y - 1] - img[y])
    for y in range(n - 2, -1, -1):
        img[y] += v3[y + 1] * (img[y + 1] - img[y])


if _numba is not None:

    @_numba.njit(cache=True, nogil=True, fastmath=False)
    def _rows_numba(img, v):  # pragma: no cover - compiled
        h, w, c = img.shape
        for y in range(h):
            for x in range(1, w):
                a = v[y, x]
                for k in range(c):
                    img[y, x, k] += a * (img[y, x - 1, k] - img[y, x, k])
            for x in range(w - 2, -1, -1):
                a = v[y, x + 1]
                for k in range(c):
                    img[y, x, k] += a * (img[y, x + 1, k] - img[y, x, k])

    @_numba.njit(cache=True, nogil=True, fastmath=False)
    def _cols_numba(img, v):  # pragma: no cover - compiled
        h, w, c = img.shape
        for y in range(1, h):
            for x in range(w):
                a = v[y, x]
                for k in range(c):
                    img[y, x, k] += a * (img[y - 1, x, k] - img[y, x, k])
        for y in range(h - 2, -1, -1):
            for x in range(w):
                a = v[y + 1, x]
                for k in range(c):
                    img[y, x, k] += a * (img[y + 1, x, k] - img[y, x, k])


def _filter_rows(img: np.ndarray, v: np.ndarray, use_numba: bool) -> None:
    (_rows_numba if use_numba else _rows_numpy)(img, v)


def _filter_cols(img: np.ndarray, v: np.ndarray, use_numba: bool) -> None:
    (_cols_numba if use_numba else _cols_numpy)(img, v)


def _feedback(d: np.ndarray, sigma_h: float, out: np.ndarray) -> np.ndarray:
    """a^d with a = exp(-√2/σH), written into ``out`` (float32)."""
    np.multiply(d, np.float32(-math.sqrt(2.0) / sigma_h), out=out)
    return np.exp(out, out=out)


def recursive_filter(
    src: np.ndarray,
    guide: np.ndarray,
    sigma_s: float,
    sigma_r: float,
    iterations: int = 3,
    penalty: np.ndarray | None = None,
    *,
    use_numba: bool | None = None,
) -> np.ndarray:
    """Edge-aware smoothing of ``src`` along the edges of ``guide`` (Gastal & Oliveira 2011, RF).

    Parameters
    ----------
    src : ndarray (H, W) or (H, W, C), float
        Signal to filter (any range).
    guide : ndarray (H, W) or (H, W, C'), float
        Guide image, typically RGB in [0, 1]; may be ``src`` itself.
    sigma_s : float
        Spatial standard deviation of the filter in px (> 0).
    sigma_r : float
        Range standard deviation in guide units (> 0); smaller keeps more edges.
    iterations : int
        Number of horizontal+vertical pass pairs (3 is usually enough).
    penalty : ndarray (H, W), float >= 0, optional
        Ψ added to the domain-transform derivative at marked pixels (Karaali et al. 2022, Eq. 2–3); large values
        stop propagation across them.
    use_numba : bool, optional
        Force the compiled (True) or NumPy (False) recursion; default: numba when importable.

    Returns
    -------
    ndarray, float32, same shape as ``src``.
    """
    if sigma_s <= 0 or sigma_r <= 0:
        raise ValueError(f"sigma_s and sigma_r must be > 0, got {sigma_s}, {sigma_r}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    src_arr = np.asarray(src)
    img = np.array(_as_hwc(src_arr, "src"), dtype=np.float32, order="C", copy=True)
    g = _as_hwc(guide, "guide")
    if g.shape[:2] != img.shape[:2]:
        raise ValueError(f"guide {g.shape[:2]} and src {img.shape[:2]} must have the same height and width")
    if use_numba is None:
        use_numba = _numba is not None
    elif use_numba and _numba is None:
        raise ValueError("use_numba=True but numba is not installed")
    dx, dy = domain_derivatives(g, sigma_s, sigma_r, penalty)
    v = np.empty_like(dx)
    for sigma_h in iteration_sigmas(sigma_s, iterations):
        _filter_rows(img, _feedback(dx, sigma_h, v), use_numba)
        _filter_cols(img, _feedback(dy, sigma_h, v), use_numba)
    return img[:, :, 0] if src_arr.ndim == 2 else img


def interpolate(
    sparse: np.ndarray,
    known: np.ndarray,
    guide: np.ndarray,
    sigma_s: float,
    sigma_r: float,
    iterations: int = 5,
    penalty: np.ndarray | None = None,
    *,
    use_numba: bool | None = None,
) -> np.ndarray:
    """Dense map from sparse values by normalised convolution with the RF filter: RF(sparse·known) / RF(known).

    Parameters
    ----------
    sparse : ndarray (H, W), float
        Values; only read where ``known > 0``.
    known : ndarray (H, W), bool or float >= 0
        Confidence of each value (mask or weights).
    guide : ndarray (H, W) or (H, W, C), float
        Guide image.
    sigma_s, sigma_r, iterations, penalty, use_numba
        As in :func:`recursive_filter`.

    Returns
    -------
    ndarray (H, W), float32
        Interpolated values. Where no known value reaches (the normaliser underflows), the mean of the known values
        is returned; if nothing is known at all, zeros.
    """
    s = np.asarray(sparse, dtype=np.float32)
    k = np.asarray(known, dtype=np.float32)
    if s.ndim != 2 or s.shape != k.shape:
        raise ValueError(f"sparse and known must be H×W of the same shape, got {s.shape} and {k.shape}")
    if np.any(k < 0):
        raise ValueError("known must be >= 0")
    total = float(k.sum(dtype=np.float64))
    if total <= 0:
        return np.zeros_like(s)
    stack = np.stack([np.where(k > 0, s * k, 0.0).astype(np.float32), k], axis=-1)
    out = recursive_filter(stack, guide, sigma_s, sigma_r, iterations, penalty, use_numba=use_numba)
    num, den = out[:, :, 0], out[:, :, 1]
    fallback = np.float32(float((np.where(k > 0, s, 0.0) * k).sum(dtype=np.float64)) / total)
    tiny = np.float32(1e-12)
    dense = np.where(den > tiny, num / np.maximum(den, tiny), fallback)
    return dense.astype(np.float32, copy=False)


def propagate(
    image: np.ndarray,
    sparse: np.ndarray,
    known: np.ndarray,
    sigma_r: float = 3.75,
    iterations: int = 5,
    penalty: np.ndarray | None = None,
    *,
    sigma_s: float | None = None,
    guide_sigma_s: float = 7.0,
    guide_sigma_r: float = 0.5,
) -> np.ndarray:
    """Dense map from sparse values at edges, spread along the photo (Karaali & Jung, TIP 2018; Karaali et al. 2022).

    The guide is the photo simplified by the RF filter itself (σs = 7, σr = 0.5), so that fine texture does not stop
    the propagation; :func:`interpolate` then spreads the values with σs = min(H, W)/8, σr = 3.75 and 5 iterations.

    Parameters
    ----------
    image : ndarray (H, W, 3), float32 RGB in [0, 1]
    sparse : ndarray (H, W), float
        Values, read where ``known``.
    known : ndarray (H, W), bool or float >= 0
    sigma_r, iterations : float, int
        Range σ and iterations of the interpolation (also the iterations of the guide's simplification).
    penalty : ndarray (H, W), float >= 0, optional
        Ψ of :func:`recursive_filter`: pixels marked with a large Ψ (Karaali et al.'s depth edges) stop the
        propagation.
    sigma_s : float, optional
        Spatial σ of the interpolation in px (default min(H, W)/8; at least 1).
    guide_sigma_s, guide_sigma_r : float
        The guide's simplification.

    Returns
    -------
    ndarray (H, W), float32
    """
    h, w = np.shape(sparse)
    guide = recursive_filter(image, image, guide_sigma_s, guide_sigma_r, iterations)
    s_s = min(h, w) / 8.0 if sigma_s is None else sigma_s
    return interpolate(sparse, known, guide, max(s_s, 1.0), sigma_r, iterations, penalty=penalty)
