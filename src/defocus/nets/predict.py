"""The one inference path of every blur-detection network: what ``defocus detect`` and training validation run.

The photo is resized (area filter) to the square working size the network was trained at; the network's blur
probability is brought back to the photo's full resolution by bilinear upsampling and a guided filter steered by the
full-resolution grey image (:func:`defocus.filters.guided.guided_upsample`). A calibration
(:mod:`defocus.nets.calibration`), where given, maps the working-size probability before the upsampling.
"""

from __future__ import annotations

import numpy as np

from ..filters.guided import guided_upsample
from .calibration import apply_calibration
from .models import working_size_probability


def predict_blur(model, image: np.ndarray, *, working_size: int = 320, device: str = "cpu",
                 refine: bool = True, radius_scale: float = 2.0, eps: float = 1e-2,
                 channels_last: bool = False, calibration: dict | None = None) -> np.ndarray:
    """Full-resolution blur map of one photo from a network in eval mode.

    Parameters
    ----------
    model : network from :func:`defocus.nets.models.build_model`, or a runtime
        (:class:`defocus.nets.models.TorchNetwork`, :class:`defocus.nets.onnx.OnnxNetwork`)
    image : ndarray (H, W, 3) float32 RGB in [0, 1]
    working_size : int
        Side in px of the square the photo is resized to for the network.
    refine : bool
        Guided-filter upsampling (True) or plain bilinear (False).
    radius_scale : float
        Guided-filter radius in working-size px (multiplied by the upsampling factor max(H, W) / working_size).
    eps : float
        Guided-filter regularisation (squared grey levels).
    channels_last : bool
        Feed the input channels-last (faster on a CPU for a model converted to that format).
    calibration : dict, optional
        Monotone map of the working-size probability (:func:`defocus.nets.calibration.apply_calibration`).

    Returns
    -------
    ndarray (H, W) float32 in [0, 1], 1 = out of focus
    """
    prob = working_size_probability(model, image, working_size, device, channels_last=channels_last)
    prob = apply_calibration(prob, calibration)
    h, w = image.shape[:2]
    radius = int(round(radius_scale * max(h, w) / working_size)) if refine else 0
    return guided_upsample(prob, image, radius, eps)
