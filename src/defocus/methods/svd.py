"""Su, Lu & Tan 2011: singular-value blur map.

A local image block B is the sum of rank-one "eigen-images" σ_i u_i v_iᵀ. Blur removes fine detail, so the energy of
a blurred block concentrates in its first few singular values; Su et al. measure the blur degree of a pixel by

    β = (σ_1 + … + σ_k) / (σ_1 + … + σ_n)

over the block around it (a larger β means blurrier). We follow the public Python port (fled/blur_detection, see
``docs/methods/svd.md``): grey image, a 20×20 block (rows and columns y−10 … y+9 around pixel y), k = 3, the β map
min-max normalised over the photo, and reflected borders.

Implementation. β is evaluated at every pixel (stride 1) by a compiled kernel that solves the symmetric eigenproblem
of each block's Gram matrix BᵀB (eigenvalues λ_i = σ_i²) for ``CHUNK`` neighbouring pixels of a row at once. Every
per-matrix quantity is stored with the pixel ("lane") axis innermost and every loop over lanes has a run-time trip
count, so LLVM vectorises it (a compile-time count of 4 was fully unrolled instead and stayed scalar). The steps:

1. Gram matrices from column dot products: entry (i, j) of the block at column x is the dot product of padded
   columns x + i and x + j over the block's rows, so one table of dot products per image row fills every block.
2. Householder reduction to tridiagonal form, all lanes in step.
3. Eigenvalues of the tridiagonals by the root-free QL iteration of Pal, Walker and Kahan (no square root in the
   inner loop; the one Wilkinson shift per sweep needs two), all lanes stepping through the same rows, each lane
   working only on its own unreduced block.

No fast-math: the kernel relies on IEEE behaviour at zeros and tiny values (rank-deficient blocks are common), and
with fast-math one compilation of it returned NaN for such blocks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..filters import color
from ..filters.normalize import minmax
from ..registry import Method

BLOCK = 20  # block side in px (the port's win_size 10 → 20×20 blocks)
TOP_K = 3  # number of leading singular values in the numerator

CHUNK = 64  # pixels of a row solved together; 32 was slower, 128 no faster (one thread, 640×427)
_EPS = 2.0**-52  # float64 unit roundoff
_MAX_SWEEPS = 40  # QL sweeps allowed per eigenvalue (2–4 are typical)


@njit(cache=True, error_model="numpy")
def _column_dots(rows, lags):  # pragma: no cover - compiled
    """dots[δ, c] = Σ_r rows[r, c]·rows[r, c + δ] for δ < ``lags``: the dot products of columns δ apart (0 past the
    right edge)."""
    width = rows.shape[1]
    dots = np.zeros((lags, width))
    for lag in range(lags):
        for r in range(rows.shape[0]):
            for c in range(width - lag):
                dots[lag, c] += rows[r, c] * rows[r, c + lag]
    return dots


@njit(cache=True, error_model="numpy")
def _fill_gram(dots, a, x0, lanes):  # pragma: no cover - compiled
    """Lower triangles of the Gram matrices of the blocks at columns x0 … x0 + lanes − 1 into ``a`` (n, n, CHUNK).

    ``dots[δ, c]`` is the dot product of padded columns c and c + δ over the block's rows.
    """
    n = a.shape[0]
    for i in range(n):
        for j in range(i + 1):
            for q in range(lanes):
                a[i, j, q] = dots[i - j, x0 + j + q]


@njit(cache=True, error_model="numpy")
def _tridiagonalize(a, d, e, v, p, work, lanes):  # pragma: no cover - compiled
    """Householder reduction of ``lanes`` symmetric matrices (lower triangles of ``a`` (n, n, CHUNK)) to tridiagonal
    form: diagonal ``d`` (n, CHUNK), off-diagonal ``e`` (n, CHUNK) with ``e[i]`` coupling ``d[i]`` and ``d[i + 1]``.

    ``a`` is destroyed; ``v``, ``p`` (n, CHUNK) and ``work`` (≥ 3, CHUNK) are scratch.
    """
    n = a.shape[0]
    tail2, beta, kk = work[0], work[1], work[2]
    for k in range(n - 2):
        for q in range(lanes):
            tail2[q] = 0.0
            kk[q] = 0.0
        for i in range(k + 2, n):
            for q in range(lanes):
                tail2[q] += a[i, k, q] * a[i, k, q]
        for q in range(lanes):
            x0 = a[k + 1, k, q]
            d[k, q] = a[k, k, q]
            norm2 = x0 * x0 + tail2[q]
            norm = math.sqrt(norm2)
            alpha = -norm if x0 >= 0.0 else norm
            # A column already reduced (nothing below the subdiagonal) gets the identity (β = 0) instead of a branch,
            # keeping lanes in step. The test is on the tail itself: norm² − x0² cancels to 0 for a tail below
            # ε·x0 and dropped it (an eigenvalue error of 1e-10·‖G‖ on a block with a near-black part).
            reduced = tail2[q] <= 1e-300
            beta[q] = 0.0 if reduced else 2.0 / (norm2 - 2.0 * alpha * x0 + alpha * alpha)
            e[k, q] = x0 if reduced else alpha
            v[k + 1, q] = x0 - (0.0 if reduced else alpha)
        for i in range(k + 2, n):
            for q in range(lanes):
                v[i, q] = a[i, k, q]
        # Reflector H = I − β v vᵀ; A ← H A H = A − v wᵀ − w vᵀ with w = βAv − (β² vᵀAv / 2) v. Only the lower
        # triangle of A is read and written (A stays symmetric), which halves the update.
        for i in range(k + 1, n):
            for q in range(lanes):
                p[i, q] = a[i, i, q] * v[i, q]
        for i in range(k + 1, n):
            for j in range(k + 1, i):
                for q in range(lanes):
                    aij = a[i, j, q]
                    vi = v[i, q]
                    vj = v[j, q]
                    p[i, q] += aij * vj
                    p[j, q] += aij * vi
        for i in range(k + 1, n):
            for q in range(lanes):
                pi = p[i, q] * beta[q]
                p[i, q] = pi
                kk[q] += v[i, q] * pi
        for q in range(lanes):
            kk[q] *= 0.5 * beta[q]
        for i in range(k + 1, n):
            for q in range(lanes):
                p[i, q] -= kk[q] * v[i, q]
        for i in range(k + 1, n):
            for j in range(k + 1, i + 1):
                for q in range(lanes):
                    vi = v[i, q]
                    vj = v[j, q]
                    pi = p[i, q]
                    pj = p[j, q]
                    a[i, j, q] -= vi * pj + pi * vj
    for q in range(lanes):
        d[n - 2, q] = a[n - 2, n - 2, q]
        d[n - 1, q] = a[n - 1, n - 1, q]
        e[n - 2, q] = a[n - 1, n - 2, q]
        e[n - 1, q] = 0.0


@njit(cache=True, error_model="numpy")
def _tridiagonal_eigenvalues(d, e, work, copies, lanes):  # pragma: no cover - compiled
    """Eigenvalues of ``lanes`` symmetric positive semi-definite tridiagonals (d, e) into ``d``; ``e`` is destroyed.

    Root-free QL (Pal–Walker–Kahan; Parlett, "The Symmetric Eigenvalue Problem", ch. 8; LAPACK's dsterf uses it) on
    the squared off-diagonal, with Wilkinson shifts. Each lane runs the textbook iteration on its own unreduced block
    l … m (m: its first negligible off-diagonal at or below l), but all lanes step through the same rows together:
    the sweep runs from the largest m of the lanes up to l, and at the rows i ≥ m of a lane the lane reads a zero
    coupling and writes nothing back. A zero coupling restarts the recurrence exactly (c² = 1, s² = 0, γ = d[i] − σ),
    so the lane's own sweep begins at its m with the textbook start, without a mask on the recurrence; a lane that
    has converged at l (m = l) is left unchanged. (Sweeping such rows with another lane's shift instead — a
    similarity in exact arithmetic — lost up to 3e-4·‖T‖ in float64 on rank-deficient blocks.)
    e[l] counts as converged when e[l] ≤ ε·trace(T): the eigenvalues are only accurate to ε‖T‖ after the Householder
    reduction anyway, and trace(T) ≥ ‖T‖ for a positive semi-definite T. ``work`` (n + 7, CHUNK) and ``copies``
    (2, n, CHUNK) are scratch.
    """
    n = d.shape[0]
    e2, d_before, e2_before = work[0:n], copies[0], copies[1]
    tol2, split, shift, gamma = work[n], work[n + 1], work[n + 2], work[n + 3]
    pp, cc, ss = work[n + 4], work[n + 5], work[n + 6]
    for q in range(lanes):
        tol2[q] = 0.0
    for i in range(n):
        for q in range(lanes):
            tol2[q] += abs(d[i, q])
            e2[i, q] = e[i, q] * e[i, q]
    for q in range(lanes):
        tol2[q] = (_EPS * tol2[q]) * (_EPS * tol2[q])
        e2[n - 1, q] = 0.0
    for l in range(n - 1):
        for _ in range(_MAX_SWEEPS):
            # Branch-free scans and updates: a store that keeps the old value in some lanes compiles to a masked
            # store.
            for q in range(lanes):
                split[q] = n - 1.0
            for m in range(l, n - 1):
                for q in range(lanes):
                    split[q] = min(split[q], m if e2[m, q] <= tol2[q] else n - 1.0)
            top = l
            for q in range(lanes):
                top = max(top, int(split[q]))
            if top == l:  # every lane has converged at l
                break
            for q in range(lanes):
                live = split[q] > l
                el = math.sqrt(e2[l, q] if live else 1.0)
                t = (d[l + 1, q] - d[l, q]) / (2.0 * el)
                r = math.sqrt(t * t + 1.0)
                shift[q] = d[l, q] - el / (t + (r if t >= 0.0 else -r)) if live else d[l, q]
                g = d[top, q] - shift[q]
                gamma[q] = g
                pp[q] = g * g
                cc[q] = 1.0
                ss[q] = 0.0
            # The rows a lane keeps are read back from a copy, for the same reason.
            for i in range(l, top + 1):
                for q in range(lanes):
                    d_before[i, q] = d[i, q]
                    e2_before[i, q] = e2[i, q]
            for i in range(top - 1, l - 1, -1):
                for q in range(lanes):
                    # Every operand is read into a local before the first store, so that LLVM need not assume
                    # that the stores alias later reads (which cost it the vectorisation of this loop).
                    below = i >= split[q]
                    bb = 0.0 if below else e2_before[i, q]
                    p = pp[q]
                    c_old = cc[q]
                    g_old = gamma[q]
                    s_old = ss[q]
                    alpha = d_before[i, q]
                    e_next = e2_before[i + 1, q]
                    d_next = d_before[i + 1, q]
                    rr = p + bb
                    # rr = 0 (no bulge, no coupling): the identity rotation c² = 1, s² = 0. No division can see a
                    # zero.
                    coupled = rr != 0.0
                    inv = 1.0 / (rr if coupled else 1.0)
                    c = p * inv if coupled else 1.0
                    s = bb * inv
                    g = c * (alpha - shift[q]) - s * g_old
                    if i < top - 1:
                        e2[i + 1, q] = e_next if below else s_old * rr
                    d[i + 1, q] = d_next if below else g_old + (alpha - g)
                    pp[q] = (g * g) / (c if c != 0.0 else 1.0) if c != 0.0 else c_old * bb
                    gamma[q] = g
                    cc[q] = c
                    ss[q] = s
            for q in range(lanes):
                live = split[q] > l
                e2[l, q] = ss[q] * pp[q] if live else e2_before[l, q]
                d[l, q] = shift[q] + gamma[q] if live else d_before[l, q]


@njit(cache=True, error_model="numpy")
def _ratios_from_eigenvalues(lam, top, total, out, lanes, ks, floor):  # pragma: no cover - compiled
    """out[j, q] = (σ_1 + … + σ_ks[j]) / Σσ with σ_i = √max(λ_i, 0) from ``lam`` (n, CHUNK), counting only the σ_i
    above ``floor`` (≥ 0); 1 for a block without any.

    ``ks`` is ascending. The ks[-1] largest σ are kept sorted in ``top`` (ks[-1], CHUNK) by a compare-exchange chain,
    branch-free across lanes.
    """
    n = lam.shape[0]
    k = ks[-1]
    for j in range(k):
        for q in range(lanes):
            top[j, q] = 0.0
    for q in range(lanes):
        total[q] = 0.0
    for i in range(n):
        for q in range(lanes):
            x = math.sqrt(max(lam[i, q], 0.0))
            x = x if x > floor else 0.0
            total[q] += x
            for j in range(k):
                hi = max(top[j, q], x)
                x = min(top[j, q], x)
                top[j, q] = hi
    for q in range(lanes):
        num = 0.0
        j = 0
        for band in range(ks.shape[0]):
            while j < ks[band]:
                num += top[j, q]
                j += 1
            out[band, q] = num / total[q] if total[q] > 1e-12 else 1.0


@njit(cache=True, parallel=True, error_model="numpy")
def _svd_ratio_map(pad, h, w, b, ks, floor):  # pragma: no cover - compiled
    """β for every k of ``ks`` at every pixel, (len(ks), H, W); ``pad`` is the grey image padded so that pixel
    (y, x) owns block pad[y:y+b, x:x+b]."""
    out = np.empty((ks.shape[0], h, w), np.float32)
    for y in prange(h):
        dots = _column_dots(pad[y : y + b], b)
        a = np.empty((b, b, CHUNK))
        d = np.empty((b, CHUNK))
        e = np.empty((b, CHUNK))
        v = np.empty((b, CHUNK))
        p = np.empty((b, CHUNK))
        work = np.empty((b + 7, CHUNK))
        copies = np.empty((2, b, CHUNK))
        top = np.empty((ks[-1], CHUNK))
        beta = np.empty((ks.shape[0], CHUNK))
        for x0 in range(0, w, CHUNK):
            lanes = min(CHUNK, w - x0)
            _fill_gram(dots, a, x0, lanes)
            _tridiagonalize(a, d, e, v, p, work, lanes)
            _tridiagonal_eigenvalues(d, e, work, copies, lanes)
            _ratios_from_eigenvalues(d, top, work[0], beta, lanes, ks, floor)
            for j in range(ks.shape[0]):
                for q in range(lanes):
                    out[j, y, x0 + q] = beta[j, q]
    return out


def singular_value_ratios(gray: np.ndarray, block: int = BLOCK, ks=(TOP_K,), floor: float = 0.0) -> np.ndarray:
    """Su et al.'s β_k = (σ_1+…+σ_k)/Σσ of the ``block``×``block`` patch around every pixel, for several k at once.

    One eigen-decomposition per pixel serves every k, so the cumulative shares of several sub-bands of the singular
    values cost little more than one.

    Parameters
    ----------
    gray : ndarray (H, W), float
        Grey image (any scale: β is scale invariant).
    block : int
        Block side in px; pixel (y, x) uses rows y − block//2 … y + (block − 1)//2 (reflected at the borders).
    ks : sequence of int
        Numbers of leading singular values in the numerators, each in 1..block.
    floor : float
        Singular values at or below ``floor`` (in the units of ``gray``) are left out of numerator and denominator,
        e.g. those a noise level explains. 0 keeps them all.

    Returns
    -------
    ndarray (len(ks), H, W), float32; plane j in [ks[j]/block, 1]
        1 for a constant (all-zero) block or one with no singular value above ``floor``.
    """
    ks = np.asarray(ks, np.int64).ravel()
    if len(ks) == 0 or ks.min() < 1 or ks.max() > block:
        raise ValueError(f"every k must be in 1..{block}, got {ks.tolist()}")
    order = np.argsort(ks, kind="stable")
    h, w = gray.shape
    top, left = block // 2, block // 2
    bottom, right = block - 1 - top, block - 1 - left
    # Mirror without repeating the edge pixel (numpy reflects repeatedly when the pad exceeds the image).
    pad = np.pad(np.asarray(gray, np.float64), ((top, bottom), (left, right)), mode="reflect")
    scale = max(float(pad.max()), -float(pad.min()))
    floor = float(floor)
    if scale > 0.0 and np.isfinite(scale):  # β is scale invariant; unit scale keeps the squared off-diagonals in range
        pad /= scale
        floor /= scale
    sorted_out = _svd_ratio_map(np.ascontiguousarray(pad), h, w, block, np.ascontiguousarray(ks[order]), floor)
    out = np.empty_like(sorted_out)
    out[order] = sorted_out
    return out


def singular_value_ratio(gray: np.ndarray, block: int = BLOCK, k: int = TOP_K) -> np.ndarray:
    """Su et al.'s β = (σ_1+…+σ_k)/Σσ of the ``block``×``block`` patch around every pixel: (H, W) float32 in
    [k/block, 1], 1 for a constant (all-zero) block. :func:`singular_value_ratios` with one k and no floor."""
    if not 1 <= k <= block:
        raise ValueError(f"k must be in 1..{block}, got {k}")
    return singular_value_ratios(gray, block, (k,))[0]


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

    def __init__(self, device: str = "cpu", block: int = BLOCK, k: int = TOP_K, normalize: bool = True):
        super().__init__(device=device)
        self.block = int(block)
        self.k = int(k)
        if self.block < 2 or not 1 <= self.k <= self.block:
            raise ValueError(f"need block >= 2 and 1 <= k <= block, got block={block}, k={k}")
        self.normalize = bool(normalize)

    def predict(self, image: np.ndarray) -> np.ndarray:
        beta = singular_value_ratio(color.gray(image), self.block, self.k)
        floor = self.k / self.block

        def absolute(b: np.ndarray) -> np.ndarray:  # β runs from k/block (a sharp block) to 1 (a flat one)
            return (b - floor) / (1.0 - floor)

        blur = minmax(beta, eps=1e-6, fallback=absolute) if self.normalize else absolute(beta)
        return np.clip(blur, 0.0, 1.0).astype(np.float32)
