"""andrade-2016: re-blur ratio at edges, heat-diffusion fill-in, guided filter (shared DME checks: test_dme_classic)."""

from __future__ import annotations

import numpy as np
import pytest

import defocus
from defocus.errors import UnknownOptionError


def _two_discs(blur_right: float, size: int = 96) -> np.ndarray:
    """Grey discs on a grey ground; the right half blurred by a Gaussian of ``blur_right`` px."""
    import cv2

    img = np.full((size, size), 0.3, np.float32)
    for cy in (24, 72):
        for cx in (24, 72):
            cv2.circle(img, (cx, cy), 14, 0.8, -1)
    blurred = cv2.GaussianBlur(img, (0, 0), blur_right)
    img[:, size // 2 :] = blurred[:, size // 2 :]
    return np.repeat(img[..., None], 3, axis=2)


def test_blurred_half_reads_larger_and_diffusion_fills_between_edges():
    sigma = defocus.load("andrade-2016").predict(_two_discs(2.5))
    assert np.median(sigma[:, 60:]) > np.median(sigma[:, :36]) + 1.0
    assert np.all(np.isfinite(sigma)) and sigma.min() >= 0 and sigma.max() <= 5


def test_options_change_the_result_and_unknown_ones_are_refused():
    image = _two_discs(2.0)
    plain = defocus.load("andrade-2016", radius=0).predict(image)
    filtered = defocus.load("andrade-2016").predict(image)
    soft = defocus.load("andrade-2016", data_weight=0.1).predict(image)
    assert not np.allclose(plain, filtered) and not np.allclose(plain, soft)
    with pytest.raises(UnknownOptionError):
        defocus.load("andrade-2016", sigma_s=3)
    with pytest.raises(ValueError):
        defocus.load("andrade-2016", std1=2.0, std2=1.0)
