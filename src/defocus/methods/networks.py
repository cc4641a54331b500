"""The learned blur detectors: every bundled network behind the same ``predict``.

A network runs on the photo resized to a square working size (320 px, the size they were trained for, as in the
papers); its blur map is brought back to the photo's full resolution by bilinear upsampling followed by a guided
filter (He et al. 2010) steered by the full-resolution grey image, which moves the map's edges onto the photo's edges
instead of leaving soft or blocky borders. The filter runs in horizontal stripes, so a 24-megapixel photo needs only
a few full-size float32 planes of memory.

Each detector is a :class:`NetworkDetector` naming its bundled weight file (``defocus/weights/*.safetensors``,
float16, sha256 checked on load); docs/training.md records the recipe that made each. Adding a trained network is
one subclass here and one registry line.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..registry import Method


class NetworkDetector(Method):
    """A trained network (any :data:`defocus.nets.models.MODELS` architecture) as a blur detector.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda"``.
    working_size : int
        Side of the square the photo is resized to for the network (320 = training size).
    weights : path, optional
        A model file from ``defocus train`` (``OUT/model.safetensors``) instead of the bundled one.
    sha256 : str, optional
        Required sha256 of ``weights`` (the bundled file is always checked against :attr:`weights_sha256`).
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

    task = "dbd"
    weights_file = ""
    weights_sha256 = ""

    def __init__(self, device: str = "cpu", working_size: int = 320, weights: str | None = None,
                 sha256: str | None = None, refine: bool = True, radius_scale: float = 2.0, eps: float = 1e-2,
                 output: int = 0, **kw):
        super().__init__(device=device, **kw)
        import torch

        from ..nets.dffnet import fuse_conv_bn
        from ..nets.modelfile import BUNDLED_DIR, load_model

        path = Path(weights) if weights is not None else BUNDLED_DIR / self.weights_file
        digest = sha256 if weights is not None else self.weights_sha256
        model, self.metadata = load_model(path, sha256=digest, device=device)
        if output:
            layers = getattr(model, "output_layers", 0)
            if not 1 <= int(output) <= layers:
                raise ValueError(f"{self.name}: output={output} needs a network with per-layer outputs 1…{layers}")
            model.output = int(output)
        self.model = fuse_conv_bn(model).to(memory_format=torch.channels_last)
        self.working_size = int(working_size)
        self.refine = bool(refine)
        self.radius_scale = float(radius_scale)
        self.eps = float(eps)

    def predict_working(self, image: np.ndarray) -> np.ndarray:
        """Blur probability at the working size: float32 (working_size, working_size) in [0, 1]."""
        from ..nets.models import working_size_probability

        return working_size_probability(self.model, image, self.working_size, self.device, channels_last=True)

    def predict(self, image: np.ndarray) -> np.ndarray:
        from ..nets.predict import predict_blur

        return predict_blur(self.model, image, working_size=self.working_size, device=self.device,
                            refine=self.refine, radius_scale=self.radius_scale, eps=self.eps, channels_last=True)


class LightDFFNetDetector(NetworkDetector):
    summary = "light DFFNet (MobileNetV2) trained on synthetic defocus; 320² working size, guided-filter upsampling"
    paper = ("after Jin et al., 'Depth and DOF Cues Make A Better Defocus Blur Detector', ICME 2023 (DFFNet); "
             "Sandler et al., MobileNetV2, CVPR 2018; He et al., guided filter, ECCV 2010")
    weights_file = "light_dffnet_mobilenetv2_synth.safetensors"
    weights_sha256 = "4ca5055f80a6e6ba942fd60a7b53bf82f21dc0616513011c2c43e53e50d52a4f"


class DFFNetDetector(NetworkDetector):
    summary = ("DFFNet's decoder (RFB, dense fusion, side attention) on MobileNetV2 (paper: ResNeSt-101), trained on "
               "synthetic defocus; D-DFFNet's stage-1 model")
    paper = "Y. Jin, M. Qian, J. Xiong, N. Xue, G.-S. Xia, 'Depth and DOF Cues Make A Better Defocus Blur Detector', ICME 2023"
    weights_file = "dffnet_mobilenetv2_synth.safetensors"
    weights_sha256 = "8a3bb477825398c0e4efe913f5226a655c892fe70b754ea8774eab8f715ded0e"


class DDFFNetDetector(NetworkDetector):
    summary = ("D-DFFNet: DFFNet (MobileNetV2) distilled from the bundled DFFNet only; no depth teacher "
               "(no depth model is available here), so not the paper's depth distillation")
    paper = DFFNetDetector.paper
    weights_file = "ddffnet_mobilenetv2_synth.safetensors"
    weights_sha256 = "be260eaba5c8bfde4aa8733832fb3c4a0477b3dc7b1913e1b4aa4b3a7829681b"


class R2MRFDetector(NetworkDetector):
    summary = "R²MRF (AMDF, recurrent residual refinement, T = 6) on MobileNetV2, trained on synthetic defocus"
    paper = ("C. Tang, X. Liu, X. Zhu, E. Zhu, K. Sun, P. Wang, L. Wang, A. Zomaya, 'R²MRF: Defocus Blur Detection "
             "via Recurrently Refining Multi-Scale Residual Features', AAAI 2020")
    weights_file = "r2mrf_mobilenetv2_synth.safetensors"
    weights_sha256 = "191ca54a7a07ba340dbc935ac7515512bc5c68d725894dd2b59dcbfe9386545d"


class DeFusionNetDetector(NetworkDetector):
    summary = "DeFusionNet (FSHF/FSEF, FFRM, T = 3) on the HED VGG16, trained on synthetic defocus"
    paper = ("C. Tang, X. Zhu, X. Liu, L. Wang, A. Zomaya, 'DeFusionNET: Defocus Blur Detection via Recurrently "
             "Fusing and Refining Multi-Scale Deep Features', CVPR 2019")
    weights_file = "defusionnet_hedvgg16_synth.safetensors"
    weights_sha256 = "5a371358382a81c4bdb0ae641230f682b1c566b8440f96b1ae2efae26a1b013c"
