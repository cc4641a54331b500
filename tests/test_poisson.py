"""defocus.filters.poisson.harmonic_interpolate: heat-diffusion fill-in of sparse values."""

from __future__ import annotations

import numpy as np
import pytest

from defocus.filters.poisson import harmonic_interpolate


def _linear_on_border_and_scattered(h: int, w: int, fraction: float = 0.01):
    yy, xx = np.mgrid[0:h, 0:w]
    f = 0.3 * xx - 0.2 * yy + 5.0
    known = np.zeros((h, w), bool)
    known[0] = known[-1] = True
    known[:, 0] = known[:, -1] = True
    known[np.random.default_rng(0).random((h, w)) < fraction] = True
    return f, known


@pytest.mark.parametrize("shape", [(40, 50), (301, 333)])  # one level; a pyramid of three
def test_harmonic_interpolation_of_a_linear_function_is_exact(shape):
    # A linear function has zero discrete Laplacian, so with its values fixed on the border it is the solution.
    f, known = _linear_on_border_and_scattered(*shape)
    u = harmonic_interpolate(f, known, max_iter=1000, tol=1e-12)
    np.testing.assert_allclose(u, f, atol=1e-4)
    np.testing.assert_array_equal(u[known], f[known].astype(np.float32))
    # The default iteration cap gets close (relative to the function's range of ~150).
    assert np.abs(harmonic_interpolate(f, known) - f).max() < 0.1


def test_unknown_pixels_are_the_mean_of_their_neighbours():
    rng = np.random.default_rng(1)
    values = rng.random((30, 40))
    known = rng.random((30, 40)) < 0.1
    u = harmonic_interpolate(values, known, max_iter=2000, tol=1e-12).astype(np.float64)
    p = np.pad(u, 1, mode="edge")  # insulated border: a missing neighbour counts as the pixel itself
    mean = (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]) / 4
    np.testing.assert_allclose(u[~known], mean[~known], atol=1e-4)
    assert u.min() >= values[known].min() - 1e-5 and u.max() <= values[known].max() + 1e-5  # maximum principle


def test_soft_data_weight_pulls_an_outlier_towards_its_neighbours():
    values = np.ones((20, 20))
    known = np.zeros((20, 20), bool)
    known[:, 5] = known[:, 15] = True
    values[10, 5] = 9.0
    hard = harmonic_interpolate(values, known)
    soft = harmonic_interpolate(values, known, data_weight=0.5)
    assert hard[10, 5] == pytest.approx(9.0)
    assert 1.0 < soft[10, 5] < 0.5 * hard[10, 5]


def test_nothing_known_gives_zeros_and_bad_arguments_are_refused():
    out = harmonic_interpolate(np.ones((5, 6)), np.zeros((5, 6), bool))
    assert out.shape == (5, 6) and out.dtype == np.float32 and not out.any()
    with pytest.raises(ValueError):
        harmonic_interpolate(np.ones((5, 6)), np.ones((5, 5), bool))
    with pytest.raises(ValueError):
        harmonic_interpolate(np.ones((5, 6)), np.ones((5, 6), bool), data_weight=0.0)


def test_a_capped_solve_is_upsampled_to_the_full_grid():
    f, known = _linear_on_border_and_scattered(200, 240, fraction=0.05)
    capped = harmonic_interpolate(f, known, max_pixels=20_000)
    assert capped.shape == f.shape
    assert np.abs(capped - f).max() < 1.5  # one pixel of the half-size grid is 0.36 in f
