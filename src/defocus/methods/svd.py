"""Su, Lu & Tan 2011: singular-value blur map.

A local image block B is the sum of rank-one "eigen-images" σ_i u_i v_iᵀ. Blur removes fine detail, so the energy of
a blurred block concentrates in its first few singular values; Su et al. measure the blur degree of a pixel by

    β = (σ_1 + … + σ_k) / (σ_1 + … + σ_n)

over the block around it (a larger β means blurrier). We follow the public Python port (fled/blur_detection, see
``docs/methods/svd.md``): grey image, a 20×20 block (rows and columns y−10 … y+9 around pixel y), k = 3, the β map
min-max normalised over the photo, and reflected borders.

Implementation. β is evaluated at every pixel (stride 1) by a compiled kernel: along each row the 20×20 Gram matrix
BᵀB of the sliding block is updated by one column per step (its columns stored in a circular buffer, which is only a
simultaneous row/column permutation and leaves the eigenvalues unchanged), and its eigenvalues λ_i = σ_i² are found
by Householder tridiagonalisation followed by the implicit QL algorithm. Rows run in parallel.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit, prange

from ..registry import Method

BLOCK = 20  # block side in px (the port's win_size 10 → 20×20 blocks)
TOP_K = 3  # number of leading singular values in the numerator


@njit(cache=True, fastmath=True, error_model="numpy")
def _tridiagonalize(a, d, e, v, p):  # pragma: no cover - compiled
    """Householder reduction of the symmetric matrix ``a`` (destroyed) to tridiagonal (diagonal d, off-diagonal e).

    ``e[i]`` couples ``d[i]`` and ``d[i+1]``; ``e[n-1] = 0``. ``v`` and ``p`` are work vectors of length n.
    """
    n = a.shape[0]
    for k in range(n - 2):
        norm2 = 0.0
        for i in range(k + 1, n):
            norm2 += a[i, k] * a[i, k]
        x0 = a[k + 1, k]
        norm = math.sqrt(norm2)
        d[k] = a[k, k]
        if norm2 - x0 * x0 <= 1e-300:  # column already reduced
            e[k] = x0
            continue
        alpha = -norm if x0 >= 0.0 else norm
        # Reflector H = I − β v vᵀ with v = x − α e1 maps the column below the diagonal to α e1.
        for i in range(k + 1, n):
            v[i] = a[i, k]
        v[k + 1] -= alpha
        vv = norm2 - 2.0 * alpha * x0 + alpha * alpha
        beta = 2.0 / vv
        for i in range(k + 1, n):
            s = 0.0
            for j in range(k + 1, n):
                s += a[i, j] * v[j]
            p[i] = beta * s
        kk = 0.0
        for i in range(k + 1, n):
            kk += v[i] * p[i]
        kk *= 0.5 * beta
        for i in range(k + 1, n):
            p[i] -= kk * v[i]
        for i in range(k + 1, n):  # full square, row by row: contiguous and vectorisable
            vi = v[i]
            pi = p[i]
            for j in range(k + 1, n):
                a[i, j] -= vi * p[j] + pi * v[j]
        e[k] = alpha
    d[n - 2] = a[n - 2, n - 2]
    d[n - 1] = a[n - 1, n - 1]
    e[n - 2] = a[n - 1, n - 2]
    e[n - 1] = 0.0


@njit(cache=True, fastmath=True, error_model="numpy")
def _tridiagonal_eigenvalues(d, e):  # pragma: no cover - compiled
    """Eigenvalues of the symmetric tridiagonal (d, e) by implicit QL with Wilkinson shifts, into ``d``."""
    n = d.shape[0]
    for l in range(n):
        for _ in range(60):
            m = l
            while m < n - 1:
                dd = abs(d[m]) + abs(d[m + 1])
                if abs(e[m]) <= 2.2e-16 * dd:
                    break
                m += 1
            if m == l:
                break
            g = (d[l + 1] - d[l]) / (2.0 * e[l])
            r = math.sqrt(g * g + 1.0)
            g = d[m] - d[l] + e[l] / (g + (r if g >= 0.0 else -r))
            s = 1.0
            c = 1.0
            p = 0.0
            underflow = False
            i = m - 1
            while i >= l:
                f = s * e[i]
                b = c * e[i]
                r = math.sqrt(f * f + g * g)
                e[i + 1] = r
                if r == 0.0:
                    d[i + 1] -= p
                    e[m] = 0.0
                    underflow = True
                    break
                inv = 1.0 / r
                s = f * inv
                c = g * inv
                g = d[i + 1] - p
                r = (d[i] - g) * s + 2.0 * c * b
                p = s * r
                d[i + 1] = g + p
                g = c * r - b
                i -= 1
            if underflow:
                continue
            d[l] -= p
            e[l] = g
            e[m] = 0.0


@njit(cache=True, fastmath=True, error_model="numpy")
def _ratio(gram, work, d, e, v, p, k):  # pragma: no cover - compiled
    """(σ_1 + … + σ_k) / Σσ from the Gram matrix (σ_i² = its eigenvalues); 1 for an all-zero block."""
    n = gram.shape[0]
    for i in range(n):
        for j in range(n):
            work[i, j] = gram[i, j]
    _tridiagonalize(work, d, e, v, p)
    _tridiagonal_eigenvalues(d, e)
    total = 0.0
    for i in range(n):
        d[i] = math.sqrt(d[i]) if d[i] > 0.0 else 0.0
        total += d[i]
    if total <= 1e-12:
        return 1.0
    top = 0.0
    for _ in range(k):  # k largest by repeated selection (k is tiny)
        best = 0
        for i in range(1, n):
            if d[i] > d[best]:
                best = i
        top += d[best]
        d[best] = -1.0
    return top / total


@njit(cache=True, parallel=True, fastmath=True, error_model="numpy")
def _svd_ratio_map(pad, h, w, b, k):  # pragma: no cover - compiled
    """β at every pixel; ``pad`` is the grey image padded so that pixel (y, x) owns block pad[y:y+b, x:x+b]."""
    out = np.empty((h, w), np.float32)
    for y in prange(h):
        cols = np.ascontiguousarray(pad[y : y + b, :].T)  # (W + b − 1, b): each padded column contiguous
        gram = np.empty((b, b))
        work = np.empty((b, b))
        d = np.empty(b)
        e = np.empty(b)
        v = np.empty(b)
        p = np.empty(b)
        # Gram matrix of the first block; slot of padded column j is j mod b.
        for i in range(b):
            for j in range(i, b):
                s = 0.0
                for r in range(b):
                    s += cols[i, r] * cols[j, r]
                gram[i, j] = s
                gram[j, i] = s
        out[y, 0] = _ratio(gram, work, d, e, v, p, k)
        for x in range(1, w):
            new = x + b - 1  # padded column entering the block; it replaces column x − 1 in slot new mod b
            slot = new % b
            for j in range(x, x + b):
                s = 0.0
                for r in range(b):
                    s += cols[new, r] * cols[j, r]
                gram[slot, j % b] = s
                gram[j % b, slot] = s
            out[y, x] = _ratio(gram, work, d, e, v, p, k)
    return out


def singular_value_ratio(gray: np.ndarray, block: int = BLOCK, k: int = TOP_K) -> np.ndarray:
    """Su et al.'s β = (σ_1+…+σ_k)/Σσ of the ``block``×``block`` patch around every pixel.

    Parameters
    ----------
    gray : ndarray (H, W), float
        Grey image (any scale: β is scale invariant).
    block : int
        Block side in px; pixel (y, x) uses rows y − block//2 … y + (block − 1)//2 (reflected at the borders).
    k : int
        Number of leading singular values in the numerator.

    Returns
    -------
    ndarray (H, W), float32 in [k/block, 1]
        1 for a constant (all-zero) block.
    """
    if not 1 <= k <= block:
        raise ValueError(f"k must be in 1..{block}, got {k}")
    h, w = gray.shape
    top, left = block // 2, block // 2
    bottom, right = block - 1 - top, block - 1 - left
    # Mirror without repeating the edge pixel (numpy reflects repeatedly when the pad exceeds the image).
    pad = np.pad(np.asarray(gray, np.float64), ((top, bottom), (left, right)), mode="reflect")
    return _svd_ratio_map(np.ascontiguousarray(pad), h, w, block, k)


class SVD(Method):
    """Su et al. 2011 singular-value blur degree β of the 20×20 block around every pixel (stride 1).

    Parameters
    ----------
    block : int
        Block side in px (port: 20).
    k : int
        Leading singular values in β's numerator (port: 3).
    normalize : bool
        Min-max normalise β over the photo, as the port does (default). With ``False`` the map is the absolute
        (β − k/block) / (1 − k/block), which maps β's range [k/block, 1] onto [0, 1].
    """

    task = "dbd"
    summary = "singular-value ratio of the local 20x20 block (Su et al. 2011), every pixel"
    paper = "B. Su, S. Lu, C. L. Tan, Blurred image region detection and classification, ACM Multimedia 2011"

    def __init__(self, device: str = "cpu", block: int = BLOCK, k: int = TOP_K, normalize: bool = True, **kw):
        super().__init__(device=device, **kw)
        self.block = int(block)
        self.k = int(k)
        if self.block < 2 or not 1 <= self.k <= self.block:
            raise ValueError(f"need block >= 2 and 1 <= k <= block, got block={block}, k={k}")
        self.normalize = bool(normalize)

    def predict(self, image: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(image, dtype=np.float32)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        beta = singular_value_ratio(gray, self.block, self.k)
        floor = self.k / self.block
        if self.normalize:
            lo, hi = float(beta.min()), float(beta.max())
            blur = (beta - lo) / (hi - lo) if hi - lo > 1e-6 else (beta - floor) / (1.0 - floor)
        else:
            blur = (beta - floor) / (1.0 - floor)
        return np.clip(blur, 0.0, 1.0).astype(np.float32)
