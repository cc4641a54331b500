"""Crash-safe checkpoints: a complete folder appears under its final name or not at all.

Layout under ``OUT/checkpoints``::

    step_0000500/model.safetensors   model weights (float32, with the ``arch`` metadata)
    step_0000500/optimizer.pt        optimizer state (tensors and numbers only; read with weights_only=True)
    step_0000500/state.json          step, config, loss-scaler state, elapsed seconds
    latest.json                      {"step": 500, "dir": "step_0000500"}

A checkpoint is written into a hidden temporary folder, each file flushed to disk, then the folder is renamed into
place and only then ``latest.json`` is replaced (atomically). A ``kill -9`` at any moment therefore leaves the
previous ``latest.json`` pointing at a complete checkpoint.

Resuming takes the newest *complete* checkpoint folder (all three files, a readable ``state.json``); a newer damaged
one is named on stderr and passed over, never deleted, and only complete checkpoints are pruned.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ..errors import DefocusError, WeightsError
from ..nets.modelfile import model_bytes, read_model_file, state_dict_bytes

FILES = ("model.safetensors", "optimizer.pt", "state.json")


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(folder: str | os.PathLike, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict, keep: int = 2, extras: dict[str, torch.nn.Module] | None = None) -> Path:
    """Write checkpoint ``step`` (see module docstring); keeps the newest ``keep`` checkpoints. Returns its folder.

    ``extras``: other trained modules (e.g. distillation projectors), each saved as ``<name>.safetensors``."""
    import io

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    tmp = root / f".tmp_{name}_{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    _write(tmp / "model.safetensors", model_bytes(model, fp16=False))
    for extra, module in (extras or {}).items():
        _write(tmp / f"{extra}.safetensors", state_dict_bytes(module.state_dict(), fp16=False))
    buf = io.BytesIO()
    torch.save(optimizer.state_dict(), buf)
    _write(tmp / "optimizer.pt", buf.getvalue())
    _write(tmp / "state.json", json.dumps({**state, "step": step}, indent=1).encode())
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    latest_tmp = root / f".latest.json.{os.getpid()}"
    _write(latest_tmp, json.dumps({"step": step, "dir": name}).encode())
    os.replace(latest_tmp, root / "latest.json")
    _fsync_dir(root)
    done = [p for p in checkpoint_folders(root) if is_complete(p)]
    for old in done[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_folders(folder: str | os.PathLike) -> list[Path]:
    """Every ``step_*`` folder under ``folder``, complete or not, oldest first."""
    root = Path(folder)
    return sorted(p for p in root.glob("step_*") if p.is_dir()) if root.is_dir() else []


def is_complete(path: Path) -> bool:
    """True if a checkpoint folder holds all its files and a readable ``state.json`` with its step."""
    if not all((path / name).is_file() for name in FILES):
        return False
    try:
        return isinstance(json.loads((path / "state.json").read_text()).get("step"), int)
    except (OSError, ValueError, AttributeError):
        return False


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder, or None if there is none."""
    complete = [p for p in checkpoint_folders(folder) if is_complete(p)]
    return complete[-1] if complete else None


def resume_point(folder: str | os.PathLike, log=None) -> Path | None:
    """The checkpoint a resumed run starts from: the newest complete one; None if there are no checkpoints.

    Newer damaged folders are reported through ``log`` (a callable taking one line) and left in place.

    Raises
    ------
    DefocusError
        There are checkpoint folders but none is complete (the run cannot be continued, and must not silently
        start over).
    """
    folders = checkpoint_folders(folder)
    complete = [p for p in folders if is_complete(p)]
    good = complete[-1] if complete else None
    if folders and good is None:
        raise DefocusError(f"{folder}: no complete checkpoint to resume from ({', '.join(p.name for p in folders)} "
                           f"each lack one of {', '.join(FILES)}); remove them to start over, or choose another --out")
    damaged = [p.name for p in folders if good is not None and p.name > good.name]
    if damaged and log is not None:
        log(f"{', '.join(damaged)} incomplete (missing or unreadable {'/'.join(FILES)}); "
            f"resuming from the newest complete checkpoint, {good.name}")
    return good


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, device: str = "cpu",
                    extras: dict[str, torch.nn.Module] | None = None) -> dict:
    """Restore model (optimizer, ``extras``) from a checkpoint folder; returns its ``state.json`` contents."""
    from safetensors.torch import load_file

    path = Path(path)
    _, sd = read_model_file(path / "model.safetensors")
    model.load_state_dict(sd, strict=True)
    for name, module in (extras or {}).items():
        module.load_state_dict(load_file(str(path / f"{name}.safetensors"), device=device), strict=True)
    if optimizer is not None:
        try:
            state = torch.load(path / "optimizer.pt", map_location=device, weights_only=True)
        except Exception:  # torch raises pickle errors of many types; its text suggests unsafe loading
            raise WeightsError(f"{path / 'optimizer.pt'}: refused: not an optimizer state of plain tensors and "
                               "numbers (defocus never writes anything else there)") from None
        optimizer.load_state_dict(state)
    return json.loads((path / "state.json").read_text())
