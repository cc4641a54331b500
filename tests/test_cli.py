import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import defocus
from defocus.cli import main
from defocus.io import read_map

from conftest import half_blurred


@pytest.fixture
def photo_dir(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    image, _ = half_blurred(64, 80)
    Image.fromarray((image * 255).astype(np.uint8)).save(folder / "good.png")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    return folder


def test_detect_batch_keeps_going_and_fails_at_end(photo_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["detect", str(photo_dir), "-o", str(out), "--npy"])
    err = capsys.readouterr().err
    assert code == 1
    assert (out / "good_blur.png").exists() and (out / "good_overlay.jpg").exists() and (out / "good_blur.npy").exists()
    assert not list(out.glob("empty*")) and not list(out.glob("text*"))
    errors = [line for line in err.splitlines() if line.startswith("defocus: error:")]
    assert any("empty.jpg" in e for e in errors) and any("text.png" in e for e in errors)
    assert "Traceback" not in err
    blur = np.load(out / "good_blur.npy")
    png = read_map(out / "good_blur.png")
    assert blur.dtype == np.float32 and blur.shape == (64, 80)
    np.testing.assert_allclose(png, blur, atol=1 / 255 + 1e-6)


def test_focus_writes_complement(photo_dir, tmp_path):
    good = str(photo_dir / "good.png")
    assert main(["detect", good, "-o", str(tmp_path / "b"), "--npy"]) == 0
    assert main(["detect", good, "-o", str(tmp_path / "f"), "--npy", "--focus"]) == 0
    blur = np.load(tmp_path / "b" / "good_blur.npy")
    focus = np.load(tmp_path / "f" / "good_focus.npy")
    np.testing.assert_allclose(focus, 1 - blur, atol=1e-6)


def test_no_overwrite_without_force(photo_dir, tmp_path, capsys):
    good = str(photo_dir / "good.png")
    out = tmp_path / "o"
    assert main(["detect", good, "-o", str(out)]) == 0
    before = (out / "good_blur.png").read_bytes()
    assert main(["detect", good, "-o", str(out), "-m", defocus.DEFAULT_DETECTOR]) == 1
    assert "--force" in capsys.readouterr().err
    assert (out / "good_blur.png").read_bytes() == before
    assert main(["detect", good, "-o", str(out), "--force"]) == 0


def test_missing_input_and_unknown_method(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "nothing.jpg"), "-o", str(tmp_path / "o")]) == 1
    assert main(["detect", str(tmp_path), "-o", str(tmp_path / "o"), "-m", "nope"]) == 2  # usage error
    err = capsys.readouterr().err
    assert "nothing.jpg" in err and "unknown method" in err


def test_task_mismatch_is_refused(photo_dir, tmp_path, capsys):
    dme = defocus.available("dme")
    if not dme:
        pytest.skip("no DME method registered")
    assert main(["detect", str(photo_dir / "good.png"), "-o", str(tmp_path), "-m", dme[0]]) == 2
    assert "estimate" in capsys.readouterr().err


def test_estimate_writes_sigma_and_radius(photo_dir, tmp_path):
    dme = defocus.available("dme")
    if not dme:
        pytest.skip("no DME method registered")
    good = str(photo_dir / "good.png")
    assert main(["estimate", good, "-o", str(tmp_path / "s"), "-m", dme[0]]) == 0
    assert main(["estimate", good, "-o", str(tmp_path / "r"), "-m", dme[0], "--units", "radius"]) == 0
    sigma = np.load(tmp_path / "s" / "good_defocus.npy")
    radius = np.load(tmp_path / "r" / "good_defocus.npy")
    assert sigma.dtype == np.float32 and sigma.shape == (64, 80)
    assert (tmp_path / "s" / "good_defocus.png").exists()
    assert np.all(radius >= sigma - 1e-6)


def test_methods_lists_names_first(capsys):
    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == defocus.available()


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "defocus.cli", "methods"], capture_output=True, text=True)
    assert result.returncode == 0 and defocus.DEFAULT_DETECTOR in result.stdout


# ----------------------------------------------------------------------------------------------------------------------
# Method options and trained weights


def test_unknown_option_is_a_one_line_usage_error(photo_dir, tmp_path, capsys):
    args = ["detect", str(photo_dir / "good.png"), "-o", str(tmp_path), "-m", "gradient-energy"]
    assert main(args + ["--option", "reblur_sigmaa=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["defocus: error: gradient-energy: unknown option 'reblur_sigmaa'; valid options: reblur_sigma, "
                   "windows"]
    assert main(args + ["--weights", "model.safetensors"]) == 2  # an option of learned methods only
    assert "unknown option 'weights'" in capsys.readouterr().err


def test_option_without_a_value_is_a_usage_error(photo_dir, tmp_path, capsys):
    args = ["detect", str(photo_dir / "good.png"), "-o", str(tmp_path), "-m", "lbp", "--option", "segment"]
    assert main(args) == 2
    assert "--option 'segment': expected KEY=VALUE" in capsys.readouterr().err


def test_options_reach_the_method(photo_dir, tmp_path):
    good = photo_dir / "good.png"
    out = tmp_path / "o"
    assert main(["detect", str(good), "-o", str(out), "-m", "gradient-energy", "--npy",
                 "--option", "reblur_sigma=3.0", "--option", "windows=(9, 17)"]) == 0
    expected = defocus.load("gradient-energy", reblur_sigma=3.0, windows=(9, 17)).predict(defocus.read_image(good))
    np.testing.assert_array_equal(np.load(out / "good_blur.npy"), np.clip(expected, 0, 1))


def test_weights_file_from_training_replaces_the_bundled_one(photo_dir, tmp_path, capsys):
    import torch

    from defocus.nets.dffnet import LightDFFNet
    from defocus.nets.modelfile import save_model
    from defocus.nets.weights import sha256_of

    torch.manual_seed(0)
    path = save_model(LightDFFNet(width=8).eval(), tmp_path / "model.safetensors", metadata={"config": "tiny"})
    good = photo_dir / "good.png"
    out = tmp_path / "o"
    assert main(["detect", str(good), "-o", str(out), "-m", "dffnet", "--npy", "--weights", str(path)]) == 0
    trained = defocus.load("dffnet", weights=str(path))
    assert trained.model.arch["width"] == 8
    np.testing.assert_array_equal(np.load(out / "good_blur.npy"), trained.predict(defocus.read_image(good)))
    assert main(["detect", str(good), "-o", str(out), "-m", "dffnet", "--force", "--weights", str(path),
                 "--option", f"sha256={sha256_of(path)}"]) == 0
    capsys.readouterr()
    for wrong in ("f" * 64, "0" * 64):  # the second arrives as the number 0
        assert main(["detect", str(good), "-o", str(out), "-m", "dffnet", "--force", "--weights", str(path),
                     "--option", f"sha256={wrong}"]) == 1
        assert "sha256" in capsys.readouterr().err


def test_help_offers_the_registry_names_and_methods_shows_aliases(capsys):
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in defocus.available("dbd"))
    assert main(["methods"]) == 0
    lines = {line.split("\t")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "d-dffnet" in lines["dffnet.distilled"]
