"""defocus.deblur: the hyper-Laplacian solver, the per-level driver, tiling, map checks and the CLI."""

import cv2
import numpy as np
import pytest
import scipy.fft
from PIL import Image

from defocus.cli import main
from defocus.deblur import deblur
from defocus.deblur.hyperlaplacian import _transfer, deconvolve, shrink
from defocus.errors import InputArrayError
from defocus.synth.psf import gaussian

from conftest import textured_image


def psnr(result: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(result, 0, 1) - reference) ** 2)))


def sharp_texture(h: int = 96, w: int = 128, seed: int = 1) -> np.ndarray:
    # Blocks softened a little, as a photo's edges are (an ideal step has no recoverable spectrum either way).
    return cv2.GaussianBlur(textured_image(h, w, seed), (0, 0), 0.7)


def quantised(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255) / 255


@pytest.mark.parametrize("alpha,beta", [(2 / 3, 1.0), (0.5, 8.0), (2 / 3, 256.0), (1.0, 4.0)])
def test_shrinkage_is_the_minimiser_of_the_w_step(alpha, beta):
    v = np.linspace(-2, 2, 101).astype(np.float32)
    w = np.linspace(-2.5, 2.5, 100001)
    energy = np.abs(w[None]) ** alpha + 0.5 * beta * (w[None] - v[:, None]) ** 2
    np.testing.assert_allclose(shrink(v, alpha, beta), w[energy.argmin(axis=1)], atol=1e-3)


def test_solver_recovers_a_sharp_image_from_its_gaussian_blur():
    sharp = sharp_texture()
    psf = gaussian(1.5)
    spectrum = scipy.fft.rfft2(sharp, axes=(0, 1)) * _transfer(psf, sharp.shape[:2])[..., None]
    blurry = quantised(scipy.fft.irfft2(spectrum, s=sharp.shape[:2], axes=(0, 1)))  # periodic, as the solver assumes
    # Only 8-bit rounding as noise: the paper's weight (λ = 2000) fits.
    assert psnr(deconvolve(blurry, psf, weight=2000), sharp) > psnr(blurry, sharp) + 6.0
    assert psnr(deconvolve(blurry, psf, weight=2000, reinject=False), sharp) > psnr(blurry, sharp) + 6.0
    assert psnr(deconvolve(blurry, psf), sharp) > psnr(blurry, sharp) + 3.0


def test_deblur_with_a_constant_map_gains_psnr_on_a_gaussian_blur():
    sharp = sharp_texture()
    blurry = quantised(cv2.GaussianBlur(sharp, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT_101))
    sigma = np.full(sharp.shape[:2], 1.5, np.float32)
    assert psnr(deblur(blurry, sigma, linear=False), sharp) > psnr(blurry, sharp) + 6.0
    assert psnr(deblur(blurry, sigma), sharp) > psnr(blurry, sharp) + 2.0  # blurred in sRGB, deblurred in linear


def test_in_focus_pixels_are_left_as_they_are():
    image = quantised(cv2.GaussianBlur(sharp_texture(), (0, 0), 1.5))
    np.testing.assert_allclose(deblur(image, np.zeros(image.shape[:2], np.float32)), image, atol=1e-3)
    sigma = np.zeros(image.shape[:2], np.float32)
    sigma[:, 64:] = 2.0
    out = deblur(image, sigma)
    # Left of the level boundary, beyond the weights' feathering (3 × 1.5 px), nothing changes.
    np.testing.assert_allclose(out[:, :58], image[:, :58], atol=1e-3)
    assert np.abs(out[:, 70:] - image[:, 70:]).mean() > 0.01


def test_no_ringing_at_a_level_boundary():
    """Top half blurred by σ = 1, bottom half by σ = 2.5, each with its own σ in the map: along the boundary the
    result must not be worse than the blurry input, nor overshoot the sharp image's range."""
    sharp = sharp_texture(96, 96, seed=3)
    blurry = sharp.copy()
    blurry[:48] = cv2.GaussianBlur(sharp, (0, 0), 1.0)[:48]
    blurry[48:] = cv2.GaussianBlur(sharp, (0, 0), 2.5)[48:]
    blurry = quantised(blurry)
    sigma = np.where(np.arange(96)[:, None] < 48, 1.0, 2.5).astype(np.float32) * np.ones((1, 96), np.float32)
    out = deblur(blurry, sigma, linear=False)
    band = slice(40, 56)
    assert psnr(out[band], sharp[band]) > psnr(blurry[band], sharp[band])
    assert out[band].max() <= sharp.max() + 0.1 and out[band].min() >= sharp.min() - 0.1
    assert psnr(out, sharp) > psnr(blurry, sharp) + 2.0


def test_tiled_result_equals_untiled():
    sharp = sharp_texture(96, 128)
    ramp = np.tile(np.linspace(0, 3, 128, dtype=np.float32), (96, 1))
    blurry = quantised(cv2.GaussianBlur(sharp, (0, 0), 1.5))
    whole = deblur(blurry, ramp, tile=None)
    tiled = deblur(blurry, ramp, tile=40)
    assert np.abs(whole - tiled).max() < 0.03
    assert np.abs(whole - tiled).mean() < 0.002


@pytest.mark.parametrize("bad,needle", [
    (np.full((10, 12), np.nan, np.float32), "non-finite"),
    (np.ones((10, 13), np.float32), "10×13"),
    (-np.ones((10, 12), np.float32), "negative"),
])
def test_bad_maps_are_refused(bad, needle):
    with pytest.raises(InputArrayError, match=needle):
        deblur(np.zeros((10, 12, 3), np.float32), bad)


def test_map_and_estimator_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        deblur(np.zeros((10, 12, 3), np.float32), np.zeros((10, 12), np.float32), estimator="zhuo-sim")


@pytest.fixture
def photo(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    image = quantised(cv2.GaussianBlur(sharp_texture(48, 64), (0, 0), 1.2))
    Image.fromarray((image * 255).astype(np.uint8)).save(folder / "shot.png")
    return folder / "shot.png"


def test_cli_writes_deblurred_png_and_refuses_to_overwrite(photo, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["deblur", str(photo), "-o", str(out), "-m", "zhuo-sim"]) == 0
    written = out / "shot_deblurred.png"
    with Image.open(written) as img:
        assert img.size == (64, 48) and img.mode == "RGB"
    capsys.readouterr()
    assert main(["deblur", str(photo), "-o", str(out), "-m", "zhuo-sim"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["deblur", str(photo), "-o", str(out), "-m", "zhuo-sim", "--force"]) == 0


def test_cli_reads_maps_from_a_folder_as_estimate_writes_them(photo, tmp_path):
    maps = tmp_path / "maps"
    assert main(["estimate", str(photo), "-o", str(maps), "-m", "zhuo-sim"]) == 0
    out = tmp_path / "out"
    assert main(["deblur", str(photo.parent), "-o", str(out), "--defocus-map", str(maps)]) == 0
    assert (out / "shot_deblurred.png").exists()


@pytest.mark.parametrize("values,needle", [
    (np.full((48, 64), np.inf, np.float32), "non-finite"),
    (np.ones((40, 64), np.float32), "40×64"),
])
def test_cli_bad_map_is_one_line_naming_the_file(photo, tmp_path, capsys, values, needle):
    map_file = tmp_path / "sigma.npy"
    np.save(map_file, values)
    assert main(["deblur", str(photo), "-o", str(tmp_path / "out"), "--defocus-map", str(map_file)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("defocus: error:")]
    assert any(str(map_file) in e and needle in e for e in errors)
    assert not (tmp_path / "out" / "shot_deblurred.png").exists()


def test_cli_usage_errors(photo, tmp_path, capsys):
    map_file = tmp_path / "sigma.npy"
    np.save(map_file, np.ones((48, 64), np.float32))
    out = str(tmp_path / "out")
    assert main(["deblur", str(photo), "-o", out, "--defocus-map", str(map_file), "-m", "zhuo-sim"]) == 2
    second = photo.parent / "other.png"
    second.write_bytes(photo.read_bytes())
    assert main(["deblur", str(photo.parent), "-o", out, "--defocus-map", str(map_file)]) == 2
    assert main(["deblur", str(photo), "-o", out, "-m", "light-dffnet"]) == 2
    err = capsys.readouterr().err
    assert "one map file fits one photo" in err and "DBD method" in err
