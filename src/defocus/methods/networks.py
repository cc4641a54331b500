"""The learned blur detectors: every trained network behind the same ``predict``.

A network runs on the photo resized to a square working size (320 px, the size they were trained for, as in the
papers); its blur map is brought back to the photo's full resolution by bilinear upsampling followed by a guided
filter (He et al. 2010) steered by the full-resolution grey image, which moves the map's edges onto the photo's edges
instead of leaving soft or blocky borders (:func:`defocus.nets.predict.predict_blur`, what training validation runs
too). The filter runs in horizontal stripes, so a 24-megapixel photo needs only a few full-size float32 planes.

One class runs them all: :class:`NetworkDetector`, built by :func:`defocus.load` from the network's
:class:`~defocus.pretrained.Pretrained` entry (weight file, sha256, working size, ...), which lives in the
``PRETRAINED`` list at the end of the network's module. Adding a trained network is one entry there.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from ..pretrained import Pretrained
from ..registry import Method


class NetworkDetector(Method):
    """A trained network (any :data:`defocus.nets.models.MODELS` architecture) as a blur detector.

    Parameters
    ----------
    pretrained : Pretrained
        The weight configuration (positional; :func:`defocus.load` passes the registry's entry).
    device : str
        ``"cpu"`` or ``"cuda"``.
    working_size : int, optional
        Side in px of the square the photo is resized to for the network (default: the entry's, the training size).
    weights : path, optional
        A model file from ``defocus train`` (``OUT/model.safetensors``) instead of the bundled one. It may hold any
        architecture (the file describes its own); what is checked is that the file is a readable model file whose
        tensors fit that architecture exactly, and its sha256 if ``sha256`` is given (a trained file records no
        digest of itself). The bundled file is always checked against the entry's sha256.
    sha256 : str, optional
        Required sha256 (full hex digest or a prefix) of ``weights``.
    refine : bool
        Guided-filter upsampling (True) or plain bilinear (False).
    radius_scale : float
        Guided-filter radius in working-size px (multiplied by the upsampling factor).
    eps : float
        Guided-filter regularisation.
    output : int
        The papers' single-output ablation (DeFusionNet_Ok, R²MRF_Ok): k ≥ 1 uses layer k's last-step side output
        instead of the fused map (networks with ``output_layers`` only: DeFusionNet, R²MRF; 0 = the fused map).
    """

    def __init__(self, pretrained: Pretrained, /, device: str = "cpu", working_size: int | None = None,
                 weights: str | None = None, sha256: str | None = None, refine: bool = True,
                 radius_scale: float = 2.0, eps: float = 1e-2, output: int = 0):
        super().__init__(device=device)
        import torch

        from ..nets.layers import fuse_conv_bn
        from ..nets.modelfile import BUNDLED_DIR, load_model

        self.pretrained = pretrained
        self.name, self.task = pretrained.name, pretrained.task
        self.summary, self.paper = pretrained.summary, pretrained.paper
        if sha256 is not None:
            if weights is None:
                raise WeightsError(f"{self.name}: sha256= checks a file given with weights=; the bundled file is "
                                   "always checked")
            # str(): a digest of digits only arrives as a number from `--option sha256=...`
            sha256 = str(sha256).lower()
            if not re.fullmatch(r"[0-9a-f]{8,64}", sha256):
                raise WeightsError(f"{self.name}: sha256={sha256!r} is not a hex digest (8 to 64 hex digits)")
        path = Path(weights) if weights is not None else BUNDLED_DIR / pretrained.file
        digest = sha256 if weights is not None else pretrained.sha256
        model, self.metadata = load_model(path, sha256=digest, device=device)
        if output:
            layers = getattr(model, "output_layers", 0)
            if not 1 <= int(output) <= layers:
                raise ValueError(f"{self.name}: output={output} needs a network with per-layer outputs 1…{layers}")
            model.output = int(output)
        self.model = fuse_conv_bn(model).to(memory_format=torch.channels_last)
        self.working_size = int(working_size if working_size is not None else pretrained.working_size)
        self.refine = bool(refine)
        self.radius_scale = float(radius_scale)
        self.eps = float(eps)

    def predict(self, image: np.ndarray) -> np.ndarray:
        from ..nets.predict import predict_blur

        return predict_blur(self.model, image, working_size=self.working_size, device=self.device,
                            refine=self.refine, radius_scale=self.radius_scale, eps=self.eps, channels_last=True)
