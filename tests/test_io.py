import io
import os

import numpy as np
import pytest
from PIL import Image

from defocus.errors import ImageReadError, OutputExistsError
from defocus.io import (
    atomic_write,
    colorize_defocus,
    find_images,
    read_image,
    read_map,
    write_defocus_png,
    write_npy,
    write_overlay,
    write_png8,
    write_png16,
)


def _gradient_rgb(h=20, w=30):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 77)], axis=2).astype(np.uint8)


@pytest.mark.parametrize("ext,fmt", [(".jpg", "JPEG"), (".png", "PNG"), (".tif", "TIFF"), (".webp", "WEBP"),
                                     (".bmp", "BMP"), (".gif", "GIF")])
def test_formats_read_as_float_rgb(tmp_path, ext, fmt):
    arr = _gradient_rgb()
    path = tmp_path / f"img{ext}"
    Image.fromarray(arr).save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    img = read_image(path)
    assert img.shape == (20, 30, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    if fmt in ("PNG", "TIFF", "BMP", "WEBP"):
        np.testing.assert_allclose(img, arr / 255.0, atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "I;16"])
def test_modes_convert(tmp_path, mode):
    base = Image.fromarray(_gradient_rgb())
    if mode == "I;16":
        img = Image.fromarray((np.arange(600, dtype=np.uint16).reshape(20, 30) * 100))
        ext = ".png"
    else:
        img = base.convert(mode)
        ext = ".tif" if mode == "CMYK" else ".png"
    path = tmp_path / f"m{ext}"
    img.save(path)
    out = read_image(path)
    assert out.shape == (20, 30, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_16bit_grey_keeps_precision(tmp_path):
    values = (np.arange(600, dtype=np.uint16).reshape(20, 30) * 109)
    Image.fromarray(values).save(tmp_path / "g16.png")
    out = read_image(tmp_path / "g16.png")
    np.testing.assert_allclose(out[..., 0], values / 65535.0, atol=1e-6)


def test_16bit_colour_png_keeps_precision(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb = np.zeros((8, 9, 3), np.uint16)
    rgb[..., 0] = 1000
    rgb[..., 1] = 30001
    rgb[..., 2] = 65535
    cv2.imwrite(str(tmp_path / "c16.png"), rgb[..., ::-1])
    out = read_image(tmp_path / "c16.png")
    np.testing.assert_allclose(out[0, 0], [1000 / 65535, 30001 / 65535, 1.0], atol=1e-6)


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :5] = 255  # white band on the left
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "o.jpg", exif=exif, quality=100)
    out = read_image(tmp_path / "o.jpg")
    assert out.shape == (20, 10, 3)
    assert out[:5].mean() > 0.8 and out[-5:].mean() < 0.2  # the left band is now at the top


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "directory"])
def test_bad_inputs_raise_one_line_naming_file(tmp_path, case):
    path = tmp_path / "bad.jpg"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello, not an image\n")
    elif case == "truncated":
        buf = io.BytesIO()
        Image.fromarray(_gradient_rgb(200, 200)).save(buf, format="JPEG")
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif case == "directory":
        path.mkdir()
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_pixel_limit_refused(tmp_path):
    Image.fromarray(_gradient_rgb(100, 100)).save(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        read_image(tmp_path / "big.png", max_pixels=5000)


def test_writers_round_trip(tmp_path):
    m = np.linspace(0, 1, 200, dtype=np.float32).reshape(10, 20)
    write_png8(tmp_path / "a.png", m)
    write_png16(tmp_path / "b.png", m)
    write_npy(tmp_path / "c.npy", m)
    np.testing.assert_allclose(read_map(tmp_path / "a.png"), m, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(read_map(tmp_path / "b.png"), m, atol=0.5 / 65535 + 1e-6)
    np.testing.assert_array_equal(read_map(tmp_path / "c.npy"), m)
    assert np.asarray(Image.open(tmp_path / "a.png")).max() == 255


def test_no_overwrite_without_force(tmp_path):
    m = np.zeros((4, 4), np.float32)
    write_png8(tmp_path / "a.png", m)
    before = (tmp_path / "a.png").read_bytes()
    with pytest.raises(OutputExistsError):
        write_png8(tmp_path / "a.png", np.ones((4, 4), np.float32))
    assert (tmp_path / "a.png").read_bytes() == before
    write_png8(tmp_path / "a.png", np.ones((4, 4), np.float32), force=True)
    assert read_map(tmp_path / "a.png").min() == 1.0


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom, force=True)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["x.bin"]


def test_overlay_keeps_sharp_pixels_and_tints_blurred_ones(tmp_path):
    img = np.random.default_rng(0).random((30, 40, 3)).astype(np.float32)
    blur = np.zeros((30, 40), np.float32)
    blur[:, 20:] = 1
    write_overlay(tmp_path / "o.png", img, blur)
    over = read_image(tmp_path / "o.png")
    assert over.shape == (30, 40, 3)
    np.testing.assert_allclose(over[:, :20], img[:, :20], atol=0.5 / 255 + 1e-6)  # in focus: untouched
    sharp_contrast, blurred_contrast = img[:, 20:].std(), over[:, 20:].std()
    assert blurred_contrast < 0.7 * sharp_contrast  # out of focus: dimmed and desaturated
    assert over[:, 20:, 2].mean() > over[:, 20:, 0].mean()  # and tinted blue


def test_defocus_png_colours_follow_the_values(tmp_path):
    sigma = np.tile(np.linspace(0, 4, 60, dtype=np.float32), (50, 1))
    rgb = colorize_defocus(sigma, vmax=4.0)
    assert rgb.shape[0] == 50 and rgb.shape[1] > 60
    luma = rgb[:, :60].mean(axis=(0, 2))
    assert np.all(np.diff(luma) >= -1e-6) and luma[-1] > luma[0] + 0.5  # magma: brighter = more blur
    write_defocus_png(tmp_path / "d.png", sigma, vmax=4.0)
    np.testing.assert_allclose(read_image(tmp_path / "d.png"), rgb, atol=0.5 / 255 + 1e-6)


def test_find_images(tmp_path):
    for name in ("b.jpg", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    paths, errors = find_images([str(tmp_path), str(tmp_path / "*.jpg"), str(tmp_path / "nope.png")])
    assert [p.name for p in paths] == ["a.png", "b.jpg"]
    assert len(errors) == 1 and "nope.png" in errors[0]
