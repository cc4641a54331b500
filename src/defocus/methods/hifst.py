"""HiFST: high-frequency multiscale fusion and sort transform (Golestaneh & Karam, CVPR 2017).

Sharpness at a pixel is read from the DCT of the gradient-magnitude patches centred on it, at the sizes
M = 7, 15, 31 and 63. Of each patch's DCT only the high-frequency half is kept (coefficients (u, v) with
u + v ≥ M − 1, M(M+1)/2 of them), the absolute values of the four scales are pooled (2,660 per pixel) and sorted
ascending, and the smallest ΣM + 1 = 117 become 117 layers. Each layer is min-max normalised over the image, the
layers are max-pooled into T, T is weighted by its 7×7 local entropy (D = entropy(T)·T) and D is smoothed by the
domain-transform recursive filter (σs = 15, σr = 0.25, 3 iterations) guided by the grey image. The result is a
sharpness map (high = in focus); :class:`HiFST` returns ``1 − sharpness`` after min-max normalising it per image,
which is how the authors save their maps (``mat2gray(FinalMap)``).

Every pixel is processed (stride 1, no subsampling), like the authors' own code with ``Slid = 1``. The per-pixel DCTs
are not computed patch by patch: a DCT-II coefficient of a sliding window changes from one window to the next by a
complex rotation plus the sample entering and the sample leaving (a sliding DCT/DST pair), so each of the 2,660
coefficients costs a few multiply-adds per pixel instead of an M²-term sum. Horizontal 1-D DCTs of every row window
come first (116 states per pixel), then the vertical recursion over them (2,660 states per column), with states in
float64 so the recursion does not drift. The image is processed in column tiles; images whose 117 layers do not fit
a memory budget are processed twice (once for the per-layer minimum and maximum, once for the max-pooling) so
memory stays bounded for any size.

Details taken from the authors' MATLAB release (isalirezag/HiFST, ``HiFST.m``) that the paper leaves open: the
colour photo is smoothed per channel by a 3×3 Gaussian (σ = 0.5, replicated border) and converted to grey, both in
uint8 (so both results are rounded to whole grey levels; ``match_uint8`` reproduces this); the gradient is the Sobel
magnitude (replicated border); patches reach into a zero border of 31 px; the DCT is the orthonormal DCT-II
(``dctmtx``); the entropy is MATLAB ``entropyfilt``'s (map quantised to uint8, 256-bin histogram of the 7×7
neighbourhood, symmetric border, log2); the filter's guide is the min-max normalised grey image smoothed by a 3×3
Gaussian of σ = 1 with a zero border.
"""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np

from ..errors import DefocusError
from ..filters.normalize import minmax, sharpness_to_blur
from ..registry import Method

#: Patch sizes of the paper (2^k − 1 for k = 3..6, the setting its results use).
SCALES = (7, 15, 31, 63)
#: Default budget in bytes for holding the 117 layers of the whole image; larger images are processed twice.
LAYER_BUDGET = 1 << 30
#: Bytes per tile of layers and horizontal coefficients (bounds peak memory of the two-pass mode).
TILE_BUDGET = 400 << 20


# ---------------------------------------------------------------------------------------------------------------
# Pre-processing
# ---------------------------------------------------------------------------------------------------------------


#: MATLAB rgb2gray weights (ITU-R BT.601 luma).
_GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def smoothed_gray(image: np.ndarray, match_uint8: bool = True) -> np.ndarray:
    """Grey image after HiFST's pre-smoothing, in grey levels.

    Each channel is smoothed by a 3×3 Gaussian of σ = 0.5 (replicated border), then the channels are mixed with
    MATLAB's rgb2gray weights. Channels are processed one at a time so a 24-megapixel photo needs no full-size
    float64 colour copy. Not :func:`defocus.filters.color.gray`: smoothing before the conversion, the MATLAB weights
    and the uint8 rounding are the authors' and shape the map.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3) or (H, W), float in [0, 1]
    match_uint8 : bool
        Round the input, the smoothed channels and the grey image to whole levels of 0..255, as the authors'
        code does on uint8 photos. Off, everything stays in floating point.

    Returns
    -------
    ndarray of shape (H, W), float64 in [0, 255]
    """
    img = np.asarray(image)
    if img.ndim == 2:
        planes, weights = [img], (1.0,)
    elif img.ndim == 3 and img.shape[2] == 3:
        planes, weights = [img[..., c] for c in range(3)], _GRAY_WEIGHTS
    else:
        raise DefocusError(f"hifst: expected an H×W×3 or H×W image, got shape {img.shape}")
    gray = np.zeros(img.shape[:2], np.float64)
    for plane, weight in zip(planes, weights):
        level = plane.astype(np.float32) * np.float32(255.0)
        if match_uint8:
            np.floor(level + np.float32(0.5), out=level)
        level = cv2.GaussianBlur(level, (3, 3), 0.5, borderType=cv2.BORDER_REPLICATE)
        if match_uint8:
            np.floor(level + np.float32(0.5), out=level)
        gray += weight * level.astype(np.float64)
    if match_uint8 and len(planes) > 1:
        np.floor(gray + 0.5, out=gray)
    return gray


def gradient_magnitude(gray: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude (unnormalised 1-2-1 kernels, replicated border), float64 of the input's shape."""
    gx = cv2.Sobel(gray, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(gray, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return np.hypot(gx, gy)


def high_frequency_mask(m: int) -> np.ndarray:
    """Boolean M×M mask of the DCT coefficients HiFST keeps: (u, v) with u + v ≥ M − 1 (M(M+1)/2 of them)."""
    u, v = np.indices((m, m))
    return u + v >= m - 1


# ---------------------------------------------------------------------------------------------------------------
# Sliding DCT kernels
# ---------------------------------------------------------------------------------------------------------------


class _Tables:
    """Constants of the sliding DCT-II for a set of odd patch sizes, concatenated over the scales.

    For window size M and frequency k, with θ = πk / (2M) and S = Σ_m x[s+m]·e^{iθ(2m+1)} (so the DCT-II
    coefficient is α_k·Re S), moving the window by one sample gives
    S(s+1) = e^{−2iθ}·S(s) + e^{−iθ}·((−1)^k·x[s+M] − x[s]).
    """

    def __init__(self, scales: tuple[int, ...]):
        self.scales = np.asarray(scales, dtype=np.int64)
        self.freq_off = np.concatenate([[0], np.cumsum(self.scales)]).astype(np.int64)  # per-scale offsets, Σ M
        self.pair_off = np.concatenate([[0], np.cumsum(self.scales * (self.scales + 1) // 2)]).astype(np.int64)
        self.table_off = np.concatenate([[0], np.cumsum(self.scales**2)]).astype(np.int64)
        n = int(self.freq_off[-1])
        self.alpha = np.empty(n)
        self.rot = np.empty((n, 2))  # e^{−2iθ}
        self.inj = np.empty((n, 2))  # e^{−iθ}
        self.sign = np.empty(n)
        self.tc = np.empty(n)  # 2·cos 2θ
        self.act = np.empty(n)  # α·cos θ
        self.basis = np.empty((int(self.table_off[-1]), 2))  # e^{iθ(2m+1)} for the first window, [k, m] per scale
        for s, m in enumerate(scales):
            k = np.arange(m)
            theta = np.pi * k / (2 * m)
            sl = slice(self.freq_off[s], self.freq_off[s + 1])
            self.alpha[sl] = np.where(k == 0, math.sqrt(1.0 / m), math.sqrt(2.0 / m))
            self.rot[sl] = np.stack([np.cos(2 * theta), -np.sin(2 * theta)], 1)
            self.inj[sl] = np.stack([np.cos(theta), -np.sin(theta)], 1)
            self.sign[sl] = np.where(k % 2 == 0, 1.0, -1.0)
            self.tc[sl] = 2 * np.cos(2 * theta)
            self.act[sl] = self.alpha[sl] * np.cos(theta)
            phase = theta[:, None] * (2 * np.arange(m)[None, :] + 1)
            self.basis[self.table_off[s] : self.table_off[s + 1]] = np.stack(
                [np.cos(phase).ravel(), np.sin(phase).ravel()], 1
            )
        self.n_pairs = int(self.pair_off[-1])
        self.margin = int(max(scales)) // 2

    def args(self):
        return (self.scales, self.freq_off, self.pair_off, self.table_off, self.alpha, self.rot, self.inj,
                self.sign, self.basis)


@numba.njit(parallel=True, fastmath=True, cache=True)
def _horizontal_dct(gp, x0, x1, margin, scales, freq_off, pair_off, table_off, alpha, rot, inj, sign, basis, out):
    """1-D DCT-II of every horizontal window of the zero-padded gradient ``gp`` (rows of length W + 2·margin).

    ``out[j, r, freq_off[s] + v]`` = coefficient v of the M_s-wide window centred on padded row r and original
    column x0 + j, for j < x1 − x0. Rows run in parallel; along a row the sliding recursion is used.
    """
    n_rows = gp.shape[0]
    n_freq = freq_off[-1]
    for r in numba.prange(n_rows):
        s_re = np.empty(n_freq)
        s_im = np.empty(n_freq)
        for s in range(scales.shape[0]):
            m = scales[s]
            h = (m - 1) // 2
            fo = freq_off[s]
            to = table_off[s]
            start = x0 + margin - h
            for k in range(m):
                acc_re = 0.0
                acc_im = 0.0
                for t in range(m):
                    g = gp[r, start + t]
                    acc_re += g * basis[to + k * m + t, 0]
                    acc_im += g * basis[to + k * m + t, 1]
                s_re[fo + k] = acc_re
                s_im[fo + k] = acc_im
                out[0, r, fo + k] = alpha[fo + k] * acc_re
            for x in range(x0 + 1, x1):
                g_old = gp[r, x + margin - h - 1]
                g_new = gp[r, x + margin + h]
                for k in range(fo, fo + m):
                    d = sign[k] * g_new - g_old
                    a = s_re[k]
                    b = s_im[k]
                    s_re[k] = rot[k, 0] * a - rot[k, 1] * b + inj[k, 0] * d
                    s_im[k] = rot[k, 0] * b + rot[k, 1] * a + inj[k, 1] * d
                    out[x - x0, r, k] = alpha[k] * s_re[k]


@numba.njit(cache=True)
def _collect(coef, tau, cand):
    """Copy the |values| of ``coef`` that are ≤ tau into ``cand`` (length ≥ len(coef) + 1); return how many.

    Branch-free (every value is written, the count advances only for the kept ones): the kept values are rare
    and scattered, so a branch would mispredict on most of them.
    """
    n = 0
    for p in range(coef.shape[0]):
        v = abs(coef[p])
        cand[n] = v
        n += v <= tau
    return n


@numba.njit(cache=True)
def _select_smallest(coef, n_keep, tau, cand, counts, ordered, out):
    """Write the ``n_keep`` smallest |values| of ``coef`` into ``out`` in ascending order; return the largest.

    ``tau`` is a guess of the n_keep-th smallest value (the previous pixel's, slightly enlarged), or < 0 for none.
    The values ≤ tau are collected; when fewer than n_keep pass, a 256-bin histogram of all values gives a
    threshold that is sure to pass enough. The candidates, usually a little more than n_keep, are counting-sorted
    into 256 value buckets over [0, tau] and the almost-sorted result is finished by insertion sort, which is much
    cheaper here than a general sort.
    """
    n = _collect(coef, tau, cand) if tau >= 0.0 else 0
    if n < n_keep:
        top = 0.0
        for p in range(coef.shape[0]):
            top = max(top, abs(coef[p]))
        if top <= 0.0:
            out[:] = 0.0
            return 0.0
        counts[:] = 0
        width = 256.0 / top
        for p in range(coef.shape[0]):
            counts[min(int(abs(coef[p]) * width), 255)] += 1
        total = 0
        b = 0
        while b < 255:
            total += counts[b]
            if total >= n_keep:
                break
            b += 1
        tau = top if b >= 255 else (b + 1) / width
        n = _collect(coef, tau, cand)
        if n < n_keep:  # rounding at a bucket edge
            tau = top
            n = _collect(coef, tau, cand)
    if tau <= 0.0:
        out[:] = 0.0
        return 0.0
    counts[:] = 0
    width = 256.0 / tau
    for i in range(n):
        counts[min(int(cand[i] * width), 255)] += 1
    start = 0
    for b in range(256):
        c = counts[b]
        counts[b] = start
        start += c
    for i in range(n):
        b = min(int(cand[i] * width), 255)
        ordered[counts[b]] = cand[i]
        counts[b] += 1
    for i in range(1, n):
        v = ordered[i]
        k = i
        while k > 0 and ordered[k - 1] > v:
            ordered[k] = ordered[k - 1]
            k -= 1
        ordered[k] = v
    for i in range(n_keep):
        out[i] = ordered[i]
    return ordered[n_keep - 1]


@numba.njit(parallel=True, fastmath=True, cache=True)
def _sorted_layers(hc, n_out_rows, margin, n_keep, scales, freq_off, pair_off, table_off, alpha, rot, inj, sign,
                   basis, tc, act, out):
    """The ``n_keep`` smallest high-frequency |DCT| of every pixel's patches, sorted ascending.

    ``hc`` is the output of :func:`_horizontal_dct` for a column tile (tile width, H + 2·margin, Σ M).
    ``out[y, j, :]`` (shape (H, tile width, n_keep), float32) receives the sorted values. Columns run in parallel.
    Down a column every coefficient c = α·Re S follows the real second-order form of the sliding recursion,
    c(y) = 2cos2θ·c(y−1) − c(y−2) + α·cosθ·(d(y) − d(y−1)) with d(y) = (−1)^u·x_enter − x_leave (``act`` holds
    α·cosθ), started from two directly computed rows. Pairs are ordered by vertical frequency u, then horizontal
    frequency v ≥ M − 1 − u, so the inner loop runs over contiguous v with per-u constants and vectorises.
    """
    n_cols = hc.shape[0]
    n_pairs = pair_off[-1]
    n_freq = freq_off[-1]
    max_m = 0
    for s in range(scales.shape[0]):
        max_m = max(max_m, scales[s])
    for j in numba.prange(n_cols):
        c_a = np.empty(n_pairs)
        c_b = np.empty(n_pairs)
        cand = np.empty(n_pairs + 1)
        ordered = np.empty(n_pairs)
        counts = np.empty(256, np.int64)
        col = np.empty(max_m)
        x_par = np.empty((2, n_freq))
        # Rows 0 and 1: direct sums for S(0) (cosine and sine parts), one complex step for row 1.
        for s in range(scales.shape[0]):
            m = scales[s]
            h = (m - 1) // 2
            fo = freq_off[s]
            p = pair_off[s]
            to = table_off[s]
            for u in range(m):
                k = fo + u
                for v in range(m - 1 - u, m):
                    for t in range(m):
                        col[t] = hc[j, margin - h + t, fo + v]
                    acc_re = 0.0
                    acc_im = 0.0
                    for t in range(m):
                        acc_re += col[t] * basis[to + u * m + t, 0]
                        acc_im += col[t] * basis[to + u * m + t, 1]
                    c_a[p] = alpha[k] * acc_re
                    if n_out_rows > 1:
                        d = sign[k] * hc[j, margin + h + 1, fo + v] - hc[j, margin - h, fo + v]
                        c_b[p] = alpha[k] * (rot[k, 0] * acc_re - rot[k, 1] * acc_im + inj[k, 0] * d)
                    p += 1
        prev = _select_smallest(c_a, n_keep, -1.0, cand, counts, ordered, out[0, j])
        if n_out_rows > 1:
            prev = _select_smallest(c_b, n_keep, prev * 1.25 + 1e-12, cand, counts, ordered, out[1, j])
        for y in range(2, n_out_rows):
            # c_now holds c(y−1); c_then holds c(y−2) and receives c(y).
            if y % 2 == 0:
                c_now = c_b
                c_then = c_a
            else:
                c_now = c_a
                c_then = c_b
            for s in range(scales.shape[0]):
                m = scales[s]
                h = (m - 1) // 2
                fo = freq_off[s]
                r_new = y + margin + h
                r_old = y + margin - h - 1
                for v in range(m):
                    dn = np.float64(hc[j, r_new, fo + v]) - np.float64(hc[j, r_new - 1, fo + v])
                    do = np.float64(hc[j, r_old, fo + v]) - np.float64(hc[j, r_old - 1, fo + v])
                    x_par[0, fo + v] = dn - do
                    x_par[1, fo + v] = -dn - do
                p = pair_off[s]
                for u in range(m):
                    k = fo + u
                    a2 = tc[k]
                    b1 = act[k]
                    xs = x_par[u & 1, fo + m - 1 - u : fo + m]
                    cn = c_now[p : p + u + 1]
                    ct = c_then[p : p + u + 1]
                    for q in range(u + 1):
                        ct[q] = a2 * cn[q] - ct[q] + b1 * xs[q]
                    p += u + 1
            prev = _select_smallest(c_then, n_keep, prev * 1.25 + 1e-12, cand, counts, ordered, out[y, j])


@numba.njit(parallel=True, cache=True)
def _layer_range(layers, lo, hi):
    """Update per-layer minimum ``lo`` and maximum ``hi`` (float64, length K) with layers (H, w, K)."""
    k_n = layers.shape[2]
    rows = layers.shape[0]
    part_lo = np.full((rows, k_n), np.inf)
    part_hi = np.full((rows, k_n), -np.inf)
    for y in numba.prange(rows):
        for x in range(layers.shape[1]):
            for k in range(k_n):
                v = layers[y, x, k]
                if v < part_lo[y, k]:
                    part_lo[y, k] = v
                if v > part_hi[y, k]:
                    part_hi[y, k] = v
    for y in range(rows):
        for k in range(k_n):
            lo[k] = min(lo[k], part_lo[y, k])
            hi[k] = max(hi[k], part_hi[y, k])


@numba.njit(parallel=True, cache=True)
def _max_pool(layers, lo, scale, out):
    """``out[y, x] = max_k (layers[y, x, k] − lo[k])·scale[k]`` (min-max normalised layers, max-pooled)."""
    for y in numba.prange(layers.shape[0]):
        for x in range(layers.shape[1]):
            best = 0.0
            for k in range(layers.shape[2]):
                v = (layers[y, x, k] - lo[k]) * scale[k]
                if v > best:
                    best = v
            out[y, x] = best


@numba.njit(parallel=True, cache=True)
def _entropy_7x7(q, radius, out):
    """Local Shannon entropy (bits) of the uint8 map ``q`` (already padded by ``radius``) in (2r+1)² windows.

    A 256-bin histogram slides along each row; Σ c·log2 c is kept up to date as counts change, so each step costs
    2·(2r+1) updates. Entropy = log2 N − Σ c·log2 c / N with N = (2r+1)².
    """
    size = 2 * radius + 1
    n = size * size
    clog = np.zeros(n + 1)
    for c in range(1, n + 1):
        clog[c] = c * math.log2(c)
    log_n = math.log2(n)
    h, w = out.shape
    for y in numba.prange(h):
        hist = np.zeros(256, np.int64)
        acc = 0.0
        for dy in range(size):
            for dx in range(size):
                hist[q[y + dy, dx]] += 1
        for b in range(256):
            acc += clog[hist[b]]
        out[y, 0] = log_n - acc / n
        for x in range(1, w):
            for dy in range(size):
                b = q[y + dy, x - 1]
                c = hist[b]
                acc += clog[c - 1] - clog[c]
                hist[b] = c - 1
                b = q[y + dy, x + size - 1]
                c = hist[b]
                acc += clog[c + 1] - clog[c]
                hist[b] = c + 1
            out[y, x] = log_n - acc / n


# ---------------------------------------------------------------------------------------------------------------
# Pipeline
# ---------------------------------------------------------------------------------------------------------------


def local_entropy(a: np.ndarray, size: int = 7) -> np.ndarray:
    """MATLAB ``entropyfilt`` semantics: entropy (bits) of the size×size neighbourhood of ``a`` quantised to uint8.

    Parameters
    ----------
    a : ndarray of shape (H, W), float in [0, 1]
    size : int
        Odd window side in px.

    Returns
    -------
    ndarray of shape (H, W), float64 in [0, log2(size²)]
    """
    q = np.floor(np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    r = size // 2
    q = np.pad(q, r, mode="symmetric")
    out = np.empty(a.shape, np.float64)
    _entropy_7x7(q, r, out)
    return out


def _tile_width(height: int, width: int, n_keep: int, n_freq: int, margin: int, budget: int) -> int:
    per_column = height * n_keep * 4 + (height + 2 * margin) * n_freq * 4
    return int(max(1, min(width, budget // per_column)))


def _tile_layers(gp: np.ndarray, x0: int, x1: int, height: int, n_keep: int, tables: _Tables) -> np.ndarray:
    """Sorted layers for original columns x0..x1−1: float32 (H, x1 − x0, n_keep)."""
    hc = np.empty((x1 - x0, gp.shape[0], int(tables.freq_off[-1])), np.float32)
    _horizontal_dct(gp, x0, x1, tables.margin, *tables.args(), hc)
    out = np.empty((height, x1 - x0, n_keep), np.float32)
    _sorted_layers(hc, height, tables.margin, n_keep, *tables.args(), tables.tc, tables.act, out)
    return out


def sorted_layers(grad: np.ndarray, scales: tuple[int, ...] = SCALES, n_keep: int | None = None,
                  tile_width: int | None = None) -> np.ndarray:
    """All sorted high-frequency layers L of a gradient image, held in memory (for tests and small images).

    Parameters
    ----------
    grad : ndarray of shape (H, W), float
        Gradient magnitude.
    scales : tuple of odd int
        Patch sizes M.
    n_keep : int, optional
        Layers kept; default ΣM + 1.
    tile_width : int, optional
        Columns per tile (the result does not depend on it).

    Returns
    -------
    ndarray of shape (H, W, n_keep), float32 — per pixel the n_keep smallest |DCT| coefficients, ascending.
    """
    tables = _Tables(tuple(scales))
    n_keep = int(sum(scales) + 1) if n_keep is None else int(n_keep)
    h, w = grad.shape
    gp = np.pad(np.asarray(grad, np.float64), tables.margin)
    tile_width = w if tile_width is None else int(tile_width)
    out = np.empty((h, w, n_keep), np.float32)
    for x0 in range(0, w, tile_width):
        x1 = min(w, x0 + tile_width)
        out[:, x0:x1] = _tile_layers(gp, x0, x1, h, n_keep, tables)
    return out


def fused_layers(grad: np.ndarray, scales: tuple[int, ...] = SCALES, layer_budget: int = LAYER_BUDGET,
                 tile_budget: int = TILE_BUDGET) -> np.ndarray:
    """T: the ΣM + 1 sorted layers, each min-max normalised over the image, max-pooled.

    Layers are computed in column tiles. When all of them fit ``layer_budget`` bytes they are kept and pooled
    after one pass; otherwise a first pass only records each layer's minimum and maximum and a second pass
    recomputes the tiles and pools them, so memory stays near ``tile_budget`` whatever the image size.

    Returns
    -------
    ndarray of shape (H, W), float64 in [0, 1]
    """
    tables = _Tables(tuple(scales))
    n_keep = int(sum(scales) + 1)
    h, w = grad.shape
    gp = np.pad(np.asarray(grad, np.float64), tables.margin)
    tw = _tile_width(h, w, n_keep, int(tables.freq_off[-1]), tables.margin, tile_budget)
    keep = h * w * n_keep * 4 <= layer_budget
    lo = np.full(n_keep, np.inf)
    hi = np.full(n_keep, -np.inf)
    tiles = []
    bounds = [(x0, min(w, x0 + tw)) for x0 in range(0, w, tw)]
    for x0, x1 in bounds:
        layers = _tile_layers(gp, x0, x1, h, n_keep, tables)
        _layer_range(layers, lo, hi)
        if keep:
            tiles.append(layers)
        del layers
    span = hi - lo
    scale = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 0.0)
    fused = np.empty((h, w), np.float64)
    for i, (x0, x1) in enumerate(bounds):
        layers = tiles[i] if keep else _tile_layers(gp, x0, x1, h, n_keep, tables)
        part = np.empty((h, x1 - x0), np.float64)
        _max_pool(layers, lo, scale, part)
        fused[:, x0:x1] = part
        if keep:
            tiles[i] = None
        del layers
    return fused


def _guide(gray: np.ndarray) -> np.ndarray:
    """The filter's guide as in the authors' code: mat2gray(grey) smoothed by a 3×3 σ=1 Gaussian, zero border."""
    k = cv2.getGaussianKernel(3, 1.0)
    return cv2.sepFilter2D(minmax(gray), cv2.CV_64F, k, k, borderType=cv2.BORDER_CONSTANT).astype(np.float32)


def hifst_sharpness(image: np.ndarray, match_uint8: bool = True, sigma_s: float = 15.0, sigma_r: float = 0.25,
                    iterations: int = 3, layer_budget: int = LAYER_BUDGET, tile_budget: int = TILE_BUDGET,
                    return_stages: bool = False):
    """HiFST's FinalMap (sharpness, high = in focus), unnormalised as the authors' function returns it.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3) or (H, W), float32 in [0, 1]
    match_uint8 : bool
        Round the pre-smoothing results to uint8 grey levels as the authors' code does (see :func:`smoothed_gray`).
    sigma_s, sigma_r, iterations :
        Domain-transform recursive filter settings (σs in px, σr in guide units).
    layer_budget, tile_budget : int
        Memory budgets in bytes (see :func:`fused_layers`).
    return_stages : bool
        Also return the intermediate maps T and D.

    Returns
    -------
    ndarray of shape (H, W), float32 ≥ 0; with ``return_stages``, (final, T, D).
    """
    from ..filters.domain_transform import recursive_filter

    gray = smoothed_gray(image, match_uint8)
    grad = gradient_magnitude(gray)
    t = minmax(fused_layers(grad, SCALES, layer_budget, tile_budget))
    d = local_entropy(t, 7) * t
    final = recursive_filter(d.astype(np.float32), _guide(gray), sigma_s, sigma_r, iterations=iterations)
    final = np.asarray(final, np.float32)
    if return_stages:
        return final, t.astype(np.float32), d.astype(np.float32)
    return final


class HiFST(Method):
    """Golestaneh & Karam 2017 HiFST blur detector, every pixel, returned as a blur map.

    ``predict`` returns ``1 − mat2gray(FinalMap)``: the authors' sharpness map min-max normalised over the image
    (as they save it) and flipped so that 1 = out of focus. The normalisation is per image, so values compare
    within a photo, not across photos.

    Parameters
    ----------
    match_uint8 : bool
        Reproduce the authors' uint8 rounding of the smoothed channels and grey image (default True).
    sigma_s, sigma_r : float
        Domain-transform filter spatial σ (px) and range σ (default 15 and 0.25, the authors').
    iterations : int
        Filter iterations (default 3).
    layer_budget : int
        Bytes allowed for holding all 117 layers; beyond it the layers are computed twice in tiles (default 1 GiB).
    """

    task = "dbd"
    summary = "HiFST: sorted high-frequency DCT of gradient patches (M = 7..63), entropy-weighted, every pixel"
    paper = ("Golestaneh & Karam, Spatially-varying blur detection based on multiscale fused and sorted transform "
             "coefficients of gradient magnitudes, CVPR 2017")

    def __init__(self, device: str = "cpu", match_uint8: bool = True, sigma_s: float = 15.0, sigma_r: float = 0.25,
                 iterations: int = 3, layer_budget: int = LAYER_BUDGET):
        super().__init__(device=device)
        if sigma_s <= 0 or sigma_r <= 0 or int(iterations) < 1:
            raise DefocusError(
                f"hifst: sigma_s and sigma_r must be > 0 and iterations >= 1 (got {sigma_s}, {sigma_r}, {iterations})"
            )
        self.match_uint8 = bool(match_uint8)
        self.sigma_s = float(sigma_s)
        self.sigma_r = float(sigma_r)
        self.iterations = int(iterations)
        self.layer_budget = int(layer_budget)

    def predict(self, image: np.ndarray) -> np.ndarray:
        final = hifst_sharpness(image, self.match_uint8, self.sigma_s, self.sigma_r, self.iterations,
                                self.layer_budget)
        return sharpness_to_blur(final)  # 1 − mat2gray(FinalMap); a flat map gives 1
