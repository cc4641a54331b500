"""Point-spread functions of a defocused lens and fast convolution with them.

The shapes:

* **disk** (pillbox) — the geometric-optics PSF of a defocused thin lens: a uniform disk whose radius is the radius of
  the circle of confusion (CoC). The kernel value of a pixel is the fraction of that pixel's square covered by the
  disk (computed by supersampling), so sub-pixel radii and the rim are anti-aliased and a radius of 0 is the identity.
* **gaussian** — the smooth PSF most DME methods assume; its σ is the one that matches a disk of the same CoC radius
  by the RTF table (:func:`defocus.units.radius_to_sigma`), so one CoC map describes both.
* **lens profiles** — a disk of the same radius whose brightness varies with the distance from its centre, as real
  lenses' out-of-focus discs do (:data:`LENS_PROFILES`): ``"bubble"``, a bright rim (over-corrected spherical
  aberration, "soap-bubble" bokeh); ``"spherical"``, a bright core fading to the rim (under-corrected spherical
  aberration, the other side of focus); ``"onion"``, concentric ripples (the rings that aspherical elements moulded
  with a slightly uneven surface print on every disc).
* **cat's eye** — ``"cats_eye:K:S"``: the disc clipped by a second disc of the same radius shifted by S/100 ×
  radius in direction K·45° (K = 0…7, x right, y down; S in :data:`CATS_EYE_SHIFTS`), the lens shape that
  mechanical vignetting gives out-of-focus discs away from the frame's centre (the barrel cuts the aperture's image).

All kernels are float32, square, of odd size, and sum to 1. All but the cat's eyes are point-symmetric; a cat's-eye
kernel is stored point-reflected, so that :func:`convolve` (a correlation) applies the PSF itself.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from ..units import radius_to_sigma

#: Relative brightness across a lens-profile disc, as a function of ρ = distance from the centre / radius in [0, 1].
LENS_PROFILES = {
    "bubble": lambda rho: 0.35 + 1.65 * rho ** 4,
    "spherical": lambda rho: 1.0 - 0.8 * rho ** 2,
    "onion": lambda rho: 1.0 + 0.3 * np.cos(6.0 * np.pi * rho),
}

#: Directions of the cat's-eye kernels (K·45°) and the shifts of the clipping disc, in hundredths of the radius.
CATS_EYE_DIRECTIONS = 8
CATS_EYE_SHIFTS = (30, 60)
CATS_EYE_KINDS = tuple(f"cats_eye:{k}:{s}" for s in CATS_EYE_SHIFTS for k in range(CATS_EYE_DIRECTIONS))

#: The point-symmetric kinds (a PSF for every pixel of a frame); the cat's eyes come on top of them.
PSF_KINDS = ("disk", "gaussian", *LENS_PROFILES)

#: Sub-samples per pixel side used to integrate the disk over each pixel.
_SUPERSAMPLE = 16


@lru_cache(maxsize=512)
def _disk_cached(radius_milli: int, profile: str = "disk") -> np.ndarray:
    radius = radius_milli / 1000.0
    half = int(math.ceil(radius - 0.5)) if radius > 0.5 else 0
    n = 2 * half + 1
    # Sub-pixel sample positions, centred in each of _SUPERSAMPLE² cells of every pixel.
    offs = (np.arange(_SUPERSAMPLE, dtype=np.float64) + 0.5) / _SUPERSAMPLE - 0.5
    coords = (np.arange(n, dtype=np.float64) - half)[:, None] + offs[None, :]  # (n, S)
    r2 = coords[:, None, :, None] ** 2 + coords[None, :, None, :] ** 2  # (n, n, S, S)
    inside = r2 <= radius * radius
    if profile in CATS_EYE_KINDS:  # reflected: the clipping disc sits on the far side (see the module docstring)
        _, direction, shift = profile.split(":")
        angle, shift = int(direction) * 2.0 * math.pi / CATS_EYE_DIRECTIONS, int(shift) / 100.0 * radius
        cx, cy = -shift * math.cos(angle), -shift * math.sin(angle)
        inside = inside & ((coords[None, :, None, :] - cx) ** 2 + (coords[:, None, :, None] - cy) ** 2
                           <= radius * radius)
    elif profile != "disk" and radius > 0:
        inside = inside * LENS_PROFILES[profile](np.sqrt(np.minimum(r2, radius * radius)) / radius)
    kernel = inside.mean(axis=(2, 3))
    if kernel.sum() <= 0:  # radius below the sampling resolution: all light falls in the centre pixel
        kernel = np.zeros((n, n))
        kernel[half, half] = 1.0
    kernel = (kernel / kernel.sum()).astype(np.float32)
    kernel.setflags(write=False)
    return kernel


def disk(radius: float) -> np.ndarray:
    """Anti-aliased pillbox PSF.

    Parameters
    ----------
    radius : float
        CoC radius in pixels, ≥ 0 (sub-pixel values allowed; resolved to 0.001 px).

    Returns
    -------
    ndarray of shape (2k+1, 2k+1), float32, summing to 1, with k = ceil(radius − 0.5). Read-only (cached).
    """
    if not np.isfinite(radius) or radius < 0:
        raise ValueError(f"disk radius must be a finite number >= 0, not {radius!r}")
    return _disk_cached(int(round(radius * 1000)))


@lru_cache(maxsize=512)
def _gaussian_cached(sigma_milli: int) -> np.ndarray:
    sigma = sigma_milli / 1000.0
    if sigma <= 0:
        return np.ones((1, 1), np.float32)
    half = max(1, int(math.ceil(3.5 * sigma)))
    edges = (np.arange(-half, half + 2, dtype=np.float64) - 0.5) / (sigma * math.sqrt(2.0))
    # Integrate the Gaussian over each pixel (not point-sample it), so small σ stay accurate.
    cdf = 0.5 * (1.0 + np.array([math.erf(e) for e in edges]))
    g = np.diff(cdf)
    kernel = np.outer(g, g)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    kernel.setflags(write=False)
    return kernel


def gaussian(sigma: float) -> np.ndarray:
    """Gaussian PSF of standard deviation ``sigma`` px, integrated over each pixel; σ = 0 is the identity.

    Returns
    -------
    ndarray of shape (2k+1, 2k+1), float32, summing to 1, with k = max(1, ceil(3.5σ)) (1×1 for σ = 0). Read-only.
    """
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"gaussian sigma must be a finite number >= 0, not {sigma!r}")
    return _gaussian_cached(int(round(sigma * 1000)))


def kernel(radius: float, kind: str = "disk") -> np.ndarray:
    """PSF of a given CoC radius (px): ``"disk"`` of that radius, ``"gaussian"`` of the matching σ, or a disk of that
    radius with one of the :data:`LENS_PROFILES`."""
    if kind == "disk":
        return disk(radius)
    if kind == "gaussian":
        return gaussian(float(radius_to_sigma(np.float64(radius))))
    if kind in LENS_PROFILES or kind in CATS_EYE_KINDS:
        disk(radius)  # the same argument check
        return _disk_cached(int(round(radius * 1000)), kind)
    raise ValueError(f"PSF kind must be one of {PSF_KINDS} or {CATS_EYE_KINDS}, not {kind!r}")


def convolve(image: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Convolve an H×W or H×W×C float32 image with a PSF; borders are mirrored (no darkening at the frame edge)."""
    if psf.shape == (1, 1):
        return np.array(image, dtype=np.float32, copy=True)
    # The PSFs here are point-symmetric, so OpenCV's correlation equals convolution.
    return cv2.filter2D(np.ascontiguousarray(image, dtype=np.float32), -1, psf, borderType=cv2.BORDER_REFLECT_101)


def _reduction(radius: float) -> int:
    """Down-sampling factor used to blur with a large PSF: the blurred result has no detail finer than the PSF, so
    it is computed at reduced resolution with the PSF still at least 3 px in radius there, then interpolated back."""
    if radius < 6.0:
        return 1
    if radius < 12.0:
        return 2
    return 4


def footprint(radius: float, kind: str = "disk", *, exact: bool = False) -> int:
    """How far (px) :func:`blur` can move light: the PSF's half-size plus the reach of the resampling it uses."""
    if radius <= 0:
        return 0
    factor = 1 if exact else _reduction(radius)
    half = kernel(radius / factor, kind).shape[0] // 2
    return half * factor + (3 * factor if factor > 1 else 0) + 1


def blur(image: np.ndarray, radius: float, kind: str = "disk", *, exact: bool = False) -> np.ndarray:
    """Blur an image with the PSF of CoC radius ``radius`` px.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C), float32
    radius : float
        CoC radius in pixels (≥ 0).
    kind : {"disk", "gaussian"}
    exact : bool
        If false (default), radii ≥ 6 px are convolved at 1/2 (≥ 12 px: 1/4) resolution with the scaled PSF and
        resized back (area down-sampling, bicubic up-sampling), about 10× faster with no visible difference;
        if true, always at full resolution.

    Returns
    -------
    ndarray of the input's shape, float32.
    """
    image = np.asarray(image, dtype=np.float32)
    factor = 1 if exact else _reduction(radius)
    h, w = image.shape[:2]
    if factor == 1 or min(h, w) < 8 * factor:
        return convolve(image, kernel(radius, kind))
    ph, pw = -h % factor, -w % factor
    padded = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_REFLECT_101) if (ph or pw) else image
    small = cv2.resize(padded, ((w + pw) // factor, (h + ph) // factor), interpolation=cv2.INTER_AREA)
    small = convolve(small, kernel(radius / factor, kind))
    out = cv2.resize(small, (w + pw, h + ph), interpolation=cv2.INTER_CUBIC)
    out = out[:h, :w]
    if out.ndim == 2 and image.ndim == 3:  # OpenCV drops a trailing axis of length 1
        out = out[..., None]
    return np.ascontiguousarray(out, dtype=np.float32)
