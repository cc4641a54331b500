"""msvd (Xiao et al. 2019, multiscale SVD sub-bands in the gradient domain) and the kernel options it uses."""

import cv2
import numpy as np
import pytest
from conftest import half_blurred

import defocus
from defocus.methods import msvd as msvd_mod
from defocus.methods import svd as svd_mod


def _numpy_ratios(img, block, ks, floor):
    pad = np.pad(img, ((block // 2, (block - 1) // 2),) * 2, mode="reflect")
    s = np.linalg.svd(np.lib.stride_tricks.sliding_window_view(pad, (block, block)), compute_uv=False)
    s = np.where(s > floor, s, 0.0)
    total = s.sum(-1)
    return np.stack([np.where(total > 1e-12, s[..., :k].sum(-1) / np.maximum(total, 1e-300), 1.0) for k in ks])


@pytest.mark.parametrize("floor", [0.0, 0.3])
def test_several_k_and_a_floor_match_numpy(floor):
    rng = np.random.default_rng(5)
    img = rng.random((21, 70))
    img[:, :20] = cv2.GaussianBlur(img[:, :20], (0, 0), 2.0)  # small trailing singular values, cut by the floor
    img[:, 50:] = 0.5  # rank 1
    ks = (4, 1, 2)  # any order
    got = svd_mod.singular_value_ratios(img * 255.0, 8, ks, floor=floor * 255.0)
    assert got.shape == (3, 21, 70) and got.dtype == np.float32
    np.testing.assert_allclose(got, _numpy_ratios(img, 8, ks, floor), atol=1e-6)
    np.testing.assert_array_equal(got[1], svd_mod.singular_value_ratio(img * 255.0, 8, 1) if floor == 0 else got[1])
    with pytest.raises(ValueError):
        svd_mod.singular_value_ratios(img, 8, (0, 3))


def test_band_edges():
    assert msvd_mod.band_edges(16) == (2, 4, 8)
    assert msvd_mod.band_edges(4) == (1, 2)  # 4/8 rounds to 0 → 1, and repeats collapse


def test_noise_floor_keeps_a_noisy_blurred_region_blurred():
    # A strongly blurred half with sensor noise: its gradient is mostly noise, which is full rank and reads as
    # sharp unless the singular values the noise explains are left out.
    image, _ = half_blurred(96, 128, sigma=4.0)
    rng = np.random.default_rng(1)
    noisy = np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1).astype(np.float32)
    gap = {}
    for select in (True, False):
        out = defocus.load("msvd", select=select, segment=False).predict(noisy)
        gap[select] = out[:, 88:].mean() - out[:, :40].mean()
    assert gap[True] > 0.4 and gap[True] > gap[False] + 0.1, gap


def test_segment_gives_a_piecewise_constant_map():
    image, _ = half_blurred(96, 128, sigma=3.0)
    cont = defocus.load("msvd", segment=False).predict(image)
    seg = defocus.load("msvd").predict(image)
    assert seg.shape == cont.shape and seg.dtype == np.float32 and 0 <= seg.min() and seg.max() <= 1
    assert seg[:, 88:].mean() - seg[:, :40].mean() > 0.4
    # On the textured sharp half, neighbours agree far more often after the mean shift.
    sharp_cont, sharp_seg = cont[:, :48], seg[:, :48]
    assert np.mean(np.diff(sharp_seg, axis=1) == 0) > np.mean(np.diff(sharp_cont, axis=1) == 0) + 0.1
    assert len(np.unique(sharp_seg)) < len(np.unique(sharp_cont)) / 10


def test_intensity_domain_option_and_refused_options():
    image, _ = half_blurred(64, 96, sigma=3.0)
    out = defocus.load("msvd", gradient=False, blocks=(8,), fractions=(0.25,)).predict(image)
    assert out[:, 70:].mean() > out[:, :30].mean()
    for bad in ({"blocks": (1,)}, {"fractions": (0.0,)}, {"spatial_radius": 0}):
        with pytest.raises(ValueError):
            defocus.load("msvd", **bad)
    with pytest.raises(defocus.errors.UnknownOptionError):
        defocus.load("msvd", window=3)
