"""Vu, Phan & Chandler 2012: S3, a spectral and spatial measure of local perceived sharpness.

S1 (spectral). For a 32×32 block of the grey image (0…255), the magnitude spectrum |X| of the Hann-windowed block
is summed over orientations at each radial frequency f = 1…16 (bilinear samples every degree of the half plane),
z(f); the slope α of log z against log f measures how fast the spectrum falls (blur steepens it), and

    S1 = 1 − 1 / (1 + exp(τ1 (α − τ2))),   τ1 = −3, τ2 = 2.

Blocks of too little contrast get S1 = 0: the block's luminance l = (b + k·x)^γ (b = 0.7656, k = 0.0364,
γ = 2.2) must have a mean above T2 = 2 and a range above T1 = 5. Blocks are taken every 8 px (75 % overlap).

S2 (spatial). The total variation of a 2×2 block ξ is v(ξ) = (1/255) Σ_{i<j} |ξ_i − ξ_j| (six pairs); S2 of an 8×8
block is max_ξ v(ξ) / 4 over its 2×2 blocks.

S3 = S1^α · S2^(1−α) with α = 0.5; greater = sharper.

Dense map. S2 is evaluated for the 8×8 block centred on every pixel (a 7×7 maximum filter of v: stride 1, which the
paper's 50 % overlap samples every 4 px). S1 is evaluated on the paper's 8-px grid of block centres (reflected
borders, so centres cover the whole photo) and interpolated bilinearly to every pixel; ``spectral_stride`` can lower
the step down to 1 (slower). Our blur map is 1 − S3, min-max normalised over the photo by default (the paper's maps
are shown that way); ``normalize=False`` returns the absolute 1 − S3.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..filters import color
from ..filters.normalize import sharpness_to_blur
from ..registry import Method

BLOCK_S1 = 32
STRIDE_S1 = 8  # 75 % overlap of 32×32 blocks
TAU1, TAU2 = -3.0, 2.0
LUM_B, LUM_K, LUM_GAMMA = 0.7656, 0.0364, 2.2
T1_RANGE, T2_MEAN = 5.0, 2.0
ALPHA = 0.5
_CHUNK = 4096  # blocks per FFT batch (bounds memory on large photos)


def _radial_weights(m: int = BLOCK_S1) -> np.ndarray:
    """Linear map from the rfft2 magnitude of an m×m block (m × (m/2+1), flattened) to z(f), f = 1…m/2.

    z(f) = (1/360) Σ over the integer angles θ (degrees) of the half plane with non-negative horizontal frequency of
    the bilinearly interpolated magnitude at (f sin θ, f cos θ); negative vertical frequencies wrap around.
    """
    half = m // 2
    ncol = half + 1
    weights = np.zeros((half, m * ncol))
    for r in range(1, half + 1):
        for deg in range(360):
            th = 2.0 * math.pi * deg / 360.0
            u, v = r * math.sin(th), r * math.cos(th)  # u: horizontal (column), v: vertical (row) frequency
            if u < -1e-12:
                continue
            u = max(u, 0.0)
            u0, v0 = math.floor(u), math.floor(v)
            fu, fv = u - u0, v - v0
            for du, dv, wgt in ((0, 0, (1 - fu) * (1 - fv)), (1, 0, fu * (1 - fv)), (0, 1, (1 - fu) * fv),
                                (1, 1, fu * fv)):
                if wgt == 0.0:
                    continue
                col, row = u0 + du, (v0 + dv) % m
                weights[r - 1, row * ncol + col] += wgt / 360.0
    return weights


_WEIGHTS: dict[int, np.ndarray] = {}


def _slope_regressor(m: int) -> np.ndarray:
    """Row vector w with w · log z(f) = least-squares slope of log z against log f (f = 1…m/2)."""
    logf = np.log(np.arange(1, m // 2 + 1, dtype=np.float64))
    centred = logf - logf.mean()
    return centred / (centred @ centred)


def spectral_slope_sharpness(blocks: np.ndarray) -> np.ndarray:
    """S1 of a batch of grey blocks (N, m, m) in 0…255, without the contrast test; returns (N,) float64."""
    n, m, _ = blocks.shape
    if m not in _WEIGHTS:
        _WEIGHTS[m] = _radial_weights(m).T.astype(np.float32)
    hann = np.hanning(m)  # symmetric Hann window (MATLAB's hann(m))
    window = np.outer(hann, hann).astype(np.float32)
    mag = np.abs(np.fft.rfft2(blocks * window, axes=(1, 2))).astype(np.float32).reshape(n, -1)
    z = mag @ _WEIGHTS[m]
    logz = np.log(np.maximum(z.astype(np.float64), 1e-12))
    alpha = np.abs(logz @ _slope_regressor(m))
    return 1.0 - 1.0 / (1.0 + np.exp(TAU1 * (alpha - TAU2)))


def spectral_map(gray255: np.ndarray, stride: int = STRIDE_S1, m: int = BLOCK_S1) -> np.ndarray:
    """S1 at every pixel: blocks centred on a ``stride`` grid, values interpolated bilinearly; float32 (H, W)."""
    h, w = gray255.shape
    half = m // 2
    pad = np.pad(gray255.astype(np.float32), ((half, half), (half, half)), mode="reflect")
    lum = (LUM_B + LUM_K * pad) ** LUM_GAMMA
    ys = np.arange(0, h + stride - 1, stride)  # block centres (last one may fall just past the border)
    xs = np.arange(0, w + stride - 1, stride)
    ys, xs = np.minimum(ys, h - 1), np.minimum(xs, w - 1)
    # Per-block luminance mean and range for the contrast test.
    win = np.lib.stride_tricks.sliding_window_view
    grid = np.zeros((len(ys), len(xs)), np.float32)
    for r0 in range(0, len(ys), max(1, _CHUNK // len(xs))):
        yy = ys[r0 : r0 + max(1, _CHUNK // len(xs))]
        blocks = np.stack([win(pad[y : y + m], (m, m))[0, xs] for y in yy])  # (rows, cols, m, m)
        lblocks = np.stack([win(lum[y : y + m], (m, m))[0, xs] for y in yy])
        flat = blocks.reshape(-1, m, m)
        lflat = lblocks.reshape(len(flat), -1)
        ok = (lflat.mean(axis=1) > T2_MEAN) & (np.ptp(lflat, axis=1) > T1_RANGE)
        s1 = np.zeros(len(flat))
        if ok.any():
            s1[ok] = spectral_slope_sharpness(flat[ok])
        grid[r0 : r0 + len(yy)] = s1.reshape(len(yy), len(xs))
    if grid.shape == (h, w):
        return grid
    # Bilinear interpolation from block centres (ys, xs) to every pixel.
    fy = np.interp(np.arange(h), ys, np.arange(len(ys))).astype(np.float32)
    fx = np.interp(np.arange(w), xs, np.arange(len(xs))).astype(np.float32)
    mx, my = np.meshgrid(fx, fy)
    return cv2.remap(grid, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def spatial_map(gray255: np.ndarray, block: int = 8) -> np.ndarray:
    """S2 at every pixel: max over the 2×2 blocks of the ``block``×``block`` window of v(ξ), divided by 4."""
    g = np.pad(gray255.astype(np.float32), ((0, 1), (0, 1)), mode="edge")
    a, b, c, d = g[:-1, :-1], g[:-1, 1:], g[1:, :-1], g[1:, 1:]
    tv = (np.abs(a - b) + np.abs(a - c) + np.abs(a - d) + np.abs(b - c) + np.abs(b - d) + np.abs(c - d)) / 255.0
    # The 2×2 block at (y, x) covers pixels y..y+1, x..x+1; an 8×8 window holds 7×7 of them.
    k = block - 1
    anchor = ((k - 1) // 2, (k - 1) // 2)
    mx = cv2.dilate(tv, np.ones((k, k), np.uint8), anchor=anchor, borderType=cv2.BORDER_REPLICATE)
    return mx / 4.0


def s3_map(image: np.ndarray, spectral_stride: int = STRIDE_S1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S1, S2 and S3 maps (float32 H×W in [0, 1], greater = sharper) of an RGB or grey image in [0, 1]."""
    gray255 = color.gray(image) * 255.0
    s1 = spectral_map(gray255, spectral_stride)
    s2 = np.clip(spatial_map(gray255), 0.0, 1.0)
    s3 = np.sqrt(np.clip(s1, 0.0, 1.0)) if ALPHA == 0.5 else np.clip(s1, 0, 1) ** ALPHA
    s3 = s3 * (np.sqrt(s2) if ALPHA == 0.5 else s2 ** (1 - ALPHA))
    return s1, s2, s3.astype(np.float32)


class S3(Method):
    """Vu et al. 2012 S3 sharpness (spectral slope × spatial total variation); blur = 1 − S3.

    Parameters
    ----------
    spectral_stride : int
        Step in px between the centres of the 32×32 spectral blocks (paper: 8, i.e. 75 % overlap).
    normalize : bool
        Min-max normalise 1 − S3 over the photo (default); ``False`` returns the absolute 1 − S3.
    """

    task = "dbd"
    summary = "S3 perceived sharpness (Vu et al. 2012): spectral slope x total variation; blur = 1 - S3"
    paper = ("C. T. Vu, T. D. Phan, D. M. Chandler, S3: A spectral and spatial measure of local perceived sharpness "
             "in natural images, IEEE TIP 21(3):934-945, 2012")

    def __init__(self, device: str = "cpu", spectral_stride: int = STRIDE_S1, normalize: bool = True):
        super().__init__(device=device)
        self.spectral_stride = int(spectral_stride)
        if self.spectral_stride < 1:
            raise ValueError(f"spectral_stride must be >= 1, got {spectral_stride}")
        self.normalize = bool(normalize)

    def predict(self, image: np.ndarray) -> np.ndarray:
        _, _, s3 = s3_map(image, self.spectral_stride)
        if self.normalize:  # a flat S3 map (no contrast anywhere) keeps its absolute values
            return sharpness_to_blur(s3, eps=1e-6, fallback=lambda flat: flat)
        return np.clip(1.0 - s3, 0.0, 1.0).astype(np.float32)
