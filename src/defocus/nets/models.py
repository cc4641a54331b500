"""One registry of trainable networks: ``arch`` name -> ``"module:Class"``, built by :func:`build_model`.

A network class takes ``pretrained`` (backbone initialisation) plus its own keyword options, stores them in
``self.arch`` (so a model file can rebuild it), and returns blur-map logits — with ``return_sides=True`` also the
list of side-output logits used for deep supervision. Add one line per network.

A network's module ends with its ``PRETRAINED`` list (:class:`defocus.pretrained.Pretrained`, one entry per bundled
weight file), which makes each entry a method of :mod:`defocus.registry`. The registry reads :data:`MODELS` and those
lists from the source without importing torch, so both stay plain literals.
"""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import torch
from torch import nn

MODELS: dict[str, str] = {
    "light_dffnet": "defocus.nets.dffnet:LightDFFNet",
    "defusionnet": "defocus.nets.defusionnet:DeFusionNet",
    "r2mrf": "defocus.nets.r2mrf:R2MRF",
    "br2net": "defocus.nets.br2net:BR2Net",
    "dffnet": "defocus.nets.ddffnet:DFFNet",
    "benet": "defocus.nets.benet:BNet",
    "enet": "defocus.nets.benet:ENet",
    "efenet": "defocus.nets.efenet:EFENet",
    "dmenet": "defocus.nets.dmenet:DMENet",
}


def build_model(arch: dict, pretrained=False) -> nn.Module:
    """Build a network from its ``arch`` dict (``model.arch``), e.g. ``{"arch": "light_dffnet", "backbone": ...}``."""
    arch = dict(arch)
    name = arch.pop("arch")
    if name not in MODELS:
        raise ValueError(f"unknown model architecture {name!r}; available: {', '.join(MODELS)}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)(pretrained=pretrained, **arch)


class TorchNetwork:
    """A torch network as a runtime of the detector: float32 array (N, 3, H, W) in [0, 1] → blur probability
    (N, 1, H, W) in [0, 1] (the other runtime is :class:`defocus.nets.onnx.OnnxNetwork`).

    ``channels_last`` feeds the input in channels-last memory format (faster on a CPU for a model converted to it).
    """

    def __init__(self, model: nn.Module, device: str = "cpu", channels_last: bool = False) -> None:
        self.model, self.device, self.channels_last = model, device, channels_last

    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return torch.sigmoid(self.model(t)).float().cpu().numpy()


def working_size_input(image: np.ndarray, size: int) -> np.ndarray:
    """A photo resized (area filter) to ``size``×``size`` as the networks' input: float32 (1, 3, size, size)."""
    img = np.ascontiguousarray(image, dtype=np.float32)
    small = img if img.shape[:2] == (size, size) else cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small.transpose(2, 0, 1))[None]


def working_size_probability(model, image: np.ndarray, size: int, device: str = "cpu",
                             channels_last: bool = False) -> np.ndarray:
    """A network's blur probability for a photo resized (area filter) to ``size``×``size``.

    Parameters
    ----------
    model : network from :func:`build_model` (in eval mode), or a runtime (:class:`TorchNetwork`,
        :class:`defocus.nets.onnx.OnnxNetwork`: any callable from the input array to the probability array)
    image : ndarray (H, W, 3) float32 RGB in [0, 1]
    size : int
        Working size in px (the size the network was trained at).
    device, channels_last :
        Where and how a torch network runs (see :class:`TorchNetwork`); a runtime carries its own.

    Returns
    -------
    ndarray (size, size) float32 in [0, 1], 1 = out of focus
    """
    run = TorchNetwork(model, device, channels_last) if isinstance(model, nn.Module) else model
    return np.asarray(run(working_size_input(image, size))[0, 0], dtype=np.float32)
