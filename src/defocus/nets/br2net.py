"""BR²Net (Tang, Liu, An, Wang — IEEE TMM 2020): bidirectional channel-attention residual refining network.

What the paper and its public (MIT) code specify, and this module does:

* five backbone layers of a ResNeXt-101 32×4d — layer0 (conv1 + max-pool, 1/4), layer1 (1/4), layer2 (1/8),
  layer3 (1/16), layer4 (1/32);
* channel attention on each layer (squeeze-and-excitation: global average pool, 1×1 convolution to C/16, ReLU,
  1×1 convolution back to C, sigmoid, features scaled channel-wise);
* two residual refining pathways of five steps. Low-to-high (L2H) works at layer0's resolution: P_0 = 1×1
  convolution of CA(layer0) to one map, then P_k = R_k([P_{k−1}, up(CA(layer_k))]) + P_{k−1} for k = 1 … 4.
  High-to-low (H2L) works at layer4's resolution: Q_0 = 1×1 convolution of CA(layer4), then
  Q_k = R_k([Q_{k−1}, down(CA(layer_{4−k}))]) + Q_{k−1}, the lower layers resized (bilinear) to 1/32;
* each R_k: 3×3 convolution to 128 channels, BN, PReLU, 3×3 convolution 128, BN, PReLU, 1×1 convolution to one
  map; the pathways' blocks do not share weights;
* the ten maps P_0 … P_4, Q_0 … Q_4 are resized (bilinear) to the input, the fused map is (P_4 + Q_4) / 2, and the
  loss is the sum of the eleven binary cross-entropies (all weights 1).

What we chose where the backbone differs (the bundled weights use MobileNetV2, see docs/methods/br2net.md):

* ``first_pool``: a first tap at 1/2 of the input (ResNet's conv1, MobileNetV2's ``features.1``) is max-pooled
  (3×3, stride 2) to 1/4, which is exactly the published layer0 on a ResNeXt and keeps L2H at 1/4 on any backbone;
* the squeeze width is ``max(1, C // 16)`` (MobileNetV2's 16- and 24-channel taps would otherwise have none).

Outputs are logits (the sigmoid is in the loss, and in inference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import create_backbone
from .layers import resize as _resize


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: features (B, C, H, W) scaled by per-channel weights in (0, 1) from their mean."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        squeezed = max(1, channels // reduction)
        self.weights = nn.Sequential(nn.Conv2d(channels, squeezed, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(squeezed, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(F.adaptive_avg_pool2d(x, 1))


def refining_block(cin: int, width: int) -> nn.Sequential:
    """R_k: two 3×3 convolutions of ``width`` channels with BN and PReLU, then a 1×1 convolution to one residual."""
    return nn.Sequential(nn.Conv2d(cin, width, 3, padding=1), nn.BatchNorm2d(width), nn.PReLU(),
                         nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.PReLU(),
                         nn.Conv2d(width, 1, 1))


class BR2Net(nn.Module):
    """BR²Net blur detector.

    Parameters
    ----------
    backbone : str
        ``resnext101_32x4d`` (the paper's; an ImageNet file the user supplies), or any backbone of
        :data:`defocus.nets.backbones.BACKBONES` with five taps (``mobilenetv2``, ``efficientnet_lite0``,
        ``resnet50`` …).
    pretrained : bool or path
        Backbone initialisation.
    width : int
        Channels inside each refining block R_k (paper: 128).
    reduction : int
        Channel-attention squeeze ratio (paper: 16).
    first_pool : bool
        Max-pool a first tap at 1/2 of the input to 1/4 (the published layer0; see the module notes).

    Input: RGB in [0, 1], (B, 3, H, W), H and W multiples of 32. Output: blur-map logits (B, 1, H, W); with
    ``return_sides=True`` also the ten side logits (B, 1, H, W): L2H steps 0 … 4, then H2L steps 0 … 4.
    """

    def __init__(self, backbone: str = "resnext101_32x4d", pretrained=False, width: int = 128, reduction: int = 16,
                 first_pool: bool = True, **backbone_kwargs):
        super().__init__()
        self.arch = {"arch": "br2net", "backbone": backbone, "width": int(width), "reduction": int(reduction),
                     "first_pool": bool(first_pool)}
        self.backbone = create_backbone(backbone, pretrained=pretrained, out_indices=(0, 1, 2, 3, 4),
                                        **backbone_kwargs)
        chans = self.backbone.channels
        reductions = [f.reduction for f in self.backbone.feature_info]
        self.pool_first = bool(first_pool) and reductions[0] * 2 == reductions[1]
        self.attention = nn.ModuleList(ChannelAttention(c, reduction) for c in chans)
        self.l2h_start = nn.Conv2d(chans[0], 1, 1)
        self.l2h = nn.ModuleList(refining_block(1 + c, width) for c in chans[1:])
        self.h2l_start = nn.Conv2d(chans[-1], 1, 1)
        self.h2l = nn.ModuleList(refining_block(1 + c, width) for c in reversed(chans[:-1]))
        #: Inference choice (not part of the architecture: set it on a loaded model): 0 = the fused (P_4 + Q_4) / 2,
        #: what the published code's latest version returns; 1 = L2H's P_4 (what its first version returned);
        #: 2 = H2L's Q_4.
        self.output = 0
        self.output_layers = 2

    @staticmethod
    def _refine(start: torch.Tensor, blocks: nn.ModuleList, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """One pathway: its start map, then each block adds a residual from [previous map, next layer resized]."""
        maps = [start]
        for block, f in zip(blocks, feats):
            maps.append(block(torch.cat([maps[-1], _resize(f, start.shape[-2:])], dim=1)) + maps[-1])
        return maps

    def forward(self, x: torch.Tensor, return_sides: bool = False):
        size = x.shape[-2:]
        feats = list(self.backbone(self.backbone.normalize(x)))
        if self.pool_first:
            feats[0] = F.max_pool2d(feats[0], 3, stride=2, padding=1)
        feats = [ca(f) for ca, f in zip(self.attention, feats)]
        low_to_high = self._refine(self.l2h_start(feats[0]), self.l2h, feats[1:])
        high_to_low = self._refine(self.h2l_start(feats[-1]), self.h2l, feats[-2::-1])
        sides = [_resize(m, size) for m in low_to_high + high_to_low]
        fused = (sides[4] + sides[9]) / 2
        if return_sides:
            return fused, sides
        return sides[5 * self.output - 1] if self.output else fused


# Bundled weights (read without importing this module by defocus.registry: keep every value a literal).
from ..pretrained import Pretrained  # noqa: E402  (beside the list it describes)

PRETRAINED = [
    Pretrained(
        name="br2net",
        arch="br2net",
        arch_kwargs={"backbone": "mobilenetv2", "width": 128, "reduction": 16, "first_pool": True},
        file="br2net_mobilenetv2_synth.safetensors",
        sha256="bcf170c5654863f779029459d1e90c692a153c151ab7aa5b163c4e2b477dc252",
        recipe="br2net-mobilenetv2-cpu",
        summary="BR²Net (channel attention, L2H and H2L residual refining pathways) on MobileNetV2, trained on "
                "synthetic defocus",
        paper="C. Tang, X. Liu, S. An, P. Wang, 'BR²Net: Defocus Blur Detection via a Bidirectional Channel "
              "Attention Residual Refining Network', IEEE TMM 2020",
    ),
]
