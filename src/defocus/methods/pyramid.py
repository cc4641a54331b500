"""Defocus maps at any resolution: run an estimator over an image pyramid and keep, at each pixel, the level whose
range fits the blur found there.

Why: the edge-based estimators measure σ from a few pixels around each edge and are built for σ up to about 5 px
(they clip there, and an edge blurred far beyond the width of their filters is not even detected). In a 2-MP or
24-MP photo the background of a shallow depth of field is blurred by tens of pixels, so at the photo's own
resolution it reads as "5 px" at best, and the propagation fills it from whatever edges are found. Halving the
image halves every σ: at pyramid level k (the photo area-downsampled by 2^k) a blur of σ photo pixels measures
σ / 2^k level pixels, inside the estimator's range once 2^k is large enough.

How the levels are combined (coarse over fine): the finest level is the start; then, for k = 1, 2, …, a pixel
takes level k's estimate (× 2^k) where that level measures at least ``accept[1]`` level pixels, keeps the finer
result where it measures at most ``accept[0]``, and blends linearly in between. A blur that a coarse level can
resolve (≥ ``accept`` of its pixels) is one the finer levels see at ≥ 2× that, at or past the end of their range;
a blur a coarse level calls small is left to the finer levels, which resolve it better. With the default
``accept = (1.5, 2.5)`` a level-1 estimate replaces the full-resolution one only from σ ≈ 3–5 photo px on, so
photos whose blur fits the estimator's range keep (almost) the single-scale map.

Area downsampling by 2 keeps the pixel-integration blur of an ideal sensor at the new pixel size, so a Gaussian
σ in photo pixels becomes exactly σ / 2 level pixels; the maps of coarse levels are upsampled bilinearly.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import DefocusError
from .. import registry
from ..registry import Method

#: Default accept ramp (level px): a coarse level's estimate is taken from accept[0] (weight 0) to accept[1] (1).
ACCEPT = (1.5, 2.5)
#: The estimator run at each level unless ``base`` names another.
BASE = "karaali-jung-2018"
#: The coarsest level's shorter side is kept at or above this (px): edge detectors need some context.
MIN_SIDE = 64


def pyramid_levels(shape: tuple[int, int], levels: int | str = "auto", min_side: int = MIN_SIDE) -> int:
    """Number of levels above the full-resolution one: ``levels`` itself, or for ``"auto"`` as many halvings as
    keep the shorter side ≥ ``min_side`` px (0 for an image already smaller)."""
    if levels == "auto":
        short = min(shape[:2])
        return max(0, int(math.floor(math.log2(max(short, 1) / min_side)))) if short >= min_side else 0
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 0:
        raise DefocusError(f"levels must be 'auto' or an integer >= 0, not {levels!r}")
    return int(levels)


def check_accept(accept) -> tuple[float, float]:
    """``accept`` as two floats, refused unless ``0 < accept[0] < accept[1]`` (level px)."""
    lo, hi = float(accept[0]), float(accept[1])
    if not 0.0 < lo < hi:
        raise DefocusError(f"accept must be two increasing positive numbers (level px), not {accept!r}")
    return lo, hi


def acceptance(sigma_level: np.ndarray, accept: tuple[float, float] = ACCEPT) -> np.ndarray:
    """Weight in [0, 1] of a coarse level's estimate: 0 at or below ``accept[0]`` level px, 1 at or above
    ``accept[1]``, linear between."""
    lo, hi = float(accept[0]), float(accept[1])
    return np.clip((sigma_level - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def pyramid_estimate(predict, image: np.ndarray, levels: int | str = "auto", accept=ACCEPT,
                     min_side: int = MIN_SIDE) -> np.ndarray:
    """Defocus map of ``image`` combined over an image pyramid (see the module docstring).

    Parameters
    ----------
    predict : callable
        ``image (h, w, 3) float32 -> σ map (h, w)`` in the pixels of the image it is given.
    image : ndarray (H, W, 3), float32 in [0, 1]
    levels : int ≥ 0 or "auto"
        Levels above full resolution (0: the single-scale map); "auto" as in :func:`pyramid_levels`.
    accept : (float, float)
        Accept ramp in level px, ``0 < accept[0] < accept[1]``.
    min_side : int
        Smallest shorter side (px) of a level under ``levels="auto"``.

    Returns
    -------
    ndarray (H, W), float32
        Gaussian σ in photo px (≥ 0).
    """
    accept = check_accept(accept)
    h, w = image.shape[:2]
    n = pyramid_levels((h, w), levels, min_side)
    sigma = np.asarray(predict(image), np.float32)
    level = image
    for k in range(1, n + 1):
        lh, lw = max(1, level.shape[0] // 2), max(1, level.shape[1] // 2)
        level = cv2.resize(level, (lw, lh), interpolation=cv2.INTER_AREA)
        coarse = np.asarray(predict(level), np.float32)
        weight = cv2.resize(acceptance(coarse, accept), (w, h), interpolation=cv2.INTER_LINEAR)
        if not weight.any():
            continue
        up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(2 ** k)
        sigma += weight * (up - sigma)
    return np.maximum(sigma, 0.0)


class Pyramid(Method):
    """Any registered defocus-map estimator run over an image pyramid, σ scaled back to the photo's pixels.

    Parameters
    ----------
    base : str
        The estimator to run at each level (a ``dme`` method name other than a pyramid); default :data:`BASE`.
    levels : int ≥ 0 or "auto"
        Levels above full resolution; "auto" halves while the shorter side stays ≥ ``min_side`` px.
    accept : (float, float)
        Level px at which a coarser level's estimate starts to be taken (weight 0) and fully replaces the finer
        one (weight 1).
    min_side : int
        Smallest shorter side of a level under ``levels="auto"`` (px).
    base_options : dict, optional
        Options of the base estimator (checked by :func:`defocus.load` against that estimator's own).
    """

    task = "dme"
    summary = "Any defocus-map estimator over an image pyramid: each pixel from the level whose range fits its blur"
    paper = ("defocus (this toolkit): pyramid combination for maps at any resolution; levels by area halving, "
             "coarse estimates taken where they measure >= 1.5-2.5 level px")

    def __init__(self, device: str = "cpu", base: str = BASE, levels: int | str = "auto",
                 accept: tuple[float, float] = ACCEPT, min_side: int = MIN_SIDE,
                 base_options: dict | None = None) -> None:
        super().__init__(device=device)
        if registry.describe(base).target == f"{__name__}:{type(self).__name__}":
            raise DefocusError("pyramid: base must be another estimator, not 'pyramid' itself")
        if registry.describe(base).task != "dme":
            raise DefocusError(f"pyramid: base {base!r} is not a defocus-map estimator (task dme)")
        pyramid_levels((1, 1), levels)  # refuse a bad value now, not at the first image
        self.base = registry.load(base, device=device, **(base_options or {}))
        self.levels, self.accept, self.min_side = levels, check_accept(accept), int(min_side)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Defocus map, float32 (H, W), Gaussian σ in photo px."""
        return pyramid_estimate(self.base.predict, image, self.levels, self.accept, self.min_side)
