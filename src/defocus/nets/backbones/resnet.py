"""ResNet-50/101, ResNeXt-101 (32×4d) and ResNeSt-101 with their releases' module names (torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, …,
``layer1.0.downsample.0``, ``fc``), so torchvision's ImageNet files and timm's ``resnet50`` / ``resnext101_32x4d``
(same layout) load as they are; ResNeSt-101 as in the authors' release.

None of these files can be obtained offline here: pass the file you have (``pretrained="resnext101_32x4d.pth"``).
ResNeXt-101 32×4d is R²MRF's backbone (Tang et al., AAAI 2020) and ResNeSt-101 DFFNet's (Jin et al., ICME 2023).

Taps: conv1 (after ReLU, 64 @ 1/2), layer1 (256 @ 1/4), layer2 (512 @ 1/8), layer3 (1024 @ 1/16), layer4
(2048 @ 1/32); default the four at 1/4 … 1/32. Input: ImageNet mean/std.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Backbone, FeatureInfo


class Bottleneck(nn.Module):
    """1×1 → 3×3 (grouped, with the stride) → 1×1 ×4, with a projection shortcut where the shape changes."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, groups: int, base_width: int):
        super().__init__()
        width = int(planes * base_width / 64) * groups
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes * self.expansion:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * self.expansion, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes * self.expansion))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(Backbone):
    """A bottleneck ResNet/ResNeXt feature extractor (subclasses set the depth and the grouping)."""

    all_features = [FeatureInfo(64, 2, "relu"), FeatureInfo(256, 4, "layer1"), FeatureInfo(512, 8, "layer2"),
                    FeatureInfo(1024, 16, "layer3"), FeatureInfo(2048, 32, "layer4")]
    default_out_indices = (1, 2, 3, 4)
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    groups = 1
    base_width = 64

    def __init__(self, out_indices=None):
        super().__init__(out_indices)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        last = self.out_indices[-1]
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), self.blocks), start=1):
            if i > last:  # stages deeper than the last tap are not built (their weights are ignored on load)
                break
            layers = []
            for b in range(n):
                layers.append(Bottleneck(cin, planes, 2 if (b == 0 and i > 1) else 1, self.groups, self.base_width))
                cin = planes * Bottleneck.expansion
            setattr(self, f"layer{i}", nn.Sequential(*layers))

    def _forward_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        found = {0: x}
        x = self.maxpool(x)
        for i in range(1, self.out_indices[-1] + 1):
            x = getattr(self, f"layer{i}")(x)
            found[i] = x
        return [found[i] for i in self.out_indices]


class ResNet50(ResNet):
    blocks = (3, 4, 6, 3)


class ResNet101(ResNet):
    blocks = (3, 4, 23, 3)


class ResNeXt101_32x4d(ResNet):  # noqa: N801 (the architecture's usual name)
    blocks = (3, 4, 23, 3)
    groups = 32
    base_width = 4


class ResNeXt101_32x8d(ResNet):  # noqa: N801 (the encoder of MiDaS v2.1, see defocus.nets.midas)
    blocks = (3, 4, 23, 3)
    groups = 32
    base_width = 8


class SplitAttention(nn.Module):
    """ResNeSt's split-attention 3×3 convolution (radix 2, cardinality 1), with its release's module names
    (``conv``, ``bn0``, ``fc1``, ``bn1``, ``fc2``)."""

    def __init__(self, channels: int, radix: int = 2, reduction: int = 4):
        super().__init__()
        self.radix = radix
        inter = max(channels * radix // reduction, 32)
        self.conv = nn.Conv2d(channels, channels * radix, 3, padding=1, groups=radix, bias=False)
        self.bn0 = nn.BatchNorm2d(channels * radix)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, inter, 1)
        self.bn1 = nn.BatchNorm2d(inter)
        self.fc2 = nn.Conv2d(inter, channels * radix, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn0(self.conv(x)))
        splits = torch.chunk(x, self.radix, dim=1)
        gap = torch.stack(splits).sum(0).mean((2, 3), keepdim=True)
        att = self.fc2(self.relu(self.bn1(self.fc1(gap))))
        b = att.shape[0]
        att = att.view(b, 1, self.radix, -1).transpose(1, 2).softmax(dim=1).reshape(b, -1, 1, 1)  # over the radix
        return sum(a * s for a, s in zip(torch.chunk(att, self.radix, dim=1), splits))


class SplitBottleneck(nn.Module):
    """ResNeSt bottleneck: 1×1 → split-attention 3×3 → 3×3 average pool carrying the stride ("avd") → 1×1 ×4;
    shortcut average-pooled then projected ("avg_down")."""

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = SplitAttention(planes)
        self.avd_layer = nn.AvgPool2d(3, stride, padding=1) if stride > 1 else None
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            pool = (nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False) if stride > 1
                    else nn.AvgPool2d(1, 1, ceil_mode=True, count_include_pad=False))
            self.downsample = nn.Sequential(pool, nn.Conv2d(cin, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.bn1(self.conv1(x))))
        if self.avd_layer is not None:
            out = self.avd_layer(out)
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNeSt101(ResNet):
    """ResNeSt-101 (Zhang et al. 2020; radix 2, deep stem of width 64, avg_down, avd): DFFNet's backbone, with the
    keys of the authors' ``resnest101-22405ba7.pth`` (same as timm's ``resnest101e``)."""

    all_features = [FeatureInfo(128, 2, "relu")] + ResNet.all_features[1:]
    blocks = (3, 4, 23, 3)

    def __init__(self, out_indices=None):
        Backbone.__init__(self, out_indices)
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.Conv2d(64, 128, 3, padding=1, bias=False))
        self.bn1 = nn.BatchNorm2d(128)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 128
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), self.blocks), start=1):
            if i > self.out_indices[-1]:
                break
            layers = []
            for b in range(n):
                layers.append(SplitBottleneck(cin, planes, 2 if (b == 0 and i > 1) else 1))
                cin = planes * 4
            setattr(self, f"layer{i}", nn.Sequential(*layers))
