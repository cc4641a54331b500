"""`defocus evaluate` end to end, the reports, the accuracy benchmark and the real samples in shared/."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from defocus.cli import main
from defocus.evaluate import Result, evaluate_maps, evaluate_method, plot_curves, summary_table
from defocus.io import read_map, write_npy, write_png8

from test_evaluate import _reference_test1

ROOT = Path(__file__).resolve().parents[1]


def _mask(h, w, split):
    m = np.zeros((h, w), np.float32)
    m[:, split:] = 1
    return m


@pytest.fixture
def dbd_dirs(tmp_path):
    """GT in focus polarity (255 = in focus) and predictions as `defocus detect` writes them."""
    gt, pred = tmp_path / "bench" / "gt", tmp_path / "pred"
    gt.mkdir(parents=True), pred.mkdir()
    rng = np.random.default_rng(0)
    for i, split in enumerate((10, 16, 22)):
        blur = _mask(24, 32, split)
        Image.fromarray(((1 - blur) * 255).astype(np.uint8)).save(gt / f"{i}.bmp")
        noisy = np.clip(blur + rng.normal(0, 0.2, blur.shape), 0, 1)
        write_png8(pred / f"{i}_blur.png", noisy)
        write_png8(pred / f"{i}_overlay.jpg", noisy)  # not a prediction: must be ignored
    return pred, gt


def test_cli_scores_and_writes_every_report(dbd_dirs, tmp_path, capsys):
    pred, gt = dbd_dirs
    out = tmp_path / "out"
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--gt-polarity", "focus",
                 "--protocol", "ddffnet", "--json", str(tmp_path / "s.json"), "--plots", str(tmp_path / "plots"),
                 "--csv", str(tmp_path / "p.csv"), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "| pred | bench | ddffnet | 3 |" in captured.out  # suffix _blur found automatically
    doc = json.loads((tmp_path / "s.json").read_text())
    for key in ("mae", "fbeta", "iou", "accuracy"):
        assert 0 <= doc[key] <= 1
    assert doc["fbeta"] > 0.9 and doc["protocol"] == "ddffnet"
    assert len(doc["results"][0]["curves"]["fbeta"]) == 256
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [r["name"] for r in rows] == ["0", "1", "2"] and float(rows[0]["mae"]) >= 0
    for name in ("pr_curve.png", "f_curve.png"):
        assert Image.open(tmp_path / "plots" / name).size[0] > 100
        assert (out / name).exists()
    assert {p.name for p in out.iterdir()} >= {"scores.json", "per_image.csv", "table.md"}
    # Same outputs again without --force: refused, one line each, exit 1.
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--gt-polarity", "focus",
                 "--json", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    assert code == 1 and "exists already" in err


def test_cli_matches_the_api(dbd_dirs, capsys, tmp_path):
    pred, gt = dbd_dirs
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--gt-polarity", "focus", "--protocol", "zhao",
                 "--json", str(tmp_path / "z.json")]) == 0
    doc = json.loads((tmp_path / "z.json").read_text())
    res = evaluate_maps({p.stem[:-5]: read_map(p) for p in pred.glob("*_blur.png")},
                        {p.stem: read_map(p) for p in gt.glob("*.bmp")}, "zhao", gt_polarity="focus")
    for key in ("mae", "fbeta", "iou"):
        assert doc[key] == pytest.approx(res.summary[key], abs=1e-12)


def test_cli_reports_bad_pairs_on_one_line_each_and_exits_1(dbd_dirs, capsys):
    pred, gt = dbd_dirs
    (pred / "1_blur.png").write_bytes(b"not a png")  # unreadable
    write_png8(pred / "2_blur.png", np.zeros((10, 10)), force=True)  # shape mismatch
    write_png8(pred / "7_blur.png", np.zeros((24, 32)))  # no GT
    (gt / "0.bmp").rename(gt / "9.bmp")  # "0" loses its GT, "9" has no prediction
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--gt-polarity", "focus"])
    captured = capsys.readouterr()
    assert code == 1
    errors = [e for e in captured.err.splitlines() if e.startswith("defocus: error:")]
    text = "\n".join(errors)
    assert "1_blur.png" in text and "10x10" in text and "7_blur.png" in text and "9.bmp" in text
    assert "0_blur.png: no ground truth" in text
    assert "Traceback" not in captured.err
    assert "| 0 |" in captured.out  # the table is still printed (no pair scored)


def test_cli_needs_gt_polarity_and_a_gt_source(dbd_dirs, capsys):
    pred, gt = dbd_dirs
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt)]) == 2  # usage errors exit 2
    assert "--gt-polarity" in capsys.readouterr().err
    assert main(["evaluate", "--pred", str(pred), "--gt-polarity", "blur"]) == 2
    assert "--gt DIR" in capsys.readouterr().err


def test_cli_several_methods_in_one_table_and_figure(dbd_dirs, tmp_path, capsys):
    pred, gt = dbd_dirs
    other = tmp_path / "other"
    other.mkdir()
    for p in pred.glob("*_blur.png"):
        write_npy(other / p.name.replace(".png", ".npy"), 1 - read_map(p))  # a bad method
    code = main(["evaluate", "--pred", f"good={pred}", "--pred", f"bad={other}", "--gt", str(gt),
                 "--gt-polarity", "focus", "--protocol", "pysod", "--json", str(tmp_path / "m.json"),
                 "--plots", str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert code == 0
    assert "| good |" in out and "| bad |" in out
    doc = json.loads((tmp_path / "m.json").read_text())
    assert [r["method"] for r in doc["results"]] == ["good", "bad"]
    assert doc["results"][0]["summary"]["fbeta"] > doc["results"][1]["summary"]["fbeta"]


def test_cli_focus_polarity_and_fixed_size(dbd_dirs, tmp_path, capsys):
    pred, gt = dbd_dirs
    focus = tmp_path / "focus"
    focus.mkdir()
    for p in pred.glob("*_blur.png"):
        write_png8(focus / p.name.replace("_blur", "_focus"), 1 - read_map(p))
    base = ["evaluate", "--gt", str(gt), "--gt-polarity", "focus", "--protocol", "dd"]
    assert main(base + ["--pred", str(pred), "--json", str(tmp_path / "a.json")]) == 0
    assert main(base + ["--pred", str(focus), "--json", str(tmp_path / "b.json")]) == 0  # *_focus -> focus maps
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["fbeta"] == pytest.approx(b["fbeta"]) and a["mae"] == pytest.approx(b["mae"])
    assert main(base + ["--pred", str(pred), "--size", "16", "--json", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["results"][0]["options"]["size"] == "16"
    capsys.readouterr()


def test_cli_defocus_maps_rtf(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    radius = np.full((10, 40), 3.0, np.float32)  # disk radius 3 px <-> sigma 1.65 px
    np.save(gt / "map_01.npy", radius)
    write_npy(pred / "image_01_defocus.npy", np.full((10, 40), 1.85, np.float32))
    Image.new("RGB", (40, 10)).save(pred / "image_01_defocus.png")  # colourised map: ignored
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--protocol", "rtf", "--match", "number",
                 "--json", str(tmp_path / "d.json"), "--plots", str(tmp_path / "plots")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "MAE σ px" in captured.out
    s = json.loads((tmp_path / "d.json").read_text())
    assert s["mae_sigma"] == pytest.approx(0.2, abs=1e-6) and s["mse_sigma"] == pytest.approx(0.04, abs=1e-6)
    assert s["mae_rel"] == pytest.approx(0.2 / 3.275, abs=1e-6)
    assert s["results"][0]["options"]["drop_right"] == 20
    assert not (tmp_path / "plots").exists()
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--protocol", "ddffnet", "--gt-polarity",
                 "blur", "--drop-right", "3"]) == 2
    assert "only for defocus-map protocols" in capsys.readouterr().err


def test_summary_table_and_plots_for_several_results(tmp_path):
    gt = {"a": _mask(8, 8, 4)}
    r1 = evaluate_maps({"a": gt["a"]}, gt, "br2net", method="perfect")
    r2 = evaluate_maps({"a": 1 - gt["a"]}, gt, "br2net", method="inverted")
    table = summary_table([r1, r2])
    assert table.count("\n") == 3 and "perfect" in table and "inverted" in table
    paths = plot_curves([r1, r2], tmp_path)
    assert [p.name for p in paths] == ["pr_curve.png", "f_curve.png"]
    assert isinstance(r1, Result) and r1.to_dict()["summary"]["fbeta"] == pytest.approx(1.0, abs=1e-3)


# ----------------------------------------------------------------------------------------------------------------
# shared/ real samples


@pytest.fixture
def te1(shared_dir):
    root = shared_dir / "data" / "real" / "cuhk_te1_320"
    if not root.is_dir():
        pytest.skip("cuhk_te1_320 not present")
    return root


def test_real_cuhk_te1_ddffnet_matches_reference_and_method_run(te1, tmp_path, capsys):
    from defocus import load
    from defocus.io import read_image

    method = load("gradient-energy")
    focus_dir = tmp_path / "maps"
    preds, gts, samples = [], [], []
    for img in sorted((te1 / "images").glob("*.bmp")):
        blur = method.predict(read_image(img))
        write_png8(focus_dir / f"{img.stem}.png", 1 - blur)  # D-DFFNet saves in-focus maps
        preds.append(np.asarray(Image.open(focus_dir / f"{img.stem}.png").convert("L")))
        gt8 = np.asarray(Image.open(te1 / "gt" / f"{img.stem}.bmp").convert("L"))
        gts.append(gt8)
        samples.append(_Sample(img.stem, read_image(img), 1 - gt8 / 255.0))
    mae, fb, iou = _reference_test1(preds, gts)
    code = main(["evaluate", "--pred", str(focus_dir), "--pred-polarity", "focus", "--gt", str(te1 / "gt"),
                 "--gt-polarity", "focus", "--protocol", "ddffnet", "--json", str(tmp_path / "r.json")])
    capsys.readouterr()
    assert code == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["n_images"] == 5
    assert doc["mae"] == pytest.approx(mae, abs=1e-6)
    assert doc["fbeta"] == pytest.approx(fb, abs=1e-9) and doc["iou"] == pytest.approx(iou, abs=1e-9)
    run = evaluate_method(method, samples, "ddffnet")
    assert run.seconds_per_image > 0
    assert run.summary["fbeta"] == pytest.approx(fb, abs=0.01)  # float maps vs their 8-bit PNGs


class _Sample:
    def __init__(self, name, image, mask):
        self.name, self._image, self._mask = name, image, mask

    def image(self):
        return self._image

    def blur_mask(self):
        return self._mask


def test_accuracy_benchmark_runs(shared_dir, tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("accuracy_bench", ROOT / "benchmarks" / "accuracy.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    code = bench.main(["--shared", str(shared_dir), "--task", "dbd", "--methods", "gradient-energy",
                       "--out", str(tmp_path / "acc.md")])
    out = capsys.readouterr().out
    assert code == 0
    assert "| gradient-energy | dbd | cuhk_samples | ddffnet | 2 |" in out
    assert "| gradient-energy | dbd | cuhk_te1_320 | ddffnet | 5 |" in out
    assert (tmp_path / "acc.md").read_text().startswith("| Method |")


def test_dataset_option_uses_defocus_data(tmp_path, capsys):
    data = pytest.importorskip("defocus.data")
    if not hasattr(data, "open_dataset"):
        pytest.skip("defocus.data.open_dataset not available yet")
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True), (root / "masks").mkdir()
    pred = tmp_path / "pred"
    for i in range(2):
        blur = _mask(16, 20, 8 + i)
        Image.fromarray(np.full((16, 20, 3), 128, np.uint8)).save(root / "images" / f"s{i}.png")
        Image.fromarray(((1 - blur) * 255).astype(np.uint8)).save(root / "masks" / f"s{i}.png")
        write_png8(pred / f"s{i}_blur.png", blur)
    code = main(["evaluate", "--pred", str(pred), "--dataset", "folder", "--root", str(root),
                 "--dataset-option", "polarity=focus", "--json", str(tmp_path / "ds.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads((tmp_path / "ds.json").read_text())
    assert doc["n_images"] == 2 and doc["fbeta"] == pytest.approx(1.0) and doc["mae"] == pytest.approx(0.0)


def test_colour_maps_are_read_by_luma_like_the_reference_scripts(tmp_path):
    from defocus.io import read_map as read_score_map

    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "red.png")
    Image.fromarray(np.full((4, 5), 200, np.uint8)).save(tmp_path / "grey.png")
    np.save(tmp_path / "m.npy", np.full((4, 5), 0.25, np.float32))
    assert read_score_map(tmp_path / "red.png")[0, 0] == pytest.approx(76 / 255)  # PIL convert("L")
    assert read_score_map(tmp_path / "grey.png")[0, 0] == pytest.approx(200 / 255)
    assert read_score_map(tmp_path / "m.npy")[0, 0] == pytest.approx(0.25)


# --------------------------------------------------------------------------------------------------------------------
# --method: run a registered method on a dataset


def _folder_dataset(root, n=2, size=(48, 64)):
    """images/ + gt/ with the right half of each photo blurred; masks 255 = out of focus (defocus's convention)."""
    from conftest import half_blurred

    (root / "images").mkdir(parents=True), (root / "gt").mkdir()
    for i in range(n):
        image, mask = half_blurred(*size, seed=i)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(root / "images" / f"p{i}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "gt" / f"p{i}.png")
    return root


def test_method_on_a_folder_dataset_prints_the_score_table(tmp_path, capsys):
    root = _folder_dataset(tmp_path / "set")
    code = main(["evaluate", "--method", "lbp", "--dataset", "folder", "--root", str(root),
                 "--json", str(tmp_path / "s.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "| lbp | set | ddffnet | 2 |" in captured.out
    doc = json.loads((tmp_path / "s.json").read_text())
    api = evaluate_method("lbp", __import__("defocus.data").data.open_dataset("folder", root), "ddffnet")
    assert doc["mae"] == pytest.approx(api.summary["mae"]) and doc["fbeta"] == pytest.approx(api.summary["fbeta"])
    assert doc["results"][0]["seconds_per_image"] > 0


def test_method_gets_weights_and_literal_options(tmp_path, capsys, monkeypatch):
    import defocus.registry as registry

    root = _folder_dataset(tmp_path / "set", n=1)
    seen = {}
    real_load = registry.load

    def load(name, device="cpu", **options):
        seen.update(name=name, device=device, **options)
        return real_load("gradient-energy")

    monkeypatch.setattr(registry, "load", load)
    code = main(["evaluate", "--method", "gradient-energy", "--weights", "m.pth", "--option", "sigma=2.5",
                 "--option", "scales=(1, 2)", "--option", "mode=fast", "--dataset", "folder", "--root", str(root)])
    assert code == 0, capsys.readouterr().err
    assert seen == {"name": "gradient-energy", "device": "cpu", "weights": "m.pth", "sigma": 2.5, "scales": (1, 2),
                    "mode": "fast"}


@pytest.mark.parametrize("argv, message", [
    (["--method", "lbp", "--pred", "x", "--dataset", "folder", "--root", "."], "not both"),
    (["--weights", "m.pth", "--pred", "x", "--gt", "."], "--weights: only with --method"),
    (["--method", "lbp"], "--method needs --dataset"),
    (["--method", "lbp", "--dataset", "folder"], "needs --root"),
    (["--method", "lbp", "--dataset", "folder", "--root", ".", "--option", "nokey"], "expected KEY=VALUE"),
    (["--method", "lbp", "--dataset", "folder", "--root", ".", "--protocol", "rtf"], "scores dme maps"),
    (["--method", "light-dffnet", "--dataset", "folder", "--root", ".", "--device", "tpu"], "unknown device"),
])
def test_usage_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(["evaluate", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_synth_dataset_kind_runs_the_benchmark_scenes(shared_dir, tmp_path, capsys):
    code = main(["evaluate", "--method", "lbp", "--dataset", "synth", "--dataset-option", "n=2",
                 "--json", str(tmp_path / "s.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "| lbp | synth_test | ddffnet | 2 |" in captured.out
    code = main(["evaluate", "--method", "zhuo-sim", "--dataset", "synth", "--dataset-option", "n=1",
                 "--json", str(tmp_path / "d.json")])
    assert code == 0, capsys.readouterr().err
    options = json.loads((tmp_path / "d.json").read_text())["results"][0]["options"]
    assert options["drop_right"] == 0 and options["gt_units"] == "sigma"  # the dataset's sigma maps, whole frame


# --------------------------------------------------------------------------------------------------------------------
# Output paths are checked before scoring (issue 13, defect 10)


def _spy_on_scoring(monkeypatch):
    import defocus.evaluate.core as core

    calls = []
    real_add = core.Evaluation.add
    monkeypatch.setattr(core.Evaluation, "add", lambda self, *a, **k: calls.append(1) or real_add(self, *a, **k))
    return calls


@pytest.mark.parametrize("flag, target", [("--json", "file/s.json"), ("--plots", "file"), ("--out", "file"),
                                          ("--csv", "file/sub/p.csv"), ("--json", "folder")])
def test_unwritable_output_paths_fail_before_scoring(dbd_dirs, tmp_path, capsys, monkeypatch, flag, target):
    pred, gt = dbd_dirs
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    calls = _spy_on_scoring(monkeypatch)
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--gt-polarity", "focus", flag,
                 str(tmp_path / target)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert str(tmp_path / target) in captured.err
    assert calls == [] and captured.out == ""  # nothing scored, no table


def test_read_only_output_folder_fails_before_scoring(dbd_dirs, tmp_path, capsys, monkeypatch):
    import os

    pred, gt = dbd_dirs
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # As a read-only file system answers (root may write into a chmod-ed folder, so the test asks access()).
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == locked else real_access(p, mode, **k))
    calls = _spy_on_scoring(monkeypatch)
    code = main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--gt-polarity", "focus",
                 "--json", str(locked / "s.json")])
    err = capsys.readouterr().err
    assert code == 1 and calls == []
    assert "read-only" in err and str(locked / "s.json") in err and err.count("\n") == 1


def test_existing_report_without_force_fails_before_scoring(dbd_dirs, tmp_path, capsys, monkeypatch):
    pred, gt = dbd_dirs
    (tmp_path / "s.json").write_text("{}")
    calls = _spy_on_scoring(monkeypatch)
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--gt-polarity", "focus",
                 "--json", str(tmp_path / "s.json")]) == 1
    assert calls == [] and "exists already" in capsys.readouterr().err
    assert (tmp_path / "s.json").read_text() == "{}"


# --------------------------------------------------------------------------------------------------------------------
# Inverted polarity and 0–255 arrays are not scored silently (issue 13, defect 11)


def test_inverted_predictions_get_a_one_line_warning(dbd_dirs, tmp_path, capsys):
    pred, gt = dbd_dirs
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--gt-polarity", "focus"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--gt-polarity", "blur"]) == 0  # wrong polarity
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "inverted" in warnings[0]


def test_npy_maps_in_0_255_are_rescaled_with_a_warning(dbd_dirs, tmp_path, capsys):
    pred, gt = dbd_dirs
    unit, byte = tmp_path / "unit", tmp_path / "byte"
    for i in range(3):
        blur = read_map(pred / f"{i}_blur.png")
        write_npy(unit / f"{i}_blur.npy", blur)
        write_npy(byte / f"{i}_blur.npy", blur * 255)
    docs = []
    for folder in (unit, byte):
        assert main(["evaluate", "--pred", str(folder), "--gt", str(gt), "--gt-polarity", "focus",
                     "--json", str(tmp_path / f"{folder.name}.json")]) == 0
        err = capsys.readouterr().err
        warnings = [line for line in err.splitlines() if "warning" in line]
        assert len(warnings) == (1 if folder == byte else 0), err
        docs.append(json.loads((tmp_path / f"{folder.name}.json").read_text()))
    assert str(byte) in warnings[0] and "255" in warnings[0]
    assert docs[1]["mae"] == pytest.approx(docs[0]["mae"], abs=1e-6)
    assert docs[1]["fbeta"] == pytest.approx(docs[0]["fbeta"], abs=1e-6)


def test_npy_maps_beyond_0_255_are_refused(dbd_dirs, tmp_path, capsys):
    pred, gt = dbd_dirs
    wild = tmp_path / "wild"
    wild.mkdir()
    for i in range(3):
        np.save(wild / f"{i}_blur.npy", read_map(pred / f"{i}_blur.png") * (1000 if i == 0 else 1))
    assert main(["evaluate", "--pred", str(wild), "--gt", str(gt), "--gt-polarity", "focus"]) == 1
    captured = capsys.readouterr()
    assert "0_blur.npy holds values" in captured.err and captured.err.count("holds values") == 1
    assert "| wild | bench | ddffnet | 2 |" in captured.out  # the other two are scored
