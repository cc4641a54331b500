"""xu-2017 (rank of local patches) on generated edges and textures whose blur is known."""

from pathlib import Path

import cv2
import numpy as np
import pytest

import defocus
from defocus.cli import main
from defocus.methods import xu_2017

from conftest import half_blurred
from test_dme_classic import _blurred_step, _srgb_image

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flower.jpg"


def _disks(h: int = 120, w: int = 200, seed: int = 0) -> np.ndarray:
    """Linear-light grey scene of overlapping anti-aliased disks (isolated, curved edges of varied contrast)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 0.5, np.float32)
    for _ in range(30):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, centre, int(rng.integers(8, 24)), float(rng.uniform(0.1, 0.9)), -1, lineType=cv2.LINE_AA)
    return img


def test_calibration_is_monotone_and_inverts():
    sigmas, ranks = xu_2017.calibration()
    assert np.all(np.diff(ranks) <= 0) and ranks[0] > ranks[-1] + 5  # blur lowers the rank, over the whole range
    back = xu_2017.rank_to_sigma(ranks)
    # Flat stretches of the curve map to their first σ; elsewhere the inverse returns the σ that was rendered.
    assert np.all(back <= sigmas + 1e-9) and np.mean(np.abs(back - sigmas)) < 0.3


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0, 4.0])
def test_oblique_step_edge_recovers_sigma(sigma):
    sparse, known = defocus.load("xu-2017").sparse(_srgb_image(_blurred_step(sigma, angle=0.3)))
    assert known.sum() > 20
    assert np.median(sparse[known]) == pytest.approx(sigma, rel=0.2, abs=0.15)


def test_grid_aligned_edge_is_not_read_as_sharp():
    # A straight vertical edge gives a rank-1 patch on the pixel grid whatever its blur; the turned patch does not.
    sparse, known = defocus.load("xu-2017").sparse(_srgb_image(_blurred_step(2.0)))
    assert np.median(sparse[known]) == pytest.approx(2.0, rel=0.2)


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_half_blurred_disks_order_and_scale(sigma):
    scene = _disks()
    w = scene.shape[1]
    blurred = cv2.GaussianBlur(scene, (0, 0), sigma)
    scene[:, w // 2 :] = blurred[:, w // 2 :]
    method = defocus.load("xu-2017")
    image = _srgb_image(scene.astype(np.float64))
    sparse, known = method.sparse(image)
    left, right = known[:, 10 : w // 2 - 10], known[:, w // 2 + 10 : -10]
    sharp = np.median(sparse[:, 10 : w // 2 - 10][left])
    soft = np.median(sparse[:, w // 2 + 10 : -10][right])
    assert sharp < 1.0 and sigma / 1.5 < soft < sigma * 1.5
    dense = method.predict(image)
    assert np.median(dense[:, w // 2 + 10 : -10]) > np.median(dense[:, 10 : w // 2 - 10]) + 1.0


def test_texture_output_contract():
    image, _ = half_blurred(sigma=2.0)
    out = defocus.load("xu-2017").predict(image)
    assert out.shape == image.shape[:2] and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0.0
    w = out.shape[1]
    assert np.median(out[:, w // 2 + 10 :]) > np.median(out[:, : w // 2 - 10])


def test_flat_image_gives_zeros():
    out = defocus.load("xu-2017").predict(np.full((40, 50, 3), 0.3, np.float32))
    assert out.shape == (40, 50) and np.all(np.isfinite(out)) and np.all(out == 0)


def test_estimate_cli_on_example(tmp_path):
    assert main(["estimate", "-m", "xu-2017", str(EXAMPLE), "-o", str(tmp_path)]) == 0
    sigma = np.load(tmp_path / "flower_defocus.npy")
    assert sigma.shape == (427, 640) and sigma.dtype == np.float32 and np.all(np.isfinite(sigma))
    assert 0.0 <= sigma.min() and sigma.max() <= xu_2017.MAX_SIGMA
