"""Vu & Chandler 2012: FISH_bb, block-based fast wavelet sharpness (the local map of FISH).

The grey image (0…255) is decomposed by a 3-level 2-D discrete wavelet transform with the Cohen–Daubechies–Feauveau
9/7 filters (the biorthogonal 'bior4.4' pair, low-pass gain √2). For each level n = 1, 2, 3 and detail sub-band
XY ∈ {LH, HL, HH} the log-energy of the coefficients S of a block is

    E_XY,n = log10(1 + mean(S²)),

the level's energy is E_n = (1 − α)(E_LH,n + E_HL,n)/2 + α E_HH,n with α = 0.8, and

    FISH = Σ_{n=1..3} 2^(3−n) E_n          (finer levels weigh more; greater = sharper).

FISH_bb evaluates FISH on 16×16-pixel blocks with 50 % overlap (every 8 px): a block owns 8×8, 4×4 and 2×2
coefficients of levels 1, 2 and 3. Here the blocks are centred on an 8-px grid covering the whole photo (reflected
borders) and the block values are interpolated bilinearly to every pixel. The blur map is 1 − FISH_bb min-max
normalised over the photo (FISH is an unbounded log-energy, so there is no absolute scale).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..filters import color
from ..filters.normalize import sharpness_to_blur
from ..registry import Method

ALPHA = 0.8
LEVELS = 3
BLOCK = 16  # px, at level 0
STRIDE = 8  # px, 50 % overlap

# CDF 9/7 analysis filters ('bior4.4'), centred; low-pass sums to √2, high-pass to 0.
_LO = np.array([0.037828455506995, -0.023849465019380, -0.110624404418423, 0.377402855612654, 0.852698679009404,
                0.377402855612654, -0.110624404418423, -0.023849465019380, 0.037828455506995])
_HI = np.array([-0.064538882628938, 0.040689417609559, 0.418092273222212, -0.788485616405665, 0.418092273222212,
                0.040689417609559, -0.064538882628938])


def _analysis(a: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """One level of 1-D analysis along ``axis`` (symmetric extension): low-pass at even, high-pass at odd samples."""
    if axis == 1:
        lo = cv2.sepFilter2D(a, cv2.CV_32F, _LO, np.array([1.0]), borderType=cv2.BORDER_REFLECT_101)
        hi = cv2.sepFilter2D(a, cv2.CV_32F, _HI, np.array([1.0]), borderType=cv2.BORDER_REFLECT_101)
        return lo[:, 0::2], hi[:, 1::2]
    lo = cv2.sepFilter2D(a, cv2.CV_32F, np.array([1.0]), _LO, borderType=cv2.BORDER_REFLECT_101)
    hi = cv2.sepFilter2D(a, cv2.CV_32F, np.array([1.0]), _HI, borderType=cv2.BORDER_REFLECT_101)
    return lo[0::2], hi[1::2]


def dwt2(a: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One 2-D DWT level: (LL, (LH, HL, HH)), each about half the size of ``a``."""
    lo, hi = _analysis(np.ascontiguousarray(a, np.float32), axis=1)
    ll, lh = _analysis(lo, axis=0)
    hl, hh = _analysis(hi, axis=0)
    n0, n1 = min(ll.shape[0], lh.shape[0]), min(ll.shape[1], hl.shape[1])
    return ll[:n0, :n1], (lh[:n0, :n1], hl[:n0, :n1], hh[:n0, :n1])


def _block_log_energy(band: np.ndarray, size: int, step: int, rows: int, cols: int) -> np.ndarray:
    """log10(1 + mean S²) over size×size coefficient blocks whose corners lie every ``step`` coefficients."""
    sq = band.astype(np.float64) ** 2
    ii = cv2.integral(sq)
    ys = np.arange(rows) * step
    xs = np.arange(cols) * step
    y1 = np.minimum(ys + size, band.shape[0])
    x1 = np.minimum(xs + size, band.shape[1])
    total = ii[y1][:, x1] - ii[ys][:, x1] - ii[y1][:, xs] + ii[ys][:, xs]
    count = (y1 - ys)[:, None] * (x1 - xs)[None, :]
    return np.log10(1.0 + total / np.maximum(count, 1))


def fish_bb_map(image: np.ndarray) -> np.ndarray:
    """FISH_bb at every pixel (greater = sharper), float32 (H, W)."""
    gray = color.gray(image) * 255.0
    h, w = gray.shape
    half = BLOCK // 2
    # Reflect so that a 16×16 block is centred on every 8-px grid point of the photo, and the padded size is a
    # multiple of 2^LEVELS so every block maps onto whole coefficients at each level.
    rows, cols = -(-h // STRIDE) + 1, -(-w // STRIDE) + 1
    ph, pw = (rows - 1) * STRIDE + BLOCK, (cols - 1) * STRIDE + BLOCK
    pad = np.pad(gray, ((half, ph - h - half), (half, pw - w - half)), mode="symmetric")
    fish = np.zeros((rows, cols))
    ll = pad
    for n in range(1, LEVELS + 1):
        ll, (lh, hl, hh) = dwt2(ll)
        size, step = BLOCK >> n, STRIDE >> n
        e_lh, e_hl, e_hh = (_block_log_energy(b, size, step, rows, cols) for b in (lh, hl, hh))
        fish += 2.0 ** (LEVELS - n) * ((1.0 - ALPHA) * 0.5 * (e_lh + e_hl) + ALPHA * e_hh)
    # Block centres sit at y = 0, 8, 16, … of the photo: interpolate bilinearly to every pixel.
    fy = (np.arange(h, dtype=np.float32) / STRIDE)
    fx = (np.arange(w, dtype=np.float32) / STRIDE)
    mx, my = np.meshgrid(fx, fy)
    return cv2.remap(fish.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FISH(Method):
    """Vu & Chandler 2012 FISH_bb wavelet sharpness map; blur = 1 − FISH_bb, min-max normalised per photo."""

    task = "dbd"
    summary = "FISH_bb wavelet log-energy sharpness (Vu & Chandler 2012), 16x16 blocks every 8 px; blur = 1 - FISH"
    paper = ("P. V. Vu, D. M. Chandler, A fast wavelet-based algorithm for global and local image sharpness "
             "estimation, IEEE Signal Processing Letters 19(7):423-426, 2012")

    def predict(self, image: np.ndarray) -> np.ndarray:
        return sharpness_to_blur(fish_bb_map(image), eps=1e-9)
