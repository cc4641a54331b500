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
@pytest.mark.slow
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


# --- one trainer: recipes, validation through the detector's predict, resume and the command's errors ---------------


def test_list_prints_one_line_per_recipe(capsys):
    from defocus.cli import main
    from defocus.train.config import RECIPES

    assert main(["train", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(RECIPES)
    by_name = {line.split()[0]: line.split() for line in lines}
    assert by_name["benet"][1:3] == ["patch", "benet"] and by_name["enet"][1:3] == ["patch", "enet"]
    assert by_name["tiny"][1:3] == ["dense", "light_dffnet"]
    assert all(len(words) > 3 for words in by_name.values())  # every recipe has a description


def test_step_schedule_divides_by_ten_at_the_milestones():
    cfg = get_config("benet")
    cfg.steps = 100
    assert [lr_at(s, cfg) for s in (0, 59, 60, 89)] == [1.0, 1.0, pytest.approx(0.1), pytest.approx(0.1)]
    assert lr_at(90, cfg) == pytest.approx(0.01)


class _Brightness(torch.nn.Module):
    """A stand-in network: blur logit = brightness (so its map has a sharp edge where the photo has one)."""

    def forward(self, x):
        return 10 * (x.mean(1, keepdim=True) - 0.5)


def test_validation_predicts_like_detect():
    """Validation scores the maps of defocus.nets.predict.predict_blur (guided-filter upsampling), not a bilinear
    resize of the working-size map."""
    from defocus.evaluate import evaluate_maps
    from defocus.nets.predict import predict_blur
    from defocus.train.validate import validate

    net = _Brightness()
    rng = np.random.default_rng(0)
    items = []
    for i, edge in enumerate((61, 47)):  # edges off the working-size grid: upsampling decides the scores
        img = np.full((90, 120, 3), 0.2, np.float32)
        img[:, edge:] = 0.8
        img += 0.05 * rng.random((90, 120, 3)).astype(np.float32)
        gt = np.zeros((90, 120), np.float32)
        gt[:, edge:] = 1
        items.append((f"im{i}", img, gt))
    got = validate(net, {"set": items}, size=32)["set"]
    assert got["n"] == 2 and got["metrics"] == "ddffnet"
    for refine, same in ((True, True), (False, False)):
        maps = [(n, predict_blur(net, img, working_size=32, refine=refine)) for n, img, _ in items]
        want = evaluate_maps(maps, [(n, g) for n, _, g in items], protocol="ddffnet").summary
        assert (got["mae"] == pytest.approx(float(want["mae"]), abs=1e-7)) is same
        if same:
            assert got["fbeta"] == pytest.approx(float(want["fbeta"]), abs=1e-7)
            assert got["iou"] == pytest.approx(float(want["iou"]), abs=1e-7)


def test_real_validation_sets_absent_folder_gives_none(tmp_path):
    from defocus.train.validate import load_real_sets

    assert load_real_sets(tmp_path) == {}


@pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="shared/ data (synthetic sources) not present")
def test_synth_validation_set_is_held_out_and_sized():
    from defocus.train.validate import load_synth_set

    items = load_synth_set(2, 48)
    assert [n for n, _, _ in items] == ["synth_0000", "synth_0001"]
    for _, img, gt in items:
        assert img.shape == (48, 48, 3) and gt.shape == (48, 48) and 0 <= gt.min() and gt.max() <= 1


def test_checkpoint_with_extras_lands_in_its_step_folder(tmp_path):
    net = LightDFFNet(pretrained=False, width=8)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    extra = torch.nn.Linear(2, 2)
    path = save_checkpoint(tmp_path, 3, net, opt, {"seconds": 0.0}, extras={"projectors": extra})
    assert path.name == "step_0000003" and (path / "projectors.safetensors").is_file()
    assert latest_checkpoint(tmp_path) == path


def test_a_pickled_optimizer_state_is_refused_with_one_line(tmp_path):
    from defocus.errors import WeightsError

    net = LightDFFNet(pretrained=False, width=8)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    path = save_checkpoint(tmp_path, 5, net, opt, {"seconds": 0.0})
    torch.save({"state": Augment()}, path / "optimizer.pt")  # an arbitrary object: needs full unpickling
    with pytest.raises(WeightsError) as info:
        load_checkpoint(path, net, opt)
    message = str(info.value)
    assert "optimizer.pt" in message and "refused" in message
    assert "weights_only" not in message and "\n" not in message


def _tiny(tmp_path, **over):
    from defocus.train.config import from_dict

    return from_dict({"base": "tiny", "steps": 10, "checkpoint_every": 5, "val_every": 0, "val_synth": 0,
                      "synth": {"length": 4, "size": 64}, **over})


@pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="shared/ data (synthetic sources) not present")
def test_resume_passes_over_a_damaged_newest_checkpoint(tmp_path, capsys):
    """`rm step_N/state.json` then --resume: continue from the newest complete checkpoint and say so; never start
    over silently, delete the good one or log a step twice."""
    from defocus.errors import DefocusError
    from defocus.train.trainer import train

    out = tmp_path / "run"
    train(_tiny(tmp_path), out, progress=False)
    (out / "checkpoints" / "step_0000010" / "state.json").unlink()
    capsys.readouterr()
    done = train(_tiny(tmp_path), out, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "step_0000010 incomplete" in err and "at step 5" in err
    assert done["step"] == 10
    assert [s for s, _ in _log_steps(out / "train_log.csv")] == list(range(1, 11))
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*")) == ["step_0000005", "step_0000010"]
    assert (out / "checkpoints" / "step_0000010" / "state.json").is_file()  # rewritten by the resumed run
    # No complete checkpoint at all: one line, and the folders are left as they are.
    for p in (out / "checkpoints").glob("step_*/state.json"):
        p.unlink()
    with pytest.raises(DefocusError, match="no complete checkpoint"):
        train(_tiny(tmp_path), out, resume=True, progress=False)
    assert len(list((out / "checkpoints").glob("step_*"))) == 2
    # A damaged run folder is not taken for a fresh one either.
    with pytest.raises(DefocusError, match="--resume"):
        train(_tiny(tmp_path), out, progress=False)


@pytest.mark.parametrize("option", [["--steps", "0"], ["--batch-size", "0"], ["--workers", "-1"]])
def test_out_of_range_options_are_usage_errors(option, capsys, tmp_path):
    from defocus.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--config", "tiny", "--out", str(tmp_path / "r"), *option])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option[0]}" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # nothing was started


def test_a_config_file_with_impossible_values_is_refused(tmp_path):
    from defocus.errors import DefocusError

    (tmp_path / "c.json").write_text(json.dumps({"base": "tiny", "steps": 0, "batch_size": 0}))
    with pytest.raises(DefocusError, match="steps must be at least 1, not 0; batch_size must be at least 1, not 0"):
        get_config(tmp_path / "c.json")


@pytest.mark.parametrize("command", [["train", "--config", "tiny"], ["synth", "--n", "2", "--size", "32"]])
def test_out_that_cannot_be_a_folder_is_one_line(command, tmp_path, capsys):
    from defocus.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    targets = [blocker, blocker / "sub"]
    if Path("/proc/self").is_dir():
        targets.append(Path("/proc/defocus-cannot-write-here"))  # not writable, even by root
    for target in targets:
        assert main([*command, "--out", str(target)]) == 2  # an unusable output folder is a usage error
        err = capsys.readouterr().err
        assert err.startswith("defocus: error: --out ") and err.count("\n") == 1, err


@pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="shared/ data (synthetic sources) not present")
def test_no_carriage_returns_in_a_log_file(tmp_path):
    """Off a terminal, train and synth write plain progress lines, never tqdm's \\r-redrawn bars."""
    cfg = {"base": "tiny", "steps": 3, "checkpoint_every": 3, "val_every": 0, "val_synth": 0,
           "synth": {"length": 4, "size": 64}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {
        "train": [sys.executable, "-m", "defocus.cli", "train", "--config", str(tmp_path / "cfg.json"), "--out",
                  str(tmp_path / "run")],
        "synth": [sys.executable, "-m", "defocus.cli", "synth", "--out", str(tmp_path / "syn"), "--n", "2",
                  "--size", "32"],
    }
    for name, cmd in runs.items():
        with open(tmp_path / f"{name}.log", "w") as log:
            assert subprocess.run(cmd, env=env, stderr=log, stdout=subprocess.DEVNULL, timeout=300).returncode == 0
        text = (tmp_path / f"{name}.log").read_text()
        assert "\r" not in text, name
    assert "train tiny: 3/3 step" in (tmp_path / "train.log").read_text()
    assert "rendering 2 samples" in (tmp_path / "synth.log").read_text()


def test_backbones_and_validation_sets_follow_the_one_shared_folder_rule(tmp_path, monkeypatch):
    from defocus.nets.weights import find_weights, weights_dirs
    from defocus.train.validate import shared_real_dir

    monkeypatch.setenv("DEFOCUS_SHARED", str(tmp_path))
    (tmp_path / "weights" / "mobilenet_v2").mkdir(parents=True)
    (tmp_path / "weights" / "mobilenet_v2" / "x.pth").write_bytes(b"")
    assert weights_dirs() == [tmp_path / "weights"]
    assert find_weights("x.pth", "mobilenet_v2") == tmp_path / "weights" / "mobilenet_v2" / "x.pth"
    assert shared_real_dir() == tmp_path / "data" / "real"


def test_recipes_are_named_after_the_network_and_old_names_still_work():
    from defocus.train.config import RECIPE_ALIASES, RECIPES, get_config

    for old, new in RECIPE_ALIASES.items():
        assert old not in RECIPES and get_config(old).to_dict() == get_config(new).to_dict()
        assert RECIPES[new].model["arch"] == "light_dffnet"


def test_realism_probabilities_are_checked_in_a_config(tmp_path):
    from defocus.errors import DefocusError
    from defocus.train.config import from_dict

    with pytest.raises(DefocusError, match="synth.lens_psfs"):
        from_dict({"base": "tiny", "synth": {"lens_psfs": 2.0}})
    cfg = from_dict({"base": "tiny", "synth": {"lens_psfs": 0.5, "demosaic": 0.25}})
    assert cfg.synth.realism().lens_psfs == 0.5 and cfg.synth.realism().demosaic == 0.25


class _HalfBlurred:
    """A stand-in detector: the right half of the photo out of focus, decided or not."""

    def __init__(self, soft: bool):
        self.soft = soft

    def predict(self, image):
        prob = np.zeros(image.shape[:2], np.float32)
        prob[:, image.shape[1] // 2:] = 0.6 if self.soft else 1.0
        return prob


def test_pseudo_labels_keep_the_decided_photos_as_a_folder_dataset(tmp_path):
    from defocus.data import open_dataset
    from defocus.errors import OutputExistsError
    from defocus.io import write_image
    from defocus.train.pseudo import undecided_fraction, write_pseudo_labels

    photos = []
    for i in range(2):
        photos.append(write_image(tmp_path / f"p{i}.png", np.random.default_rng(i).random((40, 60, 3))))
    assert undecided_fraction(_HalfBlurred(True).predict(np.zeros((4, 4, 3)))) == 0.5
    stats = write_pseudo_labels(_HalfBlurred(False), photos, tmp_path / "pl")
    assert stats == {"photos": 2, "kept": 2, "mean_undecided": 0.0}
    ds = open_dataset("folder", tmp_path / "pl", polarity="blur")
    assert len(ds) == 2
    mask = ds[0].blur_mask()
    assert mask.shape == (40, 60) and mask[:, :30].max() == 0 and mask[:, 30:].min() == 1
    soft = write_pseudo_labels(_HalfBlurred(True), photos, tmp_path / "pl2")
    assert soft["kept"] == 0 and (tmp_path / "pl2" / "labels.csv").read_text().count("\n") == 3
    with pytest.raises(OutputExistsError):  # nothing is overwritten without force
        write_pseudo_labels(_HalfBlurred(False), photos, tmp_path / "pl")
