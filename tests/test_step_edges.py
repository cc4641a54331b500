"""Rendered step edges and monotone calibration curves (defocus.methods.step_edges)."""

import numpy as np
import pytest

from defocus.methods.step_edges import curve_to_sigma, rendered_step, step_edge_curve


def test_rendered_step_is_centred_and_its_edge_pixels_sit_on_it():
    image, ys, xs = rendered_step(1.5, 23.0, size=41)
    assert image.shape == (41, 41) and image.min() >= 0.2 and image.max() <= 0.8
    assert len(ys) > 10 and np.all(np.abs(image[ys, xs] - 0.5) < 0.2)
    assert ys.min() >= 10 and ys.max() < 31 and xs.min() >= 10 and xs.max() < 31  # away from the border


def test_step_edge_curve_averages_the_measure_over_angles_and_pixels():
    sigmas, values = step_edge_curve(lambda image, ys, xs: np.full(len(ys), 2.0), size=21,
                                     sigmas=np.array([0.0, 1.0]), angles=(10.0, 50.0))
    np.testing.assert_array_equal(sigmas, [0.0, 1.0])
    np.testing.assert_array_equal(values, [2.0, 2.0])


def test_curve_to_sigma_inverts_either_direction_and_takes_the_smallest_sigma_of_a_flat_stretch():
    sigmas = np.array([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(curve_to_sigma(np.array([0.5, 2.5]), sigmas, np.array([0.0, 1.0, 2.0, 3.0])),
                               [0.5, 2.5])
    np.testing.assert_allclose(curve_to_sigma(np.array([9.0, 7.0]), sigmas, np.array([10.0, 8.0, 6.0, 6.0])),
                               [0.5, 1.5])
    assert curve_to_sigma(np.array([6.0]), sigmas, np.array([10.0, 8.0, 6.0, 6.0]))[0] == pytest.approx(2.0)
