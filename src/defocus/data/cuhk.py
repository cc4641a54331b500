"""CUHK blur detection dataset (Shi, Xu & Jia, CVPR 2014) and its BTBNet 604/100 split.

1000 photos: ``out_of_focus0001.jpg`` … ``out_of_focus0704.jpg`` (defocus) and ``motion0001.jpg`` …
``motion0296.jpg`` (motion); masks ``<stem>.png`` with **255 = blurred** (16 of them are RGBA). The standard DBD
split (BTBNet, CVPR 2018; used by DeFusionNet, DD, D-DFFNet) tests on 100 defocus photos ("CUHK-TE-1") and trains on
the other 604 ("CUHK-TR-1"). The Zhao group distributes the test photos resized to 320×320 as ``K.bmp`` with masks
of **255 = in focus** and soft edges ("xu100"); line K of the split file names the original photo.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import DatasetError
from .core import Dataset, Sample, as_bool, as_choice, check_root, natural_key
from .layout import Entry, find_pairs, pair_entries, require_labels

SPLIT_RESOURCE = "cuhk_te1_btbnet_split.txt"
N_DEFOCUS, N_MOTION = 704, 296

# (photo folder, mask folder) names seen in the wild, besides the generic image(s)/ + gt/|masks/ ones:
# the two archives of the authors' page (BlurDatasetImage.zip -> image/, BlurDatasetGT.zip -> gt/) unpacked
# into folders of their own, and the Zhao group's 320 px test set (DENets repository).
_NAMED_PAIRS = (
    ("BlurDatasetImage/image", "BlurDatasetGT/gt"),
    ("BlurDatasetImage", "BlurDatasetGT/gt"),
    ("xu100-source", "xu100-gt"),
)
_XU_HINT = re.compile(r"(xu100|(^|[^a-z])xu([^a-z]|$))")


@lru_cache(maxsize=1)
def _split_lines() -> tuple[tuple[str, str], ...]:
    text = resources.files("defocus").joinpath("resources", SPLIT_RESOURCE).read_text(encoding="utf-8")
    pairs = []
    for line in text.splitlines():
        if line.strip():
            short, _, original = line.strip().partition("--")
            pairs.append((Path(short).stem, Path(original).stem))
    return tuple(pairs)


def cuhk_split(split: str = "test") -> list[str]:
    """Photo stems of the BTBNet CUHK split.

    Parameters
    ----------
    split : {"test", "train"}
        ``"test"``: the 100 CUHK-TE-1 photos in the order of the split file (= the order of the 320 px ``K.bmp``
        files). ``"train"``: the other 604 defocus photos (CUHK-TR-1), in numeric order.

    Returns
    -------
    list of str
        E.g. ``["out_of_focus0037", "out_of_focus0117", …]``.
    """
    test = [orig for _, orig in _split_lines()]
    if split == "test":
        return test
    if split == "train":
        held_out = set(test)
        return [n for n in (f"out_of_focus{i:04d}" for i in range(1, N_DEFOCUS + 1)) if n not in held_out]
    raise ValueError(f"split must be 'test' or 'train', not {split!r}")


def xu100_names() -> dict[str, str]:
    """Stem of each 320 px test file (``"1"`` … ``"100"``) -> stem of the original CUHK photo."""
    return dict(_split_lines())


def _subset_of(stem: str) -> str | None:
    s = stem.lower()
    return "defocus" if s.startswith("out_of_focus") else "motion" if s.startswith("motion") else None


def _is_xu100(entries: list[Entry], root: Path) -> bool:
    for e in entries:
        try:
            parts = [p.lower() for p in e.pair.images.relative_to(root).parts]
        except ValueError:
            parts = []
        if any(_XU_HINT.search(p) for p in parts):
            return True
    return bool(entries) and all(e.image.stem.isdigit() for e in entries)


def _check_complete(found: list[str], expected: list[str], label: str, where: Path) -> None:
    missing = [n for n in expected if n not in set(found)]
    if missing:
        raise DatasetError(f"{where}: {len(missing)} of the {len(expected)} {label} photos are missing (first: "
                           f"{missing[0]}); pass partial=true to use the {len(expected) - len(missing)} present")


def open_cuhk(root, subset: str = "all", split: str = "all", layout: str = "auto", names: str = "original",
              partial: bool = False, allow_unlabelled: bool = False) -> Dataset:
    """Open a copy of the CUHK blur dataset (the full 1000 or the 320 px test set).

    Parameters
    ----------
    root : str or Path
        Folder holding the photo and mask folders (or their parent); see ``docs/datasets.md`` for the layouts.
    subset : {"all", "defocus", "motion"}
        Which photos of the full dataset; ``split="train"|"test"`` implies ``"defocus"``.
    split : {"all", "train", "test"}
        ``"test"``: the 100 CUHK-TE-1 photos in split-file order; ``"train"``: the other 604 defocus photos;
        ``"all"``: every photo present. ``"train"`` / ``"test"`` promise the standard split, so a missing photo
        is an error unless ``partial=True``.
    layout : {"auto", "raw", "xu100"}
        ``"raw"``: original names and masks (255 = blurred); ``"xu100"``: the 320 px ``K.bmp`` test set
        (255 = in focus). ``"auto"`` picks xu100 when every photo stem is a number or a folder is named
        ``xu100*`` / ``*-xu``.
    names : {"original", "file"}
        xu100 only: name samples by the original CUHK stem (``"out_of_focus0037"``, default) or by the file stem
        (``"1"``, to match predictions saved under the Zhao-group names).
    partial : bool
        Accept a copy with only some photos of the requested split.
    allow_unlabelled : bool
        Load photos that have no mask (their ``target_path`` is None) instead of raising.

    Returns
    -------
    Dataset
        Task ``"dbd"``; ``blur_mask()`` gives 1 = blurred for both layouts.
    """
    root = check_root(root, "CUHK")
    subset = as_choice(subset, "subset", ("all", "defocus", "motion"))
    split = as_choice(split, "split", ("all", "train", "test"))
    layout = as_choice(layout, "layout", ("auto", "raw", "xu100"))
    names = as_choice(names, "names", ("original", "file"))
    partial, allow_unlabelled = as_bool(partial, "partial"), as_bool(allow_unlabelled, "allow_unlabelled")
    if split != "all" and subset == "motion":
        raise DatasetError(f"split={split!r} is a split of the defocus photos; it cannot be combined with "
                           f"subset='motion'")

    pairs = find_pairs(root, "CUHK", _NAMED_PAIRS, allow_unlabelled=allow_unlabelled)
    entries = [e for p in pairs for e in pair_entries(p)]
    if layout == "auto":
        layout = "xu100" if _is_xu100(entries, root) else "raw"
    where = ", ".join(p.describe(root) for p in pairs)
    if layout == "xu100":
        samples, name = _xu100_samples(entries, subset, split, names, partial, root)
        where += " [320 px CUHK-TE-1, masks 255 = in focus]"
    else:
        samples, name = _raw_samples(entries, subset, split, partial, root)
    require_labels([e for e, _ in samples], "CUHK", allow_unlabelled)
    target = "focus" if layout == "xu100" else "blur"
    out = [Sample(n, e.image, e.gt, target, "test" if layout == "xu100" else _split_tag(n)) for e, n in samples]
    return Dataset(out, name=name, task="dbd", root=root, kind="cuhk", layout=where)


@lru_cache(maxsize=1)
def _test_stems() -> frozenset[str]:
    return frozenset(cuhk_split("test"))


def _split_tag(stem: str) -> str | None:
    if _subset_of(stem) != "defocus":
        return None
    return "test" if stem in _test_stems() else "train"


def _raw_samples(entries: list[Entry], subset: str, split: str, partial: bool,
                 root: Path) -> tuple[list[tuple[Entry, str]], str]:
    by_stem: dict[str, Entry] = {}
    for e in entries:
        if e.image.stem in by_stem:
            raise DatasetError(f"{e.image}: photo {e.image.stem!r} appears twice (also {by_stem[e.image.stem].image})")
        by_stem[e.image.stem] = e
    if split in ("train", "test"):
        expected = cuhk_split(split)
        label = "CUHK-TE-1" if split == "test" else "CUHK-TR-1"
        if not partial:
            _check_complete(list(by_stem), expected, label, root)
        # test keeps the split-file order, train the numeric order.
        return [(by_stem[n], n) for n in expected if n in by_stem], label
    chosen = sorted(((e, s) for s, e in by_stem.items() if subset == "all" or _subset_of(s) == subset),
                    key=lambda t: natural_key(t[1]))
    if not chosen:
        raise DatasetError(f"{root}: no CUHK {subset} photos (expected names like "
                           f"{'motion0001.jpg' if subset == 'motion' else 'out_of_focus0001.jpg'})")
    label = {"all": "CUHK", "defocus": "CUHK-defocus", "motion": "CUHK-motion"}[subset]
    return chosen, label


def _xu100_samples(entries: list[Entry], subset: str, split: str, names: str, partial: bool,
                   root: Path) -> tuple[list[tuple[Entry, str]], str]:
    if subset == "motion":
        raise DatasetError(f"{root}: the 320 px CUHK-TE-1 (xu100) holds defocus photos only; subset='motion' is empty")
    if split == "train":
        raise DatasetError(f"{root}: the 320 px CUHK-TE-1 (xu100) is the test split; split='train' is empty here")
    mapping = xu100_names()
    chosen: list[tuple[Entry, str]] = []
    seen: dict[str, Path] = {}
    for e in entries:
        if e.image.stem in seen:
            raise DatasetError(f"{e.image}: photo {e.image.stem!r} appears twice (also {seen[e.image.stem]})")
        seen[e.image.stem] = e.image
        if e.image.stem not in mapping:
            raise DatasetError(f"{e.image}: not a file of the 320 px CUHK-TE-1 (expected 1 … {len(mapping)}"
                               f"{'.bmp' if e.image.suffix.lower() == '.bmp' else ''}); use layout='raw' for "
                               f"original CUHK names")
        chosen.append((e, e.image.stem))
    if split == "test" and not partial:
        present = {mapping[s] for _, s in chosen}
        missing = [f"{k} = {v}" for k, v in mapping.items() if v not in present]
        if missing:
            raise DatasetError(f"{root}: {len(missing)} of the {len(mapping)} CUHK-TE-1 (320 px) photos are missing "
                               f"(first: {missing[0]}); pass partial=true to use the {len(present)} present")
    order = {k: i for i, k in enumerate(mapping)}
    chosen.sort(key=lambda t: order[t[1]])
    if names == "original":
        chosen = [(e, mapping[s]) for e, s in chosen]
    return chosen, "CUHK-TE-1-320"
