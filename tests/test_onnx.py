"""ONNX export and the onnxruntime runtime: the exported graphs compute what the torch networks compute."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import defocus  # noqa: E402
from defocus.cli import main  # noqa: E402
from defocus.nets import onnx as ox  # noqa: E402
from defocus.nets.models import working_size_input  # noqa: E402

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.jpg"))
DETECTORS = ["light-dffnet", "dffnet", "dffnet.distilled", "r2mrf", "defusionnet", "br2net", "efenet"]
# The heavier networks are checked on one photo (each photo is one more 320² forward pass in both runtimes); the two
# heaviest take some 20 s with their export: slow.
PHOTOS = {"r2mrf": 1, "defusionnet": 1, "br2net": 1}
HEAVY = {"r2mrf", "defusionnet"}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("DEFOCUS_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def exported():
    """name -> (torch detector, ONNX bytes), exported once per network for the module."""
    made = {}

    def get(name):
        if name not in made:
            torch_detector = defocus.load(name, runtime="torch")
            made[name] = torch_detector, torch_detector.onnx_bytes()
        return made[name]

    return get


def example_batch(size: int, n: int | None = None) -> np.ndarray:
    """The example photos at ``size``² as one (N, 3, size, size) batch."""
    return np.concatenate([working_size_input(defocus.read_image(p), size) for p in EXAMPLES[:n]])


def test_the_examples_are_there():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in DETECTORS])
def test_exported_network_equals_torch_on_the_example_photos(name, exported):
    detector, data = exported(name)
    x = example_batch(detector.working_size, PHOTOS.get(name))  # batch > 1 where affordable: the batch is dynamic
    got, want = ox.OnnxNetwork(data)(x), detector.network(x)
    assert got.shape == want.shape == (len(x), 1, detector.working_size, detector.working_size)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_metadata_says_what_the_model_expects_and_returns(exported):
    import onnx

    detector, data = exported("light-dffnet")
    model = onnx.load_from_string(data)
    meta = {p.key: p.value for p in model.metadata_props}
    entry = detector.pretrained
    assert meta["name"] == "light-dffnet" and meta["working_size"] == str(entry.working_size)
    assert json.loads(meta["arch"]) == entry.model
    assert meta["weights_sha256"] == entry.sha256
    assert meta["normalization"] == "rgb01" and meta["mean"] == "0.0,0.0,0.0" and meta["std"] == "1.0,1.0,1.0"
    assert meta["output"] == entry.output and meta["defocus_version"] == defocus.__version__
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["blur"]


@pytest.mark.parametrize("shape", [(1, 3, 256, 384), (2, 3, 200, 270)])
def test_batch_and_image_size_are_dynamic(shape, exported):
    detector, data = exported("dffnet")  # the decoder with the most size-dependent steps
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    np.testing.assert_allclose(ox.OnnxNetwork(data)(x), detector.network(x), rtol=0, atol=1e-4)


def test_dense_benet_enet_export_and_match(tmp_path):
    import torch

    from defocus.methods.karaali_2022 import load_networks, pad_image
    from defocus.nets.benet import detect_edges
    from defocus.nets.benet_dense import DenseBENet

    assert main(["export", "-m", "karaali-2022", "-o", str(tmp_path / "k.onnx")]) == 0
    sess = ox.session(tmp_path / "k.onnx")
    assert ox.metadata(sess)["name"] == "karaali-2022"
    dense = DenseBENet(*load_networks()).eval()
    image = cv2.resize(defocus.read_image(EXAMPLES[0]), (120, 96), interpolation=cv2.INTER_AREA)
    block = np.ascontiguousarray(pad_image(image).transpose(2, 0, 1))[None]
    for crop in (block, block[:, :, 10:, 5:-3]):  # two block sizes
        ys, xs = np.nonzero(detect_edges(image)[:crop.shape[2] - 40, :crop.shape[3] - 40])
        got = sess.run(None, {"block": np.ascontiguousarray(crop), "ys": ys, "xs": xs})
        with torch.inference_mode():
            want = [t.numpy() for t in dense(torch.from_numpy(np.ascontiguousarray(crop)), torch.from_numpy(ys),
                                            torch.from_numpy(xs))]
        for g, w in zip(got, want):  # B-Net's logits reach ~1e3: compare relative to their scale
            assert g.shape == w.shape and len(g) > 20
            assert np.abs(g - w).max() <= 1e-6 * np.abs(w).max() + 1e-5
            assert np.mean(g.argmax(1) == w.argmax(1)) > 0.99


@pytest.mark.parametrize("name", ["benet", "enet"])
def test_patch_classifiers_export_and_match(name, tmp_path):
    import torch

    from defocus.methods.karaali_2022 import edge_patches, load_networks, pad_image

    assert main(["export", "-m", name, "-o", str(tmp_path / "p.onnx")]) == 0
    bnet, enet = load_networks()
    net = bnet if name == "benet" else enet
    image = defocus.read_image(EXAMPLES[1])
    patches = edge_patches(pad_image(image), np.array([50, 100, 200]), np.array([60, 120, 240]))
    got = ox.OnnxNetwork(tmp_path / "p.onnx")(patches)
    with torch.inference_mode():
        want = net(torch.from_numpy(patches)).numpy()
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max() + 1e-5


def test_export_refuses_to_overwrite_and_a_classic_method(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    assert main(["export", "-m", "light-dffnet", "-o", str(out)]) == 2
    assert out.read_bytes() == b"keep" and "--force" in capsys.readouterr().err
    assert main(["export", "-m", "lbp", "-o", str(tmp_path / "l.onnx")]) == 2
    assert not (tmp_path / "l.onnx").exists()


def test_a_trained_weights_file_exports(tmp_path):
    import torch

    from defocus.nets.dffnet import LightDFFNet
    from defocus.nets.modelfile import save_model

    torch.manual_seed(0)
    weights = save_model(LightDFFNet(width=8).eval(), tmp_path / "model.safetensors")
    out = tmp_path / "mine.onnx"
    assert main(["export", "-m", "light-dffnet", "--weights", str(weights), "-o", str(out)]) == 0
    network = ox.OnnxNetwork(out)
    assert json.loads(network.metadata["arch"])["width"] == 8
    x = np.random.default_rng(1).random((1, 3, 160, 160), dtype=np.float32)
    np.testing.assert_allclose(network(x), defocus.load("light-dffnet", weights=str(weights),
                                                        runtime="torch").network(x), atol=1e-4)


def read_maps(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(int) for p in sorted(folder.glob("*_blur.png"))}


def test_detect_with_the_onnx_runtime_writes_the_torch_maps(tmp_path, cache):
    model = tmp_path / "m.onnx"
    assert main(["export", "-m", "light-dffnet", "-o", str(model)]) == 0
    runs = {"torch": ["--runtime", "torch"], "file": ["--runtime", "onnx", "--option", f"onnx={model}"],
            "cache": ["--runtime", "onnx"]}
    maps = {}
    for label, flags in runs.items():
        assert main(["detect", *map(str, EXAMPLES), "-m", "light-dffnet", "-o", str(tmp_path / label), *flags]) == 0
        maps[label] = read_maps(tmp_path / label)
    assert len(maps["torch"]) == len(EXAMPLES)
    for label in ("file", "cache"):
        assert maps[label].keys() == maps["torch"].keys()
        assert max(np.abs(maps[label][k] - maps["torch"][k]).max() for k in maps["torch"]) <= 1
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1  # exported once, into the cache folder
    second = defocus.load("light-dffnet", runtime="onnx")
    assert second._model is None  # a cached export needs no torch network


def test_an_onnx_file_of_other_weights_is_refused(tmp_path, exported):
    _, data = exported("dffnet")
    (tmp_path / "d.onnx").write_bytes(data)
    with pytest.raises(defocus.DefocusError, match="other weights"):
        defocus.load("dffnet.distilled", onnx=str(tmp_path / "d.onnx"))


def test_without_onnxruntime_the_runtime_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    assert main(["detect", str(EXAMPLES[0]), "-o", str(tmp_path / "o"), "--runtime", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'defocus[onnx]'" in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_a_runtime_for_a_classic_method_is_a_usage_error(tmp_path):
    assert main(["detect", str(EXAMPLES[0]), "-o", str(tmp_path / "o"), "-m", "lbp", "--runtime", "onnx"]) == 2
    with pytest.raises(defocus.DefocusError, match="runtime"):
        defocus.load("light-dffnet", runtime="tensorflow")


def test_methods_shows_the_runtime_without_importing_it():
    code = ("from defocus.cli import main\nmain(['methods'])\nimport sys\n"
            "print('imported' if 'onnxruntime' in sys.modules or 'torch' in sys.modules else 'clean')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = result.stdout.splitlines()
    assert lines[-1] == "clean", result.stderr
    runtimes = {line.split("\t")[0]: line for line in lines[:-1]}
    for name in DETECTORS:
        entry = defocus.describe(name).pretrained
        assert runtimes[name].endswith(f"[runtime: {entry.default_runtime()}]")
    assert "[runtime" not in runtimes["lbp"]


def test_karaali_2022_runs_its_dense_networks_in_onnxruntime(cache):
    image = cv2.resize(defocus.read_image(EXAMPLES[2]), (160, 107), interpolation=cv2.INTER_AREA)
    torch_method = defocus.load("karaali-2022", tile=64)
    onnx_method = defocus.load("karaali-2022", tile=64, runtime="onnx")
    want, got = torch_method.edge_labels(image), onnx_method.edge_labels(image)
    assert want[1].sum() > 50  # pattern edges to compare
    for w, g in zip(want, got):  # same blur levels and edge types at (nearly) every edge pixel
        assert np.mean(w == g) > 0.999
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1
    with pytest.raises(defocus.DefocusError, match="psi"):
        defocus.load("karaali-2022", psi=0, runtime="onnx")
