"""Finding a dataset's image and ground-truth folders, and pairing their files.

Datasets circulate in several layouts (the authors' archives, the folders of the D-DFFNet / DD / Zhao-group code,
``images/`` + ``masks/`` re-packs). A loader names the folder pairs specific to its dataset; this module adds the
generic names, searches the root and two levels below it, and keeps the shallowest level where a pair is found, so
pointing at the dataset folder or at its parent both work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import DatasetError
from ..io import ARRAY_SUFFIXES, IMAGE_SUFFIXES
from .core import last_number, natural_key

#: Generic names of photo folders, most specific first (compared case-insensitively).
IMAGE_DIRS = ("image", "images", "img", "imgs", "source", "input", "inputs")
#: Generic names of ground-truth folders, most specific first.
GT_DIRS = ("gt", "gts", "mask", "masks", "label", "labels", "groundtruth", "ground_truth", "ground-truth")

#: Ground-truth mask suffixes in order of preference when one stem has several files: images, then arrays.
MASK_SUFFIXES = IMAGE_SUFFIXES + ARRAY_SUFFIXES
#: Defocus-map suffixes in order of preference: arrays, then float TIFF (8-bit images cannot hold σ in px).
MAP_SUFFIXES = ARRAY_SUFFIXES + (".tif", ".tiff")

#: A "mixed" folder (CUHK re-packs, CTCUG) holds photos and masks side by side, told apart by format.
MIXED_PHOTO_SUFFIXES, MIXED_MASK_SUFFIXES = (".jpg", ".jpeg"), (".png", ".bmp")

# Endings some re-packs add to a mask's stem ("foo.jpg" <-> "foo_gt.png").
_GT_STEM_ENDINGS = ("_gt", "-gt", "_mask", "-mask", "_label")

_TRAIN = re.compile(r"(train|dut600|(^|[^a-z])tr([^a-z]|$))")
_TEST = re.compile(r"(test|dut500|xu100|(^|[^a-z])te([^a-z]|$))")


@dataclass(frozen=True)
class FolderPair:
    """A folder of photos and the folder of their ground truth (the same folder for mixed layouts)."""

    images: Path
    gt: Path | None
    split: str | None = None
    mixed: bool = False

    def describe(self, root: Path) -> str:
        img = _rel(self.images, root)
        if self.mixed:
            return f"{img} (photos .jpg and masks .png/.bmp together)"
        return f"{img} + {_rel(self.gt, root)}" if self.gt is not None else f"{img} (no ground truth)"


@dataclass(frozen=True)
class Entry:
    """One photo, its ground-truth file (or None) and the folder pair it came from."""

    image: Path
    gt: Path | None
    pair: FolderPair


def _rel(path: Path | None, root: Path) -> str:
    if path is None:
        return "-"
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = str(path)
    return "./" if rel in ("", ".") else rel + "/"


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: natural_key(p.name))
    except OSError:
        return []


def _child(folder: Path, rel: str) -> Path | None:
    """``folder/rel`` resolved one component at a time, case-insensitively; None if it is not a folder."""
    cur = folder
    for part in rel.split("/"):
        exact = cur / part
        if exact.is_dir():
            cur = exact
            continue
        match = [p for p in _subdirs(cur) if p.name.lower() == part.lower()]
        if not match:
            return None
        cur = match[0]
    return cur


def _levels(root: Path, max_depth: int) -> Iterable[list[Path]]:
    level = [root]
    for _ in range(max_depth + 1):
        yield level
        level = [c for d in level for c in _subdirs(d)]


def _split_of(pair_dirs: Sequence[Path], root: Path) -> str | None:
    parts = []
    for d in pair_dirs:
        try:
            parts += [p.lower() for p in d.relative_to(root).parts]
        except ValueError:
            pass
    train = any(_TRAIN.search(p) for p in parts)
    test = any(_TEST.search(p) for p in parts)
    return "train" if train and not test else "test" if test and not train else None


def _pairs_in(folder: Path, named_pairs: Sequence[tuple[str, str]]) -> list[tuple[Path, Path]]:
    found: list[tuple[Path, Path]] = []
    used: set[Path] = set()
    img = next((d for d in (_child(folder, n) for n in IMAGE_DIRS) if d is not None), None)
    gt = next((d for d in (_child(folder, n) for n in GT_DIRS) if d is not None), None)
    # Named pairs first (most specific first in each loader's list); a folder serves in one pair only.
    for img_d, gt_d in [(_child(folder, a), _child(folder, b)) for a, b in named_pairs] + [(img, gt)]:
        if img_d is not None and gt_d is not None and img_d not in used and gt_d not in used:
            found.append((img_d, gt_d))
            used.update((img_d, gt_d))
    return found


def _image_dirs_in(folder: Path, named_pairs: Sequence[tuple[str, str]]) -> list[Path]:
    names = [p[0] for p in named_pairs] + list(IMAGE_DIRS)
    out: list[Path] = []
    for n in names:
        d = _child(folder, n)
        if d is not None and d not in out and _has_images(d):
            out.append(d)
    return out


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir())


def _is_mixed(folder: Path) -> bool:
    photos = {p.stem.lower() for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MIXED_PHOTO_SUFFIXES}
    masks = {p.stem.lower() for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MIXED_MASK_SUFFIXES}
    return bool(photos & masks)


def find_pairs(root: Path, what: str, named_pairs: Sequence[tuple[str, str]] = (), *, allow_unlabelled: bool = False,
               allow_mixed: bool = True, max_depth: int = 2) -> list[FolderPair]:
    """The folder pairs of a dataset under ``root``.

    Parameters
    ----------
    root : Path
        The dataset folder (or its parent).
    what : str
        Dataset name for error messages.
    named_pairs : sequence of (str, str)
        Dataset-specific (photo folder, ground-truth folder) paths, relative to a common parent (``"/"`` separated).
    allow_unlabelled : bool
        With no ground-truth folder anywhere, return the photo folders alone instead of raising.
    allow_mixed : bool
        Also recognise a folder holding photos (.jpg) and masks (.png/.bmp) with the same stems.

    Returns
    -------
    list of FolderPair
        All pairs at the shallowest depth (0 = root) that has any, each tagged ``"train"`` / ``"test"`` when its
        path relative to ``root`` says so.

    Raises
    ------
    DatasetError
        If nothing is found (the message lists the names looked for).
    """
    for level in _levels(root, max_depth):
        pairs = [FolderPair(img, gt, _split_of((img, gt), root))
                 for d in level for img, gt in _pairs_in(d, named_pairs)]
        if pairs:
            return pairs
    if allow_mixed:
        for level in _levels(root, max_depth):
            mixed = [FolderPair(d, d, _split_of((d,), root), mixed=True) for d in level if _is_mixed(d)]
            if mixed:
                return mixed
    for level in _levels(root, max_depth):
        lone = [img for d in level for img in _image_dirs_in(d, named_pairs)]
        if lone and allow_unlabelled:
            return [FolderPair(img, None, _split_of((img,), root)) for img in lone]
        if lone:
            raise DatasetError(f"{lone[0]}: {what} photos but no ground-truth folder beside them (looked for "
                               f"{', '.join(n + '/' for n in _gt_names(named_pairs))}); pass allow_unlabelled=true "
                               f"to load the photos without ground truth")
    looked = ", ".join(f"{a}/ + {b}/" for a, b in named_pairs)
    raise DatasetError(f"{root}: no {what} photo and ground-truth folders found here or two levels down (looked for "
                       f"{looked + ', ' if looked else ''}{'|'.join(IMAGE_DIRS)}/ + {'|'.join(GT_DIRS)}/)")


def _gt_names(named_pairs: Sequence[tuple[str, str]]) -> list[str]:
    return list(dict.fromkeys([p[1] for p in named_pairs] + list(GT_DIRS)))


def list_images(pair: FolderPair) -> list[Path]:
    """The photos of a pair, in natural order of their file names (hidden files skipped)."""
    exts = MIXED_PHOTO_SUFFIXES if pair.mixed else IMAGE_SUFFIXES
    files = [p for p in pair.images.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts]
    if not files:
        raise DatasetError(f"{pair.images}: no images in this folder")
    return sorted(files, key=lambda p: natural_key(p.name))


def stem_key(stem: str) -> str:
    """Matching key of a ground-truth file: its stem, lower case, without a ``_gt`` / ``_mask`` ending."""
    s = stem.lower()
    for end in _GT_STEM_ENDINGS:
        if s.endswith(end) and len(s) > len(end):
            return s[: -len(end)]
    return s


def match_key(stem: str, match: str = "stem") -> str | None:
    """The key that pairs a file with its counterpart: ``match="stem"``: the stem itself; ``match="number"``: the
    last number in the stem without leading zeros (``"image_01"`` -> ``"1"``), None if it has none."""
    if match == "stem":
        return stem
    if match == "number":
        number = last_number(stem)
        return None if number is None else str(number)
    raise ValueError(f"match must be 'stem' or 'number', not {match!r}")


def index_files(folder: Path, suffixes: Sequence[str], key: Callable[[str], object | None], *,
                strip: str = "") -> tuple[dict[object, Path], list[str]]:
    """The files of ``folder`` by matching key: the one pairing rule of the dataset loaders and ``defocus evaluate``.

    Parameters
    ----------
    folder : Path
    suffixes : sequence of str
        Lower-case suffixes to consider, in order of preference: of several files with one key, the earliest
        suffix wins (then the first name in sort order).
    key : callable
        Stem -> key; a file whose key is None is left out (and named in the problems).
    strip : str
        Only files whose stem ends with ``strip`` are considered, and ``strip`` is removed before ``key`` (e.g.
        ``"_blur"`` for the maps ``defocus detect`` writes).

    Returns
    -------
    index : dict
        Key -> file.
    problems : list of str
        One line per file without a key and per key shared by files of different stems (the one used is named).
        Hidden files are skipped silently.
    """
    candidates: dict[object, list[tuple[int, str, Path]]] = {}
    problems = []
    for p in sorted(folder.iterdir()):
        suf = p.suffix.lower()
        if p.name.startswith(".") or suf not in suffixes or not p.is_file():
            continue
        stem = p.stem
        if strip:
            if not stem.endswith(strip):
                continue
            stem = stem[: -len(strip)]
        k = key(stem)
        if k is None:
            problems.append(f"{p}: no number in the file name to match by")
            continue
        candidates.setdefault(k, []).append((list(suffixes).index(suf), p.name, p))
    index = {}
    for k, found in candidates.items():
        found.sort()
        index[k] = found[0][2]
        if len({q.stem for _, _, q in found}) > 1:
            problems.append(f"{folder}: files {', '.join(q.name for _, _, q in found)} all match {k!r}; using "
                            f"{found[0][1]}")
    return index, problems


def pair_entries(pair: FolderPair, suffixes: Sequence[str] = MASK_SUFFIXES, match: str = "stem") -> list[Entry]:
    """Each photo of ``pair`` with its ground-truth file, or None.

    ``match="stem"``: same stem (case-insensitive), else the mask stem without a ``_gt``/``_mask`` ending;
    ``match="number"``: same last number in the stems (``image_01`` <-> ``map_01``).
    """
    images = list_images(pair)
    if pair.gt is None:
        return [Entry(p, None, pair) for p in images]
    gt_suffixes = MIXED_MASK_SUFFIXES if pair.mixed else suffixes
    if match == "number":
        index, _ = index_files(pair.gt, gt_suffixes, lambda stem: match_key(stem, "number"))
        return [Entry(p, index.get(match_key(p.stem, "number")), pair) for p in images]
    exact, _ = index_files(pair.gt, gt_suffixes, str.lower)
    loose, _ = index_files(pair.gt, gt_suffixes, stem_key)
    return [Entry(p, exact.get(p.stem.lower()) or loose.get(p.stem.lower()), pair) for p in images]


def require_labels(entries: Sequence[Entry], what: str, allow_unlabelled: bool) -> None:
    """Raise a one-line :class:`DatasetError` if some photos have no ground truth and that is not allowed."""
    if allow_unlabelled:
        return
    missing = [e for e in entries if e.gt is None]
    if not missing:
        return
    first = missing[0]
    where = first.pair.gt if first.pair.gt is not None else first.pair.images
    n_in = sum(1 for e in entries if e.pair == first.pair)
    n_miss = sum(1 for e in missing if e.pair == first.pair)
    raise DatasetError(f"{where}: no {what} ground truth for {n_miss} of {n_in} photos in {first.pair.images} "
                       f"(first: {first.image.name}); pass allow_unlabelled=true to load them without")
