"""Making sure an output folder can be written before any work is done."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UsageError


def writable_folder(path: str | os.PathLike, option: str = "output folder") -> Path:
    """Create ``path`` (with its parents) if needed and check that a file can be written in it; returns it.

    Raises
    ------
    UsageError
        One line naming ``option`` and the path: a file is in the way, or the folder cannot be created or written
        (read-only file system, permissions).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        raise UsageError(f"{option} {path}: exists and is not a folder") from None
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None
    return path
