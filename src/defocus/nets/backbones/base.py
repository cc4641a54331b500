"""What every backbone offers: multi-scale feature taps (like timm's ``features_only``) and pretrained-weight loading."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import WeightsError
from ..weights import find_weights, read_state_dict

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class FeatureInfo:
    """One feature tap: ``num_chs`` channels at 1/``reduction`` of the input size, taken after module ``module``."""

    num_chs: int
    reduction: int
    module: str


@dataclass(frozen=True)
class DefaultWeights:
    """A backbone's default pretrained file: its name, the sub-folder of the weights folder, and how to obtain it."""

    filename: str
    subdir: str
    how_to_get: str


def split_timm_key(key: str, head: dict[str, str]) -> str | tuple[int, int, str, list[str]]:
    """Parse a timm MobileNet/EfficientNet key: the renamed key for a stem/head module in ``head``, ``key`` itself
    for anything outside ``blocks``, else ``(stage, block, module, rest)`` of ``blocks.{stage}.{block}.{module}...``."""
    parts = key.split(".")
    if parts[0] in head:
        return ".".join([head[parts[0]]] + parts[1:])
    if parts[0] != "blocks":
        return key
    return int(parts[1]), int(parts[2]), parts[3], parts[4:]


class Backbone(nn.Module):
    """Base class of the feature extractors in :mod:`defocus.nets.backbones`.

    Subclasses hold their layers under torchvision's (or the original release's) attribute names, so a released
    state dict loads without renaming; they set :attr:`all_features` (every available tap) and implement
    :meth:`_forward_taps`.

    Parameters
    ----------
    out_indices : sequence of int
        Which entries of :attr:`all_features` :meth:`forward` returns, in that order of depth.

    Attributes
    ----------
    feature_info : list of FeatureInfo
        The selected taps: channels, reduction and source module.
    mean, std : tuple of float
        Per-channel normalisation the pretrained weights expect for RGB input in [0, 1].
    """

    all_features: list[FeatureInfo] = []
    default_out_indices: tuple[int, ...] = ()
    default_weights: DefaultWeights | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __init__(self, out_indices=None):
        super().__init__()
        idx = tuple(self.default_out_indices if out_indices is None else out_indices)
        if not idx or any(i < 0 or i >= len(self.all_features) for i in idx) or list(idx) != sorted(set(idx)):
            raise ValueError(f"out_indices must be increasing indices into {len(self.all_features)} taps, not {idx}")
        self.out_indices = idx
        self.feature_info = [self.all_features[i] for i in idx]
        self.register_buffer("_mean", torch.tensor(self.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.std).view(1, 3, 1, 1), persistent=False)

    @property
    def channels(self) -> list[int]:
        """Channels of each returned feature map."""
        return [f.num_chs for f in self.feature_info]

    @property
    def reductions(self) -> list[int]:
        """Stride (input size / feature size) of each returned feature map."""
        return [f.reduction for f in self.feature_info]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1], shape (B, 3, H, W) → the normalised input the pretrained weights expect."""
        return (x - self._mean) / self._std

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of a normalised batch.

        Parameters
        ----------
        x : Tensor of shape (B, 3, H, W)
            Already normalised with :meth:`normalize`.

        Returns
        -------
        list of Tensor
            One (B, C_i, ~H/r_i, ~W/r_i) map per selected tap, shallow to deep (C_i, r_i from :attr:`feature_info`).
        """
        return self._forward_taps(x)

    def _forward_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run ``self.features`` (an ``nn.Sequential``) and keep the outputs of the layers in ``self._taps``."""
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._taps:
                out.append(x)
        return out

    # ------------------------------------------------------------------------------------------------------------------
    # Weights

    #: A key that only timm's checkpoints of this architecture have; such files are renamed with :meth:`timm_key`.
    timm_marker: str | None = None

    def timm_key(self, key: str) -> str:
        """This module's name for timm's ``key`` (subclasses with a :attr:`timm_marker` implement it)."""
        raise NotImplementedError

    def remap_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename the keys of timm's state dict (recognised by :attr:`timm_marker`) to this module's; others as is."""
        if self.timm_marker is None or self.timm_marker not in sd:
            return sd
        return {self.timm_key(k): v for k, v in sd.items()}

    def load_pretrained(self, path: str | os.PathLike | None = None, sha256: str | None = None) -> "Backbone":
        """Load pretrained weights from ``path`` (default: this backbone's default file, see :mod:`..weights`).

        Keys are remapped with :meth:`remap_state_dict`; tensors of layers this extractor does not use (classifier,
        unused deep stages, side outputs) are ignored; every parameter and buffer it does use must be present with the
        right shape.

        Raises
        ------
        WeightsError
            File missing, sha256 mismatch, unreadable, or not a state dict for this architecture.
        """
        if path is None:
            dw = self.default_weights
            if dw is None:
                raise WeightsError(f"{type(self).__name__} has no default weight file; pass a path")
            path = find_weights(dw.filename, dw.subdir, dw.how_to_get)
        sd = self.remap_state_dict(read_state_dict(path, sha256))
        own = self.state_dict()
        missing = [k for k in own if k not in sd]
        if missing:
            raise WeightsError(f"{path}: not a {type(self).__name__} state dict ({len(missing)} of {len(own)} "
                               f"tensors missing, e.g. {missing[0]!r})")
        wrong = [k for k in own if tuple(sd[k].shape) != tuple(own[k].shape)]
        if wrong:
            k = wrong[0]
            raise WeightsError(f"{path}: tensor {k!r} has shape {tuple(sd[k].shape)}, expected {tuple(own[k].shape)}")
        self.load_state_dict({k: sd[k].to(own[k].dtype) for k in own}, strict=True)
        return self
