"""Tests of the synthetic defocus engine (defocus.synth): PSFs, linear light, thin lens, layered compositing,
determinism, ground-truth consistency, the torch dataset, written datasets and the train/val/test source split."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from defocus.errors import DefocusError
from defocus.synth import psf
from defocus.synth.render import Layer, ThinLens, linear_to_srgb, quantize_radius, render, srgb_to_linear
from defocus.units import radius_to_sigma

SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="shared/ data folder not present")


# ---------------------------------------------------------------------------------------------------------------------
# PSFs


@pytest.mark.parametrize("r", [0.0, 0.3, 0.5, 0.75, 1.0, 1.3, 2.5, 4.0, 7.7, 12.0, 16.0])
@pytest.mark.parametrize("kind", psf.PSF_KINDS)
def test_psf_normalised_symmetric(r, kind):
    k = psf.kernel(r, kind)
    assert k.dtype == np.float32 and k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert abs(float(k.sum()) - 1.0) < 1e-5
    assert (k >= 0).all()
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-7)
    np.testing.assert_allclose(k, k.T, atol=1e-7)


@pytest.mark.parametrize("kind", psf.PSF_KINDS)
def test_radius_zero_is_identity(kind):
    assert psf.kernel(0.0, kind).shape == (1, 1)
    img = np.random.default_rng(0).random((40, 50, 3)).astype(np.float32)
    np.testing.assert_array_equal(psf.blur(img, 0.0, kind), img)


def test_disk_support_and_antialiasing():
    # A radius-3 disk spans 7 px; its rim pixels are partly covered (anti-aliased), its centre fully.
    k = psf.disk(3.0)
    assert k.shape == (7, 7)
    centre = k[3, 3]
    assert 0 < k[3, 0] < centre and k[0, 0] == 0
    # Sub-pixel radii change the kernel continuously.
    a, b = psf.disk(2.0), psf.disk(2.1)
    assert a.shape == b.shape and 0 < np.abs(a - b).max() < 0.01


def test_lens_profiles_keep_the_disk_support_and_shape_its_brightness():
    disk = psf.kernel(8.0, "disk")
    for kind in psf.LENS_PROFILES:
        k = psf.kernel(8.0, kind)
        assert k.shape == disk.shape
        np.testing.assert_array_equal(k > 0, disk > 0)  # the same disc, only its brightness varies
    c = disk.shape[0] // 2
    bubble, spherical = psf.kernel(8.0, "bubble"), psf.kernel(8.0, "spherical")
    assert bubble[c, c + 7] > 2 * bubble[c, c]  # soap bubble: bright rim
    assert spherical[c, c] > 2 * spherical[c, c + 7]  # under-corrected: bright core
    with pytest.raises(ValueError):
        psf.kernel(-1.0, "onion")


def test_gaussian_psf_matches_sigma_table():
    k = psf.kernel(4.0, "gaussian")
    x = np.arange(k.shape[0]) - k.shape[0] // 2
    var = float((k.sum(0) * x**2).sum())
    assert abs(np.sqrt(var) - float(radius_to_sigma(np.float32(4.0)))) < 0.05


@pytest.mark.parametrize("r,exact", [(2.0, True), (4.0, True), (7.5, True), (7.5, False), (13.0, False)])
def test_disk_blur_of_step_edge_has_width_2r(r, exact):
    img = np.zeros((96, 160), np.float32)
    img[:, 80:] = 1.0
    out = psf.blur(img, r, "disk", exact=exact)
    row = out[48]
    ramp = np.nonzero((row > 0.01) & (row < 0.99))[0]
    width = ramp.max() - ramp.min() + 1
    assert abs(width - 2 * r) <= (1.5 if exact else 3.0)
    # The edge stays centred: value 0.5 between pixels 79 and 80.
    assert abs(float(row[79] + row[80]) - 1.0) < 0.06
    # Far from the edge nothing changes.
    assert row[:40].max() < 1e-4 and row[-40:].min() > 1 - 1e-4


def test_reduced_resolution_blur_close_to_exact():
    rng = np.random.default_rng(1)
    img = rng.random((120, 136, 4)).astype(np.float32)
    for r in (6.0, 12.5):
        fast, exact = psf.blur(img, r), psf.blur(img, r, exact=True)
        assert fast.shape == img.shape
        assert np.abs(fast - exact)[16:-16, 16:-16].mean() < 0.01


# ---------------------------------------------------------------------------------------------------------------------
# Linear light, thin lens


def test_srgb_roundtrip_and_linear_blur():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-4)
    # A black/white edge blurred in linear light is 0.5 linear = 0.735 sRGB in the middle, not 0.5.
    assert abs(float(linear_to_srgb(np.float32(0.5))) - 0.7354) < 1e-3


def test_thin_lens_coc():
    lens = ThinLens(focal_mm=50.0, f_number=2.0, focus_m=2.0, pixel_pitch_mm=0.01)
    # c(inf) = f^2 / (N (s_f - f)) = 2500 / (2 * 1950) mm; radius in px = c / 2 / pitch.
    expect = 2500.0 / (2 * 1950.0) / 2 / 0.01
    assert abs(lens.radius_at_infinity_px - expect) < 1e-6
    assert abs(float(lens.signed_radius_px(np.inf)) - expect) < 1e-3
    assert float(lens.signed_radius_px(2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(lens.signed_radius_px(1.0)) < 0 < float(lens.signed_radius_px(4.0))
    d = np.array([1.0, 4.0, 8.0])
    diam = 2500.0 / (2 * 1950.0) * np.abs(d * 1000 - 2000) / (d * 1000)
    np.testing.assert_allclose(lens.coc_diameter_mm(d), diam, rtol=1e-5)
    # Solving for the aperture gives the asked blur.
    solved = lens.with_radius_at_infinity(5.0)
    assert solved.radius_at_infinity_px == pytest.approx(5.0, rel=1e-6)


def test_quantize_radius_keeps_sign():
    q = quantize_radius(np.array([-3.1, -0.1, 0.0, 0.6, 2.2, 100.0], np.float32))
    np.testing.assert_allclose(q, [-3.0, 0.0, 0.0, 0.5, 2.0, 40.0])


# ---------------------------------------------------------------------------------------------------------------------
# Layered compositing


def _two_layer_scene(fg_radius: float, bg_radius: float):
    """A textured background (no red) and a pure red square in front of it."""
    rng = np.random.default_rng(0)
    h = w = 96
    bg = np.zeros((h, w, 3), np.float32)
    bg[..., 1:] = rng.random((h, w, 2)).astype(np.float32)
    fg = np.zeros((h, w, 3), np.float32)
    fg[..., 0] = 1.0
    alpha = np.zeros((h, w), np.float32)
    alpha[32:64, 32:64] = 1.0
    layers = [
        Layer(bg, np.ones((h, w), np.float32), np.full((h, w), bg_radius, np.float32), "bg"),
        Layer(fg, alpha, np.full((h, w), fg_radius, np.float32), "fg"),
    ]
    return layers, bg, alpha


def test_blurred_foreground_bleeds_over_sharp_background():
    layers, bg, alpha = _two_layer_scene(fg_radius=-5.0, bg_radius=0.0)
    out = render(layers, "disk", exact=True)
    red = out.image[..., 0]
    # Red (only in the foreground) spreads up to 5 px beyond the square's edge ...
    assert red[48, 28] > 0.05 and red[48, 30] > red[48, 28]
    assert red[48, 66] > 0.05
    # ... and the foreground becomes partly transparent inside its edge.
    assert 0.3 < red[48, 32] < 0.7
    # Far from the square the background is untouched (sharp).
    np.testing.assert_allclose(out.image[:20, :20], bg[:20, :20], atol=1e-6)
    # Ground truth: the foreground's radius where it dominates, 0 on the background.
    assert out.radius[48, 48] == pytest.approx(5.0) and out.radius[5, 5] == 0.0
    # ... switching where the foreground's blurred alpha crosses one half, i.e. at its edge.
    assert out.radius[48, 33] == pytest.approx(5.0) and out.radius[48, 30] == 0.0


def test_sharp_foreground_stays_crisp_over_blurred_background():
    layers, bg, alpha = _two_layer_scene(fg_radius=0.0, bg_radius=6.0)
    out = render(layers, "disk", exact=True)
    red = out.image[..., 0]
    # The edge is a step: inside exactly the foreground, outside no foreground colour at all.
    np.testing.assert_allclose(red[32:64, 32:64], 1.0, atol=1e-6)
    assert red[alpha == 0].max() < 1e-6
    np.testing.assert_allclose(out.image[32:64, 32:64, 1:], 0.0, atol=1e-6)
    # The background is blurred: its local contrast drops a lot.
    assert out.image[:20, :20, 1].std() < 0.5 * bg[:20, :20, 1].std()
    # Radius map switches exactly at the object's edge.
    assert (out.radius[alpha == 1] == 0).all() and (out.radius[alpha == 0] == 6.0).all()


def test_continuous_surface_has_no_seams():
    # A flat grey plane whose blur varies across the frame must stay flat grey after layered rendering.
    h, w = 64, 200
    r = np.tile(np.linspace(0, 12, w, dtype=np.float32), (h, 1))
    layer = Layer(np.full((h, w, 3), 0.3, np.float32), np.ones((h, w), np.float32), r)
    out = render([layer], "disk")
    np.testing.assert_allclose(out.image, 0.3, atol=2e-3)
    np.testing.assert_allclose(out.radius, r, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# Samples, dataset, files (need the shared photos)


@needs_shared
def test_render_sample_is_deterministic_and_consistent():
    from defocus.synth import SHARP_RADIUS, render_sample, sample_rng
    from defocus.synth.scenes import KINDS

    for i, kind in enumerate(KINDS):
        a = render_sample(sample_rng(7, i), 96, kind=kind)
        b = render_sample(sample_rng(7, i), 96, kind=kind)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.coc_radius, b.coc_radius)
        assert a.kind == kind
        assert a.image.shape == (96, 96, 3) and a.image.dtype == np.float32
        assert 0.0 <= a.image.min() and a.image.max() <= 1.0
        for m in (a.blur_mask, a.coc_radius, a.sigma):
            assert m.shape == (96, 96) and m.dtype == np.float32
        np.testing.assert_array_equal(a.blur_mask, (a.coc_radius > SHARP_RADIUS).astype(np.float32))
        np.testing.assert_allclose(a.sigma, radius_to_sigma(a.coc_radius), atol=1e-6)
        assert (a.coc_radius >= 0).all()
    # Kinds with a known layout give the expected masks.
    assert render_sample(sample_rng(0, 0), 64, kind="all_sharp").blur_mask.max() == 0
    assert render_sample(sample_rng(0, 0), 64, kind="all_blurred").blur_mask.min() == 1
    c = render_sample(sample_rng(7, 0), 96)
    d = render_sample(sample_rng(7, 1), 96)
    assert not np.array_equal(c.image, d.image)


@needs_shared
def test_render_scaled_scales_the_blur_of_one_scene():
    from defocus.synth import render_sample, render_scaled, sample_rng

    sharp, same, double = render_scaled(sample_rng(3, 0), (0.0, 1.0, 2.0), 96, kind="object_sharp")
    plain = render_sample(sample_rng(3, 0), 96, kind="object_sharp")
    np.testing.assert_array_equal(same.image, plain.image)  # scale 1 is the ordinary sample
    np.testing.assert_array_equal(same.coc_radius, plain.coc_radius)
    assert sharp.coc_radius.max() == 0 and sharp.blur_mask.max() == 0
    blurred = same.coc_radius > 1.0
    assert blurred.any()
    # Away from occlusion boundaries the dominant surface is the same, so its radius doubles.
    np.testing.assert_allclose(np.median(double.coc_radius[blurred] / same.coc_radius[blurred]), 2.0, rtol=0.02)
    # The sharp rendering has more fine detail where the scene is blurred.
    def lap(img):
        return np.abs(np.diff(img.mean(axis=2), axis=1))
    assert lap(sharp.image)[blurred[:, 1:]].mean() > lap(same.image)[blurred[:, 1:]].mean()
    with pytest.raises(ValueError, match="blur scales"):
        render_scaled(sample_rng(3, 0), (-1.0,), 64)


@needs_shared
def test_non_square_size():
    from defocus.synth import render_sample, sample_rng

    s = render_sample(sample_rng(0, 3), (64, 96))
    assert s.image.shape == (64, 96, 3) and s.coc_radius.shape == (64, 96)


@needs_shared
def test_synth_dataset_items():
    import torch

    from defocus.synth import SynthDataset

    ds = SynthDataset(5, size=64, seed=3, split="val")
    assert len(ds) == 5
    item = ds[2]
    assert set(item) == {"image", "mask", "sigma", "radius"}
    assert item["image"].shape == (3, 64, 64)
    for key in ("mask", "sigma", "radius"):
        assert item[key].shape == (1, 64, 64)
    for v in item.values():
        assert v.dtype == torch.float32
    torch.testing.assert_close(ds[2]["image"], item["image"])
    assert torch.equal(item["mask"], (item["radius"] > 1.0).float())
    with pytest.raises(IndexError):
        ds[5]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 64, 64)


@needs_shared
def test_write_dataset_layout(tmp_path):
    from defocus.errors import OutputExistsError
    from defocus.io import read_image, read_map
    from defocus.synth import SynthDataset, write_dataset

    write_dataset(tmp_path / "d", 3, seed=5, size=48, split="test")
    names = [f"synth_{i:06d}" for i in range(3)]
    for sub, ext in (("images", ".png"), ("masks", ".png"), ("sigma", ".npy"), ("radius", ".npy")):
        assert sorted(p.name for p in (tmp_path / "d" / sub).iterdir()) == [n + ext for n in names]
    assert (tmp_path / "d" / "samples.csv").read_text().splitlines()[0] == "name,kind,psf"
    ref = SynthDataset(3, 48, 5, "test").sample(1)
    np.testing.assert_allclose(read_image(tmp_path / "d" / "images" / f"{names[1]}.png"), ref.image, atol=1e-6)
    np.testing.assert_array_equal(read_map(tmp_path / "d" / "masks" / f"{names[1]}.png"), ref.blur_mask)
    np.testing.assert_array_equal(np.load(tmp_path / "d" / "radius" / f"{names[1]}.npy"), ref.coc_radius)
    with pytest.raises(OutputExistsError):
        write_dataset(tmp_path / "d", 3, seed=5, size=48, split="test")
    try:
        from defocus.data import open_dataset
    except ImportError:
        return
    ds = open_dataset("folder", tmp_path / "d", polarity="blur")
    assert len(ds) == 3
    np.testing.assert_array_equal(ds[1].blur_mask(), ref.blur_mask)


@needs_shared
def test_command_writes_dataset(tmp_path, capsys):
    from defocus.synth import command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "o"), "--n", "2", "--seed", "1", "--size", "40",
                              "--kinds", "all_sharp,layout"])
    assert command.run(args) == 0
    assert len(list((tmp_path / "o" / "masks").iterdir())) == 2
    bad = parser.parse_args(["--out", str(tmp_path / "p"), "--n", "1", "--kinds", "nope"])
    with pytest.raises(DefocusError, match="nope"):
        command.run(bad)


# ---------------------------------------------------------------------------------------------------------------------
# Sources


@needs_shared
def test_sources_split_disjoint_and_fixed():
    from defocus.synth.sources import find_sources, split_of

    splits = {s: find_sources(s, SHARED) for s in ("train", "val", "test")}
    for field in ("sharp", "masked", "layouts"):
        sets = {s: set(getattr(src, field)) for s, src in splits.items()}
        assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
        total = sum(len(v) for v in sets.values())
        assert total > 0
        held_out = (len(sets["val"]) + len(sets["test"])) / total
        assert 0.1 < held_out < 0.3, (field, held_out)
    assert len(splits["train"].sharp) + len(splits["val"].sharp) + len(splits["test"].sharp) == 179
    assert split_of("ECSSD", "0001.jpg") == split_of("ECSSD", "0001.png")  # by stem: image and mask go together


def test_missing_shared_folder_is_a_clear_error(tmp_path, monkeypatch):
    from defocus.synth.sources import find_sources, shared_root

    monkeypatch.setenv("DEFOCUS_SHARED", str(tmp_path / "nowhere"))
    with pytest.raises(DefocusError, match="DEFOCUS_SHARED"):
        shared_root()
    with pytest.raises(DefocusError, match="nowhere"):
        find_sources("train")


@needs_shared
def test_background_sharpness_check():
    from defocus.synth.scenes import reblur_ratio

    rng = np.random.default_rng(0)
    gray = rng.random((120, 120)).astype(np.float32)
    import cv2

    soft = cv2.GaussianBlur(gray, (0, 0), 2.0)
    region = np.ones_like(gray, bool)
    sharp_ratio, _ = reblur_ratio(gray, region)
    soft_ratio, _ = reblur_ratio(soft, region)
    assert sharp_ratio < 0.6 < 0.75 < soft_ratio


# ---------------------------------------------------------------------------------------------------------------------
# Optional realism (lens profiles, demosaicing)


@pytest.mark.parametrize("phase", range(4))
@pytest.mark.parametrize("edge_aware", [False, True])
def test_bayer_demosaic_keeps_flat_colour_and_smooth_ramps(phase, edge_aware):
    from defocus.synth.camera import bayer_demosaic

    flat = np.ones((16, 20, 3), np.float32) * np.array([0.2, 0.5, 0.8], np.float32)
    np.testing.assert_allclose(bayer_demosaic(flat, phase, edge_aware=edge_aware), flat, atol=2e-5)
    x = np.linspace(0, 1, 32, dtype=np.float32)
    ramp = np.stack([np.tile(x, (32, 1)), np.tile(x[:, None], (1, 32)), np.full((32, 32), 0.3, np.float32)], -1)
    out = bayer_demosaic(ramp, phase)
    np.testing.assert_allclose(out[4:-4, 4:-4], ramp[4:-4, 4:-4], atol=1e-4)  # a wrong phase swaps colours
    stripes = np.zeros((16, 16, 3), np.float32)
    stripes[:, ::2] = 1.0
    assert np.abs(bayer_demosaic(stripes, phase) - stripes).max() > 0.2  # fine detail does not survive


def test_realism_is_off_by_default_and_checked():
    from defocus.synth.dataset import Realism

    with pytest.raises(ValueError, match="lens_psfs"):
        Realism(lens_psfs=1.5)
    with pytest.raises(ValueError, match="demosaic"):
        Realism(demosaic=-0.1)
    with pytest.raises(ValueError, match="chromatic"):
        Realism(chromatic=2)
    with pytest.raises(ValueError, match="cats_eye"):
        Realism(cats_eye=-1)


@needs_shared
def test_realism_changes_only_what_it_is_asked_to():
    from defocus.synth.dataset import Realism, render_sample, sample_rng

    plain = [render_sample(sample_rng(3, i), 96) for i in range(6)]
    again = [render_sample(sample_rng(3, i), 96, realism=Realism()) for i in range(6)]
    for a, b in zip(plain, again):  # the default stream is the one the bundled models were trained on
        np.testing.assert_array_equal(a.image, b.image)
    lens = [render_sample(sample_rng(3, i), 96, realism=Realism(lens_psfs=1.0)) for i in range(6)]
    for a, b in zip(plain, lens):
        # the same scene: the labels agree but where a blurred foreground's disc edge decides them
        assert (a.blur_mask == b.blur_mask).mean() > 0.98
        assert (b.psf in psf.LENS_PROFILES) == (a.psf == "disk")
    mosaic = [render_sample(sample_rng(3, i), 96, realism=Realism(demosaic=1.0)) for i in range(6)]
    assert all((a.blur_mask == b.blur_mask).mean() > 0.98 for a, b in zip(plain, mosaic))
    assert any(not np.array_equal(a.image, b.image) for a, b in zip(plain, mosaic))
    chroma = [render_sample(sample_rng(3, i), 96, realism=Realism(chromatic=1.0)) for i in range(6)]
    for a, b in zip(plain, chroma):  # labels are green's, so exactly those of the plain scene
        np.testing.assert_array_equal(a.coc_radius, b.coc_radius)
        assert not np.array_equal(a.image, b.image)
    eyes = [render_sample(sample_rng(3, i), 96, realism=Realism(cats_eye=1.0)) for i in range(6)]
    for a, b in zip(plain, eyes):  # only disk-PSF samples change, and never their labels
        np.testing.assert_array_equal(a.coc_radius, b.coc_radius)
        assert np.array_equal(a.image, b.image) == (a.psf != "disk")


def test_cats_eye_kernels_are_clipped_discs_pointing_their_way():
    k = psf.kernel(6.0, "cats_eye:0:60")
    disc = psf.kernel(6.0)
    assert k.shape == disc.shape and abs(k.sum() - 1) < 1e-5 and (k > 0).sum() < 0.8 * (disc > 0).sum()
    cols = np.arange(k.shape[1]) - k.shape[1] // 2
    assert (k.sum(axis=0) * cols).sum() < -0.5  # stored point-reflected: the kept part lies opposite direction 0
    np.testing.assert_allclose(psf.kernel(6.0, "cats_eye:2:60"), np.rot90(k, -1), atol=1e-6)  # 90° on (y down)
    image = np.zeros((41, 41), np.float32)
    image[20, 20] = 1.0  # the PSF itself: light spreads towards direction 0 (+x)
    spread = psf.convolve(image, k)
    assert (spread.sum(axis=0) * (np.arange(41) - 20)).sum() > 0.5


def test_chromatic_aberration_colours_the_edges_of_an_in_focus_grey_step():
    """A sharp grey edge stays grey without aberration; with it, red and blue part from green at the edge only."""
    from defocus.synth.dataset import _with_chromatic_aberration
    from defocus.synth.render import Layer, render

    color = np.zeros((64, 64, 3), np.float32)
    color[:, 32:] = 0.8
    layer = Layer(color=color, alpha=np.ones((64, 64), np.float32), signed_radius=np.zeros((64, 64), np.float32))

    def lens(layers):
        return render(layers, "disk").image

    plain = _with_chromatic_aberration(lens, [layer], color, axial=0.0, lateral=0.0)
    np.testing.assert_allclose(plain, color, atol=1e-6)  # nothing to add: grey, in focus, no magnification
    fringe = _with_chromatic_aberration(lens, [layer], color, axial=1.0, lateral=0.0)
    spread = np.abs(fringe[..., 0] - fringe[..., 1]) + np.abs(fringe[..., 2] - fringe[..., 1])
    assert spread[:, 28:36].max() > 0.05 and spread[:, :24].max() < 1e-6 and spread[:, 40:].max() < 1e-6


@needs_shared
def test_synth_dataset_option_realism():
    from defocus.data import open_dataset

    ds = open_dataset("synth", None, n=2, size=64, lens_psfs=1.0, demosaic=1.0)
    assert ds.name == "synth_test_realism" and "demosaic 1.0" in ds.layout
    assert open_dataset("synth", None, n=2, size=64).name == "synth_test"
    from defocus.errors import DatasetError

    with pytest.raises(DatasetError, match="demosaic"):
        open_dataset("synth", None, n=2, size=64, demosaic=2)


def test_chromatic_aberration_renders_red_and_blue_through_the_cats_eye_lens_too():
    """With both options, red and blue are rendered by the same vignetted lens as green (just off its focus)."""
    from defocus.synth.dataset import _cats_eye_lens, _with_chromatic_aberration
    from defocus.synth.render import Layer

    color = np.zeros((96, 96, 3), np.float32)
    color[8, 8] = color[8, 88] = 50.0  # point lights near two corners: their discs are cat's eyes
    layer = Layer(color=color, alpha=np.ones((96, 96), np.float32), signed_radius=np.full((96, 96), 6.0, np.float32))
    green = _cats_eye_lens([layer])
    aberrated = _with_chromatic_aberration(_cats_eye_lens, [layer], green, axial=0.0, lateral=0.0)
    np.testing.assert_allclose(aberrated, green, atol=1e-6)
