"""A light DFFNet-style defocus blur detector.

After DFFNet (Jin et al., ICME 2023, the stage-1 model of D-DFFNet; see ANCHORS §2.4), scaled down for a CPU:

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
import torch.nn.functional as F
from torch import nn

from .backbones import create_backbone


def conv_bn_relu(cin: int, cout: int, kernel=1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    pad = (dilation * (kh - 1) // 2, dilation * (kw - 1) // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, (kh, kw), padding=pad, dilation=dilation, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def conv_bn(cin: int, cout: int, kernel=1, dilation: int = 1) -> nn.Sequential:
    """Convolution + BatchNorm without activation ("BasicConv2d" of CPD / DFFNet), 'same' padding."""
    return nn.Sequential(*list(conv_bn_relu(cin, cout, kernel, dilation))[:2])


def sep_conv(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3×3 then pointwise 1×1, with BN and ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class RFB(nn.Module):
    """Receptive-field block: parallel branches of growing receptive field, fused, plus a shortcut.

    Input (B, cin, H, W) → output (B, cout, H, W). ``branch`` channels per branch (default cout/2), ``fuse_kernel``
    of the fusing convolution, ``branch_relu`` ReLU after each branch convolution (DFFNet's has none, a 3×3 fuse and
    ``branch = cout``).
    """

    def __init__(self, cin: int, cout: int, branch: int | None = None, fuse_kernel: int = 1,
                 branch_relu: bool = True):
        super().__init__()
        b = branch or max(8, cout // 2)
        unit = conv_bn_relu if branch_relu else conv_bn
        self.branches = nn.ModuleList([unit(cin, b, 1)])
        for k in (3, 5, 7):
            self.branches.append(nn.Sequential(unit(cin, b, 1), unit(b, b, (1, k)), unit(b, b, (k, 1)),
                                               unit(b, b, 3, dilation=k)))
        self.fuse = conv_bn(4 * b, cout, fuse_kernel)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fuse(torch.cat([br(x) for br in self.branches], 1))
        return F.relu(y + self.shortcut(x))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


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
                d = d * refine(_up(r[k + 1 + j], r[k]))
            fused.append(d)
        sides, attended = [], []
        for k in range(n):
            s = self.side[k](fused[k])
            sides.append(s)
            attended.append(fused[k] * torch.sigmoid(self.attention[k](s)))
        g = attended[-1]
        for k in range(n - 2, -1, -1):
            g = self.aggregate[k](torch.cat([_up(g, attended[k]), attended[k]], 1))
        out = F.interpolate(self.head(g), size=size, mode="bilinear", align_corners=False)
        if not return_sides:
            return out
        return out, [F.interpolate(s, size=size, mode="bilinear", align_corners=False) for s in sides]


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True).to(conv.weight.device)
    fused.weight.data = conv.weight.data * scale.view(-1, 1, 1, 1)
    bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.data = (bias - bn.running_mean) * scale + bn.bias
    return fused


@torch.no_grad()
def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """For inference: fold every BatchNorm that directly follows a Conv2d inside an ``nn.Sequential`` into the
    convolution (in place; the BN becomes an Identity). Same outputs up to rounding, ~10 % faster on a CPU."""
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = module._modules[a], module._modules[b]
            if isinstance(conv, nn.Conv2d) and type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d):
                module._modules[a] = _fold(conv, bn)
                module._modules[b] = nn.Identity()
    return model

