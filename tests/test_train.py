"""The trainer: losses, augmentation, sample order, one optimisation step, checkpoints, and resume after kill -9."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from defocus.nets.dffnet import LightDFFNet
from defocus.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from defocus.train.config import Augment, get_config
from defocus.train.data import StepBatchSampler, augment_pair
from defocus.train.losses import deep_supervision_loss, dof_edge_loss, label_edges
from defocus.train.trainer import lr_at

SHARED = Path(__file__).resolve().parents[2] / "shared"
torch.set_num_threads(2)


def _half_mask(n=1, h=32, w=32) -> torch.Tensor:
    m = torch.zeros(n, 1, h, w)
    m[..., w // 2 :] = 1
    return m


def test_label_edges_mark_the_boundary_only():
    edges = label_edges(_half_mask())[0, 0]
    cols = edges.sum(0)
    assert set(torch.nonzero(cols).flatten().tolist()) == {15, 16}  # both sides of the step, never the frame
    assert edges[:, 15].all() and edges[:, 16].all()


def test_dof_edge_loss_prefers_the_right_boundary():
    target = _half_mask()
    good = (target * 2 - 1) * 10  # confident, correct logits
    shifted = torch.roll(good, 6, dims=-1)
    flat = torch.zeros_like(good)
    l_good, l_shift, l_flat = (float(dof_edge_loss(x, target)) for x in (good, shifted, flat))
    assert l_good < 0.25 and l_good < l_shift and l_good < l_flat
    assert 0.0 <= l_good <= 1.0 and l_flat > 0.95  # no predicted edge: Dice ~ 0


def test_deep_supervision_sums_five_outputs():
    target = _half_mask(2)
    logits = torch.zeros_like(target)
    total, parts = deep_supervision_loss(logits, [logits] * 4, target, edge_weight=0.0)
    assert set(parts) == {"fused", "side1", "side2", "side3", "side4"}
    assert float(total) == pytest.approx(5 * np.log(2), rel=1e-5)


def test_augment_pair_keeps_image_and_label_aligned():
    rng = np.random.default_rng(0)
    mask = np.zeros((80, 100), np.float32)
    mask[20:60, 30:80] = 1
    image = np.repeat(mask[..., None], 3, axis=2) * 0.8 + 0.1
    aug = Augment(scale=(0.7, 1.4), aspect=0.2, rotate=15, hflip=0.5, brightness=0, contrast=0, saturation=0)
    for _ in range(10):
        img, msk = augment_pair(image, mask, rng, aug, 48)
        assert img.shape == (48, 48, 3) and msk.shape == (48, 48)
        assert set(np.unique(msk)) <= {0.0, 1.0}
        agree = ((img[..., 0] > 0.5) == (msk > 0.5)).mean()
        assert agree > 0.97


def test_sample_order_is_resumable_and_disjoint_across_ranks():
    full = list(StepBatchSampler(n=10, batch_size=3, seed=1, start_step=0, steps=8))
    resumed = list(StepBatchSampler(n=10, batch_size=3, seed=1, start_step=5, steps=8))
    assert resumed == full[5:]
    epoch0 = [b[0] for batch in full for b in batch if b[1] == 0]
    assert sorted(epoch0) == list(range(10))  # every sample once per epoch
    r0 = list(StepBatchSampler(10, 2, 1, 0, 3, rank=0, world=2))
    r1 = list(StepBatchSampler(10, 2, 1, 0, 3, rank=1, world=2))
    seeds0 = {s for batch in r0 for _, _, s in batch}
    seeds1 = {s for batch in r1 for _, _, s in batch}
    assert not seeds0 & seeds1


def test_lr_schedule_warmup_then_poly():
    cfg = get_config("tiny")
    cfg.steps, cfg.warmup_steps, cfg.poly_power = 100, 10, 0.9
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(55, cfg) == pytest.approx(0.5 ** 0.9)
    assert lr_at(100, cfg) == 0.0


def test_training_steps_reduce_the_loss_on_a_toy_batch():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    base = rng.random((4, 3, 16, 16)).astype(np.float32)
    sharp = torch.nn.functional.interpolate(torch.from_numpy(base), size=(64, 64), mode="nearest")
    blurred = torch.nn.functional.avg_pool2d(sharp, 9, 1, 4, count_include_pad=False)
    target = _half_mask(4, 64, 64)
    image = sharp * (1 - target) + blurred * target
    net = LightDFFNet(pretrained=False, width=8)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    losses = []
    for _ in range(8):
        fused, sides = net(image, return_sides=True)
        loss, _ = deep_supervision_loss(fused, sides, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] * 0.9


def test_checkpoint_round_trip(tmp_path):
    net = LightDFFNet(pretrained=False, width=8)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    net(torch.rand(2, 3, 32, 32)).mean().backward()
    opt.step()
    for step in (5, 10, 15):
        save_checkpoint(tmp_path, step, net, opt, {"seconds": 1.5}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_0000010", "step_0000015"]
    assert not list(tmp_path.glob(".tmp_*"))
    path = latest_checkpoint(tmp_path)
    assert path.name == "step_0000015"
    net2 = LightDFFNet(pretrained=False, width=8)
    opt2 = torch.optim.Adam(net2.parameters(), 1e-3)
    state = load_checkpoint(path, net2, opt2)
    assert state["step"] == 15 and state["seconds"] == 1.5
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-30), k
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert all(torch.equal(s1[i]["exp_avg"], s2[i]["exp_avg"]) for i in s1)


def _log_steps(path: Path) -> list[tuple[int, float]]:
    with open(path, newline="") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


@pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="shared/ data (synthetic sources) not present")
def test_resume_survives_kill_9(tmp_path):
    cfg = {"base": "tiny", "steps": 30, "checkpoint_every": 4, "val_every": 0, "val_synth": 0,
           "synth": {"length": 12, "size": 64}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "defocus.train", "--config", str(tmp_path / "cfg.json"), "--out", str(out),
           "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        ckpt = latest_checkpoint(out / "checkpoints")
        if ckpt is not None and int(ckpt.name.split("_")[1]) >= 8:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = int(ckpt.name.split("_")[1])
            break
        time.sleep(0.05)
    proc.wait(30)
    assert killed_at is not None, "the run ended before a checkpoint could be interrupted"
    assert proc.returncode == -signal.SIGKILL
    resumed_from = int(latest_checkpoint(out / "checkpoints").name.split("_")[1])
    assert resumed_from >= killed_at
    before = _log_steps(out / "train_log.csv")
    # a fresh run refuses the folder; --resume continues it
    refused = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "--resume" in refused.stderr
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"at step {resumed_from}" in done.stderr
    after = _log_steps(out / "train_log.csv")
    steps = [s for s, _ in after]
    assert steps == list(range(1, 31))  # no gap, no duplicate: rows logged after the checkpoint were dropped
    assert after[:resumed_from] == before[:resumed_from]
    assert all(np.isfinite(l) for _, l in after)
    assert (out / "model.safetensors").exists()
    state = json.loads((latest_checkpoint(out / "checkpoints") / "state.json").read_text())
    assert state["step"] == 30


@pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="shared/ data (synthetic sources) not present")
def test_two_process_ddp_run_on_cpu(tmp_path):
    """torchrun with two CPU processes (Gloo): each trains on its slice of every step, rank 0 writes the files."""
    cfg = {"base": "tiny", "steps": 6, "checkpoint_every": 3, "val_every": 0, "val_synth": 0, "batch_size": 1,
           "synth": {"length": 8, "size": 64}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "defocus.train", "--config", str(tmp_path / "cfg.json"), "--out", str(out), "--device", "cpu",
           "--no-progress"]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [s for s, _ in _log_steps(out / "train_log.csv")] == list(range(1, 7))  # one writer, no duplicates
    rows = list(csv.DictReader(open(out / "train_log.csv")))
    assert float(rows[-1]["samples_per_s"]) > 0
    assert (out / "model.safetensors").exists()
    assert json.loads((latest_checkpoint(out / "checkpoints") / "state.json").read_text())["step"] == 6
