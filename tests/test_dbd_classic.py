"""Classic training-free blur detectors: gradient-energy, lbp (Yi & Eramian), svd (Su et al.), s3 (Vu et al.), fish
(Vu & Chandler)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import half_blurred, textured_image

import defocus
from defocus.methods import fish as fish_mod
from defocus.methods import lbp as lbp_mod
from defocus.methods import s3 as s3_mod
from defocus.methods import svd as svd_mod

METHODS = [("gradient-energy", {}), ("lbp", {}), ("lbp", {"segment": True}), ("svd", {}), ("s3", {}), ("fish", {}),
           ("ltcop", {}), ("pcnn-lbp", {}), ("msvd", {}), ("msvd", {"segment": False}), ("ma-2020", {})]
IDS = ["gradient-energy", "lbp", "lbp-segment", "svd", "s3", "fish", "ltcop", "pcnn-lbp", "msvd", "msvd-continuous",
       "ma-2020"]


def _check_map(out: np.ndarray, shape: tuple[int, int]) -> None:
    assert out.shape == shape
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize(("name", "options"), METHODS, ids=IDS)
def test_blurred_half_scores_higher(name, options):
    image, _ = half_blurred(96, 128, sigma=3.0)
    out = defocus.load(name, **options).predict(image)
    _check_map(out, (96, 128))
    # Leave a margin of one window around the seam, where blocks straddle both halves.
    left, right = out[:, :40].mean(), out[:, 88:].mean()
    assert right - left > 0.4, (left, right)


@pytest.mark.parametrize(("name", "options"), METHODS, ids=IDS)
def test_flat_and_tiny_images(name, options):
    method = defocus.load(name, **options)
    flat = method.predict(np.full((40, 50, 3), 0.5, np.float32))
    _check_map(flat, (40, 50))
    tiny = method.predict(textured_image(16, 16, seed=3))
    _check_map(tiny, (16, 16))
    odd = method.predict(textured_image(7, 5, seed=4))
    _check_map(odd, (7, 5))


def test_registered():
    names = defocus.available("dbd")
    for name in ("gradient-energy", "lbp", "svd", "s3", "fish"):
        assert name in names


# --- gradient energy -------------------------------------------------------------------------------------------


def test_gradient_energy_is_a_contrast_invariant_ratio():
    # The cue is the ratio of gradient energy before and after re-blurring: lowering the photo's contrast scales
    # both alike, so the map barely moves (a cue on the energy itself would follow the contrast).
    image, _ = half_blurred(96, 128, sigma=3.0)
    method = defocus.load("gradient-energy")
    full = method.predict(image)
    low = method.predict((0.5 + 0.4 * (image - 0.5)).astype(np.float32))
    assert np.abs(full - low).mean() < 0.02
    assert low[:, 88:].mean() - low[:, :40].mean() > 0.4


# --- LBP ---------------------------------------------------------------------------------------------------------


def test_lbp_codes_of_known_patterns():
    pit = np.full((3, 3), 0.5, np.float32)
    pit[1, 1] = 0.0  # every neighbour brighter: all 8 bits, uniform
    assert lbp_mod.lbp_codes(pit)[1, 1] == 8
    peak = np.full((3, 3), 0.5, np.float32)
    peak[1, 1] = 1.0  # no bit set
    assert lbp_mod.lbp_codes(peak)[1, 1] == 0
    edge = np.zeros((3, 3), np.float32)
    edge[:, 2] = 1.0  # right column bright: right neighbour and both right diagonals -> 3 contiguous bits
    assert lbp_mod.lbp_codes(edge)[1, 1] == 3
    cross = np.zeros((3, 3), np.float32)
    cross[0, 1] = cross[2, 1] = 1.0  # up and down bright only: 4 transitions -> non-uniform
    assert lbp_mod.lbp_codes(cross)[1, 1] == 9
    below = np.full((3, 3), 0.5, np.float32)
    below[1, 1] = 0.5 - 0.01  # differences under T_LBP = 0.016 set no bit
    assert lbp_mod.lbp_codes(below)[1, 1] == 0


def test_lbp_sharpness_is_window_fraction():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 10, (30, 40)).astype(np.uint8)
    got = lbp_mod.lbp_sharpness(codes, 5)
    padded = np.pad(codes >= 6, 2, mode="edge")
    want = np.array([[padded[y : y + 5, x : x + 5].mean() for x in range(40)] for y in range(30)])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_matting_follows_colour_edge():
    img = np.zeros((40, 60, 3), np.float32)
    img[:, 30:] = (0.9, 0.6, 0.2)
    img += np.random.default_rng(1).normal(0, 0.01, img.shape).astype(np.float32)
    known = np.zeros((40, 60), bool)
    known[:, :5] = known[:, -5:] = True
    values = np.zeros((40, 60))
    values[:, -5:] = 1.0
    alpha = lbp_mod.closed_form_matting(np.clip(img, 0, 1), known, values)
    assert alpha[:, 8:26].mean() < 0.1 and alpha[:, 34:52].mean() > 0.9


def test_lbp_segmentation_snaps_to_the_colour_edge():
    # Sharp reddish texture on the left, blurred bluish texture on the right. The windowed LBP sharpness ramps over
    # a window's width around the border; the trimap matting moves the border onto the colour edge.
    h, w = 96, 128
    texture = textured_image(h, w, seed=5)
    image = texture * np.array([1.0, 0.4, 0.3], np.float32)
    image[:, 64:] = (cv2.GaussianBlur(texture, (0, 0), 3.0) * np.array([0.3, 0.5, 1.0], np.float32))[:, 64:]
    soft = defocus.load("lbp").predict(image)
    seg = defocus.load("lbp", segment=True).predict(image)
    assert 0.3 < soft[:, 60].mean() < 0.7  # the plain metric is undecided near the border
    cols = seg.mean(axis=0)
    assert cols[50:62].max() < 0.25 and cols[66:80].min() > 0.75
    assert cols[64] - cols[62] > 0.5


def test_bp_fusion_agrees_with_consistent_layers():
    a = np.zeros((20, 30), np.float32)
    a[:, 15:] = 1.0
    belief = lbp_mod.fuse_scales([a, a, a])
    assert belief[:, :12].max() < 0.5 < belief[:, 18:].min()
    # A single disagreeing layer is outvoted by its neighbours and the other two layers.
    noisy = a.copy()
    noisy[10, 5] = 1.0
    assert lbp_mod.fuse_scales([noisy, a, a])[10, 5] < 0.5


# --- SVD ---------------------------------------------------------------------------------------------------------


def _numpy_singular_value_ratio(img, block, k):
    pad = np.pad(img, ((block // 2, (block - 1) // 2),) * 2, mode="reflect")
    blocks = np.lib.stride_tricks.sliding_window_view(pad, (block, block))
    s = np.linalg.svd(blocks, compute_uv=False)
    total = s.sum(-1)
    return np.where(total > 1e-12 * s[..., 0].max(), s[..., :k].sum(-1) / np.maximum(total, 1e-300), 1.0)


@pytest.mark.parametrize("scale", [1.0, 65535.0])
def test_svd_ratio_matches_numpy_svd_at_every_pixel(scale):
    rng = np.random.default_rng(2)
    img = rng.random((37, 150))  # 150 columns: two full lane chunks of the kernel and a partial one
    img[:, :10] = 0.3  # flat blocks (rank 1)
    img[:, 10:25] = np.arange(15)[None, :] / 15  # a ramp: rank 1 with a reflected border
    img[:, 40:70] = np.repeat([[0.2, 0.9]], 15, axis=0).ravel()[None, :30]  # stripes: rank 2
    img[:, 80:130] = cv2.GaussianBlur(img[:, 80:130], (0, 0), 3.0)  # smooth: tiny trailing singular values
    got = svd_mod.singular_value_ratio(img * scale, block=20, k=3)
    want = _numpy_singular_value_ratio(img, 20, 3)
    assert got.shape == img.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-6)


def _patchwork(rng, h, w):
    """Rectangles of flat, black, rank-1, checkerboard, noise, smooth, few-level and near-black (1e-9) content."""
    img = np.zeros((h, w))
    for _ in range(rng.integers(1, 6)):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        reg = img[y0 : y0 + rng.integers(3, 40), x0 : x0 + rng.integers(3, 60)]
        kind = rng.integers(0, 8)
        if kind == 0:
            reg[:] = rng.random()
        elif kind == 1:
            reg[:] = 0.0
        elif kind == 2:
            reg[:] = rng.random((reg.shape[0], 1))
        elif kind == 3:
            reg[:] = (np.indices(reg.shape).sum(0) % 2) * rng.random()
        elif kind == 4:
            reg[:] = rng.random(reg.shape)
        elif kind == 5:
            reg[:] = cv2.GaussianBlur(rng.random(reg.shape), (0, 0), 4.0)
        elif kind == 6:
            reg[:] = np.round(rng.random(reg.shape) * 2) / 2
        else:
            reg[:] = rng.random(reg.shape) * 1e-9
    return img


def test_svd_ratio_on_rank_deficient_and_near_black_blocks():
    """Blocks whose singular values span 1 … 1e-9 and exact zeros: where a dropped Householder tail or a QL sweep
    with a foreign shift showed up as errors of 1e-3 or NaN."""
    rng = np.random.default_rng(0)
    for t in range(90):
        img = _patchwork(rng, int(rng.integers(5, 45)), int(rng.integers(5, 140)))
        scale = (1.0, 255.0, 1e-6, 65535.0)[t % 4]
        got = svd_mod.singular_value_ratio(img * scale, block=20, k=3)
        np.testing.assert_allclose(got, _numpy_singular_value_ratio(img, 20, 3), atol=1e-6, err_msg=f"image {t}")


def test_svd_ratio_bounds_and_options():
    rng = np.random.default_rng(3)
    beta = svd_mod.singular_value_ratio(rng.random((12, 12)), block=6, k=2)
    assert beta.min() >= 2 / 6 - 1e-6 and beta.max() <= 1 + 1e-6
    assert (svd_mod.singular_value_ratio(np.zeros((8, 8)), block=4, k=1) == 1).all()
    out = defocus.load("svd", normalize=False).predict(half_blurred(48, 64)[0])
    _check_map(out, (48, 64))
    with pytest.raises(ValueError):
        defocus.load("svd", k=30)


# --- S3 and FISH -------------------------------------------------------------------------------------------------


def test_s3_spatial_and_spectral_parts():
    checker = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.float32)
    assert np.allclose(s3_mod.spatial_map(checker), 1.0)  # the largest possible 2x2 total variation
    assert np.allclose(s3_mod.spatial_map(np.full((16, 16), 80.0, np.float32)), 0.0)
    # Steeper power spectra (blurrier blocks) give a lower S1.
    rng = np.random.default_rng(4)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(32), np.fft.fftfreq(32)))
    f[0, 0] = 1.0
    phase = np.exp(2j * np.pi * rng.random((32, 32)))
    scores = []
    for slope in (1.0, 2.0, 3.0):
        block = np.real(np.fft.ifft2(f**-slope * phase))
        block = (block - block.min()) / np.ptp(block) * 255
        scores.append(float(s3_mod.spectral_slope_sharpness(block[None].astype(np.float32))[0]))
    assert scores[0] > scores[1] > scores[2]


def test_s3_is_the_geometric_mean_of_its_spectral_and_spatial_parts():
    image, _ = half_blurred(96, 128, sigma=3.0)
    s1, s2, s3 = s3_mod.s3_map(image)
    np.testing.assert_allclose(s3, np.sqrt(s1 * s2), rtol=1e-5, atol=1e-7)
    for part in (s1, s2):  # both carry the blur: sharper on the sharp half
        assert part[:, :40].mean() > part[:, 88:].mean() + 0.05


def test_fish_weighs_finer_levels_and_the_diagonal_band_more(monkeypatch):
    # FISH = Σ_n 2^(3−n)·((1 − α)(E_LH + E_HL)/2 + α·E_HH), α = 0.8: put a unit log-energy in one sub-band of one
    # level at a time and read its weight off the map.
    names: dict[int, str] = {}
    real_dwt2 = fish_mod.dwt2

    def dwt2(a):
        ll, details = real_dwt2(a)
        names.update({id(b): n for b, n in zip(details, ("LH", "HL", "HH"))})
        return ll, details

    unit: dict = {}

    def log_energy(band, size, step, rows, cols):
        level = {8: 1, 4: 2, 2: 3}[size]
        return np.full((rows, cols), 1.0 if unit.get("at") == (level, names[id(band)]) else 0.0)

    monkeypatch.setattr(fish_mod, "dwt2", dwt2)
    monkeypatch.setattr(fish_mod, "_block_log_energy", log_energy)
    image = textured_image(40, 48, seed=2)
    for at, weight in [((1, "HH"), 4 * 0.8), ((3, "HH"), 1 * 0.8), ((1, "LH"), 4 * 0.1), ((2, "HL"), 2 * 0.1)]:
        unit["at"] = at
        np.testing.assert_allclose(fish_mod.fish_bb_map(image), weight, rtol=1e-6)


def test_fish_wavelet_filters():
    x = np.arange(-3, 4, dtype=np.float64)
    for power in range(4):  # the 9/7 analysis high-pass has four vanishing moments
        assert abs((fish_mod._HI * x**power).sum()) < 1e-9
    assert fish_mod._LO.sum() == pytest.approx(np.sqrt(2))
    ll, (lh, hl, hh) = fish_mod.dwt2(np.random.default_rng(5).random((32, 48)).astype(np.float32))
    assert ll.shape == lh.shape == hl.shape == hh.shape == (16, 24)


# --- real photos -------------------------------------------------------------------------------------------------


def _cuhk_te1(shared_dir):
    root = shared_dir / "data" / "real" / "cuhk_te1_320"
    if not root.is_dir():
        pytest.skip("cuhk_te1_320 sample not present")
    for i in range(1, 6):
        image = defocus.read_image(root / "images" / f"{i}.bmp")
        gt = defocus.io.read_map(root / "gt" / f"{i}.bmp")
        gt = gt[..., 0] if gt.ndim == 3 else gt
        yield image, 1.0 - gt  # distributed with 255 = in focus


def test_lbp_segmentation_on_cuhk_te1(shared_dir):
    method = defocus.load("lbp", segment=True)
    accuracy = [float(((method.predict(im) > 0.5) == (gt > 0.5)).mean()) for im, gt in _cuhk_te1(shared_dir)]
    assert np.mean(accuracy) > 0.75, accuracy  # measured 0.85
