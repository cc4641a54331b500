"""DFFNet (Jin, Qian, Xiong, Xue, Xia — ICME 2023), the network of D-DFFNet and R-DFFNet.

D-DFFNet and R-DFFNet are DFFNet trained differently (stage-2 depth *feature* distillation, or *response*
distillation with extra depth heads; see :mod:`defocus.train.distill`); one class serves all three.

What the paper specifies (§III-D, Fig. 3) and this module does:

* four backbone taps at 1/4 … 1/32 (ResNeSt-101 in the paper; any backbone of :mod:`defocus.nets.backbones`);
* a receptive-field block (RFB) per tap, to 32 channels;
* a dense feature fusion module (DFFM): each level is multiplied by refined, upsampled copies of every deeper level
  (cascaded-partial-decoder style), so coarse context gates fine detail;
* a side classifier (1×1 conv → 1 logit) per level; a spatial attention block turns each side prediction into a map
  (3×3 conv 1 → 32, sigmoid) that multiplies that level's features;
* a bottom-up pathway aggregating the attended levels from deep to shallow, and the final classifier.

Details taken from the description of the authors' public implementation, where the paper is silent:

* RFB: branches 1×1; 1×1 → 1×k → k×1 → 3×3 dilated k (k = 3, 5, 7), each conv + BN without ReLU, 32 channels;
  concatenation → 3×3 conv + BN; plus a 1×1 conv + BN shortcut; ReLU;
* the deepest level is moved to 1/16 by its refining convolution, so side outputs sit at 1/16, 1/16, 1/8, 1/4;
* aggregation: concatenations of 32 → 64 → 96 → 128 channels, each followed by a 3×3 conv + BN, then a 3×3 conv and
  a 1×1 classifier at 1/4 resolution, upsampled bilinearly (corners aligned) to the input size.

R-DFFNet (``depth_heads=True``): extra 1×1 depth classifiers beside the final and the four side classifiers (the
paper's supplementary material, §C); :meth:`DFFNet.forward` then also returns the depth maps.

Ablations: ``attention=False`` (no spatial attention), ``dense=False`` (no DFFM: each level alone, the deepest
upsampled), and the loss weights of the trainer (``edge_weight`` = 0: no DOF-edge loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import create_backbone
from .layers import RFB, conv_bn


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


def _to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # ×2 steps keep the release's alignment; odd input sizes fall back to an exact resize
    while x.shape[-1] < like.shape[-1] and x.shape[-2] < like.shape[-2]:
        x = _up2(x)
    if x.shape[-2:] == like.shape[-2:] and not torch.jit.is_tracing():  # a trace always resizes (layers.resize)
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)


class DFFNet(nn.Module):
    """DFFNet blur detector (and R-DFFNet with ``depth_heads``).

    Parameters
    ----------
    backbone : str
        A name from :data:`defocus.nets.backbones.BACKBONES` (its last four taps are used); ``"resnest101"`` is the
        paper's.
    pretrained : bool or path
        Backbone initialisation; False when loading a trained model.
    width : int
        Channels of every decoder level (32).
    attention, dense : bool
        Spatial attention and DFFM (ablations when False).
    depth_heads : bool
        R-DFFNet's depth classifiers.

    Input: RGB in [0, 1], (B, 3, H, W), H and W multiples of 32. Output: blur-map logits (B, 1, H, W) (1 = out of
    focus after a sigmoid); with ``return_sides`` also the four side logits (1/4 level first), each (B, 1, H, W);
    with ``return_features`` also a dict ``{"features": the four backbone taps, "depth": [final, side1..4] depth
    maps (B, 1, H, W) when depth_heads}``.
    """

    def __init__(self, backbone: str = "resnest101", pretrained=False, width: int = 32, attention: bool = True,
                 dense: bool = True, depth_heads: bool = False, **backbone_kwargs):
        super().__init__()
        self.arch = {"arch": "dffnet", "backbone": backbone, "width": int(width), "attention": bool(attention),
                     "dense": bool(dense), "depth_heads": bool(depth_heads)}
        self.backbone = create_backbone(backbone, pretrained=pretrained, **backbone_kwargs)
        w = width
        self.rfb = nn.ModuleList(RFB(c, w, branch=w, fuse_kernel=3, branch_relu=False)
                                 for c in self.backbone.channels[-4:])
        self.attention, self.dense = attention, dense
        # refine[k][j]: refines level k+1+j (deeper) on its way up to level k; the deepest level's own refinement
        # (moving it to 1/16) is refine[3][0].
        self.refine = nn.ModuleList([nn.ModuleList(conv_bn(w, w, 3) for _ in range(3 - k if dense else 0))
                                     for k in range(3)] + [nn.ModuleList([conv_bn(w, w, 3)])])
        self.side = nn.ModuleList(nn.Conv2d(w, 1, 1) for _ in range(4))
        self.spatial = nn.ModuleList(nn.Conv2d(1, w, 3, padding=1) for _ in range(4)) if attention else None
        # bottom-up aggregation: level k receives the aggregate of the deeper levels (w·(3 − k) channels)
        self.carry = nn.ModuleList(conv_bn(w * (3 - k), w * (3 - k), 3) for k in range(3))
        self.merge = nn.ModuleList(conv_bn(w * (4 - k), w * (4 - k), 3) for k in range(3))
        self.head = nn.Sequential(conv_bn(4 * w, 4 * w, 3), nn.Conv2d(4 * w, 1, 1))
        self.depth = nn.ModuleList([nn.Conv2d(4 * w, 1, 1)] + [nn.Conv2d(w, 1, 1) for _ in range(4)]) \
            if depth_heads else None

    def forward(self, x: torch.Tensor, return_sides: bool = False, return_features: bool = False):
        size = x.shape[-2:]
        taps = self.backbone(self.backbone.normalize(x))[-4:]
        r = [rfb(f) for rfb, f in zip(self.rfb, taps)]
        fused = []
        for k in range(3):
            d = r[k]
            for j, refine in enumerate(self.refine[k]):
                d = d * refine(_to(r[k + 1 + j], r[k]))
            fused.append(d)
        fused.append(self.refine[3][0](_up2(r[3])))  # deepest level, at 1/16
        sides = [self.side[k](f) for k, f in enumerate(fused)]
        if self.attention:
            fused = [f * torch.sigmoid(att(s)) for f, att, s in zip(fused, self.spatial, sides)]
        g = fused[3]
        for k in (2, 1, 0):
            g = self.merge[k](torch.cat([fused[k], self.carry[k](_to(g, fused[k]))], 1))
        g = self.head[0](g)
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=True)  # noqa: E731
        out = up(self.head[1](g))
        if not (return_sides or return_features):
            return out
        result = [out]
        if return_sides:
            result.append([up(s) for s in sides])
        if return_features:
            extras = {"features": taps}
            if self.depth is not None:
                extras["depth"] = [up(self.depth[0](g))] + [up(h(f)) for h, f in zip(self.depth[1:], fused)]
            result.append(extras)
        return tuple(result)


# Bundled weights (read without importing this module by defocus.registry: keep every value a literal, or the name
# of a module-level literal defined here).
from ..pretrained import Pretrained  # noqa: E402  (beside the list it describes)

_PAPER = ("Y. Jin, M. Qian, J. Xiong, N. Xue, G.-S. Xia, 'Depth and DOF Cues Make A Better Defocus Blur Detector', "
          "ICME 2023")
_MOBILENETV2 = {"backbone": "mobilenetv2", "width": 32, "attention": True, "dense": True, "depth_heads": False}

PRETRAINED = [
    Pretrained(
        name="dffnet",
        arch="dffnet",
        arch_kwargs=_MOBILENETV2,
        file="dffnet_mobilenetv2_synth_v2.safetensors",
        sha256="c5e3d09a534745796b1eced1ce37afd8463aca68418d3f4aa5d04b47fc51309d",
        recipe="ddffnet-stage1-mobilenetv2-cpu-continued",
        runtime="onnx",  # onnxruntime measured about 2x faster for it (docs/onnx.md)
        summary="DFFNet's decoder (RFB, dense fusion, side attention) on MobileNetV2 (paper: ResNeSt-101), trained on "
                "synthetic defocus, then 1500 steps more on fresh scenes; D-DFFNet's stage-1 model",
        paper=_PAPER,
        decisive={"temperature": 0.0625, "bias": 0.0},  # benchmarks/calibrate.py, docs/calibration.md
    ),
    Pretrained(
        name="dffnet.v1",
        arch="dffnet",
        arch_kwargs=_MOBILENETV2,
        file="dffnet_mobilenetv2_synth.safetensors",
        sha256="8a3bb477825398c0e4efe913f5226a655c892fe70b754ea8774eab8f715ded0e",
        recipe="ddffnet-stage1-mobilenetv2-cpu",
        runtime="onnx",
        summary="dffnet's first weights (1000 steps on synthetic defocus), the start of today's dffnet and the teacher "
                "of d-dffnet",
        paper=_PAPER,
    ),
    Pretrained(
        name="dffnet.distilled",
        aliases=("d-dffnet",),
        arch="dffnet",
        arch_kwargs=_MOBILENETV2,
        file="ddffnet_mobilenetv2_synth.safetensors",
        sha256="be260eaba5c8bfde4aa8733832fb3c4a0477b3dc7b1913e1b4aa4b3a7829681b",
        recipe="ddffnet-stage2-mobilenetv2-cpu",
        runtime="onnx",  # onnxruntime measured about 2x faster for it (docs/onnx.md)
        summary="D-DFFNet: DFFNet (MobileNetV2) distilled from dffnet.v1 only; no depth teacher "
                "(no depth model is available here), so not the paper's depth distillation",
        paper=_PAPER,
    ),
]
