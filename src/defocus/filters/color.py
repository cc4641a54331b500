"""Grey conversion shared by the methods that read a photo's luma the same way."""

from __future__ import annotations

import cv2
import numpy as np


def gray(image: np.ndarray) -> np.ndarray:
    """Luma of an RGB image with the ITU-R BT.601 weights (0.299, 0.587, 0.114), as OpenCV computes it.

    Parameters
    ----------
    image : ndarray (H, W, 3) RGB, or (H, W) already grey; float in [0, 1]

    Returns
    -------
    ndarray (H, W), float32, in the range of the input (a grey input is returned as float32 unchanged)
    """
    img = np.ascontiguousarray(image, dtype=np.float32)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
