"""A light DFFNet-style defocus blur detector.

After DFFNet (Jin et al., ICME 2023, the stage-1 model of D-DFFNet), scaled down for a CPU:

* four backbone taps at 1/4 … 1/32 (MobileNetV2 by default instead of ResNeSt-101);
* a receptive-field block (RFB) per tap, reducing it to ``width`` channels: one 1×1 branch and three branches of
  1×1 → 1×k → k×1 → 3×3 dilated k (k = 3, 5, 7), concatenated, fused by 1×1 and added to a 1×1 shortcut;
* dense top-down fusion: every level is multiplied by refined, upsampled copies of *all* deeper levels, so coarse
  context gates fine detail;
* a side classifier (1×1 → 1 logit) per level, turned into a spatial attention map (3×3 conv + sigmoid) that
  re-weights that level's features;
* a bottom-up aggregation of the attended levels from 1/32 to 1/4 and a fused classifier, upsampled bilinearly.

The heavy 3×3 convolutions of the original are depthwise-separable here. The network outputs logits of the blur
map (1 = out of focus): the fused map, and with ``return_sides=True`` the four side maps for deep supervision.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import create_backbone
from .layers import RFB, fuse_conv_bn, sep_conv  # noqa: F401  (fuse_conv_bn: its historical import path)
from .layers import resize as _resize


class LightDFFNet(nn.Module):
    """Light DFFNet-style blur detector.

    Parameters
    ----------
    backbone : str
        A name from :data:`defocus.nets.backbones.BACKBONES` (its default four taps are used; five for VGG16, of
        which the last four are used).
    pretrained : bool or path
        Backbone initialisation (see :func:`~defocus.nets.backbones.create_backbone`); False when loading a trained
        model.
    width : int
        Channels of every decoder level.

    Input: RGB in [0, 1], (B, 3, H, W) with H, W multiples of 32 for the cleanest alignment (any size works).
    Output: blur-map logits (B, 1, H, W) (1 = out of focus after a sigmoid); with ``return_sides`` also a list of four
    side-output logits (B, 1, H, W), from the 1/4 level to the 1/32 level.
    """

    def __init__(self, backbone: str = "mobilenetv2", pretrained=False, width: int = 32, **backbone_kwargs):
        super().__init__()
        self.arch = {"arch": "light_dffnet", "backbone": backbone, "width": int(width)}
        self.backbone = create_backbone(backbone, pretrained=pretrained, **backbone_kwargs)
        chans = self.backbone.channels[-4:]
        n = 4
        self.rfb = nn.ModuleList(RFB(c, width) for c in chans)
        # dense[k][j]: refines level k+1+j (deeper) before it gates level k.
        self.dense = nn.ModuleList(nn.ModuleList(sep_conv(width, width) for _ in range(n - 1 - k)) for k in range(n))
        self.side = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in range(n))
        self.attention = nn.ModuleList(nn.Conv2d(1, width, 3, padding=1) for _ in range(n))
        self.aggregate = nn.ModuleList(sep_conv(2 * width, width) for _ in range(n - 1))
        self.head = nn.Sequential(sep_conv(width, width), nn.Conv2d(width, 1, 1))

    def forward(self, x: torch.Tensor, return_sides: bool = False):
        size = x.shape[-2:]
        feats = self.backbone(self.backbone.normalize(x))[-4:]
        r = [rfb(f) for rfb, f in zip(self.rfb, feats)]
        n = len(r)
        fused = []
        for k in range(n):
            d = r[k]
            for j, refine in enumerate(self.dense[k]):
                d = d * refine(_resize(r[k + 1 + j], r[k].shape[-2:]))
            fused.append(d)
        sides, attended = [], []
        for k in range(n):
            s = self.side[k](fused[k])
            sides.append(s)
            attended.append(fused[k] * torch.sigmoid(self.attention[k](s)))
        g = attended[-1]
        for k in range(n - 2, -1, -1):
            g = self.aggregate[k](torch.cat([_resize(g, attended[k].shape[-2:]), attended[k]], 1))
        out = _resize(self.head(g), size)
        if not return_sides:
            return out
        return out, [_resize(s, size) for s in sides]


# Bundled weights (read without importing this module by defocus.registry: keep every value a literal).
from ..pretrained import Pretrained  # noqa: E402  (beside the list it describes)

PRETRAINED = [
    Pretrained(
        name="light-dffnet",
        arch="light_dffnet",
        arch_kwargs={"backbone": "mobilenetv2", "width": 32},
        file="light_dffnet_mobilenetv2_synth.safetensors",
        sha256="4ca5055f80a6e6ba942fd60a7b53bf82f21dc0616513011c2c43e53e50d52a4f",
        recipe="light-dffnet-mobilenetv2-cpu",
        runtime="onnx",  # onnxruntime measured about 2x faster for it (docs/onnx.md)
        summary="light DFFNet (MobileNetV2) trained on synthetic defocus; 320² working size, guided-filter upsampling",
        paper="after Jin et al., 'Depth and DOF Cues Make A Better Defocus Blur Detector', ICME 2023 (DFFNet); "
              "Sandler et al., MobileNetV2, CVPR 2018; He et al., guided filter, ECCV 2010",
    ),
]
