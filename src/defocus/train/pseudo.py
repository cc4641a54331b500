"""Pseudo-labels for self-training on real, unlabelled photos.

A trained detector (the teacher) labels real photos; the photos on which it is decided — few pixels with a
probability between 0.1 and 0.9 — become a labelled ``folder`` dataset (``images/`` + ``masks/``, 255 = out of
focus) that a training run mixes with synthetic scenes (``"real": [{"kind": "folder", "root": DIR, "options":
{"polarity": "blur"}}]``). The student thus sees the real photos' own textures, noise and bokeh with the teacher's
hard decisions as targets (Lee's pseudo-label self-training), and only where the teacher is mostly sure.
"""

from __future__ import annotations

import csv
import io as _io
import os
from pathlib import Path

import numpy as np

#: Probabilities strictly between these count as undecided.
UNDECIDED = (0.1, 0.9)


def undecided_fraction(prob: np.ndarray) -> float:
    """Share of the pixels of a blur map in (0.1, 0.9): how much of the photo the detector leaves undecided."""
    lo, hi = UNDECIDED
    return float(np.mean((prob > lo) & (prob < hi)))


def write_pseudo_labels(detector, photos: list[Path], out: str | os.PathLike, *, max_side: int = 480,
                        max_undecided: float = 0.2, force: bool = False, progress: bool = False) -> dict:
    """Label real photos with ``detector`` and write the decided ones as a folder dataset.

    Parameters
    ----------
    detector : Method
        A blur detector (:func:`defocus.load`); use ``flip=True`` for steadier labels.
    photos : list of paths
        Real photos without labels (e.g. :func:`defocus.train.data.unlabelled_photos`).
    out : path
        Folder to write: ``images/NAME.png`` (the photo, long side ≤ ``max_side``), ``masks/NAME.png`` (the map
        thresholded at 0.5, 255 = out of focus) and ``labels.csv`` (name, source, undecided fraction, kept).
    max_undecided : float
        Photos whose map leaves more than this share of pixels undecided are left out.

    Returns
    -------
    dict with ``photos``, ``kept`` and ``mean_undecided`` (over all photos).
    """
    from ..io import atomic_write, write_image, write_png8
    from ..synth.sources import load_rgb

    out = Path(out)
    rows, shares = [], []
    items = enumerate(photos)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, total=len(photos), desc="pseudo-labels", unit="img")
    for i, path in items:
        image = np.asarray(load_rgb(Path(path), max_side), dtype=np.float32) / np.float32(255.0)
        prob = detector.predict(image)
        share = undecided_fraction(prob)
        shares.append(share)
        keep = share <= max_undecided
        name = f"pseudo_{i:05d}"
        if keep:
            write_image(out / "images" / f"{name}.png", image, force=force)
            write_png8(out / "masks" / f"{name}.png", (prob > 0.5).astype(np.float32), force=force)
        rows.append((name, str(path), f"{share:.4f}", int(keep)))

    def _csv(f):
        text = _io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["name", "source", "undecided", "kept"])
        writer.writerows(rows)
        f.write(text.getvalue().encode())

    atomic_write(out / "labels.csv", _csv, force=force)
    return {"photos": len(photos), "kept": sum(r[3] for r in rows),
            "mean_undecided": float(np.mean(shares)) if shares else 0.0}
