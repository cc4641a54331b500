"""Photos as culling reads them: every format :func:`defocus.read_image` reads, plus camera RAW files through the
JPEG preview the camera embedded in them (what a culling tool needs: the picture as shot, at screen size).

RAW previews are read with rawpy (``pip install 'defocus[raw]'``) when it is installed; else with Pillow, which
opens the TIFF-based RAW formats (DNG, and the first image of NEF/ARW/CR2 on many cameras), and, as the last resort,
from the largest JPEG stream found inside the file (nearly every camera embeds a full-size preview that way).
"""

from __future__ import annotations

import io as _io
import warnings
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from ..io import IMAGE_SUFFIXES, _check_file, read_image

#: Camera RAW suffixes (lower case) read through their embedded preview.
RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
                ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".rwl", ".erf", ".kdc", ".mrw", ".raw")

#: Every suffix ``defocus cull`` picks up in a folder.
PHOTO_SUFFIXES = IMAGE_SUFFIXES + RAW_SUFFIXES


def _decoded(data: bytes, path: Path, max_pixels: int | None) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(_io.BytesIO(data)) as img:
        if max_pixels is not None and img.width * img.height > max_pixels:
            raise ImageReadError(f"{path}: embedded preview {img.width}x{img.height} exceeds the limit of "
                                 f"{max_pixels / 1e6:.1f} MP (raise it with --max-pixels)")
        img.load()
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.float32) / 255.0


def _rawpy_preview(path: Path, max_pixels: int | None) -> np.ndarray | None:
    try:
        import rawpy
    except ImportError:
        return None
    try:
        with rawpy.imread(str(path)) as raw:
            thumb = raw.extract_thumb()
    except Exception as exc:  # rawpy raises its own LibRaw error types
        raise ImageReadError(f"{path}: cannot read the RAW file's preview ({type(exc).__name__}: {exc})") from None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        return _decoded(bytes(thumb.data), path, max_pixels)
    return np.asarray(thumb.data, dtype=np.float32) / 255.0


def _largest_jpeg(path: Path, max_pixels: int | None) -> np.ndarray | None:
    from PIL import Image

    data = path.read_bytes()
    best, best_area, start = None, 0, data.find(b"\xff\xd8\xff")
    while start >= 0:
        try:
            with Image.open(_io.BytesIO(data[start:])) as img:
                area = img.width * img.height
            if area > best_area:
                best, best_area = start, area
        except Exception:  # not a decodable stream at this offset: try the next marker
            pass
        start = data.find(b"\xff\xd8\xff", start + 3)
    return None if best is None else _decoded(data[best:], path, max_pixels)


def read_photo(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """A photo as float32 RGB H×W×3 in [0, 1]: :func:`defocus.read_image` for image files, the embedded preview
    for camera RAW files (see the module's docstring). Raises :class:`ImageReadError` (one line naming the file)."""
    path = Path(path)
    if path.suffix.lower() not in RAW_SUFFIXES:
        return read_image(path, max_pixels=max_pixels)
    _check_file(path)
    preview = _rawpy_preview(path, max_pixels)
    if preview is not None:
        return preview
    try:
        with warnings.catch_warnings():  # Pillow's complaints about maker-note IFDs it cannot parse: not ours to show
            warnings.simplefilter("ignore")
            return read_image(path, max_pixels=max_pixels)
    except ImageReadError as exc:
        failure = exc
    preview = _largest_jpeg(path, max_pixels)
    if preview is None:
        raise ImageReadError(f"{failure}; no embedded JPEG preview found (install rawpy: pip install "
                             f"'defocus[raw]')") from None
    return preview
