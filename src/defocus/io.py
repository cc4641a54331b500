"""Image and map I/O: the one place defocus reads photos and writes results.

Readers return float32 arrays (photos RGB H×W×3 in [0, 1], always finite; maps H×W). Every writer is atomic (a
temporary file in the destination folder, then a hard link or rename into place), so an interrupted run never leaves
a half-written file; without ``force=True`` it never replaces an existing file, even when another process writes
the same name at the same moment. Files are created with the permissions ``open()`` would give them (0666 less the
umask). :class:`StagedFiles` puts several files in place together, so a photo's outputs all appear or none do.
"""

from __future__ import annotations

import errno
import io as _io
import os
import stat
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, ImageTooLargeError, OutputExistsError, UsageError

#: Default largest image, in pixels, that :func:`read_image` decodes (a 24-MP photo is 24e6; 64e6 covers the
#: 61-MP full-frame sensors). It bounds memory: every method needs well under 24 GB at this size (the heaviest need
#: about 80 bytes per pixel). Larger files are refused before decoding; pass ``max_pixels`` (CLI ``--max-pixels``)
#: to allow more.
MAX_PIXELS = 64_000_000

#: The one list of image file suffixes defocus reads (photos, masks, saved maps), lower case. Where one stem has
#: several files (a mask saved as .png and .jpg), the earlier suffix is preferred: lossless formats come first.
IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif", ".jpg", ".jpeg", ".webp")

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must be an error, not a grey stripe


def _check_file(path: Path) -> None:
    """Refuse what is not a readable regular file, with a message that says what it is instead."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise ImageReadError(f"{path}: broken symbolic link (to {os.readlink(path)})") from None
        raise ImageReadError(f"{path}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(f"{path}: symbolic link loop") from None
        raise ImageReadError(f"{path}: cannot access ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(f"{path}: is a directory, not an image")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) \
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
        raise ImageReadError(f"{path}: is {kind}, not an image file")
    if st.st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")


def _is_deep_tiff(img: Image.Image) -> bool:
    """A TIFF Pillow would reduce or misread: more than 8 bits or float samples (any channel count)."""
    bits = img.tag_v2.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return max(bits) > 8 or img.tag_v2.get(339, 1) == 3 or img.mode in ("F", "I", "I;16", "I;16B", "I;16L")


def _readable(source: Path | bytes) -> Path | _io.BytesIO:
    """What Pillow and tifffile open: the path itself, or the bytes of an upload as a fresh in-memory file."""
    return source if isinstance(source, Path) else _io.BytesIO(source)


def _head(source: Path | bytes, n: int) -> bytes:
    if isinstance(source, Path):
        with open(source, "rb") as f:
            return f.read(n)
    return source[:n]


def _is_png16_colour(source: Path | bytes, img: Image.Image) -> bool:
    """A 16-bit-per-channel colour PNG (Pillow reads only 8 bits of it)."""
    if img.mode not in ("RGB", "RGBA"):
        return False
    header = _head(source, 26)
    return len(header) == 26 and header[24] == 16  # IHDR bit depth


def _quiet_tifffile():
    import logging

    import tifffile

    logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # its warnings would be a second line per bad file
    return tifffile


def _read_tiff(source: Path | bytes, label: str, max_pixels: int | None) -> np.ndarray:
    """Any TIFF tifffile reads (16/32-bit integer or float samples, planar or not) as float32 RGB, its
    orientation tag applied once; the pixel limit is checked from the header, before the samples are read."""
    tifffile = _quiet_tifffile()
    try:
        with tifffile.TiffFile(_readable(source)) as tif:
            page = tif.pages[0]
            if max_pixels is not None and page.imagewidth * page.imagelength > max_pixels:
                raise ImageTooLargeError(f"{label}: {page.imagewidth}x{page.imagelength} exceeds the limit of "
                                     f"{max_pixels / 1e6:.1f} MP (raise it with --max-pixels / max_pixels=)")
            orientation = int(page.tags[274].value) if 274 in page.tags else 1
            arr = page.asarray()
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        raise ImageReadError(f"{label}: cannot decode TIFF ({str(exc).splitlines()[0] if str(exc) else exc!r})") \
            from None
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, 2)  # planar configuration
    return _apply_orientation(_raw_to_rgb(arr, label), orientation)


def _read_png16(source: Path | bytes, label: str, orientation: int) -> np.ndarray:
    """A 16-bit colour PNG at full precision (Pillow would reduce it to 8 bits)."""
    import cv2

    encoded = np.fromfile(source, dtype=np.uint8) if isinstance(source, Path) else np.frombuffer(source, np.uint8)
    arr = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None:
        raise ImageReadError(f"{label}: cannot decode 16-bit image")
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return _apply_orientation(_raw_to_rgb(arr, label), orientation)


def samples_to_unit(arr: np.ndarray, name: str = "image") -> np.ndarray:
    """Stored samples scaled to float32 in [0, 1], with every non-finite value replaced.

    Integer samples are divided by their type's maximum (255, 65535, …). Float samples are used as they are when
    every finite value lies in [0, 1]; otherwise they are scaled by their real range, ``(x - min) / (max - min)``
    (so a float image in 0–255 or in HDR units keeps its contrast). NaN and -inf become the lowest finite value and
    +inf the highest; the replacement is reported by a warning that names ``name``.
    """
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        if info.min < 0:
            return ((arr.astype(np.float32) - info.min) / (float(info.max) - info.min)).astype(np.float32)
        return (arr.astype(np.float32) / float(info.max)).astype(np.float32)
    a = np.asarray(arr, dtype=np.float32)
    finite = np.isfinite(a)
    n_bad = int(a.size - np.count_nonzero(finite))
    if n_bad == a.size:
        raise ImageReadError(f"{name}: no finite pixel values")
    lo, hi = (float(a.min()), float(a.max())) if n_bad == 0 else (float(a[finite].min()), float(a[finite].max()))
    if n_bad:
        warnings.warn(f"{name}: {n_bad} non-finite pixel value(s) replaced (NaN and -inf by the lowest finite "
                      f"value, +inf by the highest)", stacklevel=2)
        a = np.where(np.isnan(a), lo, np.clip(a, lo, hi)).astype(np.float32)
    if lo >= 0.0 and hi <= 1.0:
        return a
    return ((a - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros_like(a)


def _raw_to_rgb(arr: np.ndarray, name: str) -> np.ndarray:
    unit = samples_to_unit(arr, name)
    if unit.ndim == 2:
        return np.repeat(unit[..., None], 3, axis=2)
    if unit.shape[2] == 1:
        return np.repeat(unit, 3, axis=2)
    if unit.shape[2] == 2:  # grey + alpha
        return np.repeat(unit[..., :1], 3, axis=2)
    return np.ascontiguousarray(unit[..., :3])


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
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _raw_to_rgb(np.asarray(img), str(getattr(img, "filename", "image")))
    # RGBA/LA: the colour channels are used as they are; alpha carries no focus information.
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def read_image(path: str | os.PathLike | bytes, *, max_pixels: int | None = MAX_PIXELS,
               name: str | None = None) -> np.ndarray:
    """Read a photo as float32 RGB.

    Parameters
    ----------
    path : str, path-like or bytes
        A file, or the bytes of one (an upload). JPEG, PNG, TIFF, WebP, BMP or GIF (first frame). EXIF/TIFF
        orientation is applied once; grayscale, palette,
        RGBA, CMYK, 16-bit and float images are converted (alpha is dropped). Integer samples are scaled by their
        type's maximum; float samples as described in :func:`samples_to_unit` (non-finite values are replaced, with
        a warning).
    max_pixels : int or None
        Refuse images with more pixels than this before decoding them (default :data:`MAX_PIXELS`); None: no limit
        beyond Pillow's decompression-bomb guard.
    name : str, optional
        What error messages call the image (default: the path; ``"image"`` for bytes).

    Returns
    -------
    ndarray of shape (H, W, 3), float32 in [0, 1], finite

    Raises
    ------
    ImageReadError
        For a missing, empty, truncated or non-image file, a directory, FIFO or link loop. The message is one line
        and names the file.
    ImageTooLargeError
        An image over ``max_pixels``, or one Pillow refuses as a decompression bomb (a subclass of ImageReadError).
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        source, label = bytes(path), name or "image"
        if not source:
            raise ImageReadError(f"{label}: empty file (0 bytes)")
    else:
        source = Path(path)
        label = name or str(source)
        _check_file(source)
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = max(max_pixels or 0, 200_000_000)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(_readable(source)) as img:
                if max_pixels is not None and img.width * img.height > max_pixels:
                    raise ImageTooLargeError(
                        f"{label}: {img.width}x{img.height} = {img.width * img.height / 1e6:.1f} MP exceeds the limit "
                        f"of {max_pixels / 1e6:.1f} MP (raise it with --max-pixels / max_pixels=)"
                    )
                if img.format == "TIFF" and _is_deep_tiff(img):
                    return _read_tiff(source, label, max_pixels)
                if img.format == "PNG" and _is_png16_colour(source, img):
                    return _read_png16(source, label, img.getexif().get(0x0112, 1))
                img.load()
                img = ImageOps.exif_transpose(img)
                return np.ascontiguousarray(_to_rgb_float(img))
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{label}: too many pixels, refused as a possible decompression bomb ({exc})") \
            from None
    except UnidentifiedImageError:
        return _read_unidentified(source, label, max_pixels)
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{label}: cannot decode image ({msg})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


def _read_unidentified(source: Path | bytes, label: str, max_pixels: int | None) -> np.ndarray:
    """Pillow cannot open some valid TIFFs (float or multi-sample colour); try the TIFF reader before giving up."""
    if _head(source, 4) not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        raise ImageReadError(f"{label}: not an image file (or a format Pillow cannot read)")
    return _read_tiff(source, label, max_pixels)


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


def read_photo_defocus_map(given: str | os.PathLike, stem: str, shape: tuple[int, int]) -> np.ndarray:
    """The saved defocus map of one photo, as commands take it with ``--defocus-map``: ``given`` itself (a ``.npy``
    or ``.mat`` array of Gaussian σ in px), or ``given/<stem>_defocus.npy`` when ``given`` is a folder (what
    ``defocus estimate`` writes). Checked against the photo's ``shape`` (H, W) by
    :func:`defocus.units.check_sigma_map`; float32. Any problem is one :class:`~defocus.errors.DefocusError` line
    naming the map file."""
    from .errors import InputArrayError
    from .units import check_sigma_map

    path = Path(given)
    if path.is_dir():
        path = path / f"{stem}_defocus.npy"
    if path.suffix.lower() not in ARRAY_SUFFIXES:
        raise ImageReadError(f"{path}: a defocus map must be a .npy or .mat array of σ in px")
    try:
        return check_sigma_map(read_array(path), shape)
    except InputArrayError as exc:
        raise InputArrayError(f"{path}: {exc}") from None


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


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no read-only query elsewhere; restore at once
    os.umask(mask)
    return mask


#: Temporary files are named ``.<name>.<pid>-<random>.part``, so a later run can tell a dead writer's leftovers.
PART_SUFFIX = ".part"


def _temp_beside(path: Path) -> tuple[int, Path]:
    import secrets

    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{PART_SUFFIX}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, f"cannot create a temporary file beside {path}")


def _place(tmp: Path, path: Path, force: bool) -> None:
    """Move a finished temporary file to ``path``; without ``force`` fail if ``path`` exists, atomically."""
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path exists, even if another process created it a moment ago
    except FileExistsError:
        raise OutputExistsError(f"{path}: exists already (use --force to overwrite)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links: reserve the name exclusively, then rename over the reservation.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise OutputExistsError(f"{path}: exists already (use --force to overwrite)") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


class StagedFiles:
    """Files written to temporaries first and put in place together, so a set of outputs all appear or none do.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with StagedFiles() as staged:
    ...     _ = staged.write(d / "a.txt", lambda f: f.write(b"a"))
    ...     _ = staged.write(d / "b.txt", lambda f: f.write(b"b"))
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt', 'b.txt']

    If writing any file fails, or putting one in place finds it exists (without ``force``), nothing of the set is
    left: temporaries are removed and files already placed by this set are taken back.
    """

    def __init__(self, force: bool = False) -> None:
        self.force = force
        self._pending: list[tuple[Path, Path]] = []

    def write(self, path: str | os.PathLike, write: Callable[[_io.BufferedWriter], None]) -> Path:
        path = Path(path)
        if not self.force and path.exists():
            raise OutputExistsError(f"{path}: exists already (use --force to overwrite)")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temp_beside(path)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fchmod(f.fileno(), 0o666 & ~_umask())
                os.fsync(f.fileno())
        except BaseException:
            _unlink_quietly(tmp)
            raise
        self._pending.append((tmp, path))
        return path

    def commit(self) -> list[Path]:
        placed: list[Path] = []
        try:
            for tmp, path in self._pending:
                _place(tmp, path, self.force)
                placed.append(path)
        except BaseException:
            if not self.force:  # with force the old files are gone already; keep what replaced them
                for path in placed:
                    _unlink_quietly(path)
            self.discard()
            raise
        self._pending = []
        return placed

    def discard(self) -> None:
        for tmp, _ in self._pending:
            _unlink_quietly(tmp)
        self._pending = []

    def __enter__(self) -> "StagedFiles":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


class MemoryFiles:
    """Stands in for :class:`StagedFiles` where the outputs go to a client rather than a folder: the writers'
    ``stage=`` puts each file's bytes in :attr:`files` (by file name), encoded exactly as the file would be.

    >>> files = MemoryFiles()
    >>> _ = write_npy("map.npy", np.zeros((2, 2), np.float32), stage=files)
    >>> files.files["map.npy"][:6]
    b'\\x93NUMPY'
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def write(self, path: str | os.PathLike, write: Callable[[_io.BytesIO], None]) -> Path:
        buffer = _io.BytesIO()
        write(buffer)
        self.files[Path(path).name] = buffer.getvalue()
        return Path(path)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def atomic_write(path: str | os.PathLike, write: Callable[[_io.BufferedWriter], None], *, force: bool = False,
                 stage: StagedFiles | None = None) -> Path:
    """Write a file through ``write(fileobj)`` into a temporary file beside ``path``, then move it into place.

    Raises :class:`OutputExistsError` if ``path`` exists and ``force`` is false — also when another process creates
    it while this one writes; the existing file is untouched, and so it is if ``write`` fails. The file gets mode
    0666 less the umask. With ``stage``, the file is only staged and appears when the stage commits.
    """
    if stage is not None:
        return stage.write(path, write)
    with StagedFiles(force) as staged:
        staged.write(path, write)
    return Path(path)


def writable_folder(path: str | os.PathLike, option: str = "output folder") -> Path:
    """Create ``path`` (with its parents) if needed, check that a file can be written in it, and remove the stale
    temporaries of killed writers there (:func:`remove_stale_parts`); returns it. Commands call this before any work.

    Raises
    ------
    UsageError
        One line naming ``option`` and the path: a file is in the way, or the folder cannot be created or written
        (read-only file system, permissions).
    """
    import tempfile

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        raise UsageError(f"{option} {path}: exists and is not a folder") from None
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None
    remove_stale_parts(path)
    return path


def remove_stale_parts(folder: str | os.PathLike, *, older_than_s: float = 86_400.0) -> list[Path]:
    """Delete temporaries left in ``folder`` by writers that were killed: those whose process is gone, and any
    older than ``older_than_s``. Returns what was removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    now = time.time()
    for p in folder.glob(f".*{PART_SUFFIX}"):
        pid_part = p.name[: -len(PART_SUFFIX)].rsplit(".", 1)[-1].split("-")[0]
        try:
            stale = now - p.lstat().st_mtime > older_than_s
            if not stale and pid_part.isdigit() and int(pid_part) != os.getpid():
                try:
                    os.kill(int(pid_part), 0)
                except ProcessLookupError:
                    stale = True
                except PermissionError:
                    pass
            if stale:
                p.unlink()
                removed.append(p)
        except FileNotFoundError:
            continue
    return removed


def _save_pil(path: Path, img: Image.Image, force: bool, stage: StagedFiles | None = None, **params) -> Path:
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}.get(
        path.suffix.lower()
    )
    if fmt is None:
        raise ValueError(f"{path}: unsupported output format {path.suffix!r}")
    return atomic_write(path, lambda f: img.save(f, format=fmt, **params), force=force, stage=stage)


def _as_unit_map(array: np.ndarray) -> np.ndarray:
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {arr.shape}")
    return np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0)


def write_png8(path: str | os.PathLike, map01: np.ndarray, *, force: bool = False,
               stage: StagedFiles | None = None) -> Path:
    """Write a map in [0, 1] as an 8-bit grey PNG (255 = 1.0)."""
    arr = np.round(_as_unit_map(map01) * 255.0).astype(np.uint8)
    return _save_pil(Path(path), Image.fromarray(arr, mode="L"), force, stage)


def write_png16(path: str | os.PathLike, map01: np.ndarray, *, force: bool = False) -> Path:
    """Write a map in [0, 1] as a 16-bit grey PNG (65535 = 1.0)."""
    arr = np.round(_as_unit_map(map01) * 65535.0).astype(np.uint16)
    return _save_pil(Path(path), Image.fromarray(arr), force)


def write_npy(path: str | os.PathLike, array: np.ndarray, *, force: bool = False,
              stage: StagedFiles | None = None) -> Path:
    """Write an array as ``.npy`` (float32 maps keep their exact values)."""
    arr = np.ascontiguousarray(array)
    return atomic_write(path, lambda f: np.save(f, arr, allow_pickle=False), force=force, stage=stage)


def write_image(path: str | os.PathLike, rgb: np.ndarray, *, force: bool = False, quality: int = 92,
                stage: StagedFiles | None = None) -> Path:
    """Write a float RGB image in [0, 1] (H×W×3) as JPEG/PNG/TIFF/WebP by the suffix of ``path``."""
    arr = np.round(np.clip(np.asarray(rgb, dtype=np.float32), 0, 1) * 255.0).astype(np.uint8)
    params = {"quality": quality} if Path(path).suffix.lower() in (".jpg", ".jpeg", ".webp") else {}
    return _save_pil(Path(path), Image.fromarray(arr, mode="RGB"), force, stage, **params)


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
    path: str | os.PathLike, image: np.ndarray, blur_map: np.ndarray, *, force: bool = False,
    stage: StagedFiles | None = None,
) -> Path:
    """Write :func:`blur_overlay` of ``image`` and ``blur_map`` (JPEG or PNG by suffix)."""
    return write_image(path, blur_overlay(image, blur_map), force=force, stage=stage)


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

    sigma = np.nan_to_num(np.asarray(sigma, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(vmax) if vmax is not None else max(1.0, float(np.percentile(sigma, 99.9)) if sigma.size else 1.0)
    colour = colormaps[cmap]
    rgb = colour(np.clip(sigma / top, 0, 1))[..., :3].astype(np.float32)
    h = sigma.shape[0]
    bar_w = max(60, h // 8)
    bar = np.ones((h, bar_w, 3), dtype=np.float32)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, h / 1200.0)
    (_, tick_h), _ = cv2.getTextSize("0.0", font, scale, 1)
    (_, title_h), _ = cv2.getTextSize(unit, font, scale * 0.8, 1)
    # The title sits above the ramp, clear of the top tick label, which is centred on the ramp's first row.
    top_margin = title_h + tick_h // 2 + max(6, tick_h)
    bottom_margin = tick_h // 2 + 4
    labelled = h - top_margin - bottom_margin >= 4 * tick_h
    if not labelled:  # too small for text: the ramp alone, over the full height
        top_margin = bottom_margin = 0
    ramp = np.linspace(1, 0, max(h - top_margin - bottom_margin, 1), dtype=np.float32)
    bar[top_margin : top_margin + ramp.size, 4 : bar_w // 3] = colour(ramp)[:, None, :3]
    bar_u8 = np.ascontiguousarray((bar * 255).astype(np.uint8))
    if labelled:
        for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = int(top_margin + (1 - frac) * (ramp.size - 1))
            cv2.putText(bar_u8, f"{frac * top:.1f}", (bar_w // 3 + 3, y + tick_h // 2), font, scale, (0, 0, 0), 1,
                        cv2.LINE_AA)
        cv2.putText(bar_u8, unit, (2, title_h + 2), font, scale * 0.8, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([rgb, bar_u8.astype(np.float32) / 255.0], axis=1)


def write_defocus_png(
    path: str | os.PathLike, sigma: np.ndarray, *, vmax: float | None = None, unit: str = "px", force: bool = False,
    stage: StagedFiles | None = None,
) -> Path:
    """Write :func:`colorize_defocus` of a defocus map as PNG."""
    return write_image(path, colorize_defocus(sigma, vmax=vmax, unit=unit), force=force, stage=stage)


def find_images(inputs: list[str], *, recursive: bool = False,
                suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> tuple[list[Path], list[str]]:
    """Expand files, folders (their images, sorted) and glob patterns into image paths.

    Returns the paths (first occurrence kept, order preserved) and a list of error messages for inputs that match
    nothing. A named file is kept whatever its suffix, so :func:`read_image` can report it if it is no image. A
    folder gives its files with one of ``suffixes``; with ``recursive`` those of its sub-folders too, and ``**`` in
    a pattern matches any depth of folders.
    """
    import glob

    found: list[Path] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            hits = sorted(q for q in (p.rglob("*") if recursive else p.iterdir())
                          if q.suffix.lower() in suffixes and q.is_file())
            if not hits:
                errors.append(f"{p}: folder has no images")
        elif p.exists() or p.is_symlink():
            hits = [p]
        else:
            hits = sorted(Path(q) for q in glob.glob(item, recursive=recursive))
            if not hits:
                errors.append(f"{item}: no such file")
        found.extend(hits)
    seen: set[Path] = set()
    unique = [p for p in found if not (p in seen or seen.add(p))]
    return unique, errors
