"""defocus.filters.tv (weighted TV-L1) and defocus.filters.knn_matting (KNN matting) on arrays with known answers."""

import numpy as np
import pytest

from defocus.filters.knn_matting import knn_features, knn_interpolate, knn_laplacian
from defocus.filters.poisson import sparse_conjugate_gradients
from defocus.filters.tv import tv_l1


def _square(size: int, side: int) -> np.ndarray:
    img = np.full((size, size), 0.2, np.float32)
    a = (size - side) // 2
    img[a : a + side, a : a + side] = 0.8
    return img


def test_tv_l1_removes_small_and_keeps_large_structures():
    # TV-L1 keeps a square of side a when a/2 > 2w/λ (roughly), whatever its contrast: λ = 0.5 → radius 4 px.
    small, large = _square(40, 4), _square(40, 24)
    assert np.abs(tv_l1(small, 0.5, iterations=300) - 0.2).max() < 0.05
    kept = tv_l1(large, 0.5, iterations=300)
    assert np.abs(kept[12:28, 12:28] - 0.8).max() < 0.05 and np.abs(kept[:5] - 0.2).max() < 0.02


def test_tv_l1_weight_decides_locally():
    img = _square(40, 12)  # radius 6: kept at w = 1 (threshold 4 px), removed at w = 4 (16 px)
    assert abs(float(tv_l1(img, 0.5, iterations=300)[20, 20]) - 0.8) < 0.05
    heavy = np.full(img.shape, 4.0, np.float32)
    assert abs(float(tv_l1(img, 0.5, heavy, iterations=500)[20, 20]) - 0.2) < 0.05


def test_tv_l1_shapes_and_constants():
    rgb = np.random.default_rng(0).random((9, 11, 3)).astype(np.float32)
    out = tv_l1(rgb, 1.0, iterations=20)
    assert out.shape == rgb.shape and out.dtype == np.float32 and np.all(np.isfinite(out))
    flat = np.full((6, 7), 0.3, np.float32)
    np.testing.assert_allclose(tv_l1(flat, 1.0, iterations=10), flat, atol=1e-6)
    assert tv_l1(np.zeros((1, 5), np.float32)).shape == (1, 5)
    with pytest.raises(ValueError):
        tv_l1(flat, 1.0, np.ones((3, 3)))


def test_knn_laplacian_is_symmetric_with_constant_null_space():
    feats = knn_features(np.random.default_rng(1).random((8, 9, 3)).astype(np.float32))
    assert feats.shape == (72, 6)
    lap = knn_laplacian(feats, k=5)
    assert abs(lap - lap.T).max() < 1e-12
    np.testing.assert_allclose(lap @ np.ones(72), 0.0, atol=1e-12)
    assert lap.diagonal().min() > 0


def test_conjugate_gradient_solves_an_spd_system():
    import scipy.sparse as sp

    rng = np.random.default_rng(2)
    m = sp.random(50, 50, density=0.1, random_state=3)
    a = (m @ m.T + sp.eye(50)).tocsr()
    b = rng.random(50)
    x, it, rel = sparse_conjugate_gradients(a, b, np.zeros(50), 500, 1e-10)
    assert rel < 1e-9 and it <= 500
    np.testing.assert_allclose(a @ x, b, atol=1e-7)


def _two_regions(h: int = 40, w: int = 60) -> np.ndarray:
    img = np.zeros((h, w, 3), np.float32)
    img[:, : w // 2] = (0.9, 0.2, 0.2)
    img[:, w // 2 :] = (0.2, 0.3, 0.9)
    return img


@pytest.mark.parametrize("max_pixels", [10_000, 600])
def test_knn_interpolate_fills_each_colour_region_from_its_own_values(max_pixels):
    img = _two_regions()
    sparse = np.zeros((40, 60), np.float32)
    known = np.zeros((40, 60), bool)
    known[5:35:6, 8], sparse[5:35:6, 8] = True, 1.0
    known[5:35:6, 50], sparse[5:35:6, 50] = True, 4.0
    dense = knn_interpolate(img, sparse, known, max_pixels=max_pixels)
    assert dense.shape == (40, 60) and dense.dtype == np.float32
    assert np.abs(dense[:, :26] - 1.0).max() < 0.1
    assert np.abs(dense[:, 34:] - 4.0).max() < 0.1


def test_knn_interpolate_without_known_values_is_zero():
    out = knn_interpolate(_two_regions(), np.ones((40, 60)), np.zeros((40, 60), bool))
    assert out.shape == (40, 60) and not out.any()
