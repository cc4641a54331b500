"""MiDaS v2.1 (Ranftl et al., TPAMI 2022) — the depth teacher of D-DFFNet and R-DFFNet, loaded from a user's file.

No depth model can be downloaded or shipped here: :func:`load_midas` reads the released ``midas_v21-f6b98070.pt``
(or any state dict with the same keys) that the user supplies. The module names follow that release, so its state
dict loads without renaming:

* ``pretrained.layer1`` = ResNeXt-101 32×8d stem (conv1, bn1, relu, maxpool) + layer1; ``pretrained.layer2…4``;
* ``scratch.layer{1..4}_rn``: 3×3 convolutions (no bias) of the four taps to 256 channels;
* ``scratch.refinenet{4..1}``: fusion blocks (two residual conv units, ×2 bilinear upsampling);
* ``scratch.output_conv``: 3×3 conv 256→128, ×2 upsampling, 3×3 conv 128→32, ReLU, 1×1 conv → 1, ReLU.

Input: RGB normalised with ImageNet mean/std (H, W multiples of 32); output: relative inverse depth (B, 1, H, W),
larger = nearer, arbitrary scale. D-DFFNet distils the four encoder taps (:meth:`MidasNet.encode`); R-DFFNet
regresses the output.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .backbones import create_backbone


class ResidualConvUnit(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FeatureFusionBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(channels)  # noqa: N815 (the release's names)
        self.resConfUnit2 = ResidualConvUnit(channels)  # noqa: N815

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class _Upsample2(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class MidasNet(nn.Module):
    """MiDaS v2.1 (large): ResNeXt-101 32×8d encoder + RefineNet-style decoder, 105.4 M parameters.

    Parameters
    ----------
    features : int
        Decoder width (256 in the release).
    """

    channels = (256, 512, 1024, 2048)

    def __init__(self, features: int = 256):
        super().__init__()
        resnext = create_backbone("resnext101_32x8d", pretrained=False)
        self.pretrained = nn.Module()
        self.pretrained.layer1 = nn.Sequential(resnext.conv1, resnext.bn1, resnext.relu, resnext.maxpool,
                                               resnext.layer1)
        self.pretrained.layer2 = resnext.layer2
        self.pretrained.layer3 = resnext.layer3
        self.pretrained.layer4 = resnext.layer4
        self.scratch = nn.Module()
        for i, c in enumerate(self.channels, start=1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(c, features, 3, padding=1, bias=False))
            setattr(self.scratch, f"refinenet{i}", FeatureFusionBlock(features))
        self.scratch.output_conv = nn.Sequential(
            nn.Conv2d(features, 128, 3, padding=1), _Upsample2(), nn.Conv2d(128, 32, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(32, 1, 1), nn.ReLU(True))
        self.register_buffer("_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] → the network's input."""
        return (x - self._mean) / self._std

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four encoder taps (256/512/1024/2048 channels at 1/4 … 1/32) of a normalised batch."""
        p = self.pretrained
        f1 = p.layer1(x)
        f2 = p.layer2(f1)
        f3 = p.layer3(f2)
        return [f1, f2, f3, p.layer4(f3)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Relative inverse depth (B, 1, H, W) of a normalised batch."""
        s = self.scratch
        f1, f2, f3, f4 = self.encode(x)
        path = s.refinenet4(s.layer4_rn(f4))
        path = s.refinenet3(path, s.layer3_rn(f3))
        path = s.refinenet2(path, s.layer2_rn(f2))
        path = s.refinenet1(path, s.layer1_rn(f1))
        return s.output_conv(path)


def load_midas(path: str | os.PathLike, sha256: str | None = None) -> MidasNet:
    """A frozen :class:`MidasNet` in eval mode from a MiDaS v2.1 weight file (``torch.save`` or safetensors;
    read without pickle, sha256 checked when given).

    Raises
    ------
    WeightsError
        Unreadable file, digest mismatch, or keys/shapes that are not MiDaS v2.1's.
    """
    from .weights import read_state_dict

    sd = read_state_dict(path, sha256)
    net = MidasNet()
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: not a MiDaS v2.1 (ResNeXt-101 32x8d) state dict "
                           f"({str(exc).splitlines()[0]})") from None
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()
