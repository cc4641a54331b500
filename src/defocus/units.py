"""Unit conversions for defocus maps.

Defocus maps in defocus are Gaussian σ in pixels. The RTF dataset (D'Andrès et al., TIP 2016) gives ground truth as
the radius of a disk (pillbox) PSF and ships a 23-row table pairing each radius with the Gaussian σ that matches it;
that table is reproduced here and interpolated linearly between rows (and extrapolated linearly beyond them by the
slope of the last rows, since blur larger than the table is still blur).
"""

from __future__ import annotations

import numpy as np

#: RTF ``convertion.mat``: column 0 Gaussian σ (px), column 1 disk radius (px), 0.5 … 6.0 in steps of 0.25.
RTF_SIGMA_RADIUS = np.array(
    [
        [0.300, 0.50], [0.500, 0.75], [0.650, 1.00], [0.775, 1.25], [0.875, 1.50], [0.975, 1.75],
        [1.125, 2.00], [1.275, 2.25], [1.375, 2.50], [1.525, 2.75], [1.650, 3.00], [1.800, 3.25],
        [1.925, 3.50], [2.050, 3.75], [2.200, 4.00], [2.325, 4.25], [2.450, 4.50], [2.600, 4.75],
        [2.725, 5.00], [2.875, 5.25], [3.000, 5.50], [3.150, 5.75], [3.275, 6.00],
    ],
    dtype=np.float64,
)

UNITS = ("sigma", "radius")


def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    y = np.interp(x, xp, fp)
    hi_slope = (fp[-1] - fp[-5]) / (xp[-1] - xp[-5])
    y = np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * hi_slope, y)
    # Below the first row scale proportionally towards 0 (no blur is no blur in either unit).
    y = np.where(x < xp[0], np.maximum(x, 0) * (fp[0] / xp[0]), y)
    return y


def radius_to_sigma(radius: np.ndarray) -> np.ndarray:
    """Disk (circle-of-confusion) radius in px → equivalent Gaussian σ in px, by the RTF table. Returns float32."""
    return _interp(radius, RTF_SIGMA_RADIUS[:, 1], RTF_SIGMA_RADIUS[:, 0]).astype(np.float32)


def sigma_to_radius(sigma: np.ndarray) -> np.ndarray:
    """Gaussian σ in px → equivalent disk radius in px, by the RTF table. Returns float32."""
    return _interp(sigma, RTF_SIGMA_RADIUS[:, 0], RTF_SIGMA_RADIUS[:, 1]).astype(np.float32)


def convert(sigma: np.ndarray, units: str) -> np.ndarray:
    """A defocus map given as σ, in the requested ``units`` (``"sigma"`` or ``"radius"``)."""
    if units == "sigma":
        return np.asarray(sigma, dtype=np.float32)
    if units == "radius":
        return sigma_to_radius(sigma)
    raise ValueError(f"units must be one of {UNITS}, not {units!r}")


def check_sigma_map(sigma: np.ndarray, shape: tuple[int, int], name: str = "defocus map") -> np.ndarray:
    """A defocus map (σ px) as float32 H×W after checking it fits an image of ``shape`` (H, W): same size, real
    numbers, every value finite and ≥ 0; otherwise :class:`~defocus.errors.InputArrayError` (a ValueError), one line
    starting with ``name``."""
    from .errors import InputArrayError

    arr = np.asarray(sigma)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.shape != tuple(shape):
        raise InputArrayError(f"{name} is {'×'.join(map(str, arr.shape))} but the image is "
                              f"{shape[0]}×{shape[1]}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputArrayError(f"{name} must hold real numbers (σ in px), not {arr.dtype}")
    arr = arr.astype(np.float32)
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise InputArrayError(f"{name} has {bad} non-finite value(s)")
    if arr.size and float(arr.min()) < 0:
        raise InputArrayError(f"{name} has negative values (min {float(arr.min()):.3g}); σ is in px, ≥ 0")
    return arr
