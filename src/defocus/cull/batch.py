"""Culling a list of photos into a folder: a verdict per photo, thumbnails, the reports and, on request, XMP
sidecars (what ``defocus cull`` runs)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputExistsError
from ..io import MAX_PIXELS, blur_overlay, find_images, write_image
from .core import DETECTOR, assess, normalised
from .raw import PHOTO_SUFFIXES, read_photo
from .report import REPORT_FILES, sidecar_path, stage_sidecar, write_reports

#: Long side in px of the contact sheet's thumbnails (files in ``OUT/thumbs/``).
THUMB_SIDE = 320


@dataclass
class CullResult:
    """``rows``: one dict per photo (the report's columns), best first; ``exit_code``: 0, or 1 if any photo failed
    (or none was found); ``reports``: the report files written."""

    rows: list[dict]
    exit_code: int
    reports: list[Path]


def thumbnail_names(paths: list[Path]) -> dict[Path, str]:
    """A thumbnail name per photo that stays unique when photos of different folders share a file name (camera
    folders do): the stem and a digest of the photo's absolute path."""
    return {p: f"{p.stem}.{hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:8]}" for p in paths}


def thumbnail(image: np.ndarray, blur_map: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """The photo at long side ``side`` with its out-of-focus regions dimmed and tinted (:func:`defocus.io.blur_overlay`)."""
    small = normalised(image, side)
    h, w = small.shape[:2]
    return blur_overlay(small, cv2.resize(blur_map, (w, h), interpolation=cv2.INTER_AREA))


def cull(inputs: list[str], out: str | Path, *, detector=None, subject=None, recursive: bool = False,
         xmp: bool = False, xmp_naming: str = "full", force: bool = False,
         max_pixels: int | None = MAX_PIXELS, args=None) -> CullResult:
    """Judge every photo found in ``inputs`` (files, folders, glob patterns) and write the reports into ``out``.

    Parameters
    ----------
    inputs : list of str
        Files, folders (image and RAW files in them; with ``recursive`` in their sub-folders too) and patterns.
    out : folder
        Receives ``report.csv``, ``report.json``, ``report.html`` and ``thumbs/`` (the sheet's pictures).
    detector : loaded blur detector or registered name (default :data:`defocus.cull.core.DETECTOR`)
    subject : (x, y, w, h) in fractions, optional
        The region every photo's subject is in (:func:`defocus.cull.assess`).
    xmp : bool
        Also write an XMP sidecar beside each photo (:func:`defocus.cull.report.sidecar_path`, ``xmp_naming``
        "full" or "stem"); never over an existing one unless ``force``. The photo itself is never touched.
    force : bool
        Replace existing reports, thumbnails and sidecars.
    args : argparse.Namespace, optional
        ``defocus cull``'s parsed command line: the detector is then the one of its ``-m``/``--device``/... options
        (``detector`` is not used), loaded by each worker of its ``--engine`` (:func:`defocus.cli.run_batch`).
        Without it the photos are judged one after another in this process.

    A photo that cannot be read or judged is reported on stderr and as a row with an ``error``; the others are
    processed. Only rows are kept in memory, never maps.
    """
    from .. import registry
    from ..cli import run_batch

    out = Path(out)
    if args is None and (detector is None or isinstance(detector, str)):
        detector = registry.load(detector or DETECTOR)
    if not force:
        for name in REPORT_FILES:
            if (out / name).exists():
                raise OutputExistsError(f"{out / name}: exists already (use --force to overwrite)")
    paths, failures = find_images(list(inputs), recursive=recursive, suffixes=PHOTO_SUFFIXES)
    # A re-run over a tree that holds its own output folder must not cull its thumbnails.
    inside = out.resolve()
    paths = [p for p in paths if inside not in p.resolve().parents]
    rows: dict[str, dict] = {msg.split(": ")[0]: {"path": msg.split(": ")[0], "error": msg} for msg in failures}

    def outputs_of(stem: str) -> list[Path]:
        return [out / "thumbs" / f"{stem}.jpg"]

    # read, process and write run in the engine's workers (Ray actors too): they return the photo's report row
    # rather than filling ``rows``, which only this process holds.
    def read(path: Path) -> np.ndarray:
        if xmp and not force and sidecar_path(path, xmp_naming).exists():
            raise OutputExistsError(f"{sidecar_path(path, xmp_naming)}: exists already (use --force to overwrite)")
        return read_photo(path, max_pixels=max_pixels)

    def process(method, path: Path, image: np.ndarray):
        result = assess(image, method, subject=subject)

        def write(files: list[Path], stage) -> dict:
            write_image(files[0], thumbnail(image, result.blur_map), quality=85, stage=stage)
            if xmp:
                stage_sidecar(stage, path, result.verdict, result.confidence, result.scores, xmp_naming)
            return {"path": str(path), "verdict": result.verdict, "confidence": result.confidence,
                    **result.scores, "subject": ",".join(f"{v:.3f}" for v in result.subject),
                    "width": image.shape[1], "height": image.shape[0],
                    "thumbnail": files[0].relative_to(out).as_posix(), "error": ""}
        return write

    def on_success(path: Path, row: dict) -> None:
        rows[str(path)] = row

    def on_failure(path: Path, message: str) -> None:
        rows[str(path)] = {"path": str(path), "error": message}

    common = dict(found=(paths, failures), names=thumbnail_names, on_failure=on_failure, on_success=on_success)
    if args is not None:
        code = run_batch(list(inputs), out, outputs_of, process, force=force, desc=f"cull [{args.method}]",
                         args=args, read=read, **common)
    else:
        code = run_batch(list(inputs), out, outputs_of,
                         lambda path, files, stage: process(detector, path, read(path))(files, stage),
                         force=force, desc=f"cull [{detector.name}]", **common)
    reports = write_reports(list(rows.values()), out, force=force) if rows else []
    from .report import sort_rows

    return CullResult(sort_rows(list(rows.values())), code, reports)
