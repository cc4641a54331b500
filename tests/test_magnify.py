"""defocus magnify: K-times defocus re-rendered through the synthetic engine (identity, occlusion, bloom, files)."""

import cv2
import numpy as np
import pytest

from conftest import SHARED, textured_image
from defocus.cli import main
from defocus.io import read_image, write_image
from defocus.magnify import magnify
from defocus.synth.render import srgb_to_linear
from defocus.units import radius_to_sigma

needs_shared = pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="shared/ data folder not present")


def sharp_square_over_blurred_background(h=96, w=128):
    """A sharp red square (σ = 0) in front of a green background already blurred by σ = 2 px."""
    image = np.empty((h, w, 3), np.float32)
    image[:] = (0.1, 0.8, 0.1)
    image += 0.1 * textured_image(h, w, seed=3)
    image = cv2.GaussianBlur(image, (0, 0), 2.0)
    square = np.zeros((h, w), bool)
    square[32:64, 40:88] = True
    image[square] = (0.8, 0.1, 0.1)
    sigma = np.where(square, 0.0, 2.0).astype(np.float32)
    return image, sigma, square


def test_amount_one_is_the_identity():
    image, sigma, _ = sharp_square_over_blurred_background()
    assert np.array_equal(magnify(image, sigma, 1.0), image)


def test_in_focus_region_is_untouched_and_the_rest_blurs_more():
    image = textured_image(96, 128)
    sigma = np.zeros((96, 128), np.float32)
    sigma[:, 64:] = 2.0
    out = magnify(image, sigma, 3.0)
    assert np.array_equal(out[:, :64], image[:, :64])

    def detail(a):
        return float(np.abs(np.diff(a, axis=1)).mean())

    assert detail(out[:, 72:]) < 0.5 * detail(image[:, 72:])


def test_blurred_background_does_not_bleed_over_the_sharp_foreground_nor_the_reverse():
    image, sigma, square = sharp_square_over_blurred_background()
    out = magnify(image, sigma, 4.0)
    assert np.array_equal(out[square], image[square])  # up to its very edge
    ring = cv2.dilate(square.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~square
    # The background next to the square is continued from the background, not smeared with the square's red.
    assert out[ring][:, 0].max() < 0.3
    assert np.abs(out[~square] - image[~square]).max() > 0.01  # the background did change


def blurred_bar_over_sharp_subject(h=96, w=128):
    """A sharp texture (σ = 0) crossed by a dark vertical bar already blurred by σ = 2 px."""
    image = textured_image(h, w, seed=5)
    bar = np.zeros((h, w), bool)
    bar[:, 56:72] = True
    dark = image.copy()
    dark[bar] = 0.02
    image = np.where(bar[..., None], cv2.GaussianBlur(dark, (0, 0), 2.0), image)
    return image, np.where(bar, 2.0, 0.0).astype(np.float32), bar


def test_a_foreground_marked_in_front_spreads_over_the_subject():
    image, sigma, bar = blurred_bar_over_sharp_subject()
    beside = np.zeros_like(bar)
    beside[:, 50:56] = True  # subject pixels just left of the bar
    behind = magnify(image, sigma, 3.0)
    assert np.array_equal(behind[beside], image[beside])  # by default the blurred bar lies behind the subject
    front = magnify(image, sigma, 3.0, in_front=bar)
    assert front[beside].mean() < image[beside].mean() - 0.05  # the dark blurred bar now covers its edge
    far = np.zeros_like(bar)
    far[:, :30] = True
    assert np.abs(front[far] - image[far]).max() < 1e-3


def test_highlight_blooms_into_a_disc_of_the_target_radius():
    h = w = 81
    image = np.full((h, w, 3), 0.05, np.float32)
    cv2.circle(image, (40, 40), 3, (1.0, 1.0, 1.0), -1)  # a clipped highlight, blurred by a disk of radius 3
    sigma = np.full((h, w), float(radius_to_sigma(np.float64(3.0))), np.float32)
    target = 3 * 3.0
    out = srgb_to_linear(magnify(image, sigma, 3.0))[..., 1]
    rest = float(np.median(out))
    lit = (out - rest) > 0.5 * (out.max() - rest)
    assert 0.8 * target < np.sqrt(lit.sum() / np.pi) < 1.2 * target
    # Un-clipped before blurring, so the disc is brighter than the same disc blurred as stored.
    plain = srgb_to_linear(magnify(image, sigma, 3.0, highlight_gain=1.0))[..., 1]
    assert out[40, 40] > 1.5 * plain[40, 40]


@needs_shared
def test_with_the_true_map_the_result_is_closer_to_the_engines_rendering():
    from defocus.synth import render_scaled, sample_rng

    s1, s3 = render_scaled(sample_rng(5, 0, "test"), (1.0, 3.0), 160, split="test", kind="object_sharp")
    out = magnify(s1.image, s1.sigma, 3.0)
    assert np.abs(out - s3.image).mean() < 0.7 * np.abs(s1.image - s3.image).mean()


@pytest.mark.parametrize("bad", [np.full((96, 128), np.nan, np.float32), np.zeros((50, 50), np.float32),
                                 np.full((96, 128), -1.0, np.float32)])
def test_bad_map_is_refused(bad):
    with pytest.raises(ValueError):
        magnify(textured_image(96, 128), bad, 2.0)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir()
    image, _, _ = sharp_square_over_blurred_background()
    write_image(path, image)
    return path


def test_cli_writes_magnified_jpeg_and_refuses_to_overwrite(photo, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["magnify", str(photo), "-o", str(out), "--amount", "3"]) == 0  # default estimator
    result = out / "photo_magnified.jpg"
    assert read_image(result).shape == (96, 128, 3)
    before = result.read_bytes()
    capsys.readouterr()
    assert main(["magnify", str(photo), "-o", str(out), "--amount", "3"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert result.read_bytes() == before


def test_cli_reads_a_saved_map_file_or_folder(photo, tmp_path):
    _, sigma, square = sharp_square_over_blurred_background()
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "photo_defocus.npy", sigma)
    assert main(["magnify", str(photo), "-o", str(tmp_path / "a"), "--defocus-map", str(maps)]) == 0
    assert main(["magnify", str(photo), "-o", str(tmp_path / "b"), "--defocus-map",
                 str(maps / "photo_defocus.npy")]) == 0
    a, b = (read_image(tmp_path / d / "photo_magnified.jpg") for d in "ab")
    assert np.array_equal(a, b)


@pytest.mark.parametrize("bad", [np.full((96, 128), np.inf, np.float32), np.zeros((40, 30), np.float32)])
def test_cli_bad_map_is_one_line_naming_the_file(photo, tmp_path, capsys, bad):
    path = tmp_path / "bad_map.npy"
    np.save(path, bad)
    assert main(["magnify", str(photo), "-o", str(tmp_path / "o"), "--defocus-map", str(path)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if str(path) in line]
    assert len(errors) == 1 and "error" in errors[0]
    assert not (tmp_path / "o" / "photo_magnified.jpg").exists()


def test_cli_in_front_mask(tmp_path):
    image, sigma, bar = blurred_bar_over_sharp_subject()
    write_image(tmp_path / "bar.png", image)
    np.save(tmp_path / "bar_defocus.npy", sigma)
    mask = tmp_path / "bar_front.png"
    from defocus.io import write_png8

    write_png8(mask, bar.astype(np.float32))
    args = ["magnify", str(tmp_path / "bar.png"), "--defocus-map", str(tmp_path)]
    assert main(args + ["-o", str(tmp_path / "a")]) == 0
    assert main(args + ["-o", str(tmp_path / "b"), "--in-front", str(mask)]) == 0
    a, b = (read_image(tmp_path / d / "bar_magnified.jpg") for d in "ab")
    assert b[:, 50:56].mean() < a[:, 50:56].mean() - 0.02
    write_png8(tmp_path / "small.png", np.zeros((10, 10), np.float32))
    assert main(args + ["-o", str(tmp_path / "c"), "--in-front", str(tmp_path / "small.png")]) == 1


def test_cli_usage_errors(photo, tmp_path, capsys):
    np.save(tmp_path / "m.npy", np.zeros((96, 128), np.float32))
    assert main(["magnify", str(photo), "-o", str(tmp_path / "o"), "-m", "zhuo-sim",
                 "--defocus-map", str(tmp_path / "m.npy")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["magnify", str(photo), "-o", str(tmp_path / "o"), "--amount", "0.5"])
    assert exc.value.code == 2
