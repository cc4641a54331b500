"""defocus.filters.patch_dct: batched orthonormal DCT of patches around chosen pixels."""

import numpy as np
import pytest
from scipy import fft

from defocus.filters.patch_dct import patch_dct


def test_matches_scipy_on_interior_patches_and_keeps_energy():
    rng = np.random.default_rng(0)
    img = rng.random((30, 40)).astype(np.float32)
    ys, xs = np.array([10, 15, 20]), np.array([12, 20, 30])
    out = patch_dct(img, ys, xs, 8)
    assert out.shape == (3, 8, 8) and out.dtype == np.float32
    for n, (y, x) in enumerate(zip(ys, xs)):
        patch = img[y - 4 : y + 4, x - 4 : x + 4]  # rows y − size//2 … y + (size − 1)//2
        np.testing.assert_allclose(out[n], fft.dctn(patch, norm="ortho"), atol=1e-5)
        assert np.sum(out[n] ** 2) == pytest.approx(np.sum(patch**2), rel=1e-5)


def test_several_images_mirrored_borders_and_chunks(monkeypatch):
    from defocus.filters import patch_dct as mod

    rng = np.random.default_rng(1)
    stack = rng.random((2, 9, 7)).astype(np.float32)
    ys, xs = np.nonzero(np.ones((9, 7), bool))  # every pixel, including the corners
    whole = patch_dct(stack, ys, xs, 5)
    monkeypatch.setattr(mod, "_CHUNK_VALUES", 60)  # a few pixels per chunk
    np.testing.assert_array_equal(patch_dct(stack, ys, xs, 5), whole)
    assert whole.shape == (2, 63, 5, 5)
    pad = np.pad(stack[1], 2, mode="reflect")
    np.testing.assert_allclose(whole[1, 0], fft.dctn(pad[0:5, 0:5], norm="ortho"), atol=1e-5)
    # A constant patch has only its DC coefficient (size × its value).
    flat = patch_dct(np.full((6, 6), 0.5, np.float32), np.array([3]), np.array([3]), 4)[0]
    assert flat[0, 0] == pytest.approx(2.0) and np.abs(flat.ravel()[1:]).max() < 1e-6


def test_no_pixels_and_bad_input():
    assert patch_dct(np.zeros((5, 5)), np.array([], int), np.array([], int), 3).shape == (0, 3, 3)
    with pytest.raises(ValueError):
        patch_dct(np.zeros((2, 2, 2, 2)), np.array([0]), np.array([0]), 3)


def test_reduce_is_applied_per_chunk(monkeypatch):
    from defocus.filters import patch_dct as mod

    rng = np.random.default_rng(2)
    stack = rng.random((2, 12, 10)).astype(np.float32)
    ys, xs = np.nonzero(np.ones((12, 10), bool))
    full = patch_dct(stack, ys, xs, 4)
    monkeypatch.setattr(mod, "_CHUNK_VALUES", 100)
    energy = patch_dct(stack, ys, xs, 4, reduce=lambda c: (c**2).sum(axis=(2, 3)))
    assert energy.shape == (2, 120)
    np.testing.assert_allclose(energy, (full**2).sum(axis=(2, 3)), rtol=1e-5)
