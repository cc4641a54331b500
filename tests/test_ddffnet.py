"""DFFNet / D-DFFNet / R-DFFNet (Jin et al., ICME 2023): network outputs, ablations, MiDaS loading, distillation losses, stage 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from defocus.errors import WeightsError
from defocus.nets.ddffnet import DFFNet
from defocus.nets.midas import MidasNet, load_midas
from defocus.nets.modelfile import init_from_model_file, save_model
from defocus.train.config import Distill, from_dict
from defocus.train.distill import Distiller, beta_at, feature_distance

torch.set_num_threads(2)
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.mark.parametrize("options", [{}, {"attention": False}, {"dense": False}, {"depth_heads": True}])
def test_outputs_and_ablations(options):
    net = DFFNet(backbone="mobilenetv2", width=8, **options).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        fused, sides, extras = net(x, return_sides=True, return_features=True)
        plain = net(x)
    assert fused.shape == plain.shape == (2, 1, 64, 96)
    assert torch.allclose(fused, plain)
    assert len(sides) == 4 and all(s.shape == (2, 1, 64, 96) for s in sides)
    assert [f.shape[1] for f in extras["features"]] == net.backbone.channels[-4:]
    assert ("depth" in extras) == bool(options.get("depth_heads"))
    if "depth" in extras:
        assert len(extras["depth"]) == 5 and all(d.shape == (2, 1, 64, 96) for d in extras["depth"])


def test_attention_ablation_changes_only_the_attention():
    full = DFFNet(backbone="mobilenetv2", width=8)
    bare = DFFNet(backbone="mobilenetv2", width=8, attention=False)
    extra = set(full.state_dict()) - set(bare.state_dict())
    assert extra and all(k.startswith("spatial.") for k in extra)
    assert not set(bare.state_dict()) - set(full.state_dict())


def test_paper_backbone_builds():
    net = DFFNet(backbone="resnest101")
    assert net.backbone.channels[-4:] == [256, 512, 1024, 2048]
    assert 47e6 < sum(p.numel() for p in net.parameters()) < 49e6


def test_warm_start_copies_matching_tensors_only(tmp_path):
    teacher = DFFNet(backbone="mobilenetv2", width=8)
    path = save_model(teacher, tmp_path / "t.safetensors", fp16=False)
    student = DFFNet(backbone="mobilenetv2", width=16)  # decoder shapes differ, the encoder's match
    taken = init_from_model_file(student, path, prefix="backbone.")
    assert taken and all(k.startswith("backbone.") for k in taken)
    for k in taken:
        assert torch.equal(student.state_dict()[k], teacher.state_dict()[k])
    with pytest.raises(WeightsError):
        init_from_model_file(student, path, prefix="nothing.")


def test_feature_distance_is_eq2_over_pixels():
    u = torch.randn(2, 5, 4, 4)
    assert feature_distance(u, 3 * u) < 1e-10  # scale-free
    assert abs(float(feature_distance(u, -u)) - 4.0) < 1e-5  # opposite unit vectors: ‖2û‖² = 4
    v = torch.randn(2, 5, 2, 2)  # a teacher at another resolution is resized
    assert feature_distance(u, v).shape == ()


def test_beta_schedule_follows_eq9():
    assert beta_at(0.0, 3.0, 0.2) == 3.0 and beta_at(0.2, 3.0, 0.2) == 3.0
    assert beta_at(0.2001, 3.0, 0.2) < 0.01  # drops, then ramps up
    assert abs(beta_at(1.0, 3.0, 0.2) - 2.4) < 1e-9  # 3·(75 − 15)/75


def _midas_file(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "midas_v21_standin.pt"
    torch.save({"model": MidasNet().state_dict(), "optimizer": {}}, path)  # the release's nesting
    return path


def test_midas_loads_the_release_layout_and_rejects_others(tmp_path):
    midas = load_midas(_midas_file(tmp_path))
    assert 100e6 < sum(p.numel() for p in midas.parameters()) < 110e6
    assert "pretrained.layer1.4.0.conv1.weight" in midas.state_dict()
    assert "scratch.refinenet4.resConfUnit2.conv2.bias" in midas.state_dict()
    with torch.no_grad():
        x = midas.normalize(torch.rand(1, 3, 64, 64))
        assert midas(x).shape == (1, 1, 64, 64)
        assert [t.shape[1] for t in midas.encode(x)] == [256, 512, 1024, 2048]
    bad = tmp_path / "bad.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(WeightsError, match="MiDaS"):
        load_midas(bad)


def test_feature_distillation_from_both_teachers(tmp_path):
    teacher_file = save_model(DFFNet(backbone="mobilenetv2", width=8), tmp_path / "stage1.safetensors")
    cfg = Distill(defocus_teacher=str(teacher_file), depth_teacher=str(_midas_file(tmp_path)))
    student = DFFNet(backbone="mobilenetv2", width=8)
    distiller = Distiller(cfg, student.backbone.channels[-4:])
    assert set(distiller.projectors) == {"defocus", "depth"}
    assert [p.weight.shape[0] for p in distiller.projectors["depth"]] == [256, 512, 1024, 2048]
    x = torch.rand(2, 3, 64, 64)
    _, _, extras = student(x, return_sides=True, return_features=True)
    loss, parts = distiller(extras, x, progress=0.1)
    assert parts["beta"] == 3.0 and parts["distill_defocus"] > 0 and parts["distill_depth"] > 0
    loss.backward()
    assert student.backbone.features[0][0].weight.grad is not None  # the student's encoder learns from it
    group = distiller.param_group()
    assert group["fixed_lr"] and group["lr"] == 0.1
    assert not any(p.requires_grad for t in distiller.teachers.values() for p in t.net.parameters())


def test_response_distillation_needs_depth_heads_and_teacher(tmp_path):
    cfg = Distill(mode="response", depth_teacher=str(_midas_file(tmp_path)))
    student = DFFNet(backbone="mobilenetv2", width=8, depth_heads=True)
    distiller = Distiller(cfg, student.backbone.channels[-4:])
    assert distiller.param_group() is None  # R-DFFNet has no projectors
    x = torch.rand(1, 3, 64, 64)
    _, _, extras = student(x, return_sides=True, return_features=True)
    loss, parts = distiller(extras, x, progress=0.5)
    assert loss > 0 and "depth" in parts
    with pytest.raises(Exception, match="depth_teacher"):
        Distiller(Distill(mode="response"), student.backbone.channels[-4:])


def test_config_reads_a_distill_block():
    cfg = from_dict({"base": "ddffnet-stage2-mobilenetv2-cpu", "distill": {"depth_teacher": "/x/midas.pt"}})
    assert isinstance(cfg.distill, Distill) and cfg.distill.depth_teacher == "/x/midas.pt"
    assert cfg.model["arch"] == "dffnet"


@pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="shared/ data (synthetic sources) not present")
def test_stage2_run_saves_and_resumes_projectors(tmp_path):
    from defocus.train.checkpoint import latest_checkpoint
    from defocus.train.trainer import train

    teacher_file = save_model(DFFNet(backbone="mobilenetv2", width=8), tmp_path / "stage1.safetensors")
    base = {"base": "tiny", "model": {"arch": "dffnet", "backbone": "mobilenetv2", "width": 8},
            "distill": {"defocus_teacher": str(teacher_file)}, "steps": 6, "checkpoint_every": 3, "val_every": 0,
            "val_synth": 0, "synth": {"length": 6, "size": 64}}
    out = tmp_path / "run"
    first = train(from_dict(base), out, progress=False, stop_after=3)
    assert first["step"] == 3 and first["model"] is None
    ckpt = latest_checkpoint(out / "checkpoints")
    assert (ckpt / "projectors.safetensors").exists()
    done = train(from_dict(base), out, resume=True, progress=False)
    assert done["step"] == 6 and Path(done["model"]).exists()
    rows = (out / "train_log.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert "distill_defocus" in header and all(r.split(",")[header.index("distill_defocus")] for r in rows[1:])
    assert json.loads((out / "config.json").read_text())["distill"]["beta"] == 3.0


def test_single_output_ablation_picks_a_layer_map():
    import defocus

    net = DFFNet(backbone="mobilenetv2", width=8)
    assert not hasattr(net, "output_layers")  # DFFNet has no such ablation
    r2 = defocus.load("r2mrf", output=1)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        fused, sides = r2.model(x, return_sides=True)
        single = r2.model(x)
    assert torch.allclose(single, sides[-1], atol=1e-5)  # last step, layer 1 is the last side (top layer first)
    assert not torch.allclose(single, fused)
    with pytest.raises(ValueError):
        defocus.load("r2mrf", output=6)
    with pytest.raises(ValueError):
        defocus.load("dffnet", output=1)
