"""The pieces every loader shares: :class:`Sample`, :class:`Dataset`, ground-truth readers and option parsing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, overload

import numpy as np
from ..errors import DatasetError, ImageReadError
from ..io import ARRAY_SUFFIXES, read_array, read_map

#: What a sample's ``target_path`` holds.
#: ``"blur"``: a mask, white (255) = out of focus; ``"focus"``: a mask, white = in focus;
#: ``"radius"``: a defocus map, disk (circle-of-confusion) radius in px; ``"sigma"``: a defocus map, Gaussian σ in px.
TARGETS = ("blur", "focus", "radius", "sigma")



@dataclass(frozen=True)
class Sample:
    """One image of a dataset and its ground truth.

    Attributes
    ----------
    name : str
        Key used to match prediction files: the stem of the original file name (``"out_of_focus0037"``,
        ``"image_01"``, ``"1"``).
    image_path : Path
        The photo.
    target_path : Path or None
        The ground-truth mask (DBD) or map (DME); None for an unlabelled image.
    target : {"blur", "focus", "radius", "sigma"}
        What ``target_path`` holds, see :data:`TARGETS`. Loaders set it; users rarely need it.
    split : str or None
        ``"train"`` or ``"test"`` where the dataset's layout says so, else None.
    """

    name: str
    image_path: Path
    target_path: Path | None
    target: str = "blur"
    split: str | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {self.target!r}")

    @property
    def task(self) -> str:
        """``"dbd"`` for a mask, ``"dme"`` for a defocus map."""
        return "dbd" if self.target in ("blur", "focus") else "dme"

    def image(self) -> np.ndarray:
        """The photo as float32 RGB, shape (H, W, 3), values in [0, 1] (:func:`defocus.io.read_image`)."""
        from ..io import read_image

        return read_image(self.image_path)

    def blur_mask(self) -> np.ndarray | None:
        """The DBD ground truth in defocus's convention.

        Returns
        -------
        ndarray of shape (H, W), float32 in [0, 1], 1 = out of focus; or None
            Grey levels of the stored mask scaled to [0, 1] and complemented when the dataset stores 255 = in
            focus. Not binarised: soft edges (e.g. the 320 px CUHK-TE-1) stay soft, every evaluation protocol
            thresholds as its authors did. Shape is the stored mask's. None for an unlabelled sample or a
            defocus-map dataset.
        """
        if self.target_path is None or self.target not in ("blur", "focus"):
            return None
        mask = read_mask(self.target_path)
        if self.target == "focus":
            mask = 1.0 - mask
        return np.ascontiguousarray(mask, dtype=np.float32)

    def radius(self) -> np.ndarray | None:
        """The DME ground truth as disk (circle-of-confusion) radius in px, float32 (H, W); None without one."""
        from ..units import sigma_to_radius

        if self.target_path is None or self.target not in ("radius", "sigma"):
            return None
        arr = read_defocus_map(self.target_path)
        return arr if self.target == "radius" else sigma_to_radius(arr)

    def sigma(self) -> np.ndarray | None:
        """The DME ground truth as Gaussian σ in px, float32 (H, W); disk radii are converted with
        :func:`defocus.units.radius_to_sigma` (the RTF table). None without one."""
        from ..units import radius_to_sigma

        if self.target_path is None or self.target not in ("radius", "sigma"):
            return None
        arr = read_defocus_map(self.target_path)
        return arr if self.target == "sigma" else radius_to_sigma(arr)


class Dataset(Sequence[Sample]):
    """An ordered, read-only list of :class:`Sample` with a name and a task.

    Attributes
    ----------
    name : str
        Label for reports, e.g. ``"CUHK-TE-1"``, ``"DUT-TE"``, ``"RTF"``.
    task : {"dbd", "dme"}
        Whether the samples carry blur masks or defocus maps.
    root : Path
        The folder the dataset was opened from.
    kind : str
        The loader (``"cuhk"``, ``"dut"``, …).
    layout : str
        Which folder layout was recognised, in words (e.g. ``"image/ + gt/"``).
    protocol_defaults : dict
        Protocol options that suit this dataset's ground truth, used by :func:`defocus.evaluate.evaluate_method`
        unless given (e.g. the synthetic σ maps need no RTF column cropping); usually empty.
    """

    def __init__(self, samples: Sequence[Sample], *, name: str, task: str, root: Path, kind: str,
                 layout: str = "", protocol_defaults: dict[str, Any] | None = None) -> None:
        self._samples = tuple(samples)
        self.name = name
        self.task = task
        self.root = Path(root)
        self.kind = kind
        self.layout = layout
        self.protocol_defaults = dict(protocol_defaults or {})

    def __len__(self) -> int:
        return len(self._samples)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> "Dataset": ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Dataset(self._samples[index], name=self.name, task=self.task, root=self.root, kind=self.kind,
                           layout=self.layout, protocol_defaults=self.protocol_defaults)
        return self._samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._samples)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, task={self.task!r}, n={len(self)}, root='{self.root}', "
                f"layout={self.layout!r})")

    @property
    def names(self) -> list[str]:
        """Sample names in order."""
        return [s.name for s in self._samples]

    def by_name(self, name: str) -> Sample:
        """The sample called ``name``; :class:`KeyError` if there is none."""
        for s in self._samples:
            if s.name == name:
                return s
        raise KeyError(name)


# --------------------------------------------------------------------------------------------------------------------
# Ground-truth readers


def _scale_array(arr: np.ndarray, path: Path) -> np.ndarray:
    """An array mask to float32 [0, 1]: integer dtypes by their range, floats above 1 as 8- or 16-bit grey."""
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        top = 255.0 if arr.max(initial=0) <= 255 else 65535.0
        return arr.astype(np.float32) / top
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0)
    top = float(arr.max(initial=0.0))
    if top > 1.0 + 1e-6:
        arr = arr / (255.0 if top <= 255.0 else 65535.0)
    if arr.min(initial=0.0) < -1e-6:
        raise ImageReadError(f"{path}: mask has negative values")
    return np.clip(arr, 0.0, 1.0)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a ground-truth mask as stored, scaled to [0, 1] (no polarity change, no thresholding).

    Parameters
    ----------
    path : str or Path
        An image (PNG, BMP, JPEG, TIFF, GIF; grey, 1-bit, palette, RGB, RGBA or 16-bit; colour is reduced to its
        luminance, alpha is ignored) or an array (``.npy`` / ``.mat`` with one 2-D array; uint8 /255, uint16
        /65535, floats as they are when ≤ 1).

    Returns
    -------
    ndarray of shape (H, W), float32 in [0, 1]

    Raises
    ------
    ImageReadError
        Missing, empty or undecodable file (one line, naming it).
    """
    path = Path(path)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return _scale_array(read_array(path), path)
    # Palette, RGB(A) and LA masks occur in CUHK (16 of its PNGs are RGBA); read_map reduces them to luma, which
    # equals the grey value for the grey-in-RGB files these datasets contain.
    return np.clip(read_map(path), 0.0, 1.0)


def read_defocus_map(path: str | Path) -> np.ndarray:
    """Read a defocus map as stored (``.npy``, ``.mat``, or a float/16-bit TIFF), float32 (H, W), in pixels."""
    arr = read_map(path)
    if not np.all(np.isfinite(arr)):
        raise ImageReadError(f"{path}: defocus map has NaN or infinite values")
    return np.ascontiguousarray(arr, dtype=np.float32)


# --------------------------------------------------------------------------------------------------------------------
# Small helpers


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value (``"2" < "10"``) and the rest case-insensitively."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), p) if p.isdigit() else (1, p.lower(), p) for p in parts)


def last_number(stem: str) -> int | None:
    """The last run of digits in a file stem as an int (``"map_01"`` -> 1), or None."""
    numbers = re.findall(r"\d+", stem)
    return int(numbers[-1]) if numbers else None


def as_bool(value: Any, option: str) -> bool:
    """A boolean option given as a bool or, from the command line, as a string (``true``/``false``/``1``/``0``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise DatasetError(f"option {option}={value!r}: expected true or false")


def as_choice(value: Any, option: str, choices: Sequence[str]) -> str:
    """A string option checked against its allowed values (case-insensitive)."""
    v = str(value).strip().lower()
    if v not in choices:
        raise DatasetError(f"option {option}={value!r}: expected one of {', '.join(choices)}")
    return v


def check_root(root: str | Path, what: str) -> Path:
    """``root`` as a Path, or a one-line :class:`DatasetError` if it is missing or not a folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: no such folder ({what} dataset root)")
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder ({what} dataset root must be a folder)")
    return path
