"""Dataset loaders: public DBD and DME benchmarks, and plain folders, with ground truth in defocus's convention.

Every loader returns a :class:`Dataset`, a sequence of :class:`Sample` in a fixed order. ``Sample.blur_mask()``
is always float32 in [0, 1] with **1 = out of focus**, whatever the dataset stores (CUHK and CTCUG store
255 = blurred, DUT, EBD and the 320 px CUHK-TE-1 store 255 = in focus); grey levels are kept, not thresholded.
``Sample.sigma()`` / ``Sample.radius()`` give defocus maps in px. Kind ``synth`` is the benchmarks' synthetic
test set, rendered on demand (:mod:`defocus.data.synth`); ``folder`` is any ``images/`` + ``masks/`` (or ``gt/``)
folder pair matched by stem.

>>> from defocus.data import open_dataset, dataset_kinds
>>> dataset_kinds()
['cuhk', 'dut', 'ctcug', 'ebd', 'rtf', 'folder', 'synth']
>>> ds = open_dataset("cuhk", "~/data/CUHK", split="test")      # doctest: +SKIP
>>> ds.name, len(ds), ds[0].name                                  # doctest: +SKIP
('CUHK-TE-1', 100, 'out_of_focus0037')

Folder layouts and sources of each dataset: ``docs/datasets.md``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from ..errors import DatasetError
from .core import TARGETS, Dataset, Sample, read_defocus_map, read_mask
from .cuhk import cuhk_split, open_cuhk, xu100_names
from .dbd import open_ctcug, open_dut, open_ebd, open_folder
from .rtf import open_rtf
from .synth import open_synth

#: kind -> loader. Each loader takes ``root`` and keyword options.
LOADERS: dict[str, Callable[..., Dataset]] = {
    "cuhk": open_cuhk,
    "dut": open_dut,
    "ctcug": open_ctcug,
    "ebd": open_ebd,
    "rtf": open_rtf,
    "folder": open_folder,
    "synth": open_synth,
}


def dataset_kinds() -> list[str]:
    """Names accepted by :func:`open_dataset`."""
    return list(LOADERS)


def dataset_options(kind: str) -> dict[str, Any]:
    """The options of a loader with their defaults (``None`` where the option has no default)."""
    loader = _loader(kind)
    params = list(inspect.signature(loader).parameters.values())[1:]
    return {p.name: (None if p.default is inspect.Parameter.empty else p.default) for p in params}


def root_is_optional(kind: str) -> bool:
    """Whether the loader of ``kind`` has a default root (``synth`` renders from the default shared folder)."""
    root = next(iter(inspect.signature(_loader(kind)).parameters.values()))
    return root.default is not inspect.Parameter.empty


def _loader(kind: str) -> Callable[..., Dataset]:
    key = str(kind).strip().lower()
    if key not in LOADERS:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose one of {', '.join(LOADERS)}")
    return LOADERS[key]


def open_dataset(kind: str, root: str | Path, **options: Any) -> Dataset:
    """Open a dataset of the given kind at ``root``.

    Parameters
    ----------
    kind : {"cuhk", "dut", "ctcug", "ebd", "rtf", "folder", "synth"}
        Which loader (see :func:`dataset_kinds`).
    root : str or Path
        The local copy; each loader recognises the usual layouts of its dataset. ``synth``: the shared data
        folder to render from, or None for the default one.
    **options
        Loader options, e.g. ``split="test"`` (cuhk, dut), ``subset="defocus"`` (cuhk, ebd),
        ``polarity="focus"`` (folder), ``n=16`` (synth), ``allow_unlabelled=True`` (the file datasets). Values
        may be strings as typed on a command line (``"true"``).

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        Unknown kind or option, missing root, unrecognised layout, photos without ground truth, an incomplete
        standard split: always one line naming the folder.
    """
    loader = _loader(kind)
    allowed = dataset_options(kind)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for dataset "
                           f"{kind!r}; it takes {', '.join(allowed) or 'none'}")
    return loader(root, **options)


__all__ = [
    "Dataset",
    "DatasetError",
    "LOADERS",
    "Sample",
    "TARGETS",
    "cuhk_split",
    "dataset_kinds",
    "dataset_options",
    "open_dataset",
    "read_defocus_map",
    "read_mask",
    "root_is_optional",
    "xu100_names",
]
