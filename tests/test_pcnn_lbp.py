"""pcnn-lbp (Basar et al. 2021): the LBP sharpness measure fed to a pulse-coupled neural network."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import half_blurred

import defocus


def test_uncoupled_map_is_a_monotone_function_of_the_lbp_sharpness():
    image, _ = half_blurred(64, 96, sigma=2.0)
    lbp_blur = defocus.load("lbp").predict(image).ravel()
    out = defocus.load("pcnn-lbp", beta=0.0).predict(image).ravel()
    order = np.argsort(lbp_blur, kind="stable")
    assert np.all(np.diff(out[order]) >= 0)  # blurrier by LBP never fires earlier


def test_linking_only_advances_firing_and_the_map_is_graded():
    image, _ = half_blurred(96, 128, sigma=3.0)
    alone = defocus.load("pcnn-lbp", beta=0.0).predict(image)
    linked = defocus.load("pcnn-lbp").predict(image)
    assert linked.dtype == np.float32 and linked.shape == (96, 128)
    assert np.all(linked <= alone)  # linking input is never negative
    assert (linked < alone).mean() > 0.05
    assert len(np.unique(linked)) > 10  # firing order, not a binary mask
    assert linked[:, 88:].mean() - linked[:, :40].mean() > 0.6


@pytest.mark.parametrize("options", [{"iterations": 1}, {"beta": -0.1}, {"floor": 0.0}, {"floor": 1.0},
                                     {"scales": (4,)}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        defocus.load("pcnn-lbp", **options)
