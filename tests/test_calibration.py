"""Calibration of the networks' blur probability (defocus.nets.calibration; docs/calibration.md)."""

from __future__ import annotations

import numpy as np
import pytest

from defocus.nets.calibration import (apply_calibration, check_calibration, fit_isotonic, fit_temperature,
                                      fit_temperature_mae, logit, reliability, sigmoid)

GRID = np.linspace(0.0, 1.0, 1001, dtype=np.float32)


def _generated(temperature: float, bias: float, n: int = 200_000, seed: int = 0):
    """Logits whose labels are drawn from sigmoid(z / T + b): the fit should find T and b."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 4.0, n)
    y = rng.random(n) < sigmoid(z / temperature + bias)
    return z, y


@pytest.mark.parametrize("calibration", [
    {"temperature": 0.5, "bias": 0.3}, {"temperature": 2.0, "bias": -1.0}, {"temperature": 1.0},
    {"isotonic": [[0.0, 0.2, 0.5, 0.9, 1.0], [0.0, 0.05, 0.5, 0.5, 0.98]]},
])
def test_transform_monotone_in_unit_range_and_finite(calibration):
    out = apply_calibration(GRID, calibration)
    assert out.dtype == np.float32 and out.shape == GRID.shape
    assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 1.0
    assert np.all(np.diff(out) >= 0)
    img = np.random.default_rng(1).random((7, 9)).astype(np.float32)
    img[0, 0], img[0, 1] = 0.0, 1.0  # exact 0 and 1 (saturated sigmoids) stay finite
    mapped = apply_calibration(img, calibration)
    assert mapped.shape == img.shape and np.all(np.isfinite(mapped))


def test_identity_when_off():
    img = np.random.default_rng(2).random((5, 6)).astype(np.float32)
    np.testing.assert_array_equal(apply_calibration(img, None), img)
    np.testing.assert_allclose(apply_calibration(img, {"temperature": 1.0, "bias": 0.0}), img, atol=1e-6)


@pytest.mark.parametrize("temperature,bias", [(0.5, 0.0), (1.0, 0.5), (2.5, -0.7)])
def test_fit_recovers_known_temperature(temperature, bias):
    z, y = _generated(temperature, bias)
    fitted = fit_temperature(z, y)
    assert fitted["temperature"] == pytest.approx(temperature, rel=0.05)
    assert fitted["bias"] == pytest.approx(bias, abs=0.05)
    assert fit_temperature(z, y, bias=False)["bias"] == 0.0


def test_mae_fit_sharpens_and_beats_the_calibrated_map_in_mae():
    """Labels drawn from sigmoid(z / 3 - 1): the MAE is lowest near the threshold z = 3, reached by a hard map;
    the calibrated map (T = 3, b = -1) has the lower ECE, the MAE fit the lower MAE."""
    z, y = _generated(3.0, -1.0)
    sharp = fit_temperature_mae(z, y)
    calibrated = {"temperature": 3.0, "bias": -1.0}
    check_calibration(sharp)
    assert sharp["temperature"] < 3.0
    p = sigmoid(z).astype(np.float32)

    def mae(c):
        return float(np.mean(np.abs(apply_calibration(p, c) - y)))

    assert mae(sharp) < mae(calibrated) and mae(sharp) < mae(None)
    assert reliability(apply_calibration(p, calibrated), y)["ece"] < reliability(apply_calibration(p, sharp), y)["ece"]
    decisive = fit_temperature_mae(z, y, bias=False)  # the threshold stays at p = 0.5
    assert decisive["bias"] == 0.0 and decisive["temperature"] < 1.0
    assert np.array_equal(apply_calibration(p, decisive) > 0.5, p > 0.5) and mae(decisive) < mae(None)


def test_isotonic_fit_is_a_valid_table_that_calibrates():
    z, y = _generated(3.0, 0.0)
    p = sigmoid(z)
    table = fit_isotonic(p, y, knots=24)
    check_calibration(table)
    x, _ = table["isotonic"]
    assert len(x) <= 26 and x[0] == 0.0 and x[-1] == 1.0
    before = reliability(p, y)["ece"]
    after = reliability(apply_calibration(p, table), y)["ece"]
    assert after < before / 3


def test_logit_and_sigmoid_invert():
    p = np.array([0.0, 1e-3, 0.3, 0.5, 0.99, 1.0])
    np.testing.assert_allclose(sigmoid(logit(p)), np.clip(p, 1e-6, 1 - 1e-6), atol=1e-9)
    assert np.all(np.isfinite(sigmoid(np.array([-1e4, 1e4]))))


@pytest.mark.parametrize("bad", [{"temperature": 0.0}, {"temperature": -1, "bias": 0},
                                 {"isotonic": [[0.0, 0.5, 0.4], [0.0, 0.1, 0.2]]},
                                 {"isotonic": [[0.0, 1.0], [0.6, 0.2]]}, {"scale": 2.0}])
def test_bad_calibration_refused(bad):
    with pytest.raises(ValueError):
        apply_calibration(GRID, bad)


def test_bundled_calibrations_are_valid_literals():
    """Every bundled entry's calibration (read without importing torch, as `defocus methods` does) is valid."""
    from defocus.registry import listed_pretrained, network_modules

    for module in network_modules():
        for entry in listed_pretrained(module):
            check_calibration(entry.calibration)
            check_calibration(entry.decisive)
            if entry.decisive is not None:  # a temperature that sharpens, nothing else
                assert set(entry.decisive) == {"temperature", "bias"} and entry.decisive["temperature"] < 1


def test_detector_option_turns_it_off(monkeypatch):
    """calibrate=False (or the CLI's string "false") gives the raw probability; a user weight file gets none."""
    pytest.importorskip("torch")
    import defocus

    on = defocus.load("light-dffnet", runtime="torch")
    off = defocus.load("light-dffnet", runtime="torch", calibrate="false")
    assert off.calibration is None and on.calibration == on.pretrained.calibration
    img = np.random.default_rng(3).random((48, 64, 3)).astype(np.float32)
    a, b = on.predict(img), off.predict(img)
    assert a.shape == b.shape == (48, 64) and np.all(np.isfinite(a)) and 0 <= a.min() and a.max() <= 1
    if on.calibration is None:
        np.testing.assert_array_equal(a, b)


def test_detector_takes_a_calibration_dict_and_refuses_a_bad_one():
    """calibrate={...} applies that map (the CLI's `--option calibrate={...}` arrives as this dict)."""
    pytest.importorskip("torch")
    import defocus
    from defocus.errors import UsageError

    sharp = {"temperature": 0.25, "bias": 0.0}
    on = defocus.load("light-dffnet", runtime="torch", calibrate=sharp)
    off = defocus.load("light-dffnet", runtime="torch", calibrate=False, refine=False)
    assert on.calibration == sharp
    img = np.random.default_rng(4).random((320, 320, 3)).astype(np.float32)  # the working size: no resampling
    raw = off.predict(img)
    mapped = defocus.load("light-dffnet", runtime="torch", calibrate=sharp, refine=False).predict(img)
    np.testing.assert_allclose(mapped, apply_calibration(raw, sharp), atol=1e-5)
    with pytest.raises(UsageError, match="calibrate"):
        defocus.load("light-dffnet", runtime="torch", calibrate={"temperature": -1.0})


def test_shipped_calibration_is_applied_by_default_and_off_on_request():
    """r2mrf ships an isotonic table (docs/calibration.md); the others ship none."""
    pytest.importorskip("torch")
    import defocus
    from defocus.registry import listed_pretrained, network_modules

    shipped = {e.name: e.calibration for m in network_modules() for e in listed_pretrained(m)}
    assert "isotonic" in shipped["r2mrf"]
    assert shipped["light-dffnet"] is None  # the default detector's maps are unchanged
    assert defocus.load("r2mrf", runtime="torch").calibration == shipped["r2mrf"]
    assert defocus.load("r2mrf", runtime="torch", calibrate=False).calibration is None


def test_calibration_benchmark_runs(shared_dir, tmp_path, capsys, monkeypatch):
    """benchmarks/calibrate.py end to end at a tiny size: the table, the chosen literal, a reliability PNG."""
    import importlib.util
    import sys
    from pathlib import Path

    import cv2

    pytest.importorskip("torch")
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "calibrate.py"
    spec = importlib.util.spec_from_file_location("calibrate_bench", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)
    spec.loader.exec_module(bench)
    code = bench.main(["--shared", str(shared_dir), "--networks", "light-dffnet", "--fit", "2", "--choose", "2",
                       "--synth", "2", "--plots", str(tmp_path), "--out", str(tmp_path / "table.md")])
    out = capsys.readouterr().out
    assert code == 0
    assert "| light-dffnet | val_choose | 2 |" in out and "| light-dffnet | cuhk_te1_320 | 5 |" in out
    assert "light-dffnet: calibration=" in out
    assert cv2.imread(str(tmp_path / "reliability_light-dffnet.png")) is not None
    assert (tmp_path / "table.md").read_text().startswith("| Network |")


def test_flip_averages_the_photo_and_its_mirror_image():
    """flip=True (test-time augmentation): the map is the mean of the photo's and its mirror image's maps (compared
    without the guided upsampling), so a mirror-symmetric photo gets a mirror-symmetric map — which the network alone,
    its stride-2 samplings anchored at the left edge, does not give."""
    import defocus

    rng = np.random.default_rng(0)
    half = rng.random((64, 48, 3)).astype(np.float32)
    symmetric = np.concatenate([half, half[:, ::-1]], axis=1)
    plain = defocus.load("light-dffnet", runtime="torch", refine=False, calibrate=False)
    flipped = defocus.load("light-dffnet", runtime="torch", refine=False, calibrate=False, flip="true")
    both = flipped.predict(symmetric)
    np.testing.assert_allclose(both, both[:, ::-1], atol=1e-5)
    photo = rng.random((64, 96, 3)).astype(np.float32)
    expected = 0.5 * (plain.predict(photo) + plain.predict(np.ascontiguousarray(photo[:, ::-1]))[:, ::-1])
    np.testing.assert_allclose(flipped.predict(photo), expected, atol=1e-5)


def test_decisive_map_replaces_the_calibration_where_an_entry_has_one():
    """decisive=True (default) applies the entry's MAE-fitted temperature; decisive=False its calibration;
    calibrate=False the raw probability; weights= neither."""
    pytest.importorskip("torch")
    from dataclasses import replace

    from defocus.methods.networks import NetworkDetector
    from defocus.registry import pretrained

    base = pretrained("light-dffnet")
    entry = replace(base, decisive={"temperature": 0.25, "bias": 0.0}, calibration={"temperature": 2.0, "bias": 0.0})
    assert NetworkDetector(entry, runtime="torch").calibration == entry.decisive
    assert NetworkDetector(entry, runtime="torch", decisive="false").calibration == entry.calibration
    assert NetworkDetector(entry, runtime="torch", calibrate=False).calibration is None
    assert NetworkDetector(replace(base, decisive=None), runtime="torch").calibration == base.calibration
