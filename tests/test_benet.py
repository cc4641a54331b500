"""B-Net / E-Net (Karaali et al. 2022) as networks of the one model-file format and recipes of the one trainer:
the bundled files' dialect, their weight configs, the edge-patch data builder and the patch task."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from defocus.errors import WeightsError
from defocus.nets import modelfile
from defocus.nets.benet import PRETRAINED, RADII, BNet, ENet, detect_edges, load_enet
from defocus.nets.modelfile import load_model, read_model_file, save_model
from defocus.nets.weights import sha256_of
from defocus.train import benet_data
from defocus.train.tasks import PatchSet, patch_scores

from conftest import textured_image

SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_photos = pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="shared/ photos not present")
BUNDLED = {p.name: p for p in PRETRAINED}


def test_bundled_files_keep_their_digest_and_load_with_load_model():
    for p in PRETRAINED:
        assert sha256_of(modelfile.BUNDLED_DIR / p.file) == p.sha256  # the files are never rewritten
        assert p.task == "patch" and p.working_size is None
    bnet, meta = load_model(modelfile.BUNDLED_DIR / BUNDLED["benet"].file)  # was a bare KeyError: 'arch'
    assert isinstance(bnet, BNet) and not bnet.training
    assert json.loads(meta["arch"]) == {"arch": "benet", "scales": [41, 27, 15]} == bnet.arch
    enet = load_enet(modelfile.BUNDLED_DIR / BUNDLED["enet"].file, bnet, BUNDLED["enet"].sha256)
    assert enet.f1 is bnet.f1 and enet(torch.rand(2, 3, 41, 41)).shape == (2, 2)
    with pytest.raises(WeightsError, match="load_enet"):  # a part of a network: one line saying how to load it
        load_model(modelfile.BUNDLED_DIR / BUNDLED["enet.v1"].file)


def test_old_name_dialect_and_new_files_round_trip(tmp_path):
    net = BNet(scales=(41,))
    sd = net.state_dict()
    old = tmp_path / "old.safetensors"
    old.write_bytes(modelfile.state_dict_bytes(sd, fp16=False, metadata={"arch": {"name": "benet", "scales": [41]}}))
    loaded, _ = load_model(old)
    assert loaded.arch == {"arch": "benet", "scales": [41]}
    new, _ = load_model(save_model(loaded, tmp_path / "new.safetensors", fp16=False))
    assert all(torch.equal(a, b) for a, b in zip(sd.values(), new.state_dict().values()))
    (tmp_path / "bare.safetensors").write_bytes(modelfile.state_dict_bytes(sd, metadata={"other": "x"}))
    with pytest.raises(WeightsError, match="no 'arch'"):
        load_model(tmp_path / "bare.safetensors")


def test_a_bundled_file_is_checked_against_its_own_digest(tmp_path, monkeypatch):
    name = BUNDLED["benet"].file
    data = bytearray((modelfile.BUNDLED_DIR / name).read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(data))
    monkeypatch.setattr(modelfile, "BUNDLED_DIR", tmp_path)
    with pytest.raises(WeightsError, match="sha256"):
        read_model_file(modelfile.resolve_model_path(f"bundled:{name}"))  # no digest passed: the bundled one


def test_enet_refuses_the_streams_of_another_bnet(tmp_path):
    bnet = BNet()
    enet = ENet(BNet().f1)  # another B-Net's f1
    path = save_model(enet, tmp_path / "enet.safetensors", fp16=False)
    with pytest.raises(WeightsError, match="another B-Net"):
        load_enet(path, bnet)
    assert load_enet(save_model(ENet(bnet.f1), tmp_path / "ok.safetensors", fp16=False), bnet).f1 is bnet.f1


def test_the_bundled_enet_refuses_another_bnet_file(tmp_path):
    """The bundled E-Net file holds no f1 of its own: the B-Net file's digest must be the one it records."""
    import defocus

    other = save_model(BNet(), tmp_path / "bnet.safetensors", fp16=False)
    with pytest.raises(WeightsError, match="trained on the f1 streams of B-Net benet_bnet_v1"):
        defocus.load("karaali-2022", bnet_weights=other, enet_weights="bundled:enet_v1.safetensors")
    with pytest.raises(WeightsError, match="another B-Net"):  # the default E-Net file holds its f1: compared
        defocus.load("karaali-2022", bnet_weights=other)
    assert defocus.load("karaali-2022", bnet_weights=other, psi=0).enet is None
    first = defocus.load("karaali-2022", bnet_weights="bundled:benet_bnet_v1.safetensors",
                         enet_weights="bundled:enet_v1.safetensors")  # the first pair, still bundled
    assert first.enet.f1 is first.bnet.f1


# --- the data builder ----------------------------------------------------------------------------------------------


def test_bnet_crop_patches_are_balanced_centred_and_labelled():
    rng = np.random.default_rng(0)
    photo = (textured_image(320, 320, seed=4) * 255).astype(np.uint8)
    x, y = benet_data.bnet_crop_patches(rng, photo, per_level=3)
    assert x.dtype == np.uint8 and x.shape[1:] == (41, 41, 3) and len(x) == len(y)
    counts = np.bincount(y, minlength=len(RADII))
    assert counts.max() == 3 and (counts > 0).sum() >= len(RADII) - 2  # balanced: the same count per level
    # Blur grows with the label: mean gradient energy of the patches falls from level 0 to the last.
    energy = [np.abs(np.diff(x[y == k].astype(np.float32), axis=1)).mean() for k in (0, len(RADII) - 1)]
    assert energy[0] > 2 * energy[1]


def test_bnet_crop_patches_in_the_engine_rendering():
    """engine=1: every crop rendered as the synthetic engine does (linear light, camera model); still 8-bit,
    balanced and ordered by blur, and unlike the sRGB rendering of the same draw."""
    photo = (textured_image(320, 320, seed=4) * 255).astype(np.uint8)
    x, y = benet_data.bnet_crop_patches(np.random.default_rng(3), photo, per_level=3, engine=1.0, camera=0.0)
    assert x.dtype == np.uint8 and np.bincount(y, minlength=len(RADII)).max() == 3
    energy = [np.abs(np.diff(x[y == k].astype(np.float32), axis=1)).mean() for k in (0, len(RADII) - 1)]
    assert energy[0] > 2 * energy[1]
    plain, _ = benet_data.bnet_crop_patches(np.random.default_rng(3), photo, per_level=3)
    assert len(plain) != len(x) or not np.array_equal(plain, x)


def test_cut_patches_centres_on_the_pixel():
    img = np.random.default_rng(1).random((60, 70, 3)).astype(np.float32)
    ys, xs = np.array([20, 30, 39]), np.array([20, 49, 35])
    p = benet_data.cut_patches(img, ys, xs)
    u8 = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    for i, (yy, xx) in enumerate(zip(ys, xs)):
        assert np.array_equal(p[i], u8[yy - 20:yy + 21, xx - 20:xx + 21])


def test_interior_edges_are_the_detector_edges_away_from_the_border():
    img = textured_image(80, 90, seed=2)
    ys, xs = benet_data._interior_edges(img)
    e = detect_edges(img)
    assert len(ys) and ys.min() >= 20 and xs.min() >= 20 and ys.max() < 60 and xs.max() < 70
    assert e[ys, xs].all()


@needs_photos
def test_build_caches_patches_of_both_kinds(tmp_path):
    x, y = benet_data.build("bnet", "val", 30, tmp_path, seed=5, log=lambda *_: None)
    assert x.shape == (30, 41, 41, 3) and x.dtype == np.uint8 and y.min() >= 0 and y.max() < len(RADII)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["bnet_val_30_5_x.npy", "bnet_val_30_5_y.npy"]
    again_x, again_y = benet_data.build("bnet", "val", 30, tmp_path, seed=5, log=lambda *_: None)
    assert isinstance(again_x, np.memmap) and np.array_equal(again_x, x) and np.array_equal(again_y, y)
    ex, ey = benet_data.build("enet", "val", 20, tmp_path, seed=6, log=lambda *_: None)
    assert ex.shape == (20, 41, 41, 3) and set(np.unique(ey)) <= {0, 1}
    benet_data.build("bnet", "val", 30, tmp_path, seed=5, log=lambda *_: None, engine=0.5, camera=0.6)
    assert (tmp_path / "bnet_val_30_5_engine0.5_camera0.6_x.npy").is_file()  # its own cache, not the sRGB one's
    with pytest.raises(ValueError, match="B-Net"):
        benet_data.build("enet", "val", 20, tmp_path, seed=6, engine=0.5)


# --- the patch task ------------------------------------------------------------------------------------------------


def test_patch_set_applies_one_symmetry_and_keeps_the_label():
    x = np.random.default_rng(0).integers(0, 256, (4, 41, 41, 3), dtype=np.uint8)
    ds = PatchSet(x, np.array([3, 1, 4, 1]), seed=0)
    seen = set()
    for g in range(16):
        item = ds[(2, 0, g)]
        assert int(item["label"]) == 4 and item["image"].shape == (3, 41, 41)
        patch = item["image"].permute(1, 2, 0).numpy() * 255
        assert np.allclose(np.sort(patch.ravel()), np.sort(x[2].ravel().astype(np.float32)), atol=1e-3)
        seen.add(patch.tobytes())
    assert len(seen) > 1  # not always the identity


def test_patch_scores():
    logits = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    s = patch_scores(logits, np.array([1, 0, 1, 1]))
    assert s["top1"] == 0.75 and s["n"] == 4
    assert s["pattern_recall"] == 1.0 and s["depth_recall"] == pytest.approx(2 / 3)


def test_level_loss_one_hot_and_soft_labels():
    import torch.nn.functional as F

    from defocus.train.tasks import level_loss

    logits = torch.randn(5, 23, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 3, 11, 21, 22])
    assert torch.allclose(level_loss(logits, labels), F.cross_entropy(logits, labels))
    # Soft targets: a Gaussian over the levels, renormalised, so the loss is smallest at those very log-odds ...
    log_target = torch.log_softmax(-0.5 * ((torch.arange(23.0)[None] - labels[:, None]) / 1.5) ** 2, 1)
    best = level_loss(log_target, labels, soft=1.5)
    entropy = -(log_target.exp() * log_target).sum(1).mean()
    assert torch.allclose(best, entropy) and best < level_loss(logits, labels, 1.5)
    # ... and a near miss costs less than a far one, which one-hot labels cannot tell apart.
    near, far = torch.full((1, 23), -10.0), torch.full((1, 23), -10.0)
    near[0, 12], far[0, 20] = 10.0, 10.0
    label = torch.tensor([11])
    assert level_loss(near, label, 1.0) < level_loss(far, label, 1.0)
    assert torch.isclose(level_loss(near, label), level_loss(far, label))


def test_soft_labels_are_refused_for_enet():
    from defocus.errors import DefocusError
    from defocus.train.config import from_dict, get_config

    cfg = get_config("enet").to_dict()
    cfg["patches"]["soft"] = 1.0
    with pytest.raises(DefocusError, match="patches.soft"):
        from_dict(cfg, "enet-soft")
    assert get_config("benet-continued-soft").patches.soft == 1.0


@needs_photos
def test_bnet_then_enet_with_the_one_trainer(tmp_path, capsys):
    from defocus.train.config import from_dict
    from defocus.train.trainer import train

    cache = str(tmp_path / "cache")
    bcfg = {"base": "benet", "model": {"arch": "benet", "scales": [41]}, "steps": 4, "batch_size": 8,
            "checkpoint_every": 2, "val_every": 2, "log_every": 1, "patches": {"train": [40, 1], "val": [20, 2],
                                                                                "cache": cache}}
    out = tmp_path / "bnet"
    first = train(from_dict(bcfg), out, progress=False, stop_after=3)
    assert first["step"] == 3 and first["model"] is None
    done = train(from_dict(bcfg), out, resume=True, progress=False)
    assert "at step 2" in capsys.readouterr().err  # the same checkpoints and resume as the dense trainer
    with open(out / "train_log.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
    with open(out / "val_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["set"]) for r in rows] == [("2", "bnet_val"), ("4", "bnet_val")]
    assert 0.0 <= float(rows[-1]["top1"]) <= 1.0
    bnet, meta = load_model(done["model"])
    assert isinstance(bnet, BNet) and meta["task"] == "patch" and meta["config"] == "benet"

    ecfg = {"base": "enet", "model": {"arch": "enet", "scales": [41]}, "init_from": done["model"], "steps": 2,
            "batch_size": 8, "checkpoint_every": 2, "val_every": 0, "patches": {"train": [20, 3], "val": [10, 4],
                                                                                "cache": cache}}
    enet_file = train(from_dict(ecfg), tmp_path / "enet", progress=False)["model"]
    enet, emeta = load_model(enet_file)  # a whole network: loads alone
    for k, v in bnet.f1.state_dict().items():  # f1 frozen: still the B-Net's
        assert torch.equal(enet.f1.state_dict()[k], v), k
    assert json.loads(emeta["init_from"])["sha256"] == sha256_of(done["model"])
    assert load_enet(enet_file, bnet).f1 is bnet.f1


def test_training_never_imports_the_inference_adapters():
    code = ("import sys\n"
            "from defocus.train import benet_data, checkpoint, command, config, data, distill, tasks, trainer, "
            "validate\n"
            "[config.get_config(n) for n in config.RECIPES]\n"
            "print(sorted(m for m in sys.modules if m.startswith('defocus.methods')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_patch_recipes_build_their_networks():
    from defocus.nets.models import build_model
    from defocus.train.config import get_config

    for name, cls in (("benet", BNet), ("benet-single41", BNet), ("enet", ENet)):
        cfg = get_config(name)
        assert cfg.task == "patch" and cfg.patches is not None and cfg.description
        assert isinstance(build_model(cfg.model), cls)
    dense = get_config("benet-dense")
    assert dense.task == "edge-crop" and dense.patches.kind == "bnet" and isinstance(build_model(dense.model), BNet)
    # Each bundled file names the recipe that made it; each E-Net recipe freezes the f1 of the B-Net it pairs with.
    for entry, enet_name in (("benet", "enet"), ("benet.v1", "enet.v1")):
        enet = get_config(BUNDLED[enet_name].recipe)
        assert get_config(BUNDLED[entry].recipe).model["arch"] == "benet" and enet.model["arch"] == "enet"
        assert enet.freeze == "f1." and enet.init_prefix == "f1." and enet.init_from == f"bundled:{BUNDLED[entry].file}"


def test_edge_crop_labels_the_method_edges_of_one_blur_level():
    rng = np.random.default_rng(3)
    photo = (textured_image(400, 400, seed=6) * 255).astype(np.uint8)
    image, labels = benet_data.edge_crop(rng, photo, level=5)
    crop, half = benet_data.CROP, benet_data.HALF
    assert image.shape == (crop, crop, 3) and image.dtype == np.float32 and 0 <= image.min() <= image.max() <= 1
    assert labels.shape == (crop - 2 * half, crop - 2 * half)
    assert set(np.unique(labels)) <= {-1, 5} and 0 < (labels == 5).sum() <= benet_data.MAX_EDGES
    edges = detect_edges(image)[half:-half, half:-half]
    assert np.all(edges[labels == 5])  # every labelled pixel is an edge of the detector B-Net is run on


def test_edge_crop_in_srgb_without_camera_matches_the_patch_sets_rendering():
    """linear=False, camera=0 (recipe benet-dense-plain): the crop is the 8-bit sRGB blur, as bnet_crop_patches'."""
    from defocus.train.config import get_config

    photo = (textured_image(400, 400, seed=6) * 255).astype(np.uint8)
    image, labels = benet_data.edge_crop(np.random.default_rng(3), photo, level=9, camera=0.0, linear=False)
    again, _ = benet_data.edge_crop(np.random.default_rng(3), photo, level=0, camera=0.0, linear=False)
    assert np.allclose(image * 255, np.rint(image * 255), atol=1e-3)  # 8-bit values
    assert set(np.unique(labels)) <= {-1, 9}
    # level 0 (radius 0.5) of the same crop stays closer to sharp than level 9: more fine detail survives
    assert np.abs(np.diff(again, axis=1)).mean() > np.abs(np.diff(image, axis=1)).mean()
    plain = get_config("benet-dense-plain")
    assert plain.task == "edge-crop" and plain.patches.camera == 0.0 and plain.patches.linear is False


def test_edge_crop_task_is_the_patchwise_cross_entropy_at_the_edges():
    """The dense loss of a crop equals the mean cross-entropy of B-Net on the 41×41 patches at its edge pixels."""
    import contextlib

    import torch.nn.functional as F

    from defocus.train.config import get_config
    from defocus.train.tasks import EdgeCropTask, patch_tensor

    torch.manual_seed(0)
    bnet = BNet().eval()
    rng = np.random.default_rng(1)
    photo = (textured_image(300, 300, seed=2) * 255).astype(np.uint8)
    items = [benet_data.edge_crop(rng, photo, level) for level in (0, 7)]
    batch = {"image": torch.stack([torch.from_numpy(i).permute(2, 0, 1) for i, _ in items]),
             "label": torch.stack([torch.from_numpy(lab) for _, lab in items])}
    task = EdgeCropTask(get_config("benet-dense"), bnet, "cpu")
    loss, parts = task.loss(bnet, batch, "cpu", 0.0, contextlib.nullcontext())
    want = []
    for image, lab in items:
        ys, xs = np.nonzero(lab >= 0)
        patches = patch_tensor(benet_data.cut_patches(image, ys + benet_data.HALF, xs + benet_data.HALF))
        want.append(F.cross_entropy(bnet(patches), torch.from_numpy(lab[ys, xs])))
    assert parts["edges"] == sum(int((lab >= 0).sum()) for _, lab in items)
    assert abs(loss.item() - torch.stack(want).mean().item()) < 1e-4
    loss.backward()  # differentiable through the dense path (stride-1 pooling without in-place maxima)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in bnet.parameters())
