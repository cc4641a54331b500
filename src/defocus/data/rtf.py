"""RTF defocus-map dataset (D'Andrès, Salvador, Kochale & Süsstrunk, "Non-parametric blur map regression for depth
of field extension", TIP 2016).

22 photos ``image_NN.png`` (360×360 for the sample we checked) with per-pixel ground truth ``map_NN.mat``
(variable ``blurMap``; or a ``.npy`` copy) holding the **radius of the disk (pillbox) PSF in px**, 0.5 … 6.0 in
steps of 0.25. ``Sample.radius()`` returns it as stored; ``Sample.sigma()`` converts it to Gaussian σ with the RTF
table (:mod:`defocus.units`). The evaluation protocol's cropping (Karaali & Jung drop the last 20 columns) belongs
to ``defocus.evaluate``, not to the loader.
"""

from __future__ import annotations

from ..errors import DatasetError
from ..io import ARRAY_SUFFIXES
from .core import Dataset, Sample, as_bool, check_root, last_number
from .layout import MAP_SUFFIXES, FolderPair, pair_entries, require_labels

_IMAGE_DIRS = ("images", "image", "img")
_GT_DIRS = ("gt", "GT", "maps", "map", "blur_maps")


def _first_dir(root, names):
    return next((root / n for n in names if (root / n).is_dir()), None)


def open_rtf(root, allow_unlabelled: bool = False) -> Dataset:
    """Open a copy of RTF.

    Parameters
    ----------
    root : str or Path
        Folder with the photos (in ``images/``, ``image/`` or ``img/``, or in ``root`` itself) and the maps (in
        ``gt/`` or ``maps/``, or in ``root`` itself). Photo and map are paired by the last number in their names
        (``image_01.png`` ↔ ``map_01.mat``); of a ``.npy`` and a ``.mat`` for one number the ``.npy`` is read.
    allow_unlabelled : bool
        Load photos without a map instead of raising.

    Returns
    -------
    Dataset
        Task ``"dme"``, named ``"RTF"``; sample names are the photo stems (``"image_01"``).
    """
    root = check_root(root, "RTF")
    allow_unlabelled = as_bool(allow_unlabelled, "allow_unlabelled")
    img_dir = _first_dir(root, _IMAGE_DIRS) or root
    gt_dir = _first_dir(root, _GT_DIRS)
    if gt_dir is None:
        # Maps lying beside the photos (or in the root) are fine as long as some exist.
        has_maps = any(p.suffix.lower() in ARRAY_SUFFIXES and last_number(p.stem) is not None
                       and not p.stem.lower().startswith("conver") for p in root.iterdir() if p.is_file())
        gt_dir = root if has_maps else None
    if gt_dir is None and not allow_unlabelled:
        raise DatasetError(f"{root}: no RTF ground-truth folder (looked for {', '.join(d + '/' for d in _GT_DIRS)} "
                           f"and map_NN.mat/.npy in the folder itself); pass allow_unlabelled=true to load the "
                           f"photos alone")
    pair = FolderPair(img_dir, gt_dir)
    entries = pair_entries(pair, MAP_SUFFIXES, match="number")
    # A number-less photo (e.g. a stray preview) cannot be paired; treat it like any photo without ground truth.
    require_labels(entries, "RTF", allow_unlabelled)
    samples = [Sample(e.image.stem, e.image, e.gt, "radius") for e in entries]
    return Dataset(samples, name="RTF", task="dme", root=root, kind="rtf", layout=pair.describe(root))
