"""Domain-transform recursive filter: behaviour on synthetic images and equivalence with a slow reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from defocus.filters import domain_transform as dt
from defocus.filters import interpolate, recursive_filter

BACKENDS = [False] + ([True] if dt._numba is not None else [])


def _reference_rf(src, guide, sigma_s, sigma_r, iterations, penalty=None):
    """Per-pixel Python loops written straight from Gastal & Oliveira 2011 (RF) plus the Ψ term of Eq. 2."""
    img = np.array(src, dtype=np.float64)
    h, w = img.shape[:2]
    g = np.asarray(guide, dtype=np.float64).reshape(h, w, -1)
    psi = np.zeros((h, w)) if penalty is None else np.asarray(penalty, dtype=np.float64)

    def dist(p, q):  # transformed-domain distance between neighbouring pixels p and q
        return 1.0 + 0.5 * (psi[p] + psi[q]) + sigma_s / sigma_r * float(np.abs(g[p] - g[q]).sum())

    for i in range(1, iterations + 1):
        sigma_h = sigma_s * math.sqrt(3) * 2 ** (iterations - i) / math.sqrt(4**iterations - 1)
        a = math.exp(-math.sqrt(2) / sigma_h)
        for y in range(h):
            for x in range(1, w):
                v = a ** dist((y, x - 1), (y, x))
                img[y, x] = (1 - v) * img[y, x] + v * img[y, x - 1]
            for x in range(w - 2, -1, -1):
                v = a ** dist((y, x + 1), (y, x))
                img[y, x] = (1 - v) * img[y, x] + v * img[y, x + 1]
        for x in range(w):
            for y in range(1, h):
                v = a ** dist((y - 1, x), (y, x))
                img[y, x] = (1 - v) * img[y, x] + v * img[y - 1, x]
            for y in range(h - 2, -1, -1):
                v = a ** dist((y + 1, x), (y, x))
                img[y, x] = (1 - v) * img[y, x] + v * img[y + 1, x]
    return img


@pytest.mark.parametrize("use_numba", BACKENDS)
def test_matches_slow_reference(use_numba):
    rng = np.random.default_rng(1)
    src = rng.random((9, 11, 2)).astype(np.float32)
    guide = rng.random((9, 11, 3)).astype(np.float32)
    penalty = (rng.random((9, 11)) > 0.8).astype(np.float32) * 5.0
    for psi in (None, penalty):
        ref = _reference_rf(src, guide, 4.0, 0.3, 3, psi)
        out = recursive_filter(src, guide, 4.0, 0.3, 3, psi, use_numba=use_numba)
        assert out.dtype == np.float32 and out.shape == src.shape
        np.testing.assert_allclose(out, ref, atol=2e-5)


def test_backends_agree_and_2d_shape():
    rng = np.random.default_rng(2)
    src = rng.random((40, 30)).astype(np.float32)
    out_np = recursive_filter(src, src, 10.0, 0.2, 3, use_numba=False)
    assert out_np.shape == (40, 30) and out_np.dtype == np.float32
    if dt._numba is not None:
        np.testing.assert_allclose(recursive_filter(src, src, 10.0, 0.2, 3, use_numba=True), out_np, atol=1e-6)


def test_iteration_sigmas_sum_to_sigma_s():
    for n in (1, 3, 5):
        assert math.isclose(sum(s * s for s in dt.iteration_sigmas(7.0, n)), 49.0, rel_tol=1e-12)


def test_constant_image_stays_constant():
    rng = np.random.default_rng(3)
    guide = rng.random((50, 60, 3)).astype(np.float32)
    src = np.full((50, 60), 0.37, np.float32)
    np.testing.assert_allclose(recursive_filter(src, guide, 20.0, 0.1, 3), 0.37, atol=1e-6)


def test_smooths_noise_in_flat_guide():
    rng = np.random.default_rng(4)
    src = rng.normal(0.5, 0.1, (64, 64)).astype(np.float32)
    out = recursive_filter(src, np.zeros((64, 64), np.float32), 10.0, 0.1, 3)
    assert out.std() < 0.2 * src.std()


def test_step_edge_in_guide_blocks_smoothing():
    guide = np.zeros((40, 80), np.float32)
    guide[:, 40:] = 1.0
    src = guide.copy()
    out = recursive_filter(src, guide, 30.0, 0.05, 3)
    # Without the guide edge a σs = 30 filter would mix the halves almost completely near the step.
    assert out[:, :39].max() < 0.01 and out[:, 41:].min() > 0.99
    plain = recursive_filter(src, np.zeros_like(guide), 30.0, 0.05, 3)
    assert plain[:, 39].mean() > 0.3


def test_penalty_blocks_propagation():
    guide = np.full((30, 60), 0.5, np.float32)
    known = np.zeros((30, 60), np.float32)
    known[:, :5] = 1.0
    sparse = np.where(known > 0, 2.0, 0.0).astype(np.float32)
    penalty = np.zeros((30, 60), np.float32)
    penalty[:, 30] = 1000.0
    free = recursive_filter(known, guide, 20.0, 1.0, 3)
    blocked = recursive_filter(known, guide, 20.0, 1.0, 3, penalty=penalty)
    assert free[:, 35].mean() > 1e-3
    assert blocked[:, 31:].max() < 1e-9
    # Interpolation: the left value reaches the wall but nothing crosses it.
    dense = interpolate(sparse, known, guide, 20.0, 1.0, 3, penalty=penalty)
    np.testing.assert_allclose(dense[:, :30], 2.0, atol=1e-4)


def test_interpolate_reproduces_constant_from_sparse_samples():
    rng = np.random.default_rng(5)
    guide = rng.random((60, 70, 3)).astype(np.float32)
    known = rng.random((60, 70)) < 0.02
    sparse = np.where(known, 1.25, np.nan).astype(np.float32)  # unknown values must not leak (NaN would)
    dense = interpolate(sparse, known, guide, 20.0, 0.5, 5)
    assert dense.dtype == np.float32 and dense.shape == (60, 70)
    np.testing.assert_allclose(dense, 1.25, atol=1e-4)


def test_interpolate_two_regions_follow_guide():
    guide = np.zeros((40, 80), np.float32)
    guide[:, 40:] = 1.0
    known = np.zeros((40, 80), bool)
    known[20, 10] = known[20, 70] = True
    sparse = np.where(guide > 0.5, 3.0, 1.0).astype(np.float32)
    dense = interpolate(sparse, known, guide, 40.0, 0.05, 5)
    assert np.abs(dense[:, :38] - 1.0).max() < 0.02 and np.abs(dense[:, 42:] - 3.0).max() < 0.02


def test_interpolate_nothing_known_gives_zeros():
    out = interpolate(np.ones((5, 6)), np.zeros((5, 6)), np.zeros((5, 6)), 5.0, 1.0)
    assert out.shape == (5, 6) and not np.any(out)


def test_bad_arguments():
    a = np.zeros((5, 6), np.float32)
    with pytest.raises(ValueError):
        recursive_filter(a, np.zeros((5, 7)), 5.0, 1.0)
    with pytest.raises(ValueError):
        recursive_filter(a, a, 0.0, 1.0)
    with pytest.raises(ValueError):
        recursive_filter(a, a, 5.0, 1.0, penalty=-np.ones((5, 6)))
