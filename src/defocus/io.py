"""Image and map I/O: the one place defocus reads photos and writes results.

Readers return float32 arrays (photos RGB H×W×3 in [0, 1]; maps H×W). Every writer is atomic (a temporary file in
the destination folder, then a rename), so an interrupted run never leaves a half-written file, and refuses to
replace an existing file unless ``force=True``.
"""

from __future__ import annotations

import io as _io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, OutputExistsError

#: Largest image, in pixels, that :func:`read_image` decodes (a 24-MP photo is 24e6). Larger files are refused as
#: possible decompression bombs.
MAX_PIXELS = 200_000_000

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif")

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must be an error, not a grey stripe


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")


def _png_or_tiff_is_16bit_colour(path: Path, img: Image.Image) -> bool:
    """Pillow reduces 16-bit-per-channel colour PNG/TIFF to 8 bits; detect those files so they are read in full."""
    if img.mode not in ("RGB", "RGBA"):
        return False
    if img.format == "PNG":
        with open(path, "rb") as f:
            header = f.read(26)
        return len(header) == 26 and header[24] == 16  # IHDR bit depth
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return max(bits) == 16
    return False


def _read_16bit_colour(path: Path, orientation: int) -> np.ndarray:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 3:
        raise ImageReadError(f"{path}: cannot decode 16-bit colour image")
    rgb = cv2.cvtColor(arr[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32) / 65535.0
    return _apply_orientation(rgb, orientation)


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation tag (1..8) applied to an H×W×C array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](arr)) if orientation in ops else arr


def _to_rgb_float(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.repeat((np.asarray(img, dtype=np.float32) / 65535.0)[..., None], 3, axis=2)
    if mode == "I":
        a = np.asarray(img, dtype=np.float32)
        scale = 65535.0 if a.max(initial=0) > 255 else 255.0
        return np.repeat(np.clip(a / scale, 0, 1)[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(img, dtype=np.float32)
        scale = 1.0 if a.max(initial=0) <= 1.0 else (255.0 if a.max() <= 255 else 65535.0)
        return np.repeat(np.clip(a / scale, 0, 1)[..., None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    # RGBA/LA: the colour channels are used as they are; alpha carries no focus information.
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as float32 RGB.

    Parameters
    ----------
    path : str or path-like
        JPEG, PNG, TIFF, WebP, BMP or GIF (first frame). EXIF orientation is applied; grayscale, palette, RGBA,
        CMYK and 16-bit images are converted (alpha is dropped).

    Returns
    -------
    ndarray of shape (H, W, 3), float32 in [0, 1]

    Raises
    ------
    ImageReadError
        For a missing, empty, truncated or non-image file, a directory, or an image over :data:`MAX_PIXELS`
        (decompression bomb). The message is one line and names the file.
    """
    path = Path(path)
    _check_file(path)
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ImageReadError(
                        f"{path}: {img.width}x{img.height} pixels exceeds the limit of {MAX_PIXELS} (decompression bomb?)"
                    )
                orientation = img.getexif().get(0x0112, 1)
                if _png_or_tiff_is_16bit_colour(path, img):
                    return _read_16bit_colour(path, orientation)
                img.load()
                img = ImageOps.exif_transpose(img)
                return np.ascontiguousarray(_to_rgb_float(img))
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"{path}: too many pixels, refused as a possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{path}: cannot decode image ({msg})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


def read_array(path: str | os.PathLike) -> np.ndarray:
    """The 2-D array stored in a ``.npy`` file or a ``.mat`` file holding exactly one 2-D array, dtype kept.

    Raises
    ------
    ImageReadError
        Missing, empty or corrupt file, or not exactly one 2-D array (one line, naming the file).
    """
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ImageReadError(f"{path}: not a valid .npy array ({str(exc).splitlines()[0]})") from None
    else:
        import scipy.io

        try:
            mat = scipy.io.loadmat(path)
        except Exception as exc:  # scipy raises several unrelated types for corrupt files
            raise ImageReadError(f"{path}: cannot read .mat file ({str(exc).splitlines()[0]})") from None
        arrays = [v for k, v in mat.items()
                  if not k.startswith("__") and isinstance(v, np.ndarray) and np.squeeze(v).ndim == 2]
        if len(arrays) != 1:
            raise ImageReadError(f"{path}: expected exactly one 2-D array in the .mat file, found {len(arrays)}")
        arr = arrays[0]
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2-D map, got shape {arr.shape}")
    return arr


#: Suffixes :func:`read_map` reads as stored arrays rather than images.
ARRAY_SUFFIXES = (".npy", ".mat")


def read_map(path: str | os.PathLike) -> np.ndarray:
    """Read a saved map or mask as float32 H×W.

    ``.npy`` / ``.mat``: the stored values (see :func:`read_array`). Images: 8-bit scaled by 1/255, 16-bit by
    1/65535, float TIFF as stored; colour images are reduced to luma (ITU-R 601, as PIL's ``convert("L")`` and the
    published evaluation scripts do), alpha is ignored.
    """
    path = Path(path)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return read_array(path).astype(np.float32)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                    arr = np.asarray(img, dtype=np.float32) / 65535.0
                elif img.mode == "F":
                    arr = np.asarray(img, dtype=np.float32)
                else:
                    arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"{path}: cannot decode map ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------------------------------------------------
# Writers


def atomic_write(path: str | os.PathLike, write: Callable[[_io.BufferedWriter], None], *, force: bool = False) -> Path:
    """Write a file through ``write(fileobj)`` into a temporary file beside ``path``, then rename it into place.

    Raises :class:`OutputExistsError` if ``path`` exists and ``force`` is false; the existing file is untouched, and
    so it is if ``write`` fails.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: exists already (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _save_pil(path: Path, img: Image.Image, force: bool, **params) -> Path:
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}.get(
        path.suffix.lower()
    )
    if fmt is None:
        raise ValueError(f"{path}: unsupported output format {path.suffix!r}")
    return atomic_write(path, lambda f: img.save(f, format=fmt, **params), force=force)


def _as_unit_map(array: np.ndarray) -> np.ndarray:
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {arr.shape}")
    return np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0)


def write_png8(path: str | os.PathLike, map01: np.ndarray, *, force: bool = False) -> Path:
    """Write a map in [0, 1] as an 8-bit grey PNG (255 = 1.0)."""
    arr = np.round(_as_unit_map(map01) * 255.0).astype(np.uint8)
    return _save_pil(Path(path), Image.fromarray(arr, mode="L"), force)


def write_png16(path: str | os.PathLike, map01: np.ndarray, *, force: bool = False) -> Path:
    """Write a map in [0, 1] as a 16-bit grey PNG (65535 = 1.0)."""
    arr = np.round(_as_unit_map(map01) * 65535.0).astype(np.uint16)
    return _save_pil(Path(path), Image.fromarray(arr), force)


def write_npy(path: str | os.PathLike, array: np.ndarray, *, force: bool = False) -> Path:
    """Write an array as ``.npy`` (float32 maps keep their exact values)."""
    arr = np.ascontiguousarray(array)
    return atomic_write(path, lambda f: np.save(f, arr, allow_pickle=False), force=force)


def write_image(path: str | os.PathLike, rgb: np.ndarray, *, force: bool = False, quality: int = 92) -> Path:
    """Write a float RGB image in [0, 1] (H×W×3) as JPEG/PNG/TIFF/WebP by the suffix of ``path``."""
    arr = np.round(np.clip(np.asarray(rgb, dtype=np.float32), 0, 1) * 255.0).astype(np.uint8)
    params = {"quality": quality} if Path(path).suffix.lower() in (".jpg", ".jpeg", ".webp") else {}
    return _save_pil(Path(path), Image.fromarray(arr, mode="RGB"), force, **params)


#: Tint of out-of-focus pixels in :func:`blur_overlay` (RGB in [0, 1]).
OVERLAY_TINT = np.array([0.10, 0.35, 1.0], dtype=np.float32)


def blur_overlay(image: np.ndarray, blur_map: np.ndarray, *, strength: float = 0.6) -> np.ndarray:
    """The photo with out-of-focus regions darkened, desaturated and tinted blue in proportion to the blur map.

    In-focus pixels (map 0) keep their colours, so what the method sees as sharp stands out.
    """
    m = _as_unit_map(blur_map)[..., None] * strength
    grey = image.mean(axis=2, keepdims=True)
    dimmed = 0.5 * grey + 0.5 * OVERLAY_TINT * grey.mean() + 0.25 * OVERLAY_TINT
    return np.clip(image * (1 - m) + dimmed * m, 0, 1).astype(np.float32)


def write_overlay(
    path: str | os.PathLike, image: np.ndarray, blur_map: np.ndarray, *, force: bool = False
) -> Path:
    """Write :func:`blur_overlay` of ``image`` and ``blur_map`` (JPEG or PNG by suffix)."""
    return write_image(path, blur_overlay(image, blur_map), force=force)


def colorize_defocus(sigma: np.ndarray, *, vmax: float | None = None, cmap: str = "magma", unit: str = "px") -> np.ndarray:
    """A defocus map rendered with a colour map and a labelled colour bar on the right.

    Parameters
    ----------
    sigma : ndarray of shape (H, W)
        Blur amount in pixels.
    vmax : float, optional
        Value at the top of the scale; default the map's maximum (at least 1 px).
    unit : str
        Label of the scale ("px σ" or "px radius").

    Returns
    -------
    ndarray of shape (H, W + bar, 3), float32 RGB in [0, 1]
    """
    import cv2
    from matplotlib import colormaps

    sigma = np.nan_to_num(np.asarray(sigma, dtype=np.float32), nan=0.0)
    top = float(vmax) if vmax is not None else max(1.0, float(np.percentile(sigma, 99.9)) if sigma.size else 1.0)
    colour = colormaps[cmap]
    rgb = colour(np.clip(sigma / top, 0, 1))[..., :3].astype(np.float32)
    h = sigma.shape[0]
    bar_w = max(60, h // 8)
    bar = np.ones((h, bar_w, 3), dtype=np.float32)
    margin = max(8, h // 30)
    ramp = np.linspace(1, 0, max(h - 2 * margin, 2), dtype=np.float32)
    bar[margin : margin + ramp.size, 4 : bar_w // 3] = colour(ramp)[:, None, :3]
    bar_u8 = np.ascontiguousarray((bar * 255).astype(np.uint8))
    scale = max(0.3, h / 1200.0)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = int(margin + (1 - frac) * (ramp.size - 1))
        cv2.putText(bar_u8, f"{frac * top:.1f}", (bar_w // 3 + 3, min(h - 2, y + 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(bar_u8, unit, (2, max(10, margin - 2)), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([rgb, bar_u8.astype(np.float32) / 255.0], axis=1)


def write_defocus_png(
    path: str | os.PathLike, sigma: np.ndarray, *, vmax: float | None = None, unit: str = "px", force: bool = False
) -> Path:
    """Write :func:`colorize_defocus` of a defocus map as PNG."""
    return write_image(path, colorize_defocus(sigma, vmax=vmax, unit=unit), force=force)


def find_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Expand files, folders (their images, sorted, not recursive) and glob patterns into image paths.

    Returns the paths (first occurrence kept, order preserved) and a list of error messages for inputs that match
    nothing. A named file is kept whatever its suffix, so :func:`read_image` can report it if it is no image.
    """
    import glob

    found: list[Path] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            hits = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not hits:
                errors.append(f"{p}: folder has no images")
        elif p.exists() or p.is_symlink():
            hits = [p]
        else:
            hits = sorted(Path(q) for q in glob.glob(item))
            if not hits:
                errors.append(f"{item}: no such file")
        found.extend(hits)
    seen: set[Path] = set()
    unique = [p for p in found if not (p in seen or seen.add(p))]
    return unique, errors
