"""Where defocus finds the shared folder: one rule for training photos, validation sets and backbone files.

The shared folder holds ``data/`` (photos, masks, labelled real samples) and ``weights/`` (ImageNet backbones for
training). It is ``$DEFOCUS_SHARED`` when that is set, else ``shared/`` beside the repository checkout. Nothing in
it is needed to run the bundled methods; it is read by ``defocus synth``/``train`` (photos, backbones), by training
validation (real samples) and by the benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    """``$DEFOCUS_SHARED`` if set, else ``shared/`` beside the repository (the folder may not exist)."""
    env = os.environ.get("DEFOCUS_SHARED")
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[3] / "shared"


def cache_dir() -> Path:
    """Where defocus keeps what it derives from its own files (ONNX exports of the networks):
    ``$DEFOCUS_CACHE`` if set, else ``$XDG_CACHE_HOME/defocus``, else ``~/.cache/defocus``."""
    env = os.environ.get("DEFOCUS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "defocus"
