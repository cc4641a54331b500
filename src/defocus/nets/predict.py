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
                 channels_last: bool = False, calibration: dict | None = None, flip: bool = False) -> np.ndarray:
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
    flip : bool
        Test-time augmentation: average the probabilities of the photo and of its mirror image (twice the cost).

    Returns
    -------
    ndarray (H, W) float32 in [0, 1], 1 = out of focus
    """
    prob = working_size_probability(model, image, working_size, device, channels_last=channels_last)
    if flip:
        mirrored = working_size_probability(model, np.ascontiguousarray(image[:, ::-1]), working_size, device,
                                            channels_last=channels_last)
        prob = 0.5 * (prob + mirrored[:, ::-1])
    prob = apply_calibration(prob, calibration)
    h, w = image.shape[:2]
    radius = int(round(radius_scale * max(h, w) / working_size)) if refine else 0
    return guided_upsample(prob, image, radius, eps)


def predict_defocus(model, image: np.ndarray, *, working_size: int = 320, device: str = "cpu",
                    refine: bool = True, radius_scale: float = 2.0, eps: float = 1e-2,
                    channels_last: bool = False, sigma_scale: float | None = None) -> np.ndarray:
    """Full-resolution defocus map (Gaussian σ in px of the photo) of one photo from a defocus-map network.

    The photo is resized (area filter, aspect kept) so that its long side is at most ``working_size`` — never
    enlarged — and padded (mirrored) to multiples of 32. The network's map, σ / ``sigma_scale`` in working-size px,
    is brought back to full resolution like a blur map (bilinear + guided filter, which is linear in the map, so it
    can run on the [0, 1] map) and then multiplied by ``sigma_scale / s``, s = working / photo size: a blur of σ px in
    the photo is σ·s px in the resized one. So σ means photo px at any resolution, but blur below about 0.5/s photo
    px is not resolved (the resize itself makes it sharp), and the largest σ is ``sigma_scale``/s.

    Parameters
    ----------
    model : defocus-map network (eval mode) or a runtime (:class:`defocus.nets.models.TorchNetwork`: input array →
        sigmoid of the logits)
    image : ndarray (H, W, 3) float32 RGB in [0, 1]
    working_size : int
        Largest side in px the network sees.
    refine, radius_scale, eps, channels_last :
        As for :func:`predict_blur` (the guided-filter radius is ``radius_scale / s`` photo px).
    sigma_scale : float, optional
        σ in working-size px of a network output 1 (default :data:`defocus.nets.dmenet.SIGMA_SCALE`).

    Returns
    -------
    ndarray (H, W) float32, σ px ≥ 0
    """
    import cv2
    from torch import nn

    from .dmenet import SIGMA_SCALE
    from .models import TorchNetwork

    sigma_scale = SIGMA_SCALE if sigma_scale is None else float(sigma_scale)
    h, w = image.shape[:2]
    scale = min(1.0, working_size / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    img = np.ascontiguousarray(image, dtype=np.float32)
    small = img if (sh, sw) == (h, w) else cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    padded = np.pad(small, ((0, -sh % 32), (0, -sw % 32), (0, 0)), mode="symmetric")
    run = TorchNetwork(model, device, channels_last) if isinstance(model, nn.Module) else model
    unit = np.asarray(run(np.ascontiguousarray(padded.transpose(2, 0, 1))[None])[0, 0, :sh, :sw], np.float32)
    radius = int(round(radius_scale / scale)) if refine else 0
    return guided_upsample(unit, image, radius, eps) * np.float32(sigma_scale / scale)
