"""defocus.filters.noise: Immerkær's noise estimate."""

import cv2
import numpy as np
import pytest

from defocus.filters.noise import noise_std


@pytest.mark.parametrize("std", [0.005, 0.02, 0.05])
def test_white_noise_on_a_smooth_image_is_measured(std):
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.random((200, 240)).astype(np.float32), (0, 0), 8.0)
    ramp = np.linspace(0.2, 0.8, 240, dtype=np.float32)[None, :] + 0.5 * smooth
    noisy = ramp + rng.normal(0.0, std, ramp.shape).astype(np.float32)
    assert noise_std(noisy) == pytest.approx(std, rel=0.1)


def test_flat_linear_tiny_and_bad_input():
    assert noise_std(np.full((20, 20), 0.4)) == 0.0
    plane = np.add.outer(np.arange(30.0), 2 * np.arange(40.0)) / 100.0  # the mask cancels linear structure
    assert noise_std(plane) < 1e-6
    assert noise_std(np.zeros((2, 9))) == 0.0
    with pytest.raises(ValueError):
        noise_std(np.zeros((4, 4, 3)))
