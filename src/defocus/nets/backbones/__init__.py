"""Backbones defined in-package (no torchvision/timm import) with their releases' state-dict keys.

>>> from defocus.nets.backbones import create_backbone
>>> net = create_backbone("mobilenetv2", pretrained=False)
>>> net.channels, net.reductions
([24, 32, 96, 320], [4, 8, 16, 32])

``pretrained=True`` loads the backbone's default file (looked up, never downloaded: see
:mod:`defocus.nets.weights`); ``pretrained="path/to/file"`` loads a user's own torchvision or timm file.
"""

from __future__ import annotations

import os

from .base import Backbone, FeatureInfo
from .efficientnet_lite import EfficientNetLite0
from .mobilenetv2 import MobileNetV2
from .resnet import ResNeSt101, ResNet50, ResNet101, ResNeXt101_32x4d, ResNeXt101_32x8d
from .vgg16 import HEDVGG16, VGG16

#: name -> class. Each class documents its taps, input normalisation and default weight file.
BACKBONES: dict[str, type[Backbone]] = {
    "mobilenetv2": MobileNetV2,
    "efficientnet_lite0": EfficientNetLite0,
    "hed_vgg16": HEDVGG16,
    "vgg16": VGG16,
    "resnet50": ResNet50,
    "resnet101": ResNet101,
    "resnext101_32x4d": ResNeXt101_32x4d,
    "resnext101_32x8d": ResNeXt101_32x8d,
    "resnest101": ResNeSt101,
}


def create_backbone(name: str, pretrained: bool | str | os.PathLike = False, out_indices=None,
                    sha256: str | None = None, **kwargs) -> Backbone:
    """Build a backbone by name.

    Parameters
    ----------
    name : str
        A key of :data:`BACKBONES`.
    pretrained : bool or path
        False: random init. True: the default weight file. A path: that file (torchvision/timm/original layout).
    out_indices : sequence of int, optional
        Taps to return (see each class); default: the four taps at 1/4 … 1/32 (all five for VGG16).
    sha256 : str, optional
        Required digest (or prefix) of the weight file, on top of the checks by file name.
    **kwargs
        Class options (``tf_padding`` for EfficientNet-Lite, ``ceil_mode`` for VGG16).
    """
    try:
        cls = BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}") from None
    net = cls(out_indices=out_indices, **kwargs)
    if pretrained:
        net.load_pretrained(None if pretrained is True else pretrained, sha256=sha256)
    return net


__all__ = ["BACKBONES", "Backbone", "EfficientNetLite0", "FeatureInfo", "HEDVGG16", "MobileNetV2", "ResNet50",
           "ResNet101", "ResNeSt101", "ResNeXt101_32x4d", "ResNeXt101_32x8d", "VGG16", "create_backbone"]
