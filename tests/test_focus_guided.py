"""focus-guided: edge estimates spread within the regions of a blur detector (defocus.methods.focus_guided)."""

import cv2
import numpy as np
import pytest

import defocus
from defocus.errors import DefocusError


class RegionDetector:
    """A stand-in blur detector that returns a fixed blur map."""

    def __init__(self, blur):
        self.blur = blur.astype(np.float32)

    def predict(self, image):
        return self.blur


def blurred_texture_with_a_flat_square(size=128, sigma=3.0):
    rng = np.random.default_rng(1)
    tex = cv2.resize(rng.random((size // 4, size // 4, 3)).astype(np.float32), (size, size),
                     interpolation=cv2.INTER_NEAREST)
    img = cv2.GaussianBlur(tex, (0, 0), sigma)
    square = np.zeros((size, size), bool)
    square[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = True
    img[square] = 0.5  # flat: no edge to measure, in focus by the detector's word
    return np.clip(img, 0, 1), square


def test_without_blocking_and_seeds_it_is_the_base_estimator():
    img, _ = blurred_texture_with_a_flat_square()
    plain = defocus.load("focus-guided", psi=0.0, seed_below=0.0).predict(img)
    np.testing.assert_allclose(plain, defocus.load("karaali-jung-2018").predict(img), atol=1e-5)


def test_a_flat_in_focus_region_is_not_filled_from_the_blurred_surroundings():
    img, square = blurred_texture_with_a_flat_square()
    guided = defocus.load("focus-guided")
    guided.detector = RegionDetector(~square)  # the square in focus, the rest out of focus
    inner = np.zeros_like(square)
    inner[40:88, 40:88] = True
    base = defocus.load("karaali-jung-2018").predict(img)
    out = guided.predict(img)
    assert out.shape == img.shape[:2] and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.median(base[inner]) > 1.0  # the edge method fills the flat square from its blurred frame
    assert np.median(out[inner]) == pytest.approx(guided.seed_sigma, abs=0.1)
    assert np.median(out[~square]) == pytest.approx(np.median(base[~square]), abs=0.5)


def test_arguments_are_checked():
    with pytest.raises(DefocusError, match="blur detector"):
        defocus.load("focus-guided", detector="karaali-jung-2018")
    with pytest.raises(DefocusError, match="defocus-map estimator"):
        defocus.load("focus-guided", base="lbp")
    with pytest.raises(DefocusError, match="sparse"):
        defocus.load("focus-guided", base="pyramid")
    with pytest.raises(DefocusError, match="psi"):
        defocus.load("focus-guided", psi=-1.0)
