"""zhang-2016 (edge blur + KNN matting) on generated edges and textures whose blur is known."""

from pathlib import Path

import numpy as np
import pytest

import defocus
from defocus.cli import main

from conftest import half_blurred
from test_dme_classic import _blurred_step

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flower.jpg"


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_step_edge_of_known_sigma_is_recovered(sigma):
    image = np.repeat(_blurred_step(sigma)[..., None], 3, axis=2).astype(np.float32)  # zhuo-sim's grey model
    method = defocus.load("zhang-2016")
    sparse, known = method.sparse(image)
    inner = np.zeros_like(known)
    inner[8:-8, 8:-8] = True
    assert (known & inner).sum() >= 40
    np.testing.assert_allclose(sparse[known & inner], sigma, rtol=0.10)
    dense = method.predict(image)
    assert dense.shape == image.shape[:2] and dense.dtype == np.float32
    np.testing.assert_allclose(dense[8:-8, 40:56], sigma, rtol=0.10)


def test_blurred_half_has_larger_sigma():
    image, _ = half_blurred(sigma=2.5)
    dense = defocus.load("zhang-2016").predict(image)
    assert np.median(dense[:, 72:-8]) > np.median(dense[:, 8:56]) + 0.8


def test_working_grid_is_used_on_larger_images():
    image, _ = half_blurred(h=200, w=300, sigma=2.5)
    out = defocus.load("zhang-2016", max_pixels=5_000).predict(image)
    assert out.shape == (200, 300) and np.all(np.isfinite(out))
    assert np.median(out[:, 170:-10]) > np.median(out[:, 10:130]) + 0.8


def test_flat_and_tiny_images_give_finite_maps():
    method = defocus.load("zhang-2016")
    rng = np.random.default_rng(0)
    for image in (np.full((40, 50, 3), 0.5, np.float32), np.zeros((3, 4, 3), np.float32),
                  rng.random((1, 1, 3)).astype(np.float32), rng.random((5, 5, 3)).astype(np.float32)):
        out = method.predict(image)
        assert out.shape == image.shape[:2] and out.dtype == np.float32
        assert np.all(np.isfinite(out)) and out.min() >= 0


def test_options_are_checked():
    with pytest.raises(ValueError):
        defocus.load("zhang-2016", std1=2.0, std2=1.0)


def test_registered_as_dme_and_cli_runs(tmp_path):
    assert defocus.describe("zhang-2016").task == "dme"
    assert main(["estimate", "-m", "zhang-2016", str(EXAMPLE), "-o", str(tmp_path)]) == 0
    assert any(tmp_path.iterdir())
