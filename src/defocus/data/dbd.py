"""Loaders of the DBD datasets other than CUHK: DUT-DBD, CTCUG, EBD, and any ``images/`` + ``masks/`` folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import DatasetError
from .core import Dataset, Sample, as_bool, as_choice, check_root, natural_key
from .layout import MAP_SUFFIXES, MASK_SUFFIXES, Entry, FolderPair, find_pairs, pair_entries, require_labels

# DUT-DBD as unpacked from the BTBNet page (DUT-DBD_Dataset/…; photos .jpg, masks .bmp), and the Zhao group's
# 320 px test set (DENets repository). D-DFFNet keeps the test set as DUT-DBD_Dataset/image + gt beside the
# training folders; DD as DUTDefocus/image + gt.
_DUT_PAIRS = (
    ("DUT600S_Training", "DUT600GT_Training"),
    ("DUT500S-Testing", "DUT500GT-Testing"),
    ("dut500-source", "dut500-gt"),
)
# CTCUG as D-DFFNet reads it (data/CTCUG/CTCUG_images + CTCUG_gt).
_CTCUG_PAIRS = (("CTCUG_images", "CTCUG_gt"),)

#: EBD: the paper (Jin et al., ICME 2023) states that its last 300 photos are the wide-DOF (f/16) ones.
EBD_SIZE, EBD_WIDE = 1605, 300


def _unique_names(entries: list[Entry]) -> list[str]:
    """Sample names: the photo stems, prefixed by the split (or folder) where two folders share a stem."""
    counts = Counter(e.image.stem for e in entries)
    names = []
    for e in entries:
        stem = e.image.stem
        names.append(stem if counts[stem] == 1 else f"{e.pair.split or e.pair.images.name}-{stem}")
    if len(set(names)) != len(names):
        dup = next(n for n, c in Counter(names).items() if c > 1)
        raise DatasetError(f"{entries[0].pair.images}: two photos are both named {dup!r}")
    return names


def _build(entries: list[Entry], root: Path, pairs: list[FolderPair], *, kind: str, label: str, target: str,
           allow_unlabelled: bool, what: str) -> Dataset:
    require_labels(entries, what, allow_unlabelled)
    names = _unique_names(entries)
    samples = [Sample(n, e.image, e.gt, target, e.pair.split) for n, e in zip(names, entries)]
    task = "dbd" if target in ("blur", "focus") else "dme"
    return Dataset(samples, name=label, task=task, root=root, kind=kind,
                   layout=", ".join(p.describe(root) for p in pairs))


def _infer_splits(pairs: list[FolderPair]) -> list[FolderPair]:
    """Untagged pairs beside pairs of only one split are taken as the other split (D-DFFNet keeps the DUT test
    set in ``image/`` + ``gt/`` next to ``DUT600S_Training/``)."""
    tags = {p.split for p in pairs if p.split is not None}
    if len(tags) != 1 or all(p.split is not None for p in pairs):
        return pairs
    other = "test" if tags == {"train"} else "train"
    return [p if p.split is not None else FolderPair(p.images, p.gt, other, p.mixed) for p in pairs]


def _select_split(pairs: list[FolderPair], split: str, root: Path, what: str) -> list[FolderPair]:
    """The pairs of one split (all of them for ``"all"``), with split tags inferred where the layout implies them."""
    pairs = _infer_splits(pairs)
    if split == "all":
        return pairs
    chosen = [p for p in pairs if p.split == split]
    if chosen:
        return chosen
    found = ", ".join(p.describe(root) for p in pairs)
    raise DatasetError(f"{root}: no {what} {split} folders (found {found}; folder names carry no "
                       f"{split}/{'Training' if split == 'train' else 'Testing'} tag); use split=all")


def open_dut(root, split: str = "all", allow_unlabelled: bool = False) -> Dataset:
    """Open DUT-DBD (Zhao et al., BTBNet, CVPR 2018): 600 training and 500 test photos, masks **255 = in focus**.

    Parameters
    ----------
    root : str or Path
        ``DUT-DBD_Dataset/`` (or its parent) with ``DUT600S_Training`` + ``DUT600GT_Training`` and
        ``DUT500S-Testing`` + ``DUT500GT-Testing``; or ``image/`` + ``gt/`` folders (optionally inside
        ``train/`` / ``test/``); or the Zhao-group ``dut500-source`` + ``dut500-gt``.
    split : {"all", "train", "test"}
        Chosen by folder names (``train``/``Training``/``TR``/``dut600`` vs ``test``/``Testing``/``TE``/``dut500``).
    allow_unlabelled : bool
        Load photos without a mask instead of raising.

    Returns
    -------
    Dataset
        Task ``"dbd"``, named ``"DUT-TR"``, ``"DUT-TE"`` or ``"DUT"``; ``blur_mask()`` = 1 − mask/255.
    """
    root = check_root(root, "DUT")
    split = as_choice(split, "split", ("all", "train", "test"))
    allow_unlabelled = as_bool(allow_unlabelled, "allow_unlabelled")
    pairs = _select_split(find_pairs(root, "DUT", _DUT_PAIRS, allow_unlabelled=allow_unlabelled), split, root, "DUT")
    entries = [e for p in pairs for e in pair_entries(p)]
    label = {"all": "DUT", "train": "DUT-TR", "test": "DUT-TE"}[split]
    return _build(entries, root, pairs, kind="dut", label=label, target="focus",
                  allow_unlabelled=allow_unlabelled, what="DUT")


def open_ctcug(root, allow_unlabelled: bool = False) -> Dataset:
    """Open CTCUG (Tang et al., DeFusionNet, TPAMI 2022): 150 photos 480×360, masks **255 = blurred** (as CUHK).

    Parameters
    ----------
    root : str or Path
        Folder with ``CTCUG_images/`` + ``CTCUG_gt/`` (D-DFFNet's names) or ``image(s)/`` + ``gt/``|``masks/``,
        or a folder of photos (.jpg) and masks (.png) together.
    allow_unlabelled : bool
        Load photos without a mask instead of raising.
    """
    root = check_root(root, "CTCUG")
    allow_unlabelled = as_bool(allow_unlabelled, "allow_unlabelled")
    pairs = find_pairs(root, "CTCUG", _CTCUG_PAIRS, allow_unlabelled=allow_unlabelled)
    entries = [e for p in pairs for e in pair_entries(p)]
    return _build(entries, root, pairs, kind="ctcug", label="CTCUG", target="blur",
                  allow_unlabelled=allow_unlabelled, what="CTCUG")


def open_ebd(root, subset: str = "all", allow_unlabelled: bool = False) -> Dataset:
    """Open EBD (Jin et al., D-DFFNet, ICME 2023): 1605 photos ~1600×1024, masks **255 = in focus** (as DUT).

    300 photos were shot at f/16 and are (nearly) all sharp: their masks are (nearly) all white, so their
    ``blur_mask()`` is (nearly) all 0. The other 1305 (f/1.8) form the paper's "EBD(1305)".

    Parameters
    ----------
    root : str or Path
        Folder with ``image/`` + ``gt/`` (D-DFFNet's ``data/EBD`` layout) or another generic pair.
    subset : {"all", "shallow", "wide"}
        ``"shallow"``: the first 1305 photos in name order (EBD(1305)); ``"wide"``: the last 300. The paper
        places the wide-DOF photos last, so these subsets need the complete 1605-photo set.
    allow_unlabelled : bool
        Load photos without a mask instead of raising.
    """
    root = check_root(root, "EBD")
    subset = as_choice(subset, "subset", ("all", "shallow", "wide"))
    allow_unlabelled = as_bool(allow_unlabelled, "allow_unlabelled")
    pairs = find_pairs(root, "EBD", (), allow_unlabelled=allow_unlabelled)
    entries = sorted((e for p in pairs for e in pair_entries(p)), key=lambda e: natural_key(e.image.name))
    label = "EBD"
    if subset != "all":
        if len(entries) != EBD_SIZE:
            raise DatasetError(f"{root}: subset={subset!r} needs the complete EBD ({EBD_SIZE} photos; the last "
                               f"{EBD_WIDE} are the wide-DOF ones), found {len(entries)}")
        cut = EBD_SIZE - EBD_WIDE
        entries = entries[:cut] if subset == "shallow" else entries[cut:]
        label = f"EBD({len(entries)})"
    return _build(entries, root, pairs, kind="ebd", label=label, target="focus",
                  allow_unlabelled=allow_unlabelled, what="EBD")


def _named_dir(root: Path, value: str | None, defaults: tuple[str, ...], role: str) -> Path | None:
    """A folder given by name/path (relative to ``root``), or the first default that exists."""
    if value is not None:
        path = Path(str(value)).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_dir():
            raise DatasetError(f"{path}: no such folder ({role})")
        return path
    return next((root / d for d in defaults if (root / d).is_dir()), None)


def open_folder(root, polarity: str | None = None, units: str | None = None, images: str | None = None,
                masks: str | None = None, allow_unlabelled: bool = False) -> Dataset:
    """Open any folder of photos and ground truth matched by file stem.

    Parameters
    ----------
    root : str or Path
        Folder holding ``images/`` and ``masks/`` (or the folders named by ``images`` / ``masks``). A photo
        ``images/a.jpg`` pairs with ``masks/a.png`` or, failing that, ``masks/a_gt.png`` (also ``_mask``).
    polarity : {"blur", "focus"}
        What white means in the masks: ``"blur"`` (the default, defocus's own convention) = 255 is out of focus
        (CUHK, CTCUG, ``defocus detect`` maps and ``defocus synth`` masks), ``"focus"`` = 255 is in focus (DUT,
        EBD). A wrong polarity inverts every score; ``defocus evaluate`` warns when the scores look inverted.
    units : {"sigma", "radius"}
        Instead of ``polarity``: the ground truth is a defocus map (``.npy``/``.mat``/float TIFF) in px of
        Gaussian σ or disk radius, read from ``sigma/`` or ``radius/`` unless ``masks`` names the folder.
    images, masks : str, optional
        Folder names (relative to ``root``) or paths; default ``images/`` (or ``image/``) and ``masks/``
        (or ``gt/``, ``mask/``), or ``sigma/`` / ``radius/`` with ``units``.
    allow_unlabelled : bool
        Load photos without ground truth (also when the ground-truth folder is absent).
    """
    root = check_root(root, "folder")
    allow_unlabelled = as_bool(allow_unlabelled, "allow_unlabelled")
    if polarity is not None and units is not None:
        raise DatasetError(f"{root}: a folder dataset holds masks (polarity='blur'|'focus') or defocus maps "
                           f"(units='sigma'|'radius'), not both")
    if units is None and polarity is None:
        polarity = "blur"
    if polarity is not None:
        target = as_choice(polarity, "polarity", ("blur", "focus"))
        gt_defaults, suffixes = ("masks", "gt", "mask"), MASK_SUFFIXES
    else:
        target = as_choice(units, "units", ("sigma", "radius"))
        gt_defaults, suffixes = (target,), MAP_SUFFIXES
    img_dir = _named_dir(root, images, ("images", "image"), "photo folder")
    if img_dir is None:
        raise DatasetError(f"{root}: no images/ folder (name another with images=...)")
    gt_dir = _named_dir(root, masks, gt_defaults, "ground-truth folder")
    if gt_dir is None and not allow_unlabelled:
        raise DatasetError(f"{root}: no {'/ or '.join(gt_defaults)}/ folder beside {img_dir.name}/ (name another "
                           f"with masks=..., or pass allow_unlabelled=true)")
    pair = FolderPair(img_dir, gt_dir)
    entries = pair_entries(pair, suffixes)
    return _build(entries, root, [pair], kind="folder", label=root.name, target=target,
                  allow_unlabelled=allow_unlabelled, what="matching")
