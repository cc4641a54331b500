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


LANES = 4  # pixels solved together: one AVX2 register of float64 per matrix entry, four independent QL chains


@njit(cache=True, fastmath=True, error_model="numpy")
def _tridiagonalize_lanes(a, d, e, v, p, scratch):  # pragma: no cover - compiled
    """Householder reduction of LANES symmetric matrices at once to tridiagonal form.

    ``a`` (n, n, LANES) is destroyed; the lane axis is innermost so every update is one SIMD operation over the
    lanes, with no remainder loop. Output ``d`` (LANES, n) diagonal and ``e`` (LANES, n) off-diagonal, ``e[q, i]``
    coupling ``d[q, i]`` and ``d[q, i + 1]`` and ``e[q, n − 1] = 0``. ``v``, ``p`` are (n, LANES) work arrays and
    ``scratch`` (3, LANES) (passed in: allocating per column cost ~10 % of the whole kernel).
    """
    n = a.shape[0]
    norm2, beta, kk = scratch[0], scratch[1], scratch[2]
    for k in range(n - 2):
        for q in range(LANES):
            norm2[q] = 0.0
            kk[q] = 0.0
        for i in range(k + 1, n):
            for q in range(LANES):
                norm2[q] += a[i, k, q] * a[i, k, q]
        for q in range(LANES):
            x0 = a[k + 1, k, q]
            d[q, k] = a[k, k, q]
            norm = math.sqrt(norm2[q])
            alpha = -norm if x0 >= 0.0 else norm
            vv = norm2[q] - 2.0 * alpha * x0 + alpha * alpha
            # A column that is already reduced gets the identity (β = 0) instead of a branch, keeping lanes in step.
            reduced = norm2[q] - x0 * x0 <= 1e-300
            beta[q] = 0.0 if reduced else 2.0 / vv
            e[q, k] = x0 if reduced else alpha
            for i in range(k + 1, n):
                v[i, q] = a[i, k, q]
            v[k + 1, q] -= 0.0 if reduced else alpha
        # Reflector H = I − β v vᵀ; A ← H A H = A − v wᵀ − w vᵀ with w = βAv − (β² vᵀAv / 2) v. Only the lower
        # triangle of A is read and written (A stays symmetric), which halves the update.
        for i in range(k + 1, n):
            for q in range(LANES):
                p[i, q] = a[i, i, q] * v[i, q]
        for i in range(k + 1, n):
            for j in range(k + 1, i):
                for q in range(LANES):
                    p[i, q] += a[i, j, q] * v[j, q]
                    p[j, q] += a[i, j, q] * v[i, q]
        for i in range(k + 1, n):
            for q in range(LANES):
                p[i, q] *= beta[q]
                kk[q] += v[i, q] * p[i, q]
        for q in range(LANES):
            kk[q] *= 0.5 * beta[q]
        for i in range(k + 1, n):
            for q in range(LANES):
                p[i, q] -= kk[q] * v[i, q]
        for i in range(k + 1, n):
            for j in range(k + 1, i + 1):
                for q in range(LANES):
                    a[i, j, q] -= v[i, q] * p[j, q] + p[i, q] * v[j, q]
    for q in range(LANES):
        d[q, n - 2] = a[n - 2, n - 2, q]
        d[q, n - 1] = a[n - 1, n - 1, q]
        e[q, n - 2] = a[n - 1, n - 2, q]
        e[q, n - 1] = 0.0


@njit(cache=True, fastmath=True, error_model="numpy")
def _deflate(d, e, q, l, n):  # pragma: no cover - compiled
    """First m ≥ l where lane q's tridiagonal splits (negligible e[q, m]), or n − 1."""
    m = l
    while m < n - 1:
        if abs(e[q, m]) <= 2.2e-16 * (abs(d[q, m]) + abs(d[q, m + 1])):
            break
        m += 1
    return m


@njit(cache=True, fastmath=True, error_model="numpy")
def _tridiagonal_eigenvalues_lanes(d, e, iscratch, fscratch):  # pragma: no cover - compiled
    """Eigenvalues of LANES symmetric tridiagonals (d, e) by implicit QL with Wilkinson shifts, into ``d``.

    Each lane runs the textbook QL iteration (its own deflation, shifts and iteration count); the sweeps of the
    lanes are interleaved rotation by rotation so that their four independent sqrt/divide chains overlap in the
    CPU instead of one chain waiting on its own latency. ``iscratch`` (5, LANES) int64 and ``fscratch`` (4, LANES)
    are work arrays.
    """
    n = d.shape[1]
    l, iters, m, length, done = iscratch[0], iscratch[1], iscratch[2], iscratch[3], iscratch[4]
    s, c, p, g = fscratch[0], fscratch[1], fscratch[2], fscratch[3]
    for q in range(LANES):
        l[q] = 0
        iters[q] = 0
        m[q] = 0
        length[q] = 0
        done[q] = 0
    while True:
        longest = 0
        for q in range(LANES):
            length[q] = 0
            while l[q] < n:
                mq = _deflate(d, e, q, l[q], n)
                if mq == l[q] or iters[q] >= 60:  # eigenvalue l converged (or gave up as the scalar code did)
                    l[q] += 1
                    iters[q] = 0
                    continue
                m[q] = mq
                break
            if l[q] >= n:
                continue
            lq = l[q]
            mq = m[q]
            iters[q] += 1
            gg = (d[q, lq + 1] - d[q, lq]) / (2.0 * e[q, lq])
            r = math.sqrt(gg * gg + 1.0)
            g[q] = d[q, mq] - d[q, lq] + e[q, lq] / (gg + (r if gg >= 0.0 else -r))
            s[q] = 1.0
            c[q] = 1.0
            p[q] = 0.0
            length[q] = mq - lq
            done[q] = 0
            longest = max(longest, length[q])
        if longest == 0:
            return
        for t in range(longest):
            for q in range(LANES):
                if t >= length[q]:
                    continue
                i = m[q] - 1 - t
                f = s[q] * e[q, i]
                b = c[q] * e[q, i]
                r = math.sqrt(f * f + g[q] * g[q])
                e[q, i + 1] = r
                if r == 0.0:  # underflow: this lane's sweep ends early, without the final update
                    d[q, i + 1] -= p[q]
                    e[q, m[q]] = 0.0
                    length[q] = 0
                    done[q] = 1
                    continue
                inv = 1.0 / r
                s[q] = f * inv
                c[q] = g[q] * inv
                gq = d[q, i + 1] - p[q]
                r = (d[q, i] - gq) * s[q] + 2.0 * c[q] * b
                p[q] = s[q] * r
                d[q, i + 1] = gq + p[q]
                g[q] = c[q] * r - b
        for q in range(LANES):
            if l[q] >= n or done[q] != 0:
                continue
            d[q, l[q]] -= p[q]
            e[q, l[q]] = g[q]
            e[q, m[q]] = 0.0


@njit(cache=True, fastmath=True, error_model="numpy")
def _ratio_from_eigenvalues(lam, k):  # pragma: no cover - compiled
    """(σ_1 + … + σ_k) / Σσ with σ_i = √max(λ_i, 0); 1 for an all-zero block. ``lam`` (n,) is overwritten."""
    n = lam.shape[0]
    total = 0.0
    for i in range(n):
        lam[i] = math.sqrt(lam[i]) if lam[i] > 0.0 else 0.0
        total += lam[i]
    if total <= 1e-12:
        return 1.0
    top = 0.0
    for _ in range(k):  # k largest by repeated selection (k is tiny)
        best = 0
        for i in range(1, n):
            if lam[i] > lam[best]:
                best = i
        top += lam[best]
        lam[best] = -1.0
    return top / total


@njit(cache=True, fastmath=True, error_model="numpy")
def _solve_lanes(work, d, e, v, p, scratch, iscratch, out_row, x0, count, k):  # pragma: no cover - compiled
    """β for the ``count`` ≤ LANES Gram matrices in ``work`` (n, n, LANES), written to out_row[x0 : x0 + count]."""
    for q in range(count, LANES):  # idle lanes get a copy of lane 0 so that they stay finite
        for i in range(work.shape[0]):
            for j in range(work.shape[1]):
                work[i, j, q] = work[i, j, 0]
    _tridiagonalize_lanes(work, d, e, v, p, scratch)
    _tridiagonal_eigenvalues_lanes(d, e, iscratch, scratch[3:])
    for q in range(count):
        out_row[x0 + q] = _ratio_from_eigenvalues(d[q], k)


@njit(cache=True, parallel=True, fastmath=True, error_model="numpy")
def _svd_ratio_map(pad, h, w, b, k):  # pragma: no cover - compiled
    """β at every pixel; ``pad`` is the grey image padded so that pixel (y, x) owns block pad[y:y+b, x:x+b]."""
    out = np.empty((h, w), np.float32)
    for y in prange(h):
        cols = np.ascontiguousarray(pad[y : y + b, :].T)  # (W + b − 1, b): each padded column contiguous
        gram = np.empty((b, b))
        work = np.empty((b, b, LANES))
        d = np.empty((LANES, b))
        e = np.empty((LANES, b))
        v = np.empty((b, LANES))
        p = np.empty((b, LANES))
        scratch = np.empty((7, LANES))  # rows 0–2: Householder, 3–6: QL
        iscratch = np.empty((5, LANES), np.int64)
        row = np.empty(w)
        lane = 0
        for x in range(w):
            if x == 0:  # Gram matrix of the first block; slot of padded column j is j mod b
                for i in range(b):
                    for j in range(i, b):
                        s = 0.0
                        for r in range(b):
                            s += cols[i, r] * cols[j, r]
                        gram[i, j] = s
                        gram[j, i] = s
            else:
                new = x + b - 1  # padded column entering the block; it replaces column x − 1 in slot new mod b
                slot = new % b
                for j in range(x, x + b):
                    s = 0.0
                    for r in range(b):
                        s += cols[new, r] * cols[j, r]
                    gram[slot, j % b] = s
                    gram[j % b, slot] = s
            for i in range(b):
                for j in range(b):
                    work[i, j, lane] = gram[i, j]
            lane += 1
            if lane == LANES or x == w - 1:
                _solve_lanes(work, d, e, v, p, scratch, iscratch, row, x + 1 - lane, lane, k)
                lane = 0
        for x in range(w):
            out[y, x] = row[x]
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
