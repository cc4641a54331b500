"""One registry of trainable networks: ``arch`` name -> ``"module:Class"``, built by :func:`build_model`.

A network class takes ``pretrained`` (backbone initialisation) plus its own keyword options, stores them in
``self.arch`` (so a model file can rebuild it), and returns blur-map logits — with ``return_sides=True`` also the
list of side-output logits used for deep supervision. Add one line per network.
"""

from __future__ import annotations

import importlib

from torch import nn

MODELS: dict[str, str] = {
    "light_dffnet": "defocus.nets.dffnet:LightDFFNet",
    "defusionnet": "defocus.nets.defusionnet:DeFusionNet",
    "r2mrf": "defocus.nets.r2mrf:R2MRF",
}


def build_model(arch: dict, pretrained=False) -> nn.Module:
    """Build a network from its ``arch`` dict (``model.arch``), e.g. ``{"arch": "light_dffnet", "backbone": ...}``."""
    arch = dict(arch)
    name = arch.pop("arch")
    if name not in MODELS:
        raise ValueError(f"unknown model architecture {name!r}; available: {', '.join(MODELS)}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)(pretrained=pretrained, **arch)
