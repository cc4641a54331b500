"""B-Net and E-Net of Karaali, Harte & Jung (TIP 2022): edge-patch classifiers for blur level and edge type.

Both networks look at RGB patches centred on one edge pixel (values in [0, 1]):

* **f1** (shared): three streams over the 41×41, 27×27 and 15×15 patches, 3×3 VALID convolutions without bias and
  ReLU, 64 channels, each reaching 7×7 (41: conv → max-pool 3/3 → 3 conv; 27: 3 conv → max-pool 3/3 → 1×1 conv;
  15: 4 conv), concatenated to 192 channels at 7×7 ("fused where they reach the same size").
* **B-Net** = f1 → b-net (three 3×3 convs 7 → 5 → 3 → 1, then a 1×1 conv to the 64-d feature) → FC 300 → 150 → 23
  logits, one per blur level (disk radius 0.5, 0.75, …, 6.0 px).
* **E-Net** = f1 (B-Net's, frozen) + its own 41×41 stream f2 (same layout as the 41 stream), concatenated to 256
  channels at 7×7 → e-net (same layout as b-net) → FC 300 → 150 → 2 logits (0 = pattern edge, 1 = depth edge).

Layer layout from the paper (Fig. 3, Sec. III) and the authors' released inference code; about 62 M
multiply-adds per patch for B-Net (the paper: 123 MFLOPs).

Model files: ``arch`` ``{"arch": "benet", "scales": [...]}`` / ``{"arch": "enet", ...}``
(:mod:`defocus.nets.modelfile`); the bundled files (:data:`PRETRAINED`) are trained by the ``benet`` and ``enet``
recipes of ``defocus train``.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from ..errors import DefocusError
from ..pretrained import Pretrained

#: Side lengths of the three patches (px); all centred on the same edge pixel.
PATCH_SIZES = (41, 27, 15)
#: Blur levels of B-Net's classes: disk (pillbox) radius in px, 0.5 … 6.0 in steps of 0.25 (23 classes).
RADII = np.arange(0.5, 6.0 + 1e-9, 0.25, dtype=np.float32)
N_LEVELS = len(RADII)
#: E-Net classes.
PATTERN, DEPTH = 0, 1
WIDTH = 64


def detect_edges(image: np.ndarray, channel: str = "hue", sigma: float = float(np.sqrt(2.0)),
                 low: float = 0.05, high: float = 0.06) -> np.ndarray:
    """Canny edge map of an RGB image, as in the authors' code.

    Parameters
    ----------
    image : ndarray (H, W, 3), float in [0, 1]
    channel : {"hue", "value", "gray"}
        Channel the detector runs on: HSV hue (the authors' choice), HSV value, or BT.601 luma.
    sigma, low, high : float
        Canny smoothing (px) and absolute hysteresis thresholds (scikit-image convention).

    Returns
    -------
    ndarray (H, W), bool
    """
    from skimage.color import rgb2hsv
    from skimage.feature import canny

    img = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if channel == "hue":
        ch = rgb2hsv(img)[:, :, 0]
    elif channel == "value":
        ch = img.max(axis=2)
    elif channel == "gray":
        # float32 dot product, not filters.color.gray (OpenCV rounds differently): keeps the edge maps as they are
        ch = img @ np.array([0.299, 0.587, 0.114], np.float32)
    else:
        raise DefocusError(f"edge channel must be 'hue', 'value' or 'gray', not {channel!r}")
    return canny(ch.astype(np.float64), sigma=sigma, low_threshold=low, high_threshold=high)


def _conv(cin: int, cout: int = WIDTH, k: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, bias=False), nn.ReLU(inplace=True)]


def stream41(cin: int = 3) -> nn.Sequential:
    """41×41 → conv (39) → max-pool 3/3 (13) → 3 convs (7); 64 channels."""
    return nn.Sequential(*_conv(cin), nn.MaxPool2d(3, 3), *_conv(WIDTH), *_conv(WIDTH), *_conv(WIDTH))


def stream27(cin: int = 3) -> nn.Sequential:
    """27×27 → 3 convs (21) → max-pool 3/3 (7) → 1×1 conv; 64 channels."""
    return nn.Sequential(*_conv(cin), *_conv(WIDTH), *_conv(WIDTH), nn.MaxPool2d(3, 3), *_conv(WIDTH, k=1))


def stream15(cin: int = 3) -> nn.Sequential:
    """15×15 → 4 convs (7); 64 channels."""
    return nn.Sequential(*_conv(cin), *_conv(WIDTH), *_conv(WIDTH), *_conv(WIDTH))


def head(cin: int, n_out: int) -> nn.Sequential:
    """7×7 fused features → three 3×3 convs (1×1) → 1×1 conv to 64-d → FC 300 → FC 150 → ``n_out`` logits."""
    return nn.Sequential(
        *_conv(cin), *_conv(WIDTH), *_conv(WIDTH), *_conv(WIDTH, k=1), nn.Flatten(),
        nn.Linear(WIDTH, 300), nn.ReLU(inplace=True), nn.Linear(300, 150), nn.ReLU(inplace=True),
        nn.Linear(150, n_out),
    )


def crops(p41: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 41×41, centred 27×27 and centred 15×15 patches of an (N, 3, 41, 41) batch."""
    return p41, p41[:, :, 7:34, 7:34], p41[:, :, 13:28, 13:28]


class F1(nn.Module):
    """Shared multi-scale feature streams; input (N, 3, 41, 41) in [0, 1] → (N, 192, 7, 7)."""

    def __init__(self, scales: tuple[int, ...] = PATCH_SIZES) -> None:
        super().__init__()
        builders = {41: stream41, 27: stream27, 15: stream15}
        self.scales = tuple(int(s) for s in scales)
        self.streams = nn.ModuleList(builders[s]() for s in self.scales)

    @property
    def channels(self) -> int:
        return WIDTH * len(self.scales)

    def forward(self, p41: torch.Tensor) -> torch.Tensor:
        x = p41 - 0.5  # centre the [0, 1] input; no normalisation layers in this architecture
        views = dict(zip(PATCH_SIZES, crops(x)))
        return torch.cat([stream(views[s]) for s, stream in zip(self.scales, self.streams)], dim=1)


class BNet(nn.Module):
    """Blur-level classifier: (N, 3, 41, 41) RGB patches in [0, 1] → (N, 23) logits over :data:`RADII`.

    Parameters
    ----------
    scales : tuple of int
        Patch streams to use, a subset of (41, 27, 15); the single-scale ablation uses ``(41,)``.
    pretrained : bool
        Accepted for :func:`defocus.nets.models.build_model`; there is no pretrained backbone (trained from scratch).
    """

    def __init__(self, scales: tuple[int, ...] = PATCH_SIZES, pretrained=False) -> None:
        super().__init__()
        self.f1 = F1(scales)
        self.b = head(self.f1.channels, N_LEVELS)
        self.arch = {"arch": "benet", "scales": list(self.f1.scales)}

    def forward(self, p41: torch.Tensor) -> torch.Tensor:
        return self.b(self.f1(p41))


class ENet(nn.Module):
    """Edge-type classifier: (N, 3, 41, 41) RGB patches in [0, 1] → (N, 2) logits (pattern, depth).

    ``f1`` is B-Net's (pass it to share the module; the ``enet`` recipe copies it from the B-Net file and freezes
    it), ``f2`` its own 41×41 stream.
    """

    def __init__(self, f1: F1 | None = None, scales: tuple[int, ...] = PATCH_SIZES, pretrained=False) -> None:
        super().__init__()
        self.f1 = f1 if f1 is not None else F1(scales)
        self.f2 = stream41()
        self.e = head(self.f1.channels + WIDTH, 2)
        self.arch = {"arch": "enet", "scales": list(self.f1.scales)}

    def forward(self, p41: torch.Tensor, f1_features: torch.Tensor | None = None) -> torch.Tensor:
        """Logits; ``f1_features`` = ``self.f1(p41)`` when already computed (B-Net shares f1, so inference runs it
        once for both networks)."""
        x = p41 - 0.5
        f1 = self.f1(p41) if f1_features is None else f1_features
        return self.e(torch.cat([f1, self.f2(x)], dim=1))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters E-Net learns (f2 and the head); f1 stays as B-Net trained it."""
        return [p for n, p in self.named_parameters() if not n.startswith("f1.")]


def load_enet(path: str | os.PathLike, bnet: BNet, sha256: str | None = None, bnet_sha256: str | None = None) -> ENet:
    """E-Net from a model file, sharing ``bnet``'s f1 streams (so inference runs f1 once for both networks).

    The file may hold f2 and the head only (the bundled ``enet_v1``, which records the B-Net file it was trained on
    in its ``f1_from`` metadata; then ``bnet_sha256``, the digest of ``bnet``'s file, must be that file's) or the
    whole network (``defocus train --config enet``); in the latter case its f1 must be ``bnet``'s.

    Raises
    ------
    WeightsError
        Missing file, digest mismatch, weights that do not fit, or f1 streams of another B-Net.
    """
    import json

    from ..errors import WeightsError
    from .modelfile import read_model_file

    meta, sd = read_model_file(path, sha256)
    f1_from = json.loads(meta["f1_from"]) if "f1_from" in meta else {}
    if bnet_sha256 and f1_from.get("sha256") and f1_from["sha256"] != bnet_sha256:
        raise WeightsError(f"{path}: E-Net was trained on the f1 streams of B-Net {f1_from.get('file')} "
                           f"(sha256 {f1_from['sha256'][:12]}…), not of this B-Net; use an E-Net trained on it "
                           f"(defocus train --config enet with init_from) or psi=0")
    model = ENet(bnet.f1)
    own = {k: v for k, v in sd.items() if not k.startswith("f1.")}
    shared = {k[3:]: v for k, v in sd.items() if k.startswith("f1.")}
    bnet_f1 = bnet.f1.state_dict()
    if shared and (shared.keys() != bnet_f1.keys()
                   or not all(torch.allclose(v, bnet_f1[k].to(v), atol=1e-3) for k, v in shared.items())):
        raise WeightsError(f"{path}: E-Net was trained on the f1 streams of another B-Net")
    missing, unexpected = model.load_state_dict(own, strict=False)
    missing = [k for k in missing if not k.startswith("f1.")]
    if missing or unexpected:
        raise WeightsError(f"{path}: weights do not fit E-Net (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval()


_PAPER = ("A. Karaali, N. Harte, C. R. Jung, 'Deep Multi-Scale Feature Learning for Defocus Blur Estimation', "
          "IEEE TIP 31:1097-1106, 2022")
#: The pair ``karaali-2022`` loads is ``benet`` + ``enet``; the first pair stays as ``benet.v1`` + ``enet.v1``.
PRETRAINED = [
    Pretrained(
        name="benet", arch="benet", file="benet_bnet_v2.safetensors", task="patch", working_size=None,
        arch_kwargs={"scales": [41, 27, 15]},
        sha256="7b122046784d686ab7fc011b86664ce5fa65d1483ade3842049e2929935eb94b",
        output=f"logits over the {N_LEVELS} disk radii 0.5 … 6.0 px of a 41×41 edge patch",
        recipe="benet-continued-mixed", summary="B-Net: blur level of an edge patch (inside karaali-2022)",
        paper=_PAPER),
    Pretrained(
        name="enet", arch="enet", file="enet_v2.safetensors", task="patch", working_size=None,
        arch_kwargs={"scales": [41, 27, 15]},
        sha256="8e726aa0c085a5c13614fa4e1cbc19376685793316f3f172ad4195ada37bcc51",
        output="logits (pattern edge, depth edge) of a 41×41 edge patch; f1 streams are B-Net's",
        recipe="enet-continued-mixed", summary="E-Net: pattern or depth edge (inside karaali-2022)", paper=_PAPER),
    Pretrained(
        name="benet.v1", arch="benet", file="benet_bnet_v1.safetensors", task="patch", working_size=None,
        arch_kwargs={"scales": [41, 27, 15]},
        sha256="50003733859614a686291457cca3cfa1714d8236d77271a84cda2e289fa5d108",
        output=f"logits over the {N_LEVELS} disk radii 0.5 … 6.0 px of a 41×41 edge patch", recipe="benet",
        summary="B-Net, first file (karaali-2022 with bnet_weights='bundled:benet_bnet_v1.safetensors')",
        paper=_PAPER),
    Pretrained(
        name="enet.v1", arch="enet", file="enet_v1.safetensors", task="patch", working_size=None,
        arch_kwargs={"scales": [41, 27, 15]},
        sha256="0306255a4b03f8b1be6254c8db688b5813f310bab16d006a75522532d8473100",
        output="logits (pattern edge, depth edge) of a 41×41 edge patch; f1 streams are benet.v1's", recipe="enet",
        summary="E-Net, first file (karaali-2022 with enet_weights='bundled:enet_v1.safetensors')", paper=_PAPER),
]


def bundled_entry(name: str) -> Pretrained:
    """The :data:`PRETRAINED` entry called ``name`` (``"benet"``, ``"enet"``: the pair ``karaali-2022`` loads)."""
    return next(p for p in PRETRAINED if p.name == name)
