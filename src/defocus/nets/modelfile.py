"""Saving and loading whole models as safetensors files that describe their own architecture.

The file's metadata holds ``{"arch": <json of model.arch>, ...}``, so :func:`load_model` rebuilds the network
without the caller knowing its configuration, and without any pickle. ``model.arch`` is ``{"arch": <key of
defocus.nets.models.MODELS>, <options>...}``.

The first B-Net/E-Net files (bundled ``benet_bnet_v1`` and ``enet_v1``) spell it ``{"name": "benet", ...}``; they
are read unchanged (their sha256 is part of the method) and their ``name`` is taken as the ``arch`` key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsError
from .models import build_model
from .weights import verify_sha256

#: Model files shipped with the package (``bundled:<file name>``).
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "weights"


def resolve_model_path(name: str | os.PathLike) -> Path:
    """A model file's path; ``bundled:<file>`` names one in :data:`BUNDLED_DIR`."""
    name = str(name)
    return BUNDLED_DIR / name.split(":", 1)[1] if name.startswith("bundled:") else Path(name)


def bundled_sha256(file: str) -> str | None:
    """The sha256 a bundled file must have: from the ``PRETRAINED`` list of its network's module (None if no
    network module lists it)."""
    from ..registry import all_pretrained

    return next((entry.sha256 for entry in all_pretrained() if entry.file == file), None)


def _flush_denormals(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Subnormal floats (a few exist in torchvision's MobileNetV2 BN statistics) make CPU kernels crawl.
    out = {}
    for k, v in sd.items():
        if v.is_floating_point():
            tiny = torch.finfo(v.dtype).tiny
            v = torch.where(v.abs() < tiny, torch.zeros_like(v), v)
        out[k] = v
    return out


def state_dict_bytes(state_dict: dict[str, torch.Tensor], *, fp16: bool = True, metadata: dict | None = None) -> bytes:
    """The safetensors encoding of a state dict (floating tensors as float16 if ``fp16``); metadata values that are
    not strings are stored as JSON."""
    from safetensors.torch import save

    sd = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    if fp16:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    return save(sd, metadata={k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})


def model_bytes(model: nn.Module, *, fp16: bool = True, metadata: dict | None = None) -> bytes:
    """The safetensors encoding of ``model`` (state dict, optionally as float16) with its ``arch`` in the metadata."""
    return state_dict_bytes(model.state_dict(), fp16=fp16,
                            metadata={"arch": getattr(model, "arch", {}), **(metadata or {})})


def save_model(model: nn.Module, path: str | os.PathLike, *, fp16: bool = True, metadata: dict | None = None,
               force: bool = False) -> Path:
    """Write ``model`` atomically to a ``.safetensors`` file (see :func:`model_bytes`)."""
    from ..io import atomic_write

    data = model_bytes(model, fp16=fp16, metadata=metadata)
    return atomic_write(path, lambda f: f.write(data), force=force)


def read_model_file(path: str | os.PathLike, sha256: str | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """Metadata and float32 state dict of a model file, after checking its sha256: ``sha256`` if given, else the
    bundled file's own (:func:`bundled_sha256`) for a file in :data:`BUNDLED_DIR`.

    Raises
    ------
    WeightsError
        Missing file, digest mismatch, or not a defocus model file.
    """
    from safetensors import safe_open

    path = Path(path)
    if sha256 is None and path.resolve().parent == BUNDLED_DIR.resolve():
        sha256 = bundled_sha256(path.name)
    verify_sha256(path, sha256)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise WeightsError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    meta["arch"] = json.dumps(_arch_of(meta, path))
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    return meta, _flush_denormals(sd)


def _arch_of(meta: dict, path: Path) -> dict:
    """The ``arch`` dict of a file's metadata, in today's spelling."""
    try:
        arch = json.loads(meta["arch"])
    except KeyError:
        raise WeightsError(f"{path}: no 'arch' metadata; not a defocus model file") from None
    except ValueError:
        raise WeightsError(f"{path}: its 'arch' metadata is not JSON") from None
    if isinstance(arch, dict) and "arch" not in arch and "name" in arch:  # the first B-Net/E-Net files
        arch = {"arch": arch.pop("name"), **arch}
    if not isinstance(arch, dict) or not isinstance(arch.get("arch"), str):
        raise WeightsError(f"{path}: its 'arch' metadata names no architecture")
    return arch


def load_model(path: str | os.PathLike, sha256: str | None = None, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild and load a model saved by :func:`save_model`; returns ``(model in eval mode, metadata)``.

    An E-Net file without B-Net's f1 streams (the bundled ``enet_v1``) needs its B-Net:
    :func:`defocus.nets.benet.load_enet`."""
    meta, sd = read_model_file(path, sha256)
    arch = json.loads(meta["arch"])
    try:
        model = build_model(arch, pretrained=False)
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: {exc}") from None
    if "f1_from" in meta and not any(k.startswith("f1.") for k in sd):
        raise WeightsError(f"{path}: holds E-Net without the f1 streams of its B-Net "
                           f"({json.loads(meta['f1_from']).get('file')}); load it with defocus.nets.benet.load_enet")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit the architecture ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), meta


def init_from_model_file(model: nn.Module, path: str | os.PathLike, prefix: str = "",
                         sha256: str | None = None) -> list[str]:
    """Warm-start ``model`` from another model file: copy every tensor whose name starts with ``prefix`` and whose
    name and shape match one of ``model``'s (e.g. ``prefix="backbone."`` takes a trained encoder). Returns the names
    copied; raises :class:`WeightsError` if none match."""
    _, sd = read_model_file(path, sha256)
    own = model.state_dict()
    taken = {k: v for k, v in sd.items() if k.startswith(prefix) and k in own and own[k].shape == v.shape}
    if not taken:
        raise WeightsError(f"{path}: no tensor named {prefix!r}… fits the model")
    model.load_state_dict(taken, strict=False)
    return sorted(taken)
