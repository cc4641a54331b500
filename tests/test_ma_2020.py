"""ma-2020 (Ma, Lu & Lyu 2020, re-blurred DCT ratios of edge patches) on generated edges whose blur is known."""

import numpy as np
import pytest
from conftest import half_blurred
from test_dme_classic import _blurred_step

import defocus
from defocus.methods import ma_2020
from defocus.methods.zhuo_sim import canny


def test_calibration_is_monotone_and_inverts():
    for size in ma_2020.SIZES:
        for reblur in ma_2020.REBLUR:
            sigmas, ratios = ma_2020.calibration(size, reblur)
            assert np.all(np.diff(ratios) >= 0) and ratios[-1] > ratios[0] + 0.4  # blur raises the ratio
            back = ma_2020.ratio_to_sigma(ratios, size, reblur)
            assert np.all(back <= sigmas + 1e-9)
            useful = sigmas <= 2.5  # the range where every curve still rises
            assert np.mean(np.abs(back - sigmas)[useful]) < 0.2


def _step_estimate(sigma):
    gray = _blurred_step(sigma, angle=0.3).astype(np.float32)
    edges = canny(gray, 1.0)
    ys, xs = np.nonzero(edges[10:-10, 10:-10])
    est = ma_2020.edge_sigma(gray, ys + 10, xs + 10, edges)
    assert len(est) > 20
    return float(np.median(est))


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 2.5])
def test_oblique_step_edge_recovers_sigma(sigma):
    # The step is sampled at pixel centres (no pixel-area blur, which the calibration includes), so small σ read
    # low: 0.76 at σ = 1 when written (1.38 at 1.5, 1.79 at 2, 2.86 at 2.5).
    assert _step_estimate(sigma) == pytest.approx(sigma, rel=0.3)


def test_sharp_step_edge_reads_sharp():
    assert _step_estimate(0.3) < _step_estimate(0.6) < ma_2020.SIGMA_HALF < _step_estimate(1.0)


def test_blur_points_far_from_edges():
    image = np.full((80, 120, 3), 0.5, np.float32)
    image[30:50, 10:30] = 0.9  # one sharp square on the left; the right two thirds hold no edge
    sparse, known = defocus.load("ma-2020").sparse(image)
    assert known[:, 60:].all() and (sparse[:, 60:] == 1).all()
    assert not known[40, 35]  # 5 px from the square: neither an edge nor a blur point
    sparse, known = defocus.load("ma-2020", blur_points=False).sparse(image)
    assert not known[:, 60:].any()


def test_blur_degree_orders_sharp_and_blurred_edges():
    image, _ = half_blurred(96, 128, sigma=2.0)
    sparse, known = defocus.load("ma-2020", blur_points=False).sparse(image)
    assert np.median(sparse[:, 88:][known[:, 88:]]) > 0.8 > 0.3 > np.median(sparse[:, :40][known[:, :40]])


@pytest.mark.parametrize("propagation", ["matting", "dt"])
def test_dense_map_contract(propagation):
    image, _ = half_blurred(96, 128, sigma=3.0)
    out = defocus.load("ma-2020", propagation=propagation).predict(image)
    assert out.shape == (96, 128) and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    assert out[:, 88:].mean() - out[:, :40].mean() > 0.4


def test_flat_image_and_refused_options():
    flat = defocus.load("ma-2020").predict(np.full((30, 40, 3), 0.5, np.float32))
    assert (flat == 1).all()  # no edge anywhere: nothing reads as in focus
    for bad in ({"sizes": (2,)}, {"sigma_half": 0}, {"propagation": "knn"}):
        with pytest.raises(ValueError):
            defocus.load("ma-2020", **bad)
    with pytest.raises(defocus.errors.UnknownOptionError):
        defocus.load("ma-2020", window=3)
