"""The shared image operations of defocus.filters, each checked against the property that defines it."""

from __future__ import annotations

import numpy as np
import pytest

from defocus.filters import (MattingLaplacian, gray, guided_filter, guided_upsample, minmax, propagate,
                             sharpness_to_blur)
from defocus.filters.guided import box_mean

from conftest import two_values_and_a_wall


def _step(h: int, w: int, x0: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    a = np.full((h, w), lo, np.float32)
    a[:, x0:] = hi
    return a


# --- guided filter ----------------------------------------------------------------------------------------------


def test_guided_filter_keeps_the_guides_step_edge_that_a_box_mean_smears():
    guide = _step(32, 64, 32, 0.2, 0.8)
    noise = np.random.default_rng(0).normal(0, 0.02, guide.shape).astype(np.float32)
    src = guide + noise
    radius = 4
    out = guided_filter(guide, src, radius, eps=1e-4)
    box = box_mean(src, 2 * radius + 1)
    # The jump between the two columns beside the edge: the guided filter keeps the full 0.6, a box mean of the
    # same window spreads it over 2·radius + 1 columns (one ninth per column).
    assert (out[:, 32] - out[:, 31]).min() > 0.55
    assert (box[:, 32] - box[:, 31]).max() < 0.15
    # ... and it still smooths: the noise of the flat parts is reduced.
    assert (out[:, :24] - guide[:, :24]).std() < 0.5 * noise[:, :24].std()


@pytest.mark.parametrize("photo_edge", [29, 32, 34])
def test_guided_upsample_puts_the_maps_border_on_the_photos_edge(photo_edge):
    image = np.repeat(_step(64, 64, photo_edge, 0.1, 0.9)[..., None], 3, axis=2)
    prob = _step(16, 16, 8)  # a network's working-size map: its border near column 32 of the photo
    out = guided_upsample(prob, image, radius=8, eps=1e-4)
    assert out.shape == (64, 64) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    jump = np.diff(out, axis=1)  # jump[:, x] is the step from column x to x + 1
    # The map switches at the photo's edge, in one column, as sharply as the photo does.
    assert (jump.argmax(axis=1) == photo_edge - 1).all()
    assert jump[:, photo_edge - 1].min() > 0.5
    # Plain bilinear upsampling (radius 0) leaves a ramp over several columns.
    assert np.diff(guided_upsample(prob, image, radius=0, eps=1e-4), axis=1).max() < 0.3


# --- matting Laplacian ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_laplacian():
    rng = np.random.default_rng(3)
    img = rng.random((7, 9, 3))
    return img, MattingLaplacian(img, 1e-5)


def test_matting_laplacian_annihilates_constants(small_laplacian):
    img, lap = small_laplacian
    ones = np.ones(img.shape[:2])
    np.testing.assert_allclose(lap.matvec(ones), 0.0, atol=1e-9)
    np.testing.assert_allclose(lap.matrix() @ ones.ravel(), 0.0, atol=1e-9)


def test_matting_laplacian_is_symmetric_positive_semidefinite(small_laplacian):
    img, lap = small_laplacian
    mat = lap.matrix().toarray()
    np.testing.assert_allclose(mat, mat.T, atol=1e-12)
    eig = np.linalg.eigvalsh(mat)
    assert eig.min() > -1e-9 * eig.max()
    # The matrix-free product and the diagonal are the same operator as the assembled matrix.
    p = np.random.default_rng(4).random(img.shape[:2])
    np.testing.assert_allclose(lap.matvec(p).ravel(), mat @ p.ravel(), atol=1e-8)
    np.testing.assert_allclose(lap.diag.ravel(), np.diag(mat), atol=1e-6)


def test_matting_laplacian_skipped_windows_leave_the_matrix():
    img = np.random.default_rng(5).random((6, 6, 3))
    lap = MattingLaplacian(img, 1e-5)
    skip = np.ones((6, 6), bool)
    assert lap.matrix(skip).nnz == 0
    skip[2, 2] = False  # only the window centred on (2, 2) is kept: it links pixels (1..3, 1..3) only
    links = lap.matrix(skip).toarray().reshape(6, 6, 6, 6)
    assert np.abs(links[1:4, 1:4][:, :, 1:4, 1:4]).sum() > 0
    assert np.abs(links).sum() == pytest.approx(np.abs(links[1:4, 1:4][:, :, 1:4, 1:4]).sum())


def test_solving_with_the_matting_laplacian_propagates_along_colour_regions():
    # Two colour regions; a few known values in each. The solution fills each region with its own value and
    # switches at the colour edge, not halfway between the known pixels.
    h, w = 24, 40
    img = np.zeros((h, w, 3))
    img[:, 14:] = (0.9, 0.6, 0.2)
    img += np.random.default_rng(1).normal(0, 0.005, img.shape)
    known = np.zeros((h, w), bool)
    known[::6, 2] = known[::6, 37] = True
    values = np.where(np.arange(w) < 20, 0.0, 1.0)[None].repeat(h, 0)
    lam = 100.0
    a = MattingLaplacian(img, 1e-7).matrix() + lam * np.diag(known.ravel().astype(float))
    alpha = np.linalg.solve(a.toarray() if hasattr(a, "toarray") else a, lam * known.ravel() * values.ravel())
    alpha = alpha.reshape(h, w)
    assert alpha[:, :12].max() < 0.1 and alpha[:, 16:].min() > 0.9


def test_matting_laplacian_rejects_a_grey_or_tiny_image():
    with pytest.raises(ValueError, match="H×W×3"):
        MattingLaplacian(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="3×3"):
        MattingLaplacian(np.zeros((2, 5, 3)))


# --- domain-transform propagation ------------------------------------------------------------------------------


def test_propagation_with_a_penalty_does_not_cross_a_marked_edge():
    # A uniform photo: nothing but the penalty ψ separates the two halves.
    image, sparse, known, wall = two_values_and_a_wall(30, 64, left=5, right=58, wall=40)
    depth_edge = wall.astype(np.float32) * 100.0
    free = propagate(image, sparse, known, sigma_s=15.0)
    walled = propagate(image, sparse, known, penalty=depth_edge, sigma_s=15.0)
    # Without ψ both values mix across the middle; with ψ each side keeps its own value up to the edge.
    assert free[:, 41].max() < 4.7 and free[:, 39].min() > 4.0
    np.testing.assert_allclose(walled[:, :40], 1.0, atol=1e-3)
    np.testing.assert_allclose(walled[:, 41:], 5.0, atol=1e-3)


def test_propagation_follows_the_photos_edges():
    # No penalty, but a colour edge in the photo: values stay on their own side of it (σr is in photo units).
    h, w = 30, 64
    image = np.repeat(_step(h, w, 40, 0.1, 0.9)[..., None], 3, axis=2)
    sparse = np.zeros((h, w), np.float32)
    known = np.zeros((h, w), bool)
    known[:, 5], sparse[:, 5] = True, 1.0
    known[:, 58], sparse[:, 58] = True, 5.0
    dense = propagate(image, sparse, known, sigma_r=0.1, sigma_s=30.0)
    assert dense[:, :38].max() < 1.5 and dense[:, 42:].min() > 4.5


# --- grey conversion and normalisation --------------------------------------------------------------------------


def test_gray_is_the_bt601_luma():
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    expected = rgb @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(gray(rgb), expected, atol=1e-6)
    assert gray(rgb).dtype == np.float32
    grey = rgb[..., 0]
    assert np.array_equal(gray(grey), grey)


def test_minmax_and_sharpness_to_blur():
    s = np.random.default_rng(0).random((6, 8)).astype(np.float32)
    n = minmax(s)
    assert n.min() == 0.0 and n.max() == 1.0 and n.dtype == np.float32
    blur = sharpness_to_blur(s)
    # The sharpest pixel is the least blurred, and only the order of the sharpness values matters up to scale.
    assert blur.flat[np.argmax(s)] == 0.0 and blur.flat[np.argmin(s)] == 1.0
    np.testing.assert_allclose(sharpness_to_blur(3.0 * s + 7.0), blur, atol=1e-6)
    np.testing.assert_allclose(blur, 1.0 - n, atol=1e-7)


def test_a_flat_map_gets_the_fallback():
    flat = np.full((3, 4), 0.25, np.float32)
    assert np.array_equal(minmax(flat), np.zeros((3, 4), np.float32))
    assert np.array_equal(sharpness_to_blur(flat), np.ones((3, 4), np.float32))
    assert np.array_equal(minmax(flat, fallback=lambda a: a), flat)
    assert np.array_equal(minmax(flat + np.float32(1e-8) * np.eye(3, 4, dtype=np.float32), eps=1e-6), np.zeros((3, 4)))
    assert minmax(np.arange(4)).dtype == np.float64


# --- PCNN --------------------------------------------------------------------------------------------------------


def test_uncoupled_pcnn_fires_when_the_decaying_threshold_drops_below_the_stimulus():
    from defocus.filters.pcnn import pcnn_firing_times

    s = np.array([[1.0, 0.7, 0.3, 0.05, 0.0]], np.float32)
    t = pcnn_firing_times(s, iterations=30, beta=0.0, alpha_e=0.15, threshold0=1.0)
    # E[n−1] = e^{−0.15 (n−1)}: the first n with S > E[n−1]; S = 0 never fires (iterations + 1).
    want = [np.floor(np.log(1.0 / v) / 0.15) + 2 for v in s[0, :4]]
    np.testing.assert_array_equal(t[0, :4], want)
    assert t[0, 4] == 31
    assert np.all(np.diff(t[0]) > 0)  # weaker stimuli fire later


def test_pcnn_linking_captures_a_weaker_neuron_into_its_neighbours_wave():
    from defocus.filters.pcnn import pcnn_firing_times

    s = np.ones((7, 7), np.float32)
    s[3, 3] = 0.7
    alone = pcnn_firing_times(s, iterations=20, beta=0.0)
    linked = pcnn_firing_times(s, iterations=20, beta=0.5)
    assert alone[0, 0] == linked[0, 0] == 2
    assert alone[3, 3] == 4  # ln(1/0.7)/0.15 = 2.4 steps after the first
    assert linked[3, 3] == 3  # fires one step after its neighbours


def test_pcnn_strips_equal_the_whole_image(monkeypatch):
    from defocus.filters import pcnn

    s = np.random.default_rng(3).random((45, 23)).astype(np.float32)
    whole = pcnn.pcnn_firing_times(s, iterations=12, beta=0.3)
    monkeypatch.setattr(pcnn, "_ROWS_PER_STRIP", 7)
    np.testing.assert_array_equal(pcnn.pcnn_firing_times(s, iterations=12, beta=0.3), whole)
