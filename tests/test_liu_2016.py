"""liu-2016 (two-parameter edge model) on rendered edges whose blur on each side is known."""

from pathlib import Path

import numpy as np
import pytest

import defocus
from defocus.cli import main
from defocus.methods import liu_2016

from conftest import half_blurred
from test_dme_classic import _blurred_step, _half_and_half, _srgb_image

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flower.jpg"


def _two_piece(sigma_left: float, sigma_right: float, h: int = 64, w: int = 96, x0: float = 47.3, angle: float = 0.0):
    """Edge 0.2 → 0.8 (bright on the right) whose derivative has std σ_left left of the edge, σ_right right of it."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = (xx - x0) * np.cos(angle) + (yy - h / 2) * np.sin(angle)
    return _srgb_image(0.2 + 0.6 * liu_2016.two_piece_edge(sigma_left, sigma_right, d))


def _inner(e):
    return (e["ys"] > 8) & (e["ys"] < 56)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_step_edge_of_known_sigma_is_recovered(sigma):
    image = _srgb_image(_blurred_step(sigma))
    method = defocus.load("liu-2016")
    e = method.edges(image)
    inner = _inner(e)
    assert inner.sum() >= 40
    np.testing.assert_allclose(e["plus"][inner], sigma, rtol=0.10)
    np.testing.assert_allclose(e["minus"][inner], sigma, rtol=0.10)
    assert np.median(e["confidence"][inner]) > 0.9  # same blur both sides: a pattern edge
    dense = method.predict(image)
    assert dense.shape == image.shape[:2] and dense.dtype == np.float32
    np.testing.assert_allclose(dense[8:-8, 40:56], sigma, rtol=0.10)


@pytest.mark.parametrize("left, right, angle", [(1.0, 3.0, 0.0), (3.0, 1.0, 0.5), (0.5, 2.5, 0.0), (2.0, 4.0, 0.3)])
def test_depth_edge_gets_each_side_right(left, right, angle):
    e = defocus.load("liu-2016").edges(_two_piece(left, right, angle=angle))
    inner = _inner(e)
    # The gradient points to the bright (right) side: + is the right.
    assert abs(np.median(e["plus"][inner]) - right) <= max(0.1 * right, 0.1)
    assert abs(np.median(e["minus"][inner]) - left) <= max(0.1 * left, 0.1)
    assert np.median(e["confidence"][inner]) < 0.2  # a depth edge


def test_depth_edge_dense_map_keeps_the_two_sides_apart():
    image = _two_piece(1.0, 3.0)
    dense = defocus.load("liu-2016").predict(image)
    left, right = np.median(dense[8:-8, 30:44]), np.median(dense[8:-8, 51:65])
    assert right > left + 1.0, (left, right)


def test_calibration_maps_symmetric_widths_near_themselves():
    sigma = np.array([0.5, 1.0, 2.0, 3.5, 4.5])
    plus, minus = liu_2016.two_sided_sigma(sigma, sigma)
    # The re-blur mixes the sides only where they differ; a symmetric edge's raw widths are nearly σ already.
    np.testing.assert_allclose(plus, sigma, atol=0.25)
    np.testing.assert_allclose(minus, sigma, atol=0.25)
    lone, _ = liu_2016.two_sided_sigma(np.array([2.0]), np.array([np.nan]))  # one side missing: the other's width
    assert np.isfinite(lone).all()


def test_tv_weight_raises_pattern_edges_and_lowers_depth_edges():
    method = defocus.load("liu-2016")
    method.sparse(_srgb_image(_blurred_step(2.0)))
    assert method.tv_weight((64, 96))[32, 47] > 1.5
    method.sparse(_two_piece(1.0, 3.0))
    assert method.tv_weight((64, 96))[32, 47] < 0.5


def test_blurred_half_has_larger_sigma():
    image = _half_and_half(np.random.default_rng(0), 2.5)  # the DME suite's scene: grey blocks, right half blurred
    dense = defocus.load("liu-2016").predict(image)
    assert np.median(dense[:, 56:-8]) > np.median(dense[:, 8:40]) + 0.8


def test_flat_and_tiny_images_give_finite_maps():
    method = defocus.load("liu-2016")
    rng = np.random.default_rng(0)
    for image in (np.full((40, 50, 3), 0.5, np.float32), np.zeros((3, 4, 3), np.float32),
                  rng.random((2, 7, 3)).astype(np.float32), rng.random((5, 5, 3)).astype(np.float32)):
        out = method.predict(image)
        assert out.shape == image.shape[:2] and out.dtype == np.float32
        assert np.all(np.isfinite(out)) and out.min() >= 0


def test_working_grid_is_used_on_larger_images():
    image, _ = half_blurred(h=200, w=300, sigma=2.5)
    out = defocus.load("liu-2016", max_pixels=5_000).predict(image)
    assert out.shape == (200, 300) and np.all(np.isfinite(out))
    assert np.median(out[:, 170:-10]) > np.median(out[:, 10:130]) + 0.8


def test_registered_as_dme_and_cli_runs(tmp_path):
    assert defocus.describe("liu-2016").task == "dme"
    assert main(["estimate", "-m", "liu-2016", str(EXAMPLE), "-o", str(tmp_path)]) == 0
    assert any(tmp_path.iterdir())
