"""DeFusionNet (Tang, Zhu, Liu, Wang & Zomaya, CVPR 2019): recurrent cross-layer feature fusing and refining.

What the paper specifies (Sec. 3, Eq. 1–6) and this module does:

* n = 6 feature layers of a VGG16 — conv1_2, conv2_2, conv3_3, conv4_3, conv5_3 and pool5 — each followed by two
  more convolutions; the first m = 3 are *shallow*, the rest *deep*;
* FSHF (Eq. 1): every shallow layer upsampled to the input size by a deconvolution, concatenated, 1×1 conv + ReLU;
  FSEF (Eq. 2) likewise from the deep layers;
* FFRM (Eq. 3), repeated for T = 3 recurrent steps: every shallow layer is concatenated with FSEF, every deep layer
  with FSHF, and a convolution + ReLU brings it back to its own channel count; FSHF and FSEF are then fused again from
  the refined layers for the next step;
* a prediction from every layer at every step (deep supervision, all loss weights 1: Eq. 5–6 = the sum of the
  cross-entropies, which is :func:`defocus.train.losses.deep_supervision_loss` with ``edge_weight=0``);
* the final map (Eq. 4): a convolution over the concatenated last-step predictions of the n layers.

What it leaves open and we chose (there is no released code to follow):

* width ``width`` (64) of every layer after its two extra 3×3 convolutions, and of FSHF/FSEF;
* FSHF/FSEF enter a layer resized (bilinear) to that layer's resolution; the refining convolution is 3×3;
* the deconvolutions are learned (stride = the layer's reduction, kernel 2·stride, initialised to bilinear upsampling)
  and shared by the recurrent steps, while the 1×1 fusions, the refining convolutions and the predictors are per step;
* Eq. 4 writes a ReLU on the final map; on a logit that would forbid probabilities below 0.5, so the final 1×1
  convolution outputs logits directly (the sigmoid is in the loss / at inference).

Ablations: ``steps`` is the number of recurrent steps T (the paper's study varies it); ``steps=0`` removes the FFRM
altogether (every layer predicts from its own features and the final convolution fuses the n maps).

Backbones: ``hed_vgg16`` (the HED edge detector's VGG16, bundled in ``shared/weights``) or ``vgg16`` (torchvision's
ImageNet file, which the user supplies — the paper's initialisation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import create_backbone
from .layers import conv_relu, resize

#: Shallow layers (conv1_2, conv2_2, conv3_3) come first; conv4_3, conv5_3 and pool5 are deep.
N_SHALLOW = 3


def _bilinear_deconv(channels: int, stride: int) -> nn.Module:
    """A learnable depthwise deconvolution that upsamples by ``stride``, initialised to bilinear interpolation."""
    if stride == 1:
        return nn.Identity()
    k = 2 * stride
    deconv = nn.ConvTranspose2d(channels, channels, k, stride=stride, padding=stride // 2, groups=channels,
                                bias=False)
    centre = (k - 1) / 2.0
    ramp = 1.0 - torch.abs(torch.arange(k, dtype=torch.float32) - centre) / stride
    with torch.no_grad():
        deconv.weight.copy_((ramp[:, None] * ramp[None, :]).expand(channels, 1, k, k))
    return deconv


class DeFusionNet(nn.Module):
    """DeFusionNet blur detector.

    Parameters
    ----------
    backbone : {"hed_vgg16", "vgg16"}
    pretrained : bool or path
        Backbone initialisation (see :func:`~defocus.nets.backbones.create_backbone`).
    width : int
        Channels of every layer's features (after its two extra convolutions) and of FSHF / FSEF.
    steps : int
        Recurrent FFRM steps T (paper: 3). 0 disables the FFRM.

    Input: RGB in [0, 1], (B, 3, H, W), H and W multiples of 32. Output: blur-map logits (B, 1, H, W), 1 = out of
    focus; with ``return_sides=True`` also the n·max(T, 1) side logits (B, 1, H, W), step by step, layer by layer.
    """

    def __init__(self, backbone: str = "hed_vgg16", pretrained=False, width: int = 64, steps: int = 3,
                 **backbone_kwargs):
        super().__init__()
        if backbone not in ("hed_vgg16", "vgg16"):
            raise ValueError(f"DeFusionNet needs a VGG16 backbone ('hed_vgg16' or 'vgg16'), not {backbone!r}")
        self.arch = {"arch": "defusionnet", "backbone": backbone, "width": int(width), "steps": int(steps)}
        self.backbone = create_backbone(backbone, pretrained=pretrained, **backbone_kwargs)
        chans = self.backbone.channels + [self.backbone.channels[-1]]  # + pool5
        self.reductions = self.backbone.reductions + [2 * self.backbone.reductions[-1]]
        n = len(chans)
        self.steps = int(steps)
        self.extra = nn.ModuleList(nn.Sequential(conv_relu(c, width), conv_relu(width, width)) for c in chans)
        self.up = nn.ModuleList(_bilinear_deconv(width, r) for r in self.reductions)
        rounds = max(self.steps, 1)
        self.fuse_shallow = nn.ModuleList(conv_relu(N_SHALLOW * width, width, 1) for _ in range(self.steps))
        self.fuse_deep = nn.ModuleList(conv_relu((n - N_SHALLOW) * width, width, 1) for _ in range(self.steps))
        self.refine = nn.ModuleList(nn.ModuleList(conv_relu(2 * width, width) for _ in range(n))
                                    for _ in range(self.steps))
        self.predict = nn.ModuleList(nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in range(n)) for _ in range(rounds))
        self.final = nn.Conv2d(n, 1, 1)
        #: Inference ablation (paper's Table 3, "DeFusionNet_Ok"): 0 = the fused map (Eq. 4); k = 1 … 6 = the last
        #: step's map of layer k (1 = conv1_2 … 6 = pool5). Not part of the architecture: set it on a loaded model.
        self.output = 0
        self.output_layers = n

    def _upsampled(self, feats: list[torch.Tensor], size) -> list[torch.Tensor]:
        out = []
        for up, f in zip(self.up, feats):
            out.append(resize(up(f), size))
        return out

    def forward(self, x: torch.Tensor, return_sides: bool = False):
        size = x.shape[-2:]
        taps = self.backbone(self.backbone.normalize(x))
        taps = taps + [F.max_pool2d(taps[-1], 2, 2, ceil_mode=True)]  # pool5
        feats = [extra(t) for extra, t in zip(self.extra, taps)]
        sides: list[torch.Tensor] = []
        for j in range(max(self.steps, 1)):
            if self.steps > 0:
                full = self._upsampled(feats, size)
                fshf = self.fuse_shallow[j](torch.cat(full[:N_SHALLOW], dim=1))  # Eq. 1
                fsef = self.fuse_deep[j](torch.cat(full[N_SHALLOW:], dim=1))  # Eq. 2
                refined = []
                for i, f in enumerate(feats):  # Eq. 3: shallow layers take FSEF, deep layers FSHF
                    guide = fsef if i < N_SHALLOW else fshf
                    refined.append(self.refine[j][i](torch.cat([f, resize(guide, f.shape[-2:])], dim=1)))
                feats = refined
            step_maps = [resize(p(f), size) for p, f in zip(self.predict[j], feats)]
            sides.extend(step_maps)
        if self.output and not return_sides:  # ablation DeFusionNet_Ok: layer k's last-step map instead of Eq. 4
            return sides[len(sides) - len(feats) + self.output - 1]
        fused = self.final(torch.cat(sides[-len(feats):], dim=1))  # Eq. 4 over the last step's n maps
        return (fused, sides) if return_sides else fused


# Bundled weights (read without importing this module by defocus.registry: keep every value a literal).
from ..pretrained import Pretrained  # noqa: E402  (beside the list it describes)

PRETRAINED = [
    Pretrained(
        name="defusionnet",
        arch="defusionnet",
        arch_kwargs={"backbone": "hed_vgg16", "width": 64, "steps": 3},
        file="defusionnet_hedvgg16_synth.safetensors",
        sha256="5a371358382a81c4bdb0ae641230f682b1c566b8440f96b1ae2efae26a1b013c",
        # Second phase; the first is "defusionnet-hed-vgg16-cpu", whose model this recipe continues from.
        recipe="defusionnet-hed-vgg16-cpu-continued",
        summary="DeFusionNet (FSHF/FSEF, FFRM, T = 3) on the HED VGG16, trained on synthetic defocus",
        paper="C. Tang, X. Zhu, X. Liu, L. Wang, A. Zomaya, 'DeFusionNET: Defocus Blur Detection via Recurrently "
              "Fusing and Refining Multi-Scale Deep Features', CVPR 2019",
    ),
]
