"""liu-2020: likelihood features, the model tree and its fitting, the bundled parameters, and the whole method."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

import defocus
from defocus.errors import UnknownOptionError, WeightsError
from defocus.methods import liu_2020 as liu

ROOT = Path(__file__).resolve().parents[1]


def _train_module():
    spec = importlib.util.spec_from_file_location("train_liu_2020", ROOT / "benchmarks" / "train_liu_2020.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_over_f(n: int = 192, seed: int = 0) -> np.ndarray:
    """A grey image with a 1/|ω| amplitude spectrum (the likelihood's model of a sharp image), in [0, 1]."""
    fy, fx = liu._frequency_grid(n, n)
    r = np.sqrt(fx**2 + fy**2)
    amp = np.where(r > 0, 1.0 / np.maximum(r, 1e-9), 0.0)
    phase = np.exp(2j * np.pi * np.random.default_rng(seed).random((n, n)))
    img = np.real(np.fft.ifft2(amp * phase))
    return (img - img.min()) / (img.max() - img.min())


@pytest.mark.parametrize("sigma", [0.0, 1.0, 2.0, 3.0])
def test_likelihood_peaks_at_the_blur_of_a_one_over_f_image(sigma):
    img = _one_over_f()
    if sigma:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    feats = liu.likelihood_features(liu.log_energies(img))
    inner = feats[32:-32, 32:-32]
    assert abs(float(np.median(inner[..., 0])) - sigma) <= 0.25
    assert np.all(inner[..., 1] >= inner[..., 3]) and np.all(inner[..., 3] >= inner[..., 5])  # by decreasing L


def test_noise_model_keeps_a_noisy_blurred_image_readable():
    # Noise swamps the high bands of a blurred image; fitted as if they were image content, they read as sharp.
    # Leaving out observations below the noise's energy keeps σ close.
    img = cv2.GaussianBlur(_one_over_f(), (0, 0), 4.0) + np.random.default_rng(1).normal(0, 0.01, (192, 192))
    noise = liu.noise_std(img)
    assert 0.008 < noise < 0.012
    with_model = np.median(liu.likelihood_features(liu.log_energies(img), noise)[32:-32, 32:-32, 0])
    without = np.median(liu.likelihood_features(liu.log_energies(img), 0.0)[32:-32, 32:-32, 0])
    assert abs(with_model - 4.0) <= 0.5 and without < 2.5


def test_stripes_give_the_same_features_as_one_tile():
    img = _one_over_f(160).astype(np.float32)
    whole = liu.stripe_log_energies(img, 0, 160)
    # Stripe starts on multiples of 8 (as STRIPE and MARGIN are) keep the decimated grids of the low bands aligned.
    parts = np.concatenate([liu.stripe_log_energies(img, y0, min(160, y0 + 48)) for y0 in range(0, 160, 48)])
    assert whole.shape == (160, 160, 14)
    np.testing.assert_allclose(parts, whole, atol=0.05)


def test_model_tree_routes_rows_and_applies_the_leaf_models():
    # Root splits feature 0 at 0.5: left leaf σ = 1 + 2·b₁, right leaf σ = b₃.
    tree = liu.ModelTree(feature=[0, -1, -1], threshold=[0.5, 0, 0], left=[1, -1, -1], right=[2, -1, -1],
                         weights=[[0, 0, 0, 0], [1, 2, 0, 0], [0, 0, 0, 1]], precision=[1, 3, 5])
    feats = np.array([[0.2], [0.9]], np.float32)
    basis = np.array([[1.0, 7.0, 7.0], [7.0, 7.0, 4.0]], np.float32)
    sigma, precision = tree.predict(feats, basis)
    np.testing.assert_allclose(sigma, [3.0, 4.0])
    np.testing.assert_allclose(precision, [3.0, 5.0])


def test_fitting_finds_a_split_and_its_leaf_models():
    train = _train_module()
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.random((n, 2)).astype(np.float32)
    b = rng.random((n, 3)).astype(np.float32) * 4
    y = np.where(x[:, 1] <= 0.3, 2.0 * b[:, 0], 0.5 + b[:, 2]).astype(np.float32)
    tree = train.fit_tree(x, b, y, depth=1, min_leaf=100)
    assert tree.feature[0] == 1 and abs(float(tree.threshold[0]) - 0.3) < 0.05
    pred, _ = tree.predict(x, b)
    assert np.abs(pred - y).mean() < 0.1


def test_bundled_parameters_are_checked_and_read_without_pickle(tmp_path):
    tree, meta = liu.load_tree()
    assert (tree.feature >= -1).all() and tree.weights.shape[1] == 1 + len(liu.BASIS)
    assert meta["basis"] == ",".join(liu.BASIS) and float(meta["smooth_sigma_s"]) >= 0
    assert liu.WEIGHTS_SHA256 and len(liu.WEIGHTS_SHA256) == 64
    bad = tmp_path / "tree.safetensors"
    bad.write_bytes(liu.weights_path().read_bytes() + b" ")
    with pytest.raises(WeightsError):
        liu.load_tree(bad, liu.WEIGHTS_SHA256)


def _half_blurred(blur: float, size: int = 128) -> np.ndarray:
    img = _one_over_f(size, seed=3).astype(np.float32)
    out = img.copy()
    out[:, size // 2 :] = cv2.GaussianBlur(img, (0, 0), blur)[:, size // 2 :]
    return np.repeat((0.1 + 0.8 * out)[..., None], 3, axis=2)


def test_blurred_half_reads_larger_and_maps_are_finite():
    method = defocus.load("liu-2020")
    sigma = method.predict(_half_blurred(2.5))
    assert sigma.shape == (128, 128) and sigma.dtype == np.float32
    assert np.median(sigma[:, 76:]) > np.median(sigma[:, :52]) + 0.8
    for image in (np.full((40, 50, 3), 0.5, np.float32), np.zeros((3, 4, 3), np.float32)):
        out = method.predict(image)
        assert out.shape == image.shape[:2] and np.all(np.isfinite(out)) and out.min() >= 0
    with pytest.raises(UnknownOptionError):
        defocus.load("liu-2020", depth=3)
