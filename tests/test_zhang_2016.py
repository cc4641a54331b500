"""zhang-2016 (edge blur + KNN matting): what tests/test_dme_classic.py (which lists it) does not already check."""

from pathlib import Path

import numpy as np
import pytest

import defocus
from defocus.cli import main

from conftest import half_blurred

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flower.jpg"


def test_working_grid_is_used_on_larger_images():
    image, _ = half_blurred(h=200, w=300, sigma=2.5)
    out = defocus.load("zhang-2016", max_pixels=5_000).predict(image)
    assert out.shape == (200, 300) and np.all(np.isfinite(out))
    assert np.median(out[:, 170:-10]) > np.median(out[:, 10:130]) + 0.8


def test_one_pixel_and_noise_images_give_finite_maps():
    method = defocus.load("zhang-2016")
    rng = np.random.default_rng(0)
    for image in (rng.random((1, 1, 3)).astype(np.float32), rng.random((5, 5, 3)).astype(np.float32)):
        out = method.predict(image)
        assert out.shape == image.shape[:2] and np.all(np.isfinite(out)) and out.min() >= 0


def test_options_are_checked():
    with pytest.raises(ValueError):
        defocus.load("zhang-2016", std1=2.0, std2=1.0)


def test_cli_runs_on_an_example(tmp_path):
    assert main(["estimate", "-m", "zhang-2016", str(EXAMPLE), "-o", str(tmp_path)]) == 0
    assert any(tmp_path.iterdir())
