"""Every registered method honours the interface: shape, dtype, range, and the sharp/blurred ordering."""

import numpy as np
import pytest

import defocus
from defocus.errors import UnknownMethodError

from conftest import half_blurred


def test_default_detector_is_registered():
    assert defocus.DEFAULT_DETECTOR in defocus.available("dbd")


def test_unknown_method():
    with pytest.raises(UnknownMethodError, match="available"):
        defocus.load("no-such-method")


@pytest.mark.parametrize("name", defocus.available())
def test_interface(name):
    method = defocus.load(name)
    assert method.task in ("dbd", "dme")
    assert method.summary and method.paper
    image, _ = half_blurred(72, 100)
    out = method.predict(image)
    assert out.shape == image.shape[:2]
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    if method.task == "dbd":
        assert out.min() >= 0.0 and out.max() <= 1.0
    else:
        assert out.min() >= 0.0


@pytest.mark.parametrize("name", defocus.available("dbd"))
def test_detector_ranks_blurred_half_higher(name):
    image, mask = half_blurred(96, 128, sigma=3.0)
    out = defocus.load(name).predict(image)
    inner = slice(8, -8)
    left = out[inner, 8:56].mean()
    right = out[inner, 72:120].mean()
    assert right > left + 0.1, (left, right)
