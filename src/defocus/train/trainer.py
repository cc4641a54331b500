"""The training loop: deep supervision, poly schedule, clipping, AMP, crash-safe checkpoints, validation, DDP.

Outputs in the run folder ``OUT``::

    config.json        the resolved configuration
    train_log.csv      step, loss (total and per output), lr, seconds since the start, samples/s
    val_log.csv        step, set, n, mae, fbeta, iou, metrics
    checkpoints/       see :mod:`defocus.train.checkpoint`
    synth_pool/        pre-rendered synthetic scenes (when ``synth.pool``)
    model.safetensors  final weights, float16, loadable with :func:`defocus.nets.modelfile.load_model`

Multi-GPU: launch with ``torchrun --nproc_per_node N -m defocus train ...``; when ``WORLD_SIZE`` is set each process
trains on its own slice of every step's samples (DistributedDataParallel) and rank 0 writes all files.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ..errors import DefocusError
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .csvlog import append_csv, truncate_csv
from .losses import deep_supervision_loss

TRAIN_FIELDS = ["step", "loss", "lr", "seconds", "samples_per_s"]  # + every loss term the run reports, after "loss"
VAL_FIELDS = ["step", "set", "n", "mae", "fbeta", "iou", "metrics"]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning-rate factor at ``step``: linear warm-up, then poly decay (1 − t)^power to 0 at ``cfg.steps``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return max(0.0, 1.0 - t) ** cfg.poly_power


class _Dist:
    """Process-group facts; a single process when WORLD_SIZE is unset."""

    def __init__(self, device: str | None):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
        if self.world > 1:
            import torch.distributed as dist

            dist.init_process_group("nccl" if cuda else "gloo")
        self.device = f"cuda:{self.local_rank}" if cuda and self.world > 1 else ("cuda" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(torch.device(self.device))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def _param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    return [{"params": backbone, "lr": cfg.lr * cfg.backbone_lr_mult, "base_lr": cfg.lr * cfg.backbone_lr_mult},
            {"params": rest, "lr": cfg.lr, "base_lr": cfg.lr}]


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, distiller=None) -> torch.optim.Optimizer:
    groups = _param_groups(model, cfg)
    extra = distiller.param_group() if distiller is not None else None
    if extra is not None:
        groups.append(extra)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise DefocusError(f"optimizer must be 'adam' or 'sgd', not {cfg.optimizer!r}")


def build_sources(cfg: TrainConfig, out: Path, dist: _Dist, progress: bool) -> list[tuple[object, int]]:
    """The training sources with their repeat counts (rank 0 renders the synthetic pool; others wait)."""
    from .data import PoolSource, RealSource, SynthSource, render_pool

    sources: list[tuple[object, int]] = []
    if cfg.synth.length > 0 and cfg.synth.repeat > 0:
        if cfg.synth.pool:
            folder = out / "synth_pool"
            if dist.main:
                render_pool(folder, cfg.synth, workers=min(8, os.cpu_count() or 1), progress=progress)
            dist.barrier()
            sources.append((PoolSource(folder, cfg.synth.length), cfg.synth.repeat))
        else:
            sources.append((SynthSource(cfg.synth), cfg.synth.repeat))
    for real in cfg.real:
        sources.append((RealSource(real, cfg.val_size), real.repeat))
    if not sources:
        raise DefocusError("the configuration has no training data (synth.length is 0 and no real folders)")
    return sources


def train(cfg: TrainConfig, out_dir: str | os.PathLike, *, resume: bool = False, device: str | None = None,
          progress: bool = True, stop_after: int | None = None) -> dict:
    """Train a model as configured; returns ``{"step", "seconds", "val": {...}, "model": path or None}``.

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : path
        Run folder (created). A folder with checkpoints is only continued with ``resume=True``.
    resume : bool
        Continue from the newest complete checkpoint in ``out_dir`` (start fresh if there is none).
    device : str, optional
        ``"cpu"`` or ``"cuda"``; default CUDA when available.
    progress : bool
        Show a progress bar.
    stop_after : int, optional
        Return after this many steps of this call (the schedule still spans ``cfg.steps``); for tests and
        time-sliced runs.
    """
    out = Path(out_dir)
    dist = _Dist(device)
    dev = dist.device
    if dev == "cpu" and cfg.threads > 0:
        import cv2

        # Set before any worker is forked (a forked child must not reconfigure inherited thread pools). More threads
        # than free cores is costly: OpenMP spin-waits burned 7x the CPU per step with 2 threads on 2 busy cores.
        torch.set_num_threads(cfg.threads)
        cv2.setNumThreads(cfg.threads)
    ckpt_root = out / "checkpoints"
    ckpt = latest_checkpoint(ckpt_root)
    if ckpt is not None and not resume:
        raise DefocusError(f"{out}: holds a training run already; use --resume to continue it or choose another --out")
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))

    from ..nets.models import build_model

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = build_model(cfg.model, pretrained=False if ckpt is not None else cfg.pretrained)
    if cfg.init_from and ckpt is None:
        from ..nets.modelfile import init_from_model_file, resolve_model_path

        taken = init_from_model_file(model, resolve_model_path(cfg.init_from), cfg.init_prefix)
        if dist.main:
            print(f"defocus train: {len(taken)} tensors from {cfg.init_from}", file=sys.stderr)
    model = model.to(dev)
    distiller = None
    if cfg.distill is not None:
        from .distill import Distiller

        distiller = Distiller(cfg.distill, model.backbone.channels[-4:], dev)
    optimizer = _optimizer(model, cfg, distiller)
    use_amp = cfg.amp and dev.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step, elapsed_before = 0, 0.0
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, optimizer, device=dev,
                                extras={"projectors": distiller.projectors} if distiller else None)
        step = int(state["step"])
        elapsed_before = float(state.get("seconds", 0.0))
        if state.get("scaler") and use_amp:
            scaler.load_state_dict(state["scaler"])
        if dist.main:
            truncate_csv(out / "train_log.csv", step)
            truncate_csv(out / "val_log.csv", step)
            print(f"defocus train: resuming {ckpt} at step {step}", file=sys.stderr)
    core = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[dist.local_rank] if dev.startswith("cuda") else None)

    from torch.utils.data import DataLoader

    from .data import StepBatchSampler, TrainSet

    trainset = TrainSet(build_sources(cfg, out, dist, progress and dist.main), cfg.augment, cfg.crop, cfg.seed)
    sampler = StepBatchSampler(len(trainset), cfg.batch_size, cfg.seed, step, cfg.steps, dist.rank, dist.world)
    loader = DataLoader(trainset, batch_sampler=sampler, num_workers=cfg.workers,
                        pin_memory=dev.startswith("cuda"), prefetch_factor=2 if cfg.workers > 0 else None)

    val_sets = {}
    if dist.main:
        from .validate import load_real_sets, load_synth_set

        if cfg.val_synth > 0:
            val_sets["synth_val"] = load_synth_set(cfg.val_synth, cfg.val_size)
        if cfg.val_real:
            val_sets.update(load_real_sets())

    def run_validation(at: int) -> dict:
        from .validate import validate

        results = validate(core, val_sets, cfg.val_size, dev) if val_sets else {}
        for name, r in results.items():
            append_csv(out / "val_log.csv", VAL_FIELDS, {"step": at, "set": name, **r})
        return results

    def checkpoint(at: int, seconds: float) -> None:
        state = {"config": cfg.to_dict(), "seconds": seconds, "scaler": scaler.state_dict() if use_amp else None,
                 "torch": torch.__version__}
        save_checkpoint(ckpt_root, at, core, optimizer, state,
                        extras={"projectors": distiller.projectors} if distiller else None)

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.name}", unit="step",
               disable=not (progress and dist.main), file=sys.stderr, dynamic_ncols=True)
    t0 = time.perf_counter()
    last_log_t, last_log_step = t0, step
    model.train()
    val_results: dict = {}
    steps_this_call = 0
    try:
        for batch in loader:
            if stop_after is not None and steps_this_call >= stop_after:
                break
            factor = lr_at(step, cfg)
            for g in optimizer.param_groups:
                g["lr"] = g["base_lr"] * (1.0 if g.get("fixed_lr") else factor)
            image = batch["image"].to(dev, non_blocking=True)
            target = batch["mask"].to(dev, non_blocking=True)
            amp_ctx = torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext()
            with amp_ctx:
                if distiller is None:
                    fused, sides = model(image, return_sides=True)
                else:
                    fused, sides, extras = model(image, return_sides=True, return_features=True)
            loss, parts = deep_supervision_loss(fused, sides, target, cfg.edge_weight, cfg.side_weight)
            if distiller is not None:
                extra_loss, extra_parts = distiller(extras, image, step / cfg.steps)
                loss = loss + extra_loss
                parts.update(extra_parts)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise DefocusError(f"training diverged at step {step} (loss {loss_value}); lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.clip_grad_norm:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            steps_this_call += 1
            bar.update(1)
            if dist.main:
                bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    now = time.perf_counter()
                    rate = (step - last_log_step) * cfg.batch_size * dist.world / max(now - last_log_t, 1e-9)
                    last_log_t, last_log_step = now, step
                    # One column per loss term: R²MRF has 30 side outputs, DeFusionNet 18, light-dffnet 4.
                    fields = [*TRAIN_FIELDS[:2], *parts, *TRAIN_FIELDS[2:]]
                    append_csv(out / "train_log.csv", fields,
                                {"step": step, "loss": f"{loss_value:.5f}",
                                 **{k: f"{v:.5f}" for k, v in parts.items()},
                                 "lr": f"{cfg.lr * factor:.3e}", "seconds": f"{elapsed_before + now - t0:.1f}",
                                 "samples_per_s": f"{rate:.2f}"})
                if cfg.val_every and step % cfg.val_every == 0 and step < cfg.steps:
                    val_results = run_validation(step)
                    bar.write(f"step {step}: " + "; ".join(
                        f"{k} MAE {v['mae']:.3f} Fβ {v['fbeta']:.3f}" for k, v in val_results.items()), file=sys.stderr)
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    checkpoint(step, elapsed_before + time.perf_counter() - t0)
            if step % cfg.checkpoint_every == 0:
                dist.barrier()
    finally:
        bar.close()
    seconds = elapsed_before + time.perf_counter() - t0
    result = {"step": step, "seconds": seconds, "val": val_results, "model": None}
    if step >= cfg.steps and dist.main:
        result["val"] = run_validation(step)
        from ..nets.modelfile import save_model

        meta = {"config": cfg.name, "steps": step, "seed": cfg.seed, "train_seconds": round(seconds, 1)}
        result["model"] = str(save_model(core, out / "model.safetensors", fp16=True, metadata=meta, force=True))
    dist.close()
    return result
