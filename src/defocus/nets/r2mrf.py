"""R²MRF (Tang, Liu, Zhu, An, Wang — AAAI 2020): recurrently refined multi-scale residual features.

What the paper specifies (Eq. 1–7) and this module does:

* five feature layers of a ResNeXt — conv1, conv2_x … conv5_x (``layer1`` … ``layer4``);
* AMDF (Eq. 1): the last four layers upsampled to the first layer's size, concatenated with it, one convolution +
  ReLU;
* one recurrent branch per layer, T = 6 steps; at step t the RRM of layer l learns a residual R_t^l from the layer's
  features (t = 1) or its previous output O_{t-1}^l (t > 1), the AMDF, and — below the top layer — the output
  O_t^{l+1} of the next-higher layer at the same step (Eq. 2–3); O_t^l = R_t^l + O_{t-1}^l (Eq. 4);
* each RRM is a dual-path block whose two paths use different kernels and exchange their features;
* every O_t^l is supervised (Eq. 6–7, all weights 1: the sum of the cross-entropies), and a convolution over the
  last step's five outputs gives the final map (Eq. 5).

What it leaves open and we chose (the official repository is empty):

* each layer is first reduced to ``width`` (64) channels by a 1×1 convolution + ReLU, and the AMDF has ``width``
  channels; Eq. 2–3 write F_1 for the first step of every branch, read here as the branch's own layer F_l;
* each branch works at its layer's resolution: the AMDF is resized (bilinear) to it, O_t^{l+1} upsampled to it;
* the dual path: 3×3 and 5×5 convolutions (``width``/2 channels each, ReLU), then each path convolves the
  concatenation of both with its own kernel, and a 1×1 convolution gives the one-channel residual;
* the RRMs of different steps do not share weights (their inputs differ at t = 1);
* Eq. 5's activation is dropped so the final map is a logit, as every other output (the sigmoid is in the loss).

Ablations: ``steps`` (T) and ``residual=False`` (the paper's R²MRF_no_RRM: each step predicts O_t^l directly
instead of adding a residual to O_{t-1}^l).
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import create_backbone
from .layers import conv_relu
from .layers import resize as _resize


class DualPathRRM(nn.Module):
    """Residual refinement module: two paths (3×3 and 5×5 kernels) that exchange features, then a 1×1 to one map."""

    def __init__(self, cin: int, width: int):
        super().__init__()
        half = width // 2
        self.a1 = conv_relu(cin, half, 3)
        self.b1 = conv_relu(cin, half, 5)
        self.a2 = conv_relu(2 * half, half, 3)
        self.b2 = conv_relu(2 * half, half, 5)
        self.out = nn.Conv2d(2 * half, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = torch.cat([self.a1(x), self.b1(x)], dim=1)
        return self.out(torch.cat([self.a2(shared), self.b2(shared)], dim=1))


class R2MRF(nn.Module):
    """R²MRF blur detector.

    Parameters
    ----------
    backbone : str
        ``resnext101_32x4d`` (the paper's; a file the user supplies), or any backbone of
        :data:`defocus.nets.backbones.BACKBONES` that offers five taps (e.g. ``mobilenetv2``, ``efficientnet_lite0``,
        ``resnet50``).
    pretrained : bool or path
        Backbone initialisation.
    width : int
        Channels of the reduced layers and of the AMDF.
    steps : int
        Recurrent steps T (paper: 6).
    residual : bool
        RRMs add a learned residual to the previous output (True, the paper) or predict it anew (the ablation).

    Input: RGB in [0, 1], (B, 3, H, W), H and W multiples of 32. Output: blur-map logits (B, 1, H, W); with
    ``return_sides=True`` also the 5·T side logits (B, 1, H, W), step by step, from the top layer down.
    """

    def __init__(self, backbone: str = "resnext101_32x4d", pretrained=False, width: int = 64, steps: int = 6,
                 residual: bool = True, **backbone_kwargs):
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.arch = {"arch": "r2mrf", "backbone": backbone, "width": int(width), "steps": int(steps),
                     "residual": bool(residual)}
        self.backbone = create_backbone(backbone, pretrained=pretrained, out_indices=(0, 1, 2, 3, 4),
                                        **backbone_kwargs)
        n = len(self.backbone.channels)
        self.steps, self.residual = int(steps), bool(residual)
        self.reduce = nn.ModuleList(conv_relu(c, width, 1) for c in self.backbone.channels)
        self.amdf = conv_relu(n * width, width, 3)  # Eq. 1

        def rrm_in(t: int, layer: int) -> int:  # Eq. 2–3
            own = width if t == 0 else 1
            return own + width + (1 if layer < n - 1 else 0)

        self.rrm = nn.ModuleList(nn.ModuleList(DualPathRRM(rrm_in(t, l), width) for l in range(n))
                                 for t in range(self.steps))
        self.final = nn.Conv2d(n, 1, 1)  # Eq. 5
        #: Inference ablation (paper's Table 3, "R²MRF_Ok"): 0 = the fused map (Eq. 5); k = 1 … 5 = the last output
        #: of layer k's branch (1 = conv1 … 5 = conv5_x). Not part of the architecture: set it on a loaded model.
        self.output = 0
        self.output_layers = n

    def forward(self, x: torch.Tensor, return_sides: bool = False):
        size = x.shape[-2:]
        feats = [r(f) for r, f in zip(self.reduce, self.backbone(self.backbone.normalize(x)))]
        n = len(feats)
        first = feats[0].shape[-2:]
        amdf = self.amdf(torch.cat([_resize(f, first) for f in feats], dim=1))
        amdf_at = [_resize(amdf, f.shape[-2:]) for f in feats]
        outputs: list[torch.Tensor | None] = [None] * n
        sides: list[torch.Tensor] = []
        for t in range(self.steps):
            step: list[torch.Tensor | None] = [None] * n
            for l in reversed(range(n)):  # the top layer first: O_t^{l+1} feeds layer l at the same step
                own = feats[l] if t == 0 else outputs[l]
                parts = [own, amdf_at[l]]
                if l < n - 1:
                    parts.append(_resize(step[l + 1], feats[l].shape[-2:]))
                r = self.rrm[t][l](torch.cat(parts, dim=1))
                step[l] = r + outputs[l] if (self.residual and t > 0) else r  # Eq. 4
            outputs = step
            sides.extend(_resize(o, size) for o in reversed(outputs))
        if self.output and not return_sides:  # ablation R²MRF_Ok: branch k's last output instead of Eq. 5
            return _resize(outputs[self.output - 1], size)
        fused = self.final(torch.cat([_resize(o, size) for o in outputs], dim=1))
        return (fused, sides) if return_sides else fused


# Bundled weights (read without importing this module by defocus.registry: keep every value a literal).
from ..pretrained import Pretrained  # noqa: E402  (beside the list it describes)

PRETRAINED = [
    Pretrained(
        name="r2mrf",
        arch="r2mrf",
        arch_kwargs={"backbone": "mobilenetv2", "width": 64, "steps": 6, "residual": True},
        file="r2mrf_mobilenetv2_synth.safetensors",
        sha256="191ca54a7a07ba340dbc935ac7515512bc5c68d725894dd2b59dcbfe9386545d",
        recipe="r2mrf-mobilenetv2-cpu",
        # Isotonic calibration of the probability (benchmarks/calibrate.py, 100 + 100 held-out synthetic val scenes;
        # docs/calibration.md): lowers both MAE and ECE on the held-out part.
        calibration={"isotonic": [
            [0.0, 0.0008, 0.003, 0.0075, 0.0214, 0.0484, 0.106, 0.221, 0.3713, 0.5092, 0.6044, 0.7, 0.8074, 0.8617,
             0.8966, 0.9198, 0.9368, 0.9503, 0.9604, 0.9686, 0.9768, 0.9822, 0.9872, 0.9946, 1.0],
            [0.0, 0.0, 0.0003, 0.0048, 0.0084, 0.0274, 0.0669, 0.1202, 0.2232, 0.3679, 0.5565, 0.8116, 0.9288,
             0.9577, 0.9627, 0.9751, 0.9781, 0.9781, 0.9814, 0.9917, 0.9983, 1.0, 1.0, 1.0, 1.0]]},
        summary="R²MRF (AMDF, recurrent residual refinement, T = 6) on MobileNetV2, trained on synthetic defocus",
        paper="C. Tang, X. Liu, X. Zhu, E. Zhu, K. Sun, P. Wang, L. Wang, A. Zomaya, 'R²MRF: Defocus Blur Detection "
              "via Recurrently Refining Multi-Scale Residual Features', AAAI 2020",
    ),
]
