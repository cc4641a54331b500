"""EFENet (Zhao, Hou, He & Lu — TIP 2021, "Defocus Blur Detection via Boosting Diversity of Deep Ensemble
Networks"): an encoder-feature ensemble — several small members on one shared encoder, their features averaged.

What the paper and its public release (github wdzhao123/DENets, ``EFENet/``) specify, and this module does:

* a shared encoder (VGG16-BN conv1_1 … conv5_1 in the release, frozen) whose deepest feature feeds ``members``
  (8) parallel members; each member is two 3×3 conv-BN-ReLU layers, each with a parallel 1×1 conv-BN-ReLU path
  averaged into it (the second 1×1 reads the first averaged output, the second 3×3 the first 3×3's);
* the ensemble of the encoded features is their uniformly weighted mean (the paper's "group-channel uniformly
  weighted average ensemble");
* a U-Net decoder: upsample ×2, concatenate the next shallower encoder tap, 1×1 then 3×3 conv-BN-ReLU, three times
  (taps at 1/8, 1/4, 1/2), one more 3×3 to a narrow map and a 1×1 classifier; the map is at 1/2 of the input and is
  upsampled bilinearly here.

What we changed or chose (see docs/methods/efenet.md):

* the encoder is any backbone of :data:`defocus.nets.backbones.BACKBONES` with taps at 1/2, 1/4, 1/8 and 1/16
  (MobileNetV2 for the bundled file: 16/24/32/96 channels) instead of VGG16-BN; members keep the width of the 1/16
  tap (as the release's keep conv5_1's 512), decoder widths ``widths`` (the release: 256/128/64/32);
* each member also has a 1×1 classifier giving its own blur map (not in the release): these are the side outputs
  (``return_sides=True``), trained with their own BCE plus the negative-correlation penalty of
  :func:`defocus.train.losses.negative_correlation_penalty` (``ncl_weight`` of the recipe), which is how this
  implementation boosts the members' diversity; the fused map does not use them;
* outputs are logits (the release ends in a sigmoid; the sigmoid is in the loss here).
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import create_backbone
from .layers import conv_bn_relu
from .layers import resize as _resize

#: Encoder reductions the decoder reads, shallowest first; the last one feeds the members.
_REDUCTIONS = (2, 4, 8, 16)


class Member(nn.Module):
    """One ensemble member: two 3×3 layers, each averaged with a parallel 1×1 path (the release's conv5_2/conv5_3
    with their ``bl`` paths); (B, width, h, w) → same shape."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1, self.conv2 = conv_bn_relu(width, width, 3), conv_bn_relu(width, width, 3)
        self.path1, self.path2 = conv_bn_relu(width, width, 1), conv_bn_relu(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(x)
        mixed = (self.path1(x) + a) / 2
        return (self.path2(mixed) + self.conv2(a)) / 2


def _tap_indices(backbone_cls) -> tuple[int, ...]:
    """The deepest tap of each reduction in :data:`_REDUCTIONS` (e.g. VGG16's conv2_2, conv3_3, conv4_3, conv5_3)."""
    found = {}
    for i, f in enumerate(backbone_cls.all_features):
        if f.reduction in _REDUCTIONS:
            found[f.reduction] = i
    missing = [r for r in _REDUCTIONS if r not in found]
    if missing:
        raise ValueError(f"{backbone_cls.__name__} has no tap at reduction(s) {missing}; EFENet needs 1/2 … 1/16")
    return tuple(found[r] for r in _REDUCTIONS)


class EFENet(nn.Module):
    """EFENet blur detector.

    Parameters
    ----------
    backbone : str
        A name from :data:`defocus.nets.backbones.BACKBONES` with taps at 1/2, 1/4, 1/8 and 1/16 (``mobilenetv2``,
        ``vgg16``, ``hed_vgg16``, ...).
    pretrained : bool or path
        Backbone initialisation.
    members : int
        Ensemble members (the release: 8), at least 1.
    widths : (int, int, int, int)
        Decoder channels at 1/8, 1/4, 1/2 and of the last 3×3 layer.

    Input: RGB in [0, 1], (B, 3, H, W), H and W multiples of 16. Output: blur-map logits (B, 1, H, W); with
    ``return_sides=True`` also the members' own logits, ``members`` maps (B, 1, H, W).
    """

    def __init__(self, backbone: str = "mobilenetv2", pretrained=False, members: int = 8,
                 widths=(64, 32, 32, 16), **backbone_kwargs):
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4:
            raise ValueError(f"widths must give 4 channel counts, got {widths}")
        self.arch = {"arch": "efenet", "backbone": backbone, "members": int(members), "widths": list(widths)}
        from .backbones import BACKBONES

        self.backbone = create_backbone(backbone, pretrained=pretrained, out_indices=_tap_indices(BACKBONES[backbone]),
                                        **backbone_kwargs)
        c2, c4, c8, c16 = self.backbone.channels
        self.members = nn.ModuleList(Member(c16) for _ in range(members))
        self.member_heads = nn.ModuleList(nn.Conv2d(c16, 1, 1) for _ in range(members))
        w8, w4, w2, last = widths
        self.up8 = nn.Sequential(conv_bn_relu(c16 + c8, w8, 1), conv_bn_relu(w8, w8, 3))
        self.up4 = nn.Sequential(conv_bn_relu(w8 + c4, w4, 1), conv_bn_relu(w4, w4, 3))
        self.up2 = nn.Sequential(conv_bn_relu(w4 + c2, w2, 1), conv_bn_relu(w2, w2, 3), conv_bn_relu(w2, last, 3))
        self.head = nn.Conv2d(last, 1, 1)

    def forward(self, x: torch.Tensor, return_sides: bool = False):
        size = x.shape[-2:]
        f2, f4, f8, f16 = self.backbone(self.backbone.normalize(x))
        encoded = [m(f16) for m in self.members]
        g = torch.stack(encoded).mean(0)  # the uniformly weighted feature ensemble
        for block, skip in ((self.up8, f8), (self.up4, f4), (self.up2, f2)):
            g = block(torch.cat([_resize(g, skip.shape[-2:]), skip], dim=1))
        out = _resize(self.head(g), size)
        if not return_sides:
            return out
        return out, [_resize(h(e), size) for h, e in zip(self.member_heads, encoded)]


# Bundled weights (read without importing this module by defocus.registry: keep every value a literal).
from ..pretrained import Pretrained  # noqa: E402  (beside the list it describes)

PRETRAINED = [
    Pretrained(
        name="efenet",
        arch="efenet",
        arch_kwargs={"backbone": "mobilenetv2", "members": 8, "widths": [64, 32, 32, 16]},
        file="efenet_mobilenetv2_synth.safetensors",
        sha256="091ac0d944ce6e4238bece3f44b868a8b49eac3ca8caab7e99dd068e08d1fb21",
        recipe="efenet-mobilenetv2-cpu",
        summary="EFENet (8 ensemble members on a shared MobileNetV2, features averaged; negative-correlation loss), "
                "trained on synthetic defocus",
        paper="W. Zhao, X. Hou, Y. He, H. Lu, 'Defocus Blur Detection via Boosting Diversity of Deep Ensemble "
              "Networks', IEEE TIP 30, 2021 (EFENet); Y. Liu, X. Yao, 'Ensemble learning via negative correlation', "
              "Neural Networks 12, 1999",
    ),
]
