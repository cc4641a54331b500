"""Defocus deblurring: spatially varying non-blind deconvolution driven by a defocus map.

Usage (``image`` from :func:`defocus.read_image`)::

    from defocus.deblur import deblur
    sharp = deblur(image)                         # σ map from the default estimator
    sharp = deblur(image, estimator="zhuo-sim")   # any name from defocus.available("dme")
    sharp = deblur(image, sigma_map)              # a map you have (Gaussian σ in px, H×W)

The map is quantised into σ levels; the photo is deconvolved once per level with a hyper-Laplacian prior
(Krishnan & Fergus, NIPS 2009; :mod:`.hyperlaplacian`) and the results are blended by the map (:mod:`.levels`).
``defocus deblur`` is the command line (:mod:`.command`); docs/deblur.md explains the choices and their scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .hyperlaplacian import deconvolve
from ..units import check_sigma_map
from .levels import PSFS, deconvolve_map, sigma_levels

#: Defaults of :func:`deblur`, measured on synthetic training scenes (docs/deblur.md).
DEFAULTS: dict[str, Any] = dict(psf="gaussian", data_weight=300.0, alpha=2.0 / 3.0, linear=True, min_sigma=0.5,
                                ratio=1.25, feather=1.5, tile=512)


def estimate_sigma(image: np.ndarray, estimator: Any = None) -> np.ndarray:
    """The defocus map (σ px, H×W float32 ≥ 0) of ``image`` by ``estimator``: a registered DME method's name
    (default :data:`defocus.registry.DEFAULT_ESTIMATOR`) or a loaded method with ``.predict``."""
    from .. import registry

    method = registry.load(estimator or registry.DEFAULT_ESTIMATOR) if estimator is None or isinstance(
        estimator, str) else estimator
    if getattr(method, "task", "dme") != "dme":
        raise ValueError(f"{method.name!r} is a blur detector (DBD), not a defocus-map estimator (DME)")
    sigma = np.asarray(method.predict(image), np.float32)
    return np.maximum(check_sigma_map(sigma, image.shape[:2], f"the map of {getattr(method, 'name', method)!r}"), 0)


def deblur(
    image: np.ndarray,
    sigma_map: np.ndarray | None = None,
    *,
    estimator: Any = None,
    psf: str = DEFAULTS["psf"],
    data_weight: float = DEFAULTS["data_weight"],
    alpha: float = DEFAULTS["alpha"],
    linear: bool = DEFAULTS["linear"],
    min_sigma: float = DEFAULTS["min_sigma"],
    ratio: float = DEFAULTS["ratio"],
    feather: float = DEFAULTS["feather"],
    tile: int | None = DEFAULTS["tile"],
    workers: int = 2,
) -> np.ndarray:
    """Remove defocus blur from a photo, given (or estimating) its defocus map.

    Parameters
    ----------
    image : ndarray (H, W, 3), float32 sRGB in [0, 1]
        As :func:`defocus.read_image` returns.
    sigma_map : ndarray (H, W), optional
        Gaussian σ of the blur in px at each pixel (≥ 0, finite), as ``defocus estimate`` writes. Without it the map
        is estimated by ``estimator``.
    estimator : str or method, optional
        A DME method name (``defocus.available("dme")``) or a loaded method; default
        :data:`defocus.registry.DEFAULT_ESTIMATOR`. Not allowed together with ``sigma_map``.
    psf : {"gaussian", "disk"}
        PSF shape per level: a Gaussian of the level's σ, or the disk of the equivalent CoC radius
        (:func:`defocus.units.sigma_to_radius`).
    data_weight : float
        λ of the solver (> 0): higher is sharper and noisier; the default suits 8-bit JPEG photos.
    alpha : float
        Exponent of the hyper-Laplacian gradient prior, in (0, 1].
    linear : bool
        Deconvolve in linear light (undo the sRGB curve first) instead of on the sRGB values.
    min_sigma : float
        σ (px) at or below which a pixel counts as in focus and is left as it is.
    ratio : float
        Ratio between successive σ levels (> 1); smaller is more levels, more exact, slower.
    feather : float
        σ (px) of the spatial smoothing of the level weights, so a jump of the map does not leave a seam.
    tile : int or None
        Tile side (px) for bounded memory; None processes the image in one piece.
    workers : int
        FFT threads.

    Returns
    -------
    ndarray (H, W, 3), float32 sRGB in [0, 1].
    """
    from ..registry import as_photo

    image = as_photo(image)
    if sigma_map is None:
        sigma = estimate_sigma(image, estimator)
    elif estimator is not None:
        raise ValueError("give either sigma_map or estimator, not both")
    else:
        sigma = check_sigma_map(sigma_map, image.shape[:2])
    if psf not in PSFS:
        raise ValueError(f"psf must be one of {PSFS}, not {psf!r}")
    work = image
    if linear:
        from ..synth.render import srgb_to_linear

        work = srgb_to_linear(image)
    restored = deconvolve_map(work, sigma, psf=psf, min_sigma=min_sigma, ratio=ratio, feather=feather, tile=tile,
                              workers=workers, weight=data_weight, alpha=alpha)
    if linear:
        from ..synth.render import linear_to_srgb

        return linear_to_srgb(np.clip(restored, 0.0, 1.0))
    return np.clip(restored, 0.0, 1.0)


__all__ = ["DEFAULTS", "PSFS", "deblur", "deconvolve", "deconvolve_map", "estimate_sigma", "sigma_levels"]
