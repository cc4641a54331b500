"""Regression tests of the hostile trial: bad inputs get one line, nothing written is lost, outputs never race.

Each test names the defect it guards (numbers of the reliability issue).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import defocus
from defocus.cli import main, output_stems
from defocus.errors import ImageReadError, OutputExistsError
from defocus.io import (
    StagedFiles, atomic_write, colorize_defocus, read_image, remove_stale_parts, write_defocus_png,
)

from conftest import half_blurred
from hostile import make_corpus

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _photo(path: Path, h: int = 48, w: int = 64, seed: int = 0) -> Path:
    image, _ = half_blurred(h, w, seed=seed)
    Image.fromarray((image * 255).astype(np.uint8)).save(path)
    return path


def _nan_tiff(path: Path) -> Path:
    a = np.random.default_rng(0).random((214, 320), dtype=np.float32)
    a[10, 10] = np.nan
    tifffile.imwrite(path, a)
    return path


# 1, 2 -----------------------------------------------------------------------------------------------------------


def test_nan_tiff_neither_crashes_hifst_nor_stops_the_batch(tmp_path, capsys):
    nan = _nan_tiff(tmp_path / "nan.tif")
    a, b = _photo(tmp_path / "a.png"), _photo(tmp_path / "b.png", seed=1)
    out = tmp_path / "out"
    assert main(["detect", str(a), str(nan), str(b), "-m", "hifst", "-o", str(out), "--npy"]) == 0
    for stem in ("a", "nan", "b"):
        assert np.isfinite(np.load(out / f"{stem}_blur.npy")).all()
    assert "non-finite" in capsys.readouterr().err


def test_float_tiff_scaled_by_its_range_and_finite(tmp_path):
    a = np.random.default_rng(0).random((20, 30), dtype=np.float32)
    tifffile.imwrite(tmp_path / "unit.tif", a)
    tifffile.imwrite(tmp_path / "byte.tif", a * 255 + 3)
    np.testing.assert_allclose(read_image(tmp_path / "unit.tif")[..., 0], a, atol=1e-7)
    scaled = read_image(tmp_path / "byte.tif")[..., 0]
    np.testing.assert_allclose(scaled, (a - a.min()) / (a.max() - a.min()), atol=1e-5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = read_image(_nan_tiff(tmp_path / "nan.tif"))
    assert np.isfinite(img).all() and img.mean() > 0.4  # not scaled into near-black
    assert any("nan.tif" in str(w.message) for w in caught)


def test_every_network_map_is_finite_on_a_nan_tiff(tmp_path):
    out = tmp_path / "o"
    assert main(["detect", str(_nan_tiff(tmp_path / "nan.tif")), "-o", str(out), "--npy"]) == 0
    assert np.isfinite(np.load(out / "nan_blur.npy")).all()


@pytest.mark.parametrize("name", defocus.available())
def test_every_method_survives_non_finite_pixels_through_the_api(name):
    image, _ = half_blurred(40, 56)
    image[3, 4] = np.nan
    image[10, :5] = np.inf
    image[11, :5] = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = defocus.load(name).predict(image)
    assert out.shape == (40, 56) and np.isfinite(out).all()


# 3, 4, 7 -------------------------------------------------------------------------------------------------------


def test_two_runs_into_one_folder_never_mix_their_files(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(16):
        _photo(photos / f"p{i:02d}.png", seed=i)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "defocus.cli", "detect", str(photos), "-o", str(out), "--npy"]
    runs = [subprocess.Popen(cmd + ["-m", m], stderr=subprocess.PIPE, text=True) for m in ("gradient-energy", "lbp")]
    errs = [r.communicate()[1] for r in runs]
    assert "Traceback" not in "".join(errs)
    for i in range(16):
        png = np.asarray(Image.open(out / f"p{i:02d}_blur.png"), np.float32) / 255
        npy = np.load(out / f"p{i:02d}_blur.npy")
        np.testing.assert_allclose(png, npy, atol=0.5 / 255 + 1e-6)  # both files from the same run
    assert not list(out.glob(".*.part"))


def test_racing_writers_of_one_file_without_force_leave_exactly_one_winner(tmp_path):
    target = tmp_path / "x.bin"
    barrier = threading.Barrier(8)
    results = []

    def writer(k):
        barrier.wait()
        try:
            atomic_write(target, lambda f: f.write(bytes([k]) * 1000))
            results.append(k)
        except OutputExistsError:
            pass

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(results) == 1 and target.read_bytes() == bytes([results[0]]) * 1000


def test_a_failed_photo_leaves_none_of_its_files(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(RuntimeError):
        with StagedFiles() as stage:
            stage.write(out / "a.png", lambda f: f.write(b"a"))
            raise RuntimeError("the second output failed")
    assert not out.exists() or not list(out.iterdir())
    stage = StagedFiles()
    stage.write(out / "b1.png", lambda f: f.write(b"mine"))
    stage.write(out / "b2.png", lambda f: f.write(b"mine"))
    (out / "b2.png").write_bytes(b"another run's")  # another process got there between staging and placing
    with pytest.raises(OutputExistsError):
        stage.commit()
    assert sorted(p.name for p in out.iterdir()) == ["b2.png"]
    assert (out / "b2.png").read_bytes() == b"another run's"


def test_estimate_on_images_nine_pixels_tall_or_less(tmp_path):
    for h in (1, 5, 9, 10):
        assert colorize_defocus(np.random.rand(h, 30).astype(np.float32) * 3).shape[0] == h
    out = tmp_path / "o"
    src = _photo(tmp_path / "short.png", h=9, w=64)
    assert main(["estimate", str(src), "-o", str(out)]) == 0
    assert (out / "short_defocus.npy").exists() and (out / "short_defocus.png").exists()


def test_inputs_sharing_a_stem_get_distinct_outputs(tmp_path):
    a_jpg, a_png = tmp_path / "a.jpg", _photo(tmp_path / "a.png")
    Image.open(a_png).save(a_jpg)
    out = tmp_path / "o"
    assert main(["detect", str(a_jpg), str(a_png), "-o", str(out), "-m", "lbp"]) == 0
    assert {p.name for p in out.iterdir()} == {"a.jpg_blur.png", "a.jpg_overlay.jpg", "a.png_blur.png",
                                               "a.png_overlay.jpg"}


def test_same_file_name_in_two_folders_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    one, two = _photo(tmp_path / "x" / "a.png"), _photo(tmp_path / "y" / "a.png")
    out = tmp_path / "o"
    assert main(["detect", str(one), str(two), "-o", str(out), "-m", "lbp", "--force"]) == 2
    err = capsys.readouterr().err
    assert str(one) in err and str(two) in err
    assert not out.exists() or not list(out.iterdir())


# 5 --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = atomic_write(tmp_path / f"f{umask:o}.bin", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


# 8 --------------------------------------------------------------------------------------------------------------


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".a_blur.png.{dead_pid}-0123abcd.part"
    live = tmp_path / f".b_blur.png.{os.getpid()}-0123abcd.part"
    old_style = tmp_path / ".c_blur.png.k2j3h4.part"
    for p in (stale, live, old_style):
        p.write_bytes(b"half")
    os.utime(old_style, (time.time() - 3 * 86_400,) * 2)
    removed = remove_stale_parts(tmp_path)
    assert set(removed) == {stale, old_style} and live.exists()


def test_next_run_cleans_the_output_folder(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / ".x_blur.png.999999999-00000000.part").write_bytes(b"x" * 100)
    assert main(["detect", str(_photo(tmp_path / "p.png")), "-o", str(out), "-m", "lbp"]) == 0
    assert not list(out.glob(".*.part"))


def test_sigterm_ends_a_run_cleanly(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(40):
        _photo(photos / f"p{i:02d}.png", 200, 300, seed=i)
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "defocus.cli", "detect", str(photos), "-o", str(out), "-m", "svd"],
                            stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # the first photo is done: the run is under way
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[1]
    assert "[1/40]" in first and proc.returncode == 143
    assert "terminated" in rest and "Traceback" not in rest
    assert not list(out.glob(".*.part"))


# 9 --------------------------------------------------------------------------------------------------------------


def test_a_small_file_with_too_many_pixels_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("L", (12_000, 12_000), 0).save(path)  # 144 MP in about 140 kB
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        read_image(path)
    small = _photo(tmp_path / "small.png")
    with pytest.raises(ImageReadError, match="max-pixels"):
        read_image(small, max_pixels=100)
    assert read_image(small, max_pixels=None).shape == (48, 64, 3)


# 10, 11 ---------------------------------------------------------------------------------------------------------


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    photo = str(_photo(tmp_path / "p.png"))
    assert main(["detect", photo, "-o", str(tmp_path / "o"), "--device", "tpu"]) == 2
    assert main(["detect", photo, "-o", str(tmp_path / "o"), "-m", "no-such-method"]) == 2
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert main(["detect", photo, "-o", str(not_a_folder), "-m", "lbp"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 3 and all(line.startswith("defocus: error:") for line in lines)
    assert "tpu" in lines[0] and "no-such-method" in lines[1] and "not a folder" in lines[2]


def test_bad_output_folder_is_found_before_any_photo_is_computed(tmp_path, capsys):
    if os.geteuid() == 0:
        blocked = tmp_path / "file" / "sub"  # root can write anywhere; a path through a file cannot be created
        (tmp_path / "file").write_text("x")
    else:
        blocked = tmp_path / "ro"
        blocked.mkdir(mode=0o500)
    assert main(["detect", str(EXAMPLES), "-o", str(blocked), "-m", "svd"]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and str(blocked) in err
    assert "[1/" not in err  # refused before the first photo was computed


def test_sixteen_bit_tiff_orientation_applied_once(tmp_path):
    rgb = np.random.default_rng(0).random((20, 30, 3))
    u16 = (rgb * 65535).astype(np.uint16)
    for name, arr in (("rgb.tif", u16), ("grey.tif", u16[..., 0])):
        tifffile.imwrite(tmp_path / name, arr, extratags=[(274, "H", 1, 6, True)])
        got = read_image(tmp_path / name)
        expected = np.rot90(arr.astype(np.float32) / 65535, -1)
        expected = expected if expected.ndim == 3 else np.repeat(expected[..., None], 3, axis=2)
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_progress_and_summary_lines_when_stderr_is_not_a_terminal(tmp_path):
    photos = [str(_photo(tmp_path / f"p{i}.png", seed=i)) for i in range(3)]
    res = subprocess.run([sys.executable, "-m", "defocus.cli", "detect", *photos, "-o", str(tmp_path / "o"),
                          "-m", "lbp"], capture_output=True, text=True)
    assert res.returncode == 0 and "\r" not in res.stderr
    lines = res.stderr.splitlines()
    assert [line.split("]")[0] for line in lines[:3]] == ["defocus: [1/3", "defocus: [2/3", "defocus: [3/3"]
    assert lines[-1] == f"defocus: wrote 6 files for 3 of 3 photo(s) into {tmp_path / 'o'}"


def test_special_files_are_named_for_what_they_are(tmp_path):
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(tmp_path / "loop2.jpg")
    (tmp_path / "loop2.jpg").symlink_to(loop)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match="symbolic link loop"):
        read_image(loop)
    with pytest.raises(ImageReadError, match="FIFO"):
        read_image(fifo)


def test_scale_bar_title_clears_the_top_tick_label(tmp_path):
    bar = colorize_defocus(np.tile(np.linspace(0, 3, 400, dtype=np.float32), (1280, 1)), unit="px sigma")[:, 400:]
    ink_rows = np.flatnonzero((bar[:, bar.shape[1] // 3 :] < 0.5).any(axis=(1, 2)))
    gaps = np.flatnonzero(np.diff(ink_rows) > 1)
    assert gaps.size >= 1  # the title's rows end, then blank rows, then the top tick label's rows
    title_end, tick_start = ink_rows[gaps[0]], ink_rows[gaps[0] + 1]
    assert tick_start - title_end >= 3
    write_defocus_png(tmp_path / "bar.png", np.ones((2, 2), np.float32))


# the hostile corpus ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["detect", "estimate"])
def test_hostile_corpus_in_one_batch(tmp_path, command):
    good, bad = make_corpus(tmp_path / "corpus")
    assert len(good) + len(bad) >= 60
    out = tmp_path / "out"
    singles = [str(p) for p in bad if not p.is_file() or p.is_symlink()]
    res = subprocess.run([sys.executable, "-m", "defocus.cli", command, str(tmp_path / "corpus"), *singles,
                          "-o", str(out), "--max-pixels", "1000000", "--npy" if command == "detect" else "--force"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("defocus: error:")]
    for p in bad:
        assert any(p.name in line for line in errors), p.name
    suffix = "_blur.npy" if command == "detect" else "_defocus.npy"
    stems = set(output_stems(good).values())
    for stem in stems:
        values = np.load(out / f"{stem}{suffix}")
        assert np.isfinite(values).all(), stem
    written = {p.name for p in out.iterdir()}
    assert not [n for n in written if n.endswith(".part") or n.startswith(".")]
    assert not [n for n in written if any(n.startswith(p.stem + "_") for p in bad if p.stem not in stems)]
    assert len(written) == len(stems) * (3 if command == "detect" else 2)
