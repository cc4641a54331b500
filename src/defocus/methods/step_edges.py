"""Calibrating an edge measure from first principles: rendered step edges of known Gaussian blur.

An edge-based estimator measures something at an edge (a patch rank, a DCT ratio) that changes monotonically with
σ. Running exactly the same measurement on ideal step edges blurred by known σ gives the curve that turns the
measure into σ, with no real photo involved (``xu-2017``, ``ma-2020``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

#: σ (px) of the rendered edges.
CALIBRATION_SIGMAS = np.round(np.arange(0.0, 6.01, 0.25), 2)
#: Edge orientations (degrees), off the pixel grid's axes and diagonals.
CALIBRATION_ANGLES = (7.0, 23.0, 41.0, 66.0)


def rendered_step(sigma: float, angle_deg: float, size: int = 41) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A step edge (0.2 → 0.8) through the centre of a ``size``×``size`` image at ``angle_deg``, blurred by a
    Gaussian of σ px (pixel area included as a box of variance 1/12): float64 image, and the rows and columns of the
    pixels within half a pixel of the edge, away from the image border."""
    c = (size - 1) / 2.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    nx, ny = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    d = (x - c) * nx + (y - c) * ny
    image = 0.2 + 0.6 * ndtr(d / math.sqrt(sigma**2 + 1.0 / 12.0))
    inner = np.abs(d) <= 0.5
    inner[: size // 4] = inner[-size // 4 :] = False
    inner[:, : size // 4] = inner[:, -size // 4 :] = False
    ys, xs = np.nonzero(inner)
    return image, ys, xs


def step_edge_curve(measure, size: int, sigmas=CALIBRATION_SIGMAS,
                    angles=CALIBRATION_ANGLES) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``measure(image, ys, xs)`` (one value per edge pixel) over the edge pixels of :func:`rendered_step`
    at every angle, for every σ.

    Returns
    -------
    sigmas, values : ndarray (K,), float64
    """
    values = []
    for sigma in sigmas:
        per_angle = [measure(*rendered_step(float(sigma), angle, size=size)) for angle in angles]
        values.append(float(np.mean(np.concatenate(per_angle))))
    return np.asarray(sigmas, np.float64), np.asarray(values)


def curve_to_sigma(value: np.ndarray, sigmas: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """σ for measured values, by linear interpolation of a monotone calibration ``curve`` over ``sigmas``
    (clipped to its σ range); along a flat stretch the smallest σ of that value is taken."""
    c, idx = np.unique(curve, return_index=True)  # np.interp needs increasing abscissae
    return np.interp(value, c, sigmas[idx])
