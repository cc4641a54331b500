"""Defocus magnification (Bae & Durand, Eurographics 2007): a shallower depth of field from the same photo.

>>> from defocus.magnify import magnify
>>> import numpy as np
>>> photo = np.full((64, 64, 3), 0.5, np.float32)
>>> bool(np.array_equal(magnify(photo, np.zeros((64, 64), np.float32), amount=3), photo))  # all in focus
True

``defocus magnify PHOTOS -o DIR --amount K`` does the same from the command line (docs/magnify.md).
"""

from .rerender import HIGHLIGHT_GAIN, extra_radius, magnify

__all__ = ["HIGHLIGHT_GAIN", "extra_radius", "magnify"]
