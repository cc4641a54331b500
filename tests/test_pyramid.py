"""The pyramid combination of defocus maps (``defocus.methods.pyramid``)."""

import cv2
import numpy as np
import pytest

import defocus
from defocus.errors import DefocusError
from defocus.methods.pyramid import acceptance, pyramid_estimate, pyramid_levels

CEILING = 5.0  # the range of the edge-based estimators: they clip σ here


def saturating_oracle(photo_width):
    """An estimator that reads the true σ off channel 0 (σ_photo / 100, which area downsampling keeps in flat
    regions), converts it to the pixels of the image it is given and clips it at CEILING, as a real one would."""

    def predict(image):
        scale = photo_width / image.shape[1]
        return np.minimum(image[..., 0] * 100.0 / scale, CEILING).astype(np.float32)

    return predict


def banded_photo(sigmas, h=256, band=64):
    """Vertical bands of constant true σ, encoded in channel 0."""
    img = np.zeros((h, band * len(sigmas), 3), np.float32)
    for i, s in enumerate(sigmas):
        img[:, i * band:(i + 1) * band, 0] = s / 100.0
    return img


def test_levels():
    assert pyramid_levels((48, 1000)) == 0
    assert pyramid_levels((64, 64)) == 0
    assert pyramid_levels((128, 300)) == 1
    assert pyramid_levels((4000, 6000)) == 5  # 4000 / 2^5 = 125 ≥ 64
    assert pyramid_levels((4000, 6000), levels=2) == 2
    for bad in (-1, 1.5, "three", True):
        with pytest.raises(DefocusError, match="levels"):
            pyramid_levels((100, 100), bad)


def test_acceptance_ramp():
    np.testing.assert_allclose(acceptance(np.array([0.0, 1.5, 2.0, 2.5, 9.0])), [0, 0, 0.5, 1, 1])


def test_blur_beyond_the_estimators_range_is_recovered_in_photo_pixels():
    sigmas = [0.0, 1.0, 3.0, 6.0, 12.0, 24.0, 40.0, 70.0]
    photo = banded_photo(sigmas, h=512)
    predict = saturating_oracle(photo.shape[1])
    single = pyramid_estimate(predict, photo, levels=0)
    multi = pyramid_estimate(predict, photo)  # 512 px high: 3 levels above full resolution, ceiling 5·2^3 = 40
    for i, s in enumerate(sigmas):
        inner = (slice(None), slice(i * 64 + 16, i * 64 + 48))
        assert np.median(single[inner]) == pytest.approx(min(s, CEILING), abs=1e-4)
        assert np.median(multi[inner]) == pytest.approx(min(s, 40.0), rel=1e-3, abs=1e-3), s


def test_small_blur_keeps_the_full_resolution_map():
    photo = banded_photo([0.0, 0.5, 1.5, 2.5])
    predict = saturating_oracle(photo.shape[1])
    np.testing.assert_array_equal(pyramid_estimate(predict, photo), predict(photo))


def test_registered_method_runs_any_estimator_and_checks_its_arguments():
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.random((40, 40, 3)).astype(np.float32), (160, 160), interpolation=cv2.INTER_NEAREST)
    img[:, 80:] = cv2.GaussianBlur(img, (0, 0), 2.0)[:, 80:]
    out = defocus.load("pyramid", base="zhuo-sim", base_options={"std2": 2.0}).predict(img)
    assert out.shape == img.shape[:2] and out.dtype == np.float32 and np.isfinite(out).all() and out.min() >= 0
    np.testing.assert_allclose(defocus.load("pyramid", base="zhuo-sim", levels=0).predict(img),
                               defocus.load("zhuo-sim").predict(img), atol=1e-6)
    with pytest.raises(DefocusError, match="task dme"):
        defocus.load("pyramid", base="lbp")
    with pytest.raises(DefocusError, match="itself"):
        defocus.load("pyramid", base="pyramid")
    with pytest.raises(DefocusError, match="accept"):
        defocus.load("pyramid", accept=(2.0, 1.0))
    with pytest.raises(defocus.errors.UnknownOptionError):
        defocus.load("pyramid", base_options={"no_such_option": 1})
