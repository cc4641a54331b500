"""Finding, splitting and loading the real photos and masks the synthetic scenes are built from.

Everything is read from the ``shared/`` data folder (never copied into the project):

* ``data/photos/*/A_sharp/*`` — all-in-focus photos (textures for backgrounds, planes and grounds);
* ``data/masks/{ECSSD,DUTS-TR-1200}/`` — photos with binary object masks, ``data/masks/alphamatting-train-lowres/`` —
  photos with soft alpha mattes (255 = object);
* ``data/masks/cuhk_gt/*.png`` — real focus layouts of the CUHK blur dataset (255 = blurred).

The folder is ``$DEFOCUS_SHARED`` if set, else ``shared/`` beside the repository.

Every source file is assigned to ``train``, ``val`` or ``test`` by a hash of its collection and file stem
(:func:`split_of`): :data:`VAL_FRACTION` and :data:`TEST_FRACTION` of the files (10 % each) never appear in
training scenes, so validation and test renders show photos, objects and layouts the model has not seen.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DefocusError, ImageReadError
from ..io import IMAGE_SUFFIXES

SPLITS = ("train", "val", "test")
VAL_FRACTION = 0.10
TEST_FRACTION = 0.10

_MASK_SETS = (("ECSSD", False), ("DUTS-TR-1200", False), ("alphamatting-train-lowres", True))

#: Long side (px) to which sharp photos are reduced when loaded; crops are rendered at ≤ 320–512 px, so nothing is
#: lost, and down-scaling makes the photos sharper still.
MAX_SIDE = 1024


def shared_root(shared: str | os.PathLike | None = None) -> Path:
    """The ``shared/`` data folder: ``shared`` if given, else ``$DEFOCUS_SHARED``, else the folder beside the repo.

    Raises
    ------
    DefocusError
        If the folder or its ``data/`` subfolder does not exist.
    """
    from ..paths import shared_dir

    root = Path(shared).expanduser() if shared is not None else shared_dir()
    if not (root / "data").is_dir():
        raise DefocusError(
            f"{root}: no shared data folder (expected {root / 'data'}); set DEFOCUS_SHARED to the folder that holds "
            "data/photos and data/masks"
        )
    return root


def split_of(collection: str, name: str) -> str:
    """Deterministic split of a source file: ``"val"``, ``"test"`` or ``"train"`` from SHA-1 of ``collection/stem``."""
    digest = hashlib.sha1(f"{collection}/{Path(name).stem}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < VAL_FRACTION:
        return "val"
    if u < VAL_FRACTION + TEST_FRACTION:
        return "test"
    return "train"


@dataclass(frozen=True)
class MaskedPhoto:
    """A photo with its object mask (255 = object); ``soft`` for alpha mattes."""

    image: Path
    mask: Path
    collection: str
    soft: bool


@dataclass(frozen=True)
class Sources:
    """Source files of one split."""

    split: str
    sharp: tuple[Path, ...]
    masked: tuple[MaskedPhoto, ...]
    layouts: tuple[Path, ...]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@lru_cache(maxsize=16)
def _find(root: Path, split: str) -> Sources:
    data = root / "data"
    sharp = []
    for folder in sorted((data / "photos").glob("*/A_sharp")):
        sharp += [p for p in _images_in(folder) if split_of(folder.parent.name, p.name) == split]
    masked = []
    for name, soft in _MASK_SETS:
        base = data / "masks" / name
        if not (base / "images").is_dir():
            continue
        masks = {p.stem: p for p in _images_in(base / "masks")} if (base / "masks").is_dir() else {}
        for img in _images_in(base / "images"):
            if img.stem in masks and split_of(name, img.name) == split:
                masked.append(MaskedPhoto(img, masks[img.stem], name, soft))
    layouts = []
    if (data / "masks" / "cuhk_gt").is_dir():
        layouts = [p for p in _images_in(data / "masks" / "cuhk_gt") if split_of("cuhk_gt", p.name) == split]
    if not sharp and not masked:
        raise DefocusError(f"{data}: no source photos found (need data/photos/*/A_sharp or data/masks/*/images)")
    return Sources(split, tuple(sharp), tuple(masked), tuple(layouts))


def find_sources(split: str = "train", shared: str | os.PathLike | None = None) -> Sources:
    """The source photos, masked photos and layouts assigned to ``split`` (see :func:`split_of`)."""
    if split not in SPLITS:
        raise DefocusError(f"split must be one of {SPLITS}, not {split!r}")
    return _find(shared_root(shared).resolve(), split)


def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read source image ({exc})") from None


@lru_cache(maxsize=512)
def load_rgb(path: Path, max_side: int = MAX_SIDE) -> np.ndarray:
    """An RGB photo as uint8 (H, W, 3), reduced (area filter) so its long side is ≤ ``max_side``. Cached; read-only."""
    try:
        img = Image.open(path)
        if img.format == "JPEG":
            img.draft("RGB", (max_side, max_side))  # decode JPEGs directly at a reduced scale: much faster
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read source image ({exc})") from None
    img = img.convert("RGB")
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BOX)
    arr = np.asarray(img, dtype=np.uint8)
    arr.setflags(write=False)
    return arr


@lru_cache(maxsize=1024)
def load_gray(path: Path) -> np.ndarray:
    """A mask or matte as uint8 (H, W) (RGB/RGBA files converted to luminance). Cached; read-only."""
    img = _open(path)
    arr = np.asarray(img.convert("L"), dtype=np.uint8)
    arr.setflags(write=False)
    return arr
