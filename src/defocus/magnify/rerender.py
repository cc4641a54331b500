"""Defocus magnification: a photo re-rendered with K times its defocus blur, through the synthetic engine's lens.

After Bae & Durand (Eurographics 2007): estimate the blur of every pixel, scale it, and re-blur the photo so that
a pixel's blur reaches the scaled amount — a shallower depth of field from the same shot. The rendering here is the
layered, occlusion-aware compositing of :func:`defocus.synth.render.render` in linear light:

* a pixel of disk (CoC) radius r (from its σ by the RTF table, :func:`defocus.units.sigma_to_radius`) should end at
  radius K·r. The photo already carries blur r, so it is blurred further by a disk of radius r·√(K² − 1): the
  second moments of successive blurs add (a disk of radius r has r²/4 per axis), and a disk of the summed moment is
  a close approximation of the true two-disk convolution;
* pixels with r ≤ ``sharp_radius`` are the in-focus subject: a front layer with a hard edge, never blurred, so it
  stays exactly as it was and no blurred background spreads over it;
* everything else is one background surface behind the subject whose blur orders its depth (more blur = farther;
  a blur map carries no sign, so every blurred region is taken to lie *behind* the focal plane unless ``in_front``
  marks it as a foreground, which then spreads over the subject). The background's colour and blur hidden behind
  nearer pixels are filled in from its visible surroundings (:func:`defocus.synth.scenes.fill`), so the subject's
  colours do not smear into a halo around it either;
* highlights that are clipped to white in the photo are un-clipped by ``highlight_gain`` before blurring, so that
  they spread into bright discs (bokeh) instead of dim smudges.
"""

from __future__ import annotations

import math

import numpy as np

from ..synth.dataset import SHARP_RADIUS
from ..synth.render import LEVELS, Layer, linear_to_srgb, render, srgb_to_linear
from ..synth.scenes import fill, unclip_highlights
from ..units import check_sigma_map, sigma_to_radius

#: Default gain by which the clipped white pixels of the blurred regions are un-clipped. How much brighter than white
#: a clipped highlight was cannot be read from the photo; on synthetic scenes (docs/magnify.md) 2 does slightly better
#: than none and 4 slightly worse.
HIGHLIGHT_GAIN = 2.0

#: Linear-light level above which all three channels of a pixel count as clipped (0.98 ≈ 0.99 sRGB, 253 of 255).
HIGHLIGHT_KNEE = 0.98

#: Ratio between consecutive blur levels beyond the engine's last level (40 px), as the engine's levels are spaced.
_LEVEL_STEP = 1.08


def extra_radius(radius: np.ndarray, amount: float) -> np.ndarray:
    """Disk radius (px) that takes a blur of disk radius ``radius`` (px) to ``amount`` × ``radius``:
    √((K·r)² − r²) = r·√(K² − 1) (float32; 0 for K = 1)."""
    return (np.asarray(radius, dtype=np.float32) * np.float32(math.sqrt(max(amount * amount - 1.0, 0.0))))


def _levels_up_to(radius: float) -> np.ndarray:
    """The engine's blur levels, extended geometrically so that radii beyond 40 px (high-resolution photos) keep
    their blur instead of being clipped."""
    levels = [float(v) for v in LEVELS]
    while levels[-1] < radius:
        levels.append(levels[-1] * _LEVEL_STEP)
    return np.asarray(levels, dtype=np.float32)


def magnify(
    image: np.ndarray,
    sigma_map: np.ndarray,
    amount: float = 2.0,
    *,
    highlight_gain: float = HIGHLIGHT_GAIN,
    sharp_radius: float = SHARP_RADIUS,
    psf: str = "disk",
    exact: bool = False,
    in_front: np.ndarray | None = None,
) -> np.ndarray:
    """Re-render a photo with ``amount`` times its defocus blur (defocus magnification).

    Parameters
    ----------
    image : ndarray (H, W, 3), float32 sRGB in [0, 1]
    sigma_map : ndarray (H, W)
        The photo's defocus map, Gaussian σ in px (≥ 0, finite), e.g. from a ``dme`` method's ``predict``.
    amount : float
        K ≥ 1: every pixel's disk (CoC) radius is multiplied by K. K = 1 returns the photo unchanged.
    highlight_gain : float
        ≥ 1: clipped white pixels (every channel above :data:`HIGHLIGHT_KNEE` in linear light) are brightened by
        up to this factor before blurring, since the scene was brighter than the photo could store; 1 leaves them
        as stored. Saturated colours are left alone (scaling them would shift their hue once they clip again).
    sharp_radius : float
        Pixels whose disk radius is at most this (px; default 1, the synthetic engine's in-focus limit) are the
        in-focus subject and are left untouched.
    psf : {"disk", "gaussian"}
        Shape of the added blur: the disk of a real lens (hard-edged bokeh) or a Gaussian of matching σ.
    exact : bool
        Blur large radii at full resolution instead of at 1/2 or 1/4 (see :func:`defocus.synth.psf.blur`).
    in_front : ndarray (H, W) of bool, optional
        Pixels that lie in front of the focal plane (a branch across the lens, the ground at the bottom of the
        frame). A defocus map has no sign, so by default every blurred pixel is taken to lie *behind* the subject.
        The blurred pixels marked here form a front layer instead, nearer the more blurred they are, which spreads
        over the subject as a blurred foreground does.

    Returns
    -------
    ndarray (H, W, 3), float32 sRGB in [0, 1]; equal to ``image`` on the in-focus subject (with ``in_front``:
    within 1e-4 wherever no foreground spreads over it).

    Raises
    ------
    ValueError
        A malformed image, map or mask (wrong shape, non-finite or negative σ), K < 1 or a gain below 1.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3, not {image.shape}")
    sigma = check_sigma_map(sigma_map, image.shape[:2])
    if not (math.isfinite(amount) and amount >= 1.0):
        raise ValueError(f"amount must be a finite number >= 1, not {amount!r}")
    if not (math.isfinite(highlight_gain) and highlight_gain >= 1.0):
        raise ValueError(f"highlight_gain must be a finite number >= 1, not {highlight_gain!r}")
    if in_front is not None:
        in_front = np.asarray(in_front, dtype=bool)
        if in_front.shape != sigma.shape:
            raise ValueError(f"in_front mask is {'×'.join(map(str, in_front.shape))}, the photo "
                             f"{sigma.shape[0]}×{sigma.shape[1]}")
    radius = sigma_to_radius(sigma)
    background = radius > sharp_radius
    del sigma
    if amount == 1.0 or not background.any():
        return image.copy()

    extra = extra_radius(np.where(background, radius, np.float32(0)), amount)
    del radius
    linear = srgb_to_linear(image)
    color = unclip_highlights(linear, highlight_gain, HIGHLIGHT_KNEE, white_only=True)
    subject = ~background
    front = background & in_front if in_front is not None else np.zeros_like(background)
    behind = background & ~front
    ones = np.ones(background.shape, np.float32)
    zeros = np.zeros(background.shape, np.float32)
    # The back layer covers the frame: the blurred background, its colour and blur hidden behind nearer pixels
    # continued from where it is visible — or, with nothing behind the subject, the subject continued likewise.
    if behind.any():
        back = fill(np.concatenate([color, extra[..., None]], axis=2), behind)
        layers = [Layer(back[..., :3], ones, back[..., 3], name="background")]
        del back
        if subject.any():
            layers.append(Layer(linear, subject.astype(np.float32), zeros, name="in focus"))
    else:
        layers = [Layer(fill(linear, subject), ones, zeros, name="in focus")]
    if front.any():
        layers.append(Layer(color, front.astype(np.float32), -extra, name="in front"))
    levels = _levels_up_to(float(extra.max()))
    del extra, color
    out = linear_to_srgb(render(layers, psf, levels=levels, exact=exact).image)
    if not front.any():
        out[subject] = image[subject]  # exactly as stored (no 16-bit round trip through linear light)
    return out
