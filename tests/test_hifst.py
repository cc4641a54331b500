"""HiFST (Golestaneh & Karam 2017): exactness of the fast per-pixel DCT layers, tiling, and behaviour on photos."""

from pathlib import Path

import numpy as np
import pytest
from conftest import half_blurred
from scipy.fft import dctn

import defocus
from defocus.errors import DefocusError
from defocus.methods import hifst as H

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "cuhk_samples"


def brute_force_layers(grad: np.ndarray, scales=H.SCALES) -> np.ndarray:
    """The authors' definition, pixel by pixel: orthonormal 2-D DCT of each zero-padded M×M patch."""
    h, w = grad.shape
    margin = max(scales) // 2
    gp = np.pad(grad, margin)
    masks = [H.high_frequency_mask(m) for m in scales]
    n_keep = sum(scales) + 1
    out = np.empty((h, w, n_keep))
    for y in range(h):
        for x in range(w):
            vals = []
            for m, mask in zip(scales, masks):
                r = m // 2
                patch = gp[y + margin - r : y + margin + r + 1, x + margin - r : x + margin + r + 1]
                vals.append(np.abs(dctn(patch, norm="ortho"))[mask])
            out[y, x] = np.sort(np.concatenate(vals))[:n_keep]
    return out


def test_high_frequency_mask_counts():
    for m in H.SCALES:
        mask = H.high_frequency_mask(m)
        assert mask.sum() == m * (m + 1) // 2
        assert mask[m - 1, 0] and mask[0, m - 1] and not mask[0, 0] and not mask[m - 2, 0]
    assert sum(H.SCALES) + 1 == 117


def test_layers_equal_per_pixel_dct():
    rng = np.random.default_rng(0)
    grad = rng.random((12, 17)) * 50
    grad[:, :6] *= 1e-3  # a nearly flat part, where the smallest coefficients are tiny
    fast = H.sorted_layers(grad)
    ref = brute_force_layers(grad)
    assert fast.shape == (12, 17, 117) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-5)
    assert np.all(np.diff(fast, axis=2) >= 0)


def test_recursion_does_not_drift_down_a_tall_column():
    # Strong texture, then 300 rows later a nearly flat region: the sliding recursion must still give its tiny
    # coefficients accurately.
    rng = np.random.default_rng(1)
    grad = np.zeros((400, 3))
    grad[:100] = rng.random((100, 3)) * 1400
    grad[100:] = rng.random((300, 3)) * 0.01
    fast = H.sorted_layers(grad)
    ref = brute_force_layers(grad[300:, :])  # rows ≥ 331 see only the flat part in both
    np.testing.assert_allclose(fast[340:], ref[40:], rtol=1e-3, atol=1e-9)


def test_tiled_equals_untiled():
    rng = np.random.default_rng(2)
    grad = rng.random((30, 41)) * 100
    whole = H.sorted_layers(grad)
    np.testing.assert_array_equal(H.sorted_layers(grad, tile_width=7), whole)
    one_pass = H.fused_layers(grad)
    two_pass = H.fused_layers(grad, layer_budget=0, tile_budget=1)  # one column per tile, layers computed twice
    np.testing.assert_array_equal(one_pass, two_pass)
    lo, hi = whole.min(axis=(0, 1)), whole.max(axis=(0, 1))
    np.testing.assert_allclose(one_pass, ((whole - lo) / (hi - lo)).max(axis=2), atol=1e-6)


def test_local_entropy_matches_histogram_definition():
    rng = np.random.default_rng(3)
    a = rng.random((15, 19)) ** 3
    ent = H.local_entropy(a, 7)
    q = np.pad(np.floor(a * 255 + 0.5).astype(np.uint8), 3, mode="symmetric")
    for y, x in [(0, 0), (7, 9), (14, 18), (3, 16)]:
        counts = np.bincount(q[y : y + 7, x : x + 7].ravel(), minlength=256)
        p = counts[counts > 0] / 49.0
        assert ent[y, x] == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-9)


def test_sharp_half_scores_lower_blur():
    image, mask = half_blurred(96, 128, sigma=3.0)
    blur = defocus.load("hifst").predict(image)
    assert blur.shape == (96, 128) and blur.dtype == np.float32
    assert 0.0 <= blur.min() and blur.max() <= 1.0
    left, right = blur[:, 8:56].mean(), blur[:, 72:120].mean()
    assert right > left + 0.3, (left, right)


def test_shape_dtype_range_and_small_images():
    method = defocus.load("hifst")
    rng = np.random.default_rng(4)
    for h, w in [(45, 70), (20, 9), (1, 1), (3, 80)]:
        image = rng.random((h, w, 3)).astype(np.float32)
        blur = method.predict(image)
        assert blur.shape == (h, w) and blur.dtype == np.float32
        assert np.isfinite(blur).all() and blur.min() >= 0.0 and blur.max() <= 1.0
    flat = method.predict(np.full((30, 40, 3), 0.5, np.float32))  # no texture at all: blurred everywhere
    np.testing.assert_array_equal(flat, 1.0)
    gray = method.predict(rng.random((25, 31)).astype(np.float32))
    assert gray.shape == (25, 31)


def test_options_and_registry():
    assert "hifst" in defocus.available("dbd")
    with pytest.raises(DefocusError):
        defocus.load("hifst", sigma_s=0)
    with pytest.raises(DefocusError):
        defocus.load("hifst").predict(np.zeros((4, 4, 2), np.float32))


def test_matches_authors_map_on_a_cuhk_photo():
    photo = SAMPLES / "images" / "motion0138.jpg"
    ref_path = SAMPLES / "hifst_official" / "motion0138_FinalMap.png"
    if not (photo.is_file() and ref_path.is_file()):
        pytest.skip("shared CUHK samples with the authors' HiFST maps not present")
    image = defocus.io.read_image(photo)
    final = H.hifst_sharpness(image)
    # The authors' demo: "you must get mean2(FinalMap) = 0.1809" for this photo.
    assert float(final.mean()) == pytest.approx(0.1809, abs=5e-4)
    ours = 1.0 - defocus.load("hifst").predict(image)
    ref = defocus.io.read_map(ref_path)
    r = np.corrcoef(ours.ravel(), ref.ravel())[0, 1]
    assert r > 0.99


def test_entropy_weighting_and_edge_aware_smoothing_of_the_map():
    # D = entropy(T) · T (the authors' weighting), then the domain-transform filter smooths D inside regions of
    # the photo without mixing the sharp and the blurred half.
    image, _ = half_blurred(64, 96, sigma=3.0)
    final, t, d = H.hifst_sharpness(image, return_stages=True)
    np.testing.assert_allclose(d, H.local_entropy(t.astype(np.float64), 7) * t, rtol=1e-5, atol=1e-6)
    sharp, blurred = slice(8, 40), slice(56, 88)

    def variation(a):  # mean absolute difference between neighbouring pixels
        return np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()

    assert variation(final[:, sharp]) < 0.3 * variation(d[:, sharp])
    assert final[:, sharp].mean() > 3 * final[:, blurred].mean()
