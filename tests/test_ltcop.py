"""ltcop (Khan et al. 2019): local ternary co-occurrence pattern codes and the fused sharpness measure."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import half_blurred, textured_image

import defocus
from defocus.methods import lbp as lbp_mod
from defocus.methods import ltcop as ltcop_mod


def _ring_image(centre: float, ring1: float, ring2: float) -> np.ndarray:
    """5×5 image: the centre pixel, its 8 neighbours at radius 1, the outer border at radius 2."""
    img = np.full((5, 5), ring2, np.float32)
    img[1:4, 1:4] = ring1
    img[2, 2] = centre
    return img


def test_codes_need_both_radii_to_agree():
    # A pit that keeps rising outwards: every direction is +1 at both radii -> upper pattern all 8 bits.
    upper, lower = ltcop_mod.ltcop_codes(_ring_image(0.0, 0.5, 1.0))
    assert upper[2, 2] == 8 and lower[2, 2] == 0
    # A bright peak: -1 at both radii -> lower pattern all 8 bits.
    upper, lower = ltcop_mod.ltcop_codes(_ring_image(1.0, 0.5, 0.0))
    assert upper[2, 2] == 0 and lower[2, 2] == 8
    # Darker than its first ring (by 0.025 > t) but level with the second: the ternary edges do not co-occur (the
    # diagonal samples at radius 2 take 34 % of the first ring, 0.009 < t), no bit is set, although the
    # single-radius LBP sees a pit.
    img = _ring_image(0.0, 0.025, 0.0)
    upper, lower = ltcop_mod.ltcop_codes(img, threshold=0.012)
    assert upper[2, 2] == 0 and lower[2, 2] == 0
    assert lbp_mod.lbp_codes(img, threshold=0.012)[2, 2] == 8


def test_one_radius_upper_pattern_is_the_lbp_and_lower_is_its_mirror():
    gray = lbp_mod.gray01(textured_image(40, 50, seed=2))
    upper, lower = ltcop_mod.ltcop_codes(gray, 0.016, radii=(1,))
    np.testing.assert_array_equal(upper, lbp_mod.lbp_codes(gray, 0.016))
    # The lower pattern of an image is the upper pattern of its negative.
    np.testing.assert_array_equal(lower, ltcop_mod.ltcop_codes(1.0 - gray, 0.016, radii=(1,))[0])


def test_strips_stitch_to_the_whole_image(monkeypatch):
    gray = lbp_mod.gray01(textured_image(37, 29, seed=6))
    whole = ltcop_mod.ltcop_codes(gray)
    monkeypatch.setattr(lbp_mod, "_ROWS_PER_STRIP", 8)
    for a, b in zip(whole, ltcop_mod.ltcop_codes(gray)):
        np.testing.assert_array_equal(a, b)


def test_fused_patterns_separate_a_half_blurred_image_better_than_either():
    image, _ = half_blurred(96, 128, sigma=3.0)
    gaps = {}
    for patterns in (("upper",), ("lower",), ("upper", "lower")):
        out = defocus.load("ltcop", patterns=patterns).predict(image)
        assert out.dtype == np.float32 and out.shape == (96, 128)
        gaps[patterns] = out[:, 88:].mean() - out[:, :40].mean()
    assert gaps[("upper", "lower")] > max(gaps[("upper",)], gaps[("lower",)])
    assert gaps[("upper", "lower")] > 0.6


@pytest.mark.parametrize("options", [{"patterns": ("middle",)}, {"patterns": ()}, {"scales": (10,)},
                                     {"radii": (0, 1)}, {"lowest": 0}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        defocus.load("ltcop", **options)
