"""`defocus evaluate --curves DIR`: the threshold sweep of each DBD protocol as CSV and PNG."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from defocus.cli import main
from defocus.evaluate import PROTOCOLS, evaluate_maps
from defocus.evaluate.report import curve_files, write_curves

SWEEPING = [name for name, p in PROTOCOLS.items() if p.task == "dbd"]


def _maps(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "pred").mkdir(), (tmp_path / "gt").mkdir()
    preds, gts = {}, {}
    for i in range(3):
        gt = np.zeros((40, 52), np.float32)
        gt[:, : 20 + 5 * i] = 1.0
        pred = np.clip(0.55 * gt + 0.45 * rng.random(gt.shape), 0, 1).astype(np.float32)
        preds[f"im{i}"], gts[f"im{i}"] = pred, gt
        cv2.imwrite(str(tmp_path / "gt" / f"im{i}.png"), (gt * 255).astype(np.uint8))
        cv2.imwrite(str(tmp_path / "pred" / f"im{i}.png"), np.round(pred * 255).astype(np.uint8))
    return preds, gts


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("protocol", SWEEPING)
def test_curves_written_and_max_f_matches(tmp_path, protocol):
    preds, gts = _maps(tmp_path)
    res = evaluate_maps(preds, gts, protocol, method="m", dataset="d")
    paths = write_curves([res], tmp_path / "out")
    csv_path, png_path = curve_files(tmp_path / "out", protocol)
    assert paths == [csv_path, png_path]
    rows = _read(csv_path)
    assert len(rows) == len(res.curves["thresholds"]) == 256
    assert set(rows[0]) == {"method", "dataset", "threshold", "precision", "recall", "fbeta"}
    f = np.array([float(r["fbeta"]) for r in rows])
    np.testing.assert_allclose(f, res.curves["fbeta"])
    if protocol in ("pysod", "br2net"):  # their reported F is the maximum of the mean F curve
        assert f.max() == pytest.approx(res.summary["fbeta"], abs=1e-12)
        if "fbeta_max" in res.summary:
            assert f.max() == pytest.approx(res.summary["fbeta_max"], abs=1e-12)
    img = cv2.imread(str(png_path))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 2 * img.shape[0] * 0.9
    with pytest.raises(Exception, match="exists"):
        write_curves([res], tmp_path / "out")
    write_curves([res], tmp_path / "out", force=True)


def test_cli_writes_and_refuses_to_overwrite(tmp_path, capsys):
    _maps(tmp_path)
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--gt-polarity", "blur",
            "--protocol", "br2net", "--curves", str(tmp_path / "c")]
    assert main(args) == 0
    csv_path, png_path = curve_files(tmp_path / "c", "br2net")
    assert csv_path.is_file() and png_path.is_file()
    before = csv_path.read_bytes()
    assert main(args) != 0
    assert "exists already" in capsys.readouterr().err
    assert csv_path.read_bytes() == before
    assert main(args + ["--force"]) == 0
    assert main(args[:-3] + ["ddffnet", "--curves", str(tmp_path / "c")]) == 0  # another protocol beside it
    assert curve_files(tmp_path / "c", "ddffnet")[0].is_file()


def test_line_chart_legend_corner_and_palette_png():
    from defocus.evaluate.lineplot import line_chart, png_bytes

    series = [("a", [0.0, 0.5, 1.0], [0.1, np.nan, 0.9]), ("b", [0.0, 1.0], [0.0, 1.0])]
    lower = line_chart(series, xlabel="x", ylabel="y", title="t")
    upper = line_chart(series, xlabel="x", ylabel="y", title="t", diagonal=True, legend="upper left")
    assert lower.shape == upper.shape == (520, 640, 3) and lower.dtype == np.uint8
    assert not np.array_equal(lower, upper)
    with pytest.raises(ValueError, match="legend"):
        line_chart(series, xlabel="x", ylabel="y", title="t", legend="middle")
    full, small = png_bytes(upper), png_bytes(upper, colours=32)
    assert len(small) < len(full)
    decoded = cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == upper.shape
