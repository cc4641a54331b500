"""DMENet-style dense defocus-map estimator (after Lee, Lee, Cho & Lee, "Deep Defocus Map Estimation using Domain
Adaptation", CVPR 2019; architecture facts in the project's reference notes).

The published "BDCS" network, with the encoder we can have:

* encoder: the paper's is VGG19 from ImageNet (conv1_2 … conv5_4), whose weights cannot be obtained here; this one is
  the bundled ImageNet MobileNetV2 (taps at 1/2 … 1/32, 16/24/32/96/320 ch), usually warm-started from the bundled
  light-dffnet encoder, which has already seen defocus. The full-resolution skip the paper takes from conv1_2 is the
  (ImageNet-normalised) image itself here: MobileNetV2 has no 1/1 feature;
* decoder: a U-Net from 1/32 to 1/1 — ×2 bilinear up, concatenation with the encoder tap of that scale, then
  ``convs`` × (3×3 conv + BN + LeakyReLU 0.2) — of widths 4w, 4w, 2w, w, w at 1/16, 1/8, 1/4, 1/2, 1/1
  (w = ``width``; published: w = 64 with 256, 128, 64, 64 from 1/8 on);
* an auxiliary sigmoid head (3×3 conv → 1) at each of the five decoder scales (deep supervision on downsampled
  targets);
* ``blocks`` residual blocks at full resolution (two 3×3 conv + BN, LeakyReLU, identity skip; published 7 of 64 ch);
* the head 3×3 w → 3×3 w/2 → 3×3 1 → sigmoid.

Output: the logit of the defocus map; ``sigmoid(logit)`` in [0, 1] is σ / :data:`SIGMA_SCALE`, the Gaussian σ in
px of the image the network saw (the paper's output is CoC/15 with σ = (15·out − 1)/2 in its release; σ directly is
simpler and is what the project's maps are). Outside training the network is run at a working size
(:func:`defocus.nets.predict.predict_defocus`), where σ is in working-size px and is scaled back to the photo.

The two training-only parts of the paper are separate modules: :class:`SharpnessCalibration` (the binary head on the
predicted map, trained against blur masks) and :class:`FeatureDiscriminator` (on the 64-ch full-resolution decoder
feature, for the domain-adversarial loss on unlabelled real photos); see :class:`defocus.train.tasks.DefocusMapTask`.
The paper's perceptual loss (fixed VGG19 conv4_4 features of the map) is left out: no VGG19 weights here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import create_backbone

#: σ in px (of the network's input) of a map value 1; the synthetic training scenes reach σ ≈ 6–7 px.
SIGMA_SCALE = 10.0


def conv_bn_lrelu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2, inplace=True))


class ResidualBlock(nn.Module):
    """Two 3×3 conv + BN with a LeakyReLU between, added to the input."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_lrelu(width, width),
                                  nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.body(x), 0.2)


class DMENet(nn.Module):
    """DMENet-style defocus-map estimator (see the module docstring).

    Parameters
    ----------
    backbone : str
        ``"mobilenetv2"`` (the taps 1/2 … 1/32 are used).
    pretrained : bool or path
        Backbone initialisation; False when loading a trained model.
    width : int
        Channels at full resolution (published 64); the coarser decoder levels have 2w and 4w.
    blocks : int
        Residual blocks at full resolution (published 7).
    convs : int
        Conv/BN/LeakyReLU layers per decoder level (published 3).

    Input: RGB in [0, 1], (B, 3, H, W), H and W multiples of 32. Output: logits (B, 1, H, W) of σ / SIGMA_SCALE;
    with ``return_sides`` also the five auxiliary logits, from 1/16 to 1/1 at their own resolution; with
    ``return_features`` also the full-resolution decoder feature (B, width, H, W) the discriminator sees.
    """

    def __init__(self, backbone: str = "mobilenetv2", pretrained=False, width: int = 64, blocks: int = 7,
                 convs: int = 3):
        super().__init__()
        if backbone != "mobilenetv2":
            raise ValueError("DMENet is built on the mobilenetv2 backbone here (its 1/2 tap feeds the decoder)")
        self.arch = {"arch": "dmenet", "backbone": backbone, "width": int(width), "blocks": int(blocks),
                     "convs": int(convs)}
        self.backbone = create_backbone(backbone, pretrained=pretrained, out_indices=(0, 1, 2, 3, 4))
        taps = self.backbone.channels  # 16, 24, 32, 96, 320 at 1/2 … 1/32
        widths = [4 * width, 4 * width, 2 * width, width, width]  # 1/16, 1/8, 1/4, 1/2, 1/1
        skips = [taps[3], taps[2], taps[1], taps[0], 3]
        self.decoder = nn.ModuleList()
        cin = taps[4]
        for w, s in zip(widths, skips):
            layers = [conv_bn_lrelu(cin + s, w)] + [conv_bn_lrelu(w, w) for _ in range(convs - 1)]
            self.decoder.append(nn.Sequential(*layers))
            cin = w
        self.aux = nn.ModuleList(nn.Conv2d(w, 1, 3, padding=1) for w in widths)
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        half = max(1, width // 2)
        self.head = nn.Sequential(conv_bn_lrelu(width, width), conv_bn_lrelu(width, half),
                                  nn.Conv2d(half, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, return_sides: bool = False, return_features: bool = False):
        image = self.backbone.normalize(x)
        feats = self.backbone(image)
        skips = [feats[3], feats[2], feats[1], feats[0], image]
        d = feats[4]
        sides = []
        for level, skip, aux in zip(self.decoder, skips, self.aux):
            d = F.interpolate(d, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            d = level(torch.cat([d, skip], 1))
            if return_sides:
                sides.append(aux(d))
        features = d
        out = self.head(self.blocks(d))
        if not (return_sides or return_features):
            return out
        result = (out,)
        if return_sides:
            result += (sides,)
        if return_features:
            result += (features,)
        return result


class SharpnessCalibration(nn.Module):
    """The paper's binary sharpness-calibration head: 1×1 convs 64×3, 32×3, 16×3 (BN + LeakyReLU) and 1×1 → 1 on
    the predicted defocus map (B, 1, H, W) in [0, 1]; returns blur-mask logits (B, 1, H, W), 1 = out of focus."""

    def __init__(self):
        super().__init__()
        layers, cin = [], 1
        for w in (64,) * 3 + (32,) * 3 + (16,) * 3:
            layers.append(conv_bn_lrelu(cin, w, k=1))
            cin = w
        layers.append(nn.Conv2d(cin, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, defocus: torch.Tensor) -> torch.Tensor:
        return self.net(defocus)


class FeatureDiscriminator(nn.Module):
    """The paper's feature discriminator: 5 × (4×4 stride-2 conv) of 64, 128, 256, 512, 1 channels (BN after the
    second to fourth, LeakyReLU 0.2 after the first four) on the full-resolution decoder feature; returns patch
    logits (B, 1, H/32, W/32), 1 = synthetic."""

    def __init__(self, width: int = 64):
        super().__init__()
        layers, cin = [], width
        for i, w in enumerate((64, 128, 256, 512)):
            layers += [nn.Conv2d(cin, w, 4, stride=2, padding=1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = w
        layers.append(nn.Conv2d(cin, 1, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


# Bundled weights (read without importing this module by defocus.registry: keep every value a literal).
from ..pretrained import Pretrained  # noqa: E402  (beside the list it describes)

PRETRAINED = [
    Pretrained(
        name="dmenet",
        arch="dmenet",
        arch_kwargs={"backbone": "mobilenetv2", "width": 64, "blocks": 7, "convs": 3},
        file="dmenet_mobilenetv2_synth.safetensors",
        sha256="99696072049a65fca0913a368fb0ccbfe18ee2ea39d81971a405d932ebbd0387",
        task="dme",
        working_size=320,
        output="Gaussian σ in px of the photo (network output · 10 working-size px, scaled by photo / working size)",
        recipe="dmenet-cpu",
        summary="DMENet-style dense defocus map (7 residual blocks of 64 ch, MobileNetV2 encoder for VGG19), trained "
                "here on synthetic σ maps; long side ≤ 320 px working size, guided-filter upsampling, σ rescaled",
        paper="after Lee, Lee, Cho & Lee, 'Deep Defocus Map Estimation using Domain Adaptation', CVPR 2019 (DMENet); "
              "Sandler et al., MobileNetV2, CVPR 2018; He et al., guided filter, ECCV 2010",
    ),
    Pretrained(
        name="dmenet-light",
        arch="dmenet",
        arch_kwargs={"backbone": "mobilenetv2", "width": 32, "blocks": 2, "convs": 1},
        file="dmenet_light_mobilenetv2_synth.safetensors",
        sha256="c1c17ac1d0d3883e330feca103ef0d47eab60496afe602facc7a182b6b82acb3",
        task="dme",
        working_size=320,
        output="Gaussian σ in px of the photo (network output · 10 working-size px, scaled by photo / working size)",
        recipe="dmenet-light-cpu",
        summary="light DMENet (2 residual blocks of 32 ch, one conv per decoder level) on MobileNetV2, trained here "
                "on synthetic σ maps; long side ≤ 320 px working size, guided-filter upsampling, σ rescaled",
        paper="after Lee, Lee, Cho & Lee, 'Deep Defocus Map Estimation using Domain Adaptation', CVPR 2019 (DMENet); "
              "Sandler et al., MobileNetV2, CVPR 2018; He et al., guided filter, ECCV 2010",
    ),
]
