"""A corpus of hostile and unusual input files, generated at test time (nothing binary is committed).

:func:`make_corpus` writes them into a folder and returns which are expected to be read and which refused, so a
test can run a whole batch and check that every good file was processed and every bad one reported on one line.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import half_blurred


def _u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _jpeg_with_orientation(img: np.ndarray, orientation: int) -> bytes:
    pil = Image.fromarray(_u8(img))
    exif = pil.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def make_corpus(folder: Path) -> tuple[list[Path], list[Path]]:
    """Write the corpus into ``folder``; returns (files that must be read, files that must be refused).

    Every good file is at most 64×96 px, so a batch over the corpus runs in seconds with any fast method.
    """
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    good: dict[str, bytes | None] = {}
    bad: dict[str, bytes | None] = {}
    rgb, _ = half_blurred(48, 64, seed=7)
    pil = Image.fromarray(_u8(rgb))
    grey = pil.convert("L")

    good["plain.jpg"] = _encode(pil, "JPEG")
    good["UPPER.JPG"] = _encode(pil, "JPEG")
    good["long-suffix.jpeg"] = _encode(pil, "JPEG")
    good["grey.png"] = _encode(grey, "PNG")
    good["palette.png"] = _encode(pil.convert("P"), "PNG")
    pal = pil.convert("P")
    pal.info["transparency"] = 0
    good["palette-transparent.png"] = _encode(pal, "PNG", transparency=0)
    good["rgba.png"] = _encode(pil.convert("RGBA"), "PNG")
    good["grey-alpha.png"] = _encode(grey.convert("LA"), "PNG")
    good["one-bit.png"] = _encode(grey.convert("1"), "PNG")
    good["cmyk.jpg"] = _encode(pil.convert("CMYK"), "JPEG")
    for k in (2, 3, 4, 5, 6, 7, 8):
        good[f"exif-orientation-{k}.jpg"] = _jpeg_with_orientation(rgb, k)
    good["frame.gif"] = _encode(pil.convert("P"), "GIF")
    frames = [pil.convert("P"), Image.fromarray(_u8(1 - rgb)).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    good["animated.gif"] = buf.getvalue()
    good["photo.webp"] = _encode(pil, "WEBP")
    good["photo.bmp"] = _encode(pil, "BMP")
    good["photo.tiff"] = _encode(pil, "TIFF")
    good["tiny-1x1.png"] = _encode(Image.new("RGB", (1, 1), (120, 30, 200)), "PNG")
    good["tiny-2x2.png"] = _encode(pil.resize((2, 2)), "PNG")
    good["row-1x96.png"] = _encode(pil.resize((96, 1)), "PNG")
    good["column-96x1.png"] = _encode(pil.resize((1, 96)), "PNG")
    good["short-9px.png"] = _encode(pil.resize((64, 9)), "PNG")
    good["short-5px.png"] = _encode(pil.resize((40, 5)), "PNG")
    good["black.png"] = _encode(Image.new("RGB", (64, 48), 0), "PNG")
    good["white.png"] = _encode(Image.new("RGB", (64, 48), (255, 255, 255)), "PNG")
    good["flat-grey.png"] = _encode(Image.new("RGB", (64, 48), (128, 128, 128)), "PNG")
    checker = (np.indices((48, 64)).sum(0) % 2 * 255).astype(np.uint8)
    good["checkerboard.png"] = _encode(Image.fromarray(checker), "PNG")
    noise = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    good["noise.png"] = _encode(Image.fromarray(noise), "PNG")
    good["name with spaces.png"] = _encode(pil, "PNG")
    good["ünïcødé-名前.png"] = _encode(pil, "PNG")
    good["-starts-with-dash.png"] = _encode(pil, "PNG")
    good["same-stem.jpg"] = _encode(pil, "JPEG")
    good["same-stem.png"] = _encode(pil, "PNG")
    good["quality-1.jpg"] = _encode(pil, "JPEG", quality=1)
    good["progressive.jpg"] = _encode(pil, "JPEG", progressive=True)

    # Files written by tifffile: 16-bit, float, orientation tags, odd sample types.
    tiffs: dict[str, tuple[np.ndarray, dict]] = {}
    u16 = (rgb * 65535).astype(np.uint16)
    tiffs["rgb16.tif"] = (u16, {"photometric": "rgb"})
    tiffs["grey16.tif"] = (u16[..., 0], {})
    tiffs["rgb16-rotated.tif"] = (u16, {"photometric": "rgb", "extratags": [(274, "H", 1, 6, True)]})
    tiffs["grey16-rotated.tif"] = (u16[..., 0], {"extratags": [(274, "H", 1, 8, True)]})
    f01 = rgb[..., 0].astype(np.float32)
    tiffs["float01.tif"] = (f01, {})
    tiffs["float-rgb.tif"] = (rgb.astype(np.float32), {"photometric": "rgb"})
    tiffs["float-0-255.tif"] = (f01 * 255, {})
    tiffs["float-hdr.tif"] = (f01 * 1e4 - 20, {})
    with_nan = f01.copy()
    with_nan[10, 10] = np.nan
    tiffs["float-one-nan.tif"] = (with_nan, {})
    with_inf = f01.copy()
    with_inf[5, :8] = np.inf
    with_inf[6, :8] = -np.inf
    tiffs["float-inf.tif"] = (with_inf, {})
    tiffs["float64.tif"] = (f01.astype(np.float64), {})
    tiffs["int32.tif"] = ((f01 * 2**30).astype(np.int32), {})
    tiffs["planar-rgb.tif"] = (np.moveaxis(u16, 2, 0).copy(), {"planarconfig": "separate", "photometric": "rgb"})
    tiffs["constant-float.tif"] = (np.full((48, 64), 0.25, np.float32), {})
    # Refused: nothing finite to show.
    bad_tiffs = {"float-all-nan.tif": (np.full((48, 64), np.nan, np.float32), {})}
    for name, (arr, kw) in tiffs.items():
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, **kw)
        good[name] = buf.getvalue()
    for name, (arr, kw) in bad_tiffs.items():
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, **kw)
        bad[name] = buf.getvalue()

    import cv2

    good["rgb16.png"] = cv2.imencode(".png", cv2.cvtColor(u16, cv2.COLOR_RGB2BGR))[1].tobytes()
    good["grey16.png"] = cv2.imencode(".png", u16[..., 0])[1].tobytes()

    jpeg = good["plain.jpg"]
    png = good["grey.png"]
    bad["empty.jpg"] = b""
    bad["truncated.jpg"] = jpeg[: len(jpeg) // 2]
    bad["truncated.png"] = png[: len(png) // 2]
    bad["header-only.png"] = png[:33]
    bad["corrupt-body.jpg"] = jpeg[:200] + bytes(np.random.default_rng(2).integers(0, 256, 600, dtype=np.uint8))
    bad["bad-crc.png"] = png[:29] + bytes([png[29] ^ 0xFF]) + png[30:]
    bad["text.jpg"] = b"this is not an image\n"
    bad["html.png"] = b"<!doctype html><html><body>404 Not Found</body></html>"
    bad["random.tif"] = bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8))
    bad["tiff-magic-only.tif"] = b"II*\x00" + b"\x00" * 4
    bad["gif-truncated.gif"] = good["frame.gif"][:40]
    bad["webp-truncated.webp"] = good["photo.webp"][:30]
    bad["bmp-header.bmp"] = good["photo.bmp"][:54]
    bad["numpy-array.png"] = b"\x93NUMPY" + b"\x00" * 100
    bad["zeros.png"] = b"\x00" * 1000
    bad["too-many-pixels.png"] = _encode(Image.new("L", (4000, 4000), 0), "PNG")  # refused by --max-pixels

    for name, data in {**good, **bad}.items():
        (folder / name).write_bytes(data)
    special: list[Path] = []
    d = folder / "folder-named.jpg"
    d.mkdir()
    special.append(d)
    dangling = folder / "dangling.jpg"
    dangling.symlink_to(folder / "does-not-exist.jpg")
    special.append(dangling)
    loop_a, loop_b = folder / "loop-a.jpg", folder / "loop-b.jpg"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    special += [loop_a, loop_b]
    fifo = folder / "fifo.png"
    os.mkfifo(fifo)
    special.append(fifo)
    link = folder / "good-symlink.png"
    link.symlink_to(folder / "grey.png")
    good["good-symlink.png"] = None
    return [folder / n for n in good], [folder / n for n in bad] + special
