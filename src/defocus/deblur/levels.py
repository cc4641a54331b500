"""Spatially varying deconvolution driven by a defocus map: one uniform deconvolution per blur level, blended.

The defocus map (Gaussian σ in px per pixel) is quantised into geometric levels ``σ_i = min_sigma · ratio^i``.
Each pixel's weights are a hat function of log σ between its two nearest levels (so the blend is continuous in σ),
feathered spatially by a small Gaussian (so a jump of the map between two levels becomes a short cross-fade instead
of a seam); pixels at or below ``min_sigma`` keep the input (level 0 is the identity), since deconvolving what is
already in focus only amplifies noise. Every level is deconvolved over a whole tile
(:func:`defocus.deblur.hyperlaplacian.deconvolve`) and the results are summed with the weights.

Large images are cut into tiles processed one at a time (memory ∝ tile area × levels present in the tile). Each tile
is read with a margin of several PSF radii (the image is mirrored beyond its borders), padded to a fast FFT size and
edge-tapered (blended, near the array edge, with its own circular blur by the level's PSF) so the periodic boundary
the Fourier solver assumes neither rings into the image nor differs between tiles.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import scipy.fft

from .hyperlaplacian import _transfer, deconvolve

PSFS = ("gaussian", "disk")

#: sRGB value from which a pixel counts as clipped (sensor saturation), in any channel.
SATURATED = 0.98


def sigma_levels(sigma_max: float, *, min_sigma: float = 0.5, ratio: float = 1.25) -> np.ndarray:
    """The quantised σ levels (px) that cover ``[0, sigma_max]``: ``[0, min_sigma·ratio, min_sigma·ratio², …]``,
    the last ≥ ``sigma_max``. Level 0 stands for "in focus" (σ ≤ min_sigma): the input is kept there."""
    if not (min_sigma > 0 and ratio > 1):
        raise ValueError(f"need min_sigma > 0 and ratio > 1, not {min_sigma}, {ratio}")
    n = max(0, math.ceil(math.log(max(sigma_max, min_sigma) / min_sigma) / math.log(ratio) - 1e-9))
    return np.concatenate([[0.0], min_sigma * ratio ** np.arange(1, n + 1)]).astype(np.float64)


def level_position(sigma: np.ndarray, *, min_sigma: float, ratio: float) -> np.ndarray:
    """Fractional level index of each σ: 0 at or below ``min_sigma``, ``i`` at ``min_sigma·ratio^i`` (log scale)."""
    sigma = np.maximum(np.asarray(sigma, np.float32), np.float32(min_sigma))
    return (np.log(sigma / np.float32(min_sigma)) / np.float32(math.log(ratio))).astype(np.float32)


def level_weight(position: np.ndarray, index: int, feather: float) -> np.ndarray:
    """Blending weight of level ``index`` per pixel: a hat of half-width 1 in level units, then a Gaussian of
    ``feather`` px. The weights of all levels sum to 1 at every pixel (linear filtering keeps a partition of
    unity)."""
    w = np.clip(1.0 - np.abs(position - np.float32(index)), 0.0, 1.0).astype(np.float32)
    if feather > 0:
        w = cv2.GaussianBlur(w, (0, 0), feather, borderType=cv2.BORDER_REFLECT_101)
    return w


def psf_for(sigma: float, kind: str) -> np.ndarray:
    """The PSF of a level: a Gaussian of σ px, or the disk of the equivalent CoC radius (RTF table)."""
    from ..synth.psf import disk, gaussian
    from ..units import sigma_to_radius

    if kind == "gaussian":
        return gaussian(float(sigma))
    if kind == "disk":
        return disk(float(sigma_to_radius(np.float64(sigma))))
    raise ValueError(f"psf must be one of {PSFS}, not {kind!r}")


def _ramp(n: int, width: int) -> np.ndarray:
    """1 in the middle, falling smoothly (raised cosine) to 0 over ``width`` samples at both ends."""
    r = np.ones(n, np.float32)
    if width > 0:
        t = (np.arange(width, dtype=np.float32) + 0.5) / width
        r[:width] = 0.5 - 0.5 * np.cos(np.pi * t)
        r[n - width:] = r[:width][::-1]
    return r


def edge_taper(padded: np.ndarray, psf: np.ndarray, width: int, keep: np.ndarray | None = None,
               workers: int = 2) -> np.ndarray:
    """Blend ``padded`` (H×W×C) near its edges with its circular blur by ``psf``: the result wraps around without a
    jump the PSF could not have produced, so deconvolving it does not ring from the array's border.

    ``keep`` (H×W in [0, 1]), if given, is multiplied into the blend weight: where it is 0 the image is replaced by
    its blur by ``psf`` too. A level's deconvolution keeps only the pixels at least about as blurred as the level;
    sharper pixels (a focused subject beside a blurred background) would ring when deconvolved by a wider PSF than
    theirs, and their blurred copy is exactly what this PSF explains, so it deconvolves back without ringing."""
    h, w = padded.shape[:2]
    a = _ramp(h, min(width, h // 2))[:, None] * _ramp(w, min(width, w // 2))[None, :]
    if keep is not None:
        a = a * keep
    if float(a.min()) >= 1.0:
        return padded
    k = _transfer(psf, (h, w))[..., None]
    blurred = scipy.fft.irfft2(scipy.fft.rfft2(padded, axes=(0, 1), workers=workers) * k, s=(h, w), axes=(0, 1),
                               workers=workers)
    a = a[..., None]
    return (a * padded + (1.0 - a) * blurred).astype(np.float32)


def margin_for(sigma_max: float, kind: str) -> int:
    """Context (px) read around a tile: three PSF half-widths plus 8 px, enough for the solver's response to decay."""
    half = psf_for(max(sigma_max, 1e-3), kind).shape[0] // 2
    return 3 * half + 8


def deconvolve_map(
    image: np.ndarray,
    sigma: np.ndarray,
    *,
    psf: str = "gaussian",
    min_sigma: float = 0.5,
    ratio: float = 1.25,
    feather: float = 1.5,
    tile: int | None = 512,
    workers: int = 2,
    **solver,
) -> np.ndarray:
    """Spatially varying deconvolution of ``image`` (H×W×C float32) by the defocus map ``sigma`` (H×W, px).

    Arguments as in :func:`defocus.deblur.deblur` (``solver`` goes to
    :func:`~defocus.deblur.hyperlaplacian.deconvolve`). Returns float32 H×W×C, not clipped.
    """
    h, w = sigma.shape
    levels = sigma_levels(float(sigma.max()), min_sigma=min_sigma, ratio=ratio)
    out = np.empty(image.shape, np.float32)
    if len(levels) == 1:  # everything in focus
        out[...] = image
        return out
    margin = margin_for(levels[-1], psf)
    # The weights need `feather` context too; the margin always covers it (3 σ of the feathering Gaussian).
    margin = max(margin, math.ceil(3 * feather) + 1)
    step = max(int(tile), 16) if tile else max(h, w)
    for top in range(0, h, step):
        for left in range(0, w, step):
            bottom, right = min(top + step, h), min(left + step, w)
            out[top:bottom, left:right] = _tile(image, sigma, (top, bottom, left, right), margin, levels, psf,
                                                min_sigma, ratio, feather, workers, solver)
    return out


def _tile(image, sigma, box, margin, levels, psf, min_sigma, ratio, feather, workers, solver) -> np.ndarray:
    top, bottom, left, right = box
    h, w = sigma.shape
    core_h, core_w = bottom - top, right - left
    # Padded size: core + margins, rounded up to a size scipy.fft factorises fast.
    size_h = scipy.fft.next_fast_len(core_h + 2 * margin, real=True)
    size_w = scipy.fft.next_fast_len(core_w + 2 * margin, real=True)
    pad_top, pad_left = margin, margin
    rows = _mirrored(np.arange(top - pad_top, top - pad_top + size_h), h)
    cols = _mirrored(np.arange(left - pad_left, left - pad_left + size_w), w)
    context = image[np.ix_(rows, cols)]
    position = level_position(sigma[np.ix_(rows, cols)], min_sigma=min_sigma, ratio=ratio)
    # Clipped highlights break the blur model (a saturated bokeh disc is flat-topped), so their deconvolution rings;
    # they are treated like sharper pixels below (replaced by their blur in each level's input).
    unclipped = 1.0 - cv2.dilate((context.max(axis=2) >= SATURATED).astype(np.float32), np.ones((3, 3), np.uint8))
    core = (slice(pad_top, pad_top + core_h), slice(pad_left, pad_left + core_w))
    result = np.zeros((core_h, core_w) + image.shape[2:], np.float32)
    lo, hi = math.floor(float(position.min())), math.ceil(float(position.max()))
    for index in range(max(lo - 1, 0), min(hi + 1, len(levels) - 1) + 1):
        weight = level_weight(position, index, feather)[core]
        if float(weight.max()) < 1e-4:
            continue
        if index == 0:
            restored = context[core]
        else:
            kernel = psf_for(levels[index], psf)
            keep = np.clip(position - np.float32(index - 1), 0.0, 1.0) * unclipped
            if feather > 0:
                keep = cv2.GaussianBlur(keep, (0, 0), feather, borderType=cv2.BORDER_REFLECT_101)
            tapered = edge_taper(context, kernel, margin // 2, keep, workers)
            restored = deconvolve(tapered, kernel, workers=workers, **solver)[core]
        result += (weight[..., None] if result.ndim == 3 else weight) * restored
    return result


def _mirrored(index: np.ndarray, n: int) -> np.ndarray:
    """Indices beyond [0, n) reflected back (…2 1 | 0 1 2 … n−1 | n−2 …), repeatedly for short axes."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    index = np.mod(index, period)
    return np.where(index < n, index, period - index)
