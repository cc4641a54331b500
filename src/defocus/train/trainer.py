"""The one training loop: schedule, clipping, AMP, crash-safe checkpoints, resume, CSV logs, validation, DDP.

What is trained — data, loss, validation — is the configuration's task (:mod:`defocus.train.tasks`: dense blur
maps, or edge-patch classes for B-Net / E-Net); :func:`train` runs the same steps for both, one function each:
:func:`build` (model, optimiser, restored state), :func:`data` (loader), :func:`loop` (optimisation steps, logs,
checkpoints), :func:`validate` and :func:`save` (the final model file).

Outputs in the run folder ``OUT``::

    config.json        the resolved configuration
    train_log.csv      step, loss (total and per output), lr, seconds since the start, samples/s
    val_log.csv        step, set, n, then the task's scores (mae, fbeta, iou, metrics / top1, within1, ...)
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DefocusError
from .checkpoint import checkpoint_folders, load_checkpoint, resume_point, save_checkpoint
from .config import TrainConfig
from .csvlog import append_csv, truncate_csv
from .progress import progress as progress_bar
from .progress import say
from .tasks import TASKS

TRAIN_FIELDS = ["step", "loss", "lr", "seconds", "samples_per_s"]  # + every loss term the run reports, after "loss"


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning-rate factor at ``step``.

    ``schedule="poly"``: linear warm-up, then poly decay (1 − t)^power to 0 at ``cfg.steps``; ``"step"``: divided
    by 10 at each fraction ``cfg.lr_milestones`` of the steps; ``"exp"``: ``cfg.decay_factor`` per ``cfg.decay_every``
    steps (after the warm-up).
    """
    if cfg.schedule == "step":
        return 0.1 ** sum(step >= m * cfg.steps for m in cfg.lr_milestones)
    if cfg.schedule == "exp":
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return cfg.decay_factor ** (step // cfg.decay_every)
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


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, extra_groups: list[dict]) -> torch.optim.Optimizer:
    """Decoder at ``lr``, backbone at ``lr·backbone_lr_mult``, frozen parameters left out, then ``extra_groups``."""
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    backbone = [p for n, p in trained if n.startswith("backbone.")]
    rest = [p for n, p in trained if not n.startswith("backbone.")]
    groups = [{"params": ps, "lr": lr, "base_lr": lr}
              for ps, lr in ((backbone, cfg.lr * cfg.backbone_lr_mult), (rest, cfg.lr)) if ps]
    groups += extra_groups
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise DefocusError(f"optimizer must be 'adam' or 'sgd', not {cfg.optimizer!r}")


@dataclass
class Run:
    """One training run's state, shared by its steps."""

    cfg: TrainConfig
    out: Path
    dist: _Dist
    model: torch.nn.Module  # what the loop calls (DDP-wrapped with several processes)
    core: torch.nn.Module  # the network itself (what checkpoints and the model file hold)
    task: object
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    use_amp: bool
    step: int = 0
    seconds: float = 0.0  # training time so far, earlier calls (resume) included

    @property
    def device(self) -> str:
        return self.dist.device

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"


def _set_threads(cfg: TrainConfig, device: str) -> None:
    if device == "cpu" and cfg.threads > 0:
        import cv2

        # Set before any worker is forked (a forked child must not reconfigure inherited thread pools). More threads
        # than free cores is costly: OpenMP spin-waits burned 7x the CPU per step with 2 threads on 2 busy cores.
        torch.set_num_threads(cfg.threads)
        cv2.setNumThreads(cfg.threads)


def _starting_checkpoint(out: Path, resume: bool, dist: _Dist) -> Path | None:
    root = out / "checkpoints"
    if not resume:
        if checkpoint_folders(root):
            raise DefocusError(f"{out}: holds a training run already; use --resume to continue it or choose "
                               "another --out")
        return None
    return resume_point(root, log=say if dist.main else None)


def _model(cfg: TrainConfig, fresh: bool, main: bool) -> torch.nn.Module:
    """The network of ``cfg.model``, initialised (``pretrained``, then ``init_from``) unless a checkpoint follows;
    parameters named ``cfg.freeze``… are frozen."""
    from ..nets.models import build_model

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = build_model(cfg.model, pretrained=cfg.pretrained if fresh else False)
    if cfg.init_from and fresh:
        from ..nets.modelfile import init_from_model_file, resolve_model_path

        taken = init_from_model_file(model, resolve_model_path(cfg.init_from), cfg.init_prefix)
        if main:
            say(f"{len(taken)} tensors from {cfg.init_from}")
    if cfg.freeze:
        frozen = [p for n, p in model.named_parameters() if n.startswith(cfg.freeze)]
        if not frozen:
            raise DefocusError(f"freeze: no parameter of {cfg.model['arch']} is named {cfg.freeze!r}…")
        for p in frozen:
            p.requires_grad_(False)
    return model


def build(cfg: TrainConfig, out: Path, *, resume: bool, device: str | None) -> Run:
    """Step 1: processes, model, task, optimiser, and the state of the checkpoint a resumed run continues."""
    dist = _Dist(device)
    _set_threads(cfg, dist.device)
    ckpt = _starting_checkpoint(out, resume, dist)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    core = _model(cfg, ckpt is None, dist.main).to(dist.device)
    task = TASKS[cfg.task](cfg, core, dist.device)
    optimizer = _optimizer(core, cfg, task.param_groups())
    use_amp = cfg.amp and dist.device.startswith("cuda")
    run = Run(cfg, out, dist, core, core, task, optimizer, torch.amp.GradScaler("cuda", enabled=use_amp), use_amp)
    if ckpt is not None:
        state = load_checkpoint(ckpt, core, optimizer, device=dist.device, extras=task.extras())
        run.step, run.seconds = int(state["step"]), float(state.get("seconds", 0.0))
        if state.get("scaler") and use_amp:
            run.scaler.load_state_dict(state["scaler"])
        if dist.main:
            truncate_csv(out / "train_log.csv", run.step)
            truncate_csv(out / "val_log.csv", run.step)
            say(f"resuming {ckpt} at step {run.step}")
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        run.model = DistributedDataParallel(core, device_ids=[dist.local_rank] if dist.device.startswith("cuda")
                                            else None)
    return run


def data(run: Run, progress: bool):
    """Step 2: the loader of the batches of steps ``run.step … cfg.steps − 1`` (a pure function of seed and step)."""
    from torch.utils.data import DataLoader

    from .data import StepBatchSampler

    cfg, dist = run.cfg, run.dist
    dataset = run.task.dataset(run.out, dist, progress and dist.main)
    sampler = StepBatchSampler(len(dataset), cfg.batch_size, cfg.seed, run.step, cfg.steps, dist.rank, dist.world)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.workers,
                      pin_memory=run.device.startswith("cuda"), prefetch_factor=2 if cfg.workers > 0 else None)


def validate(run: Run, sets: dict, at: int) -> dict:
    """Step 4: the task's scores on the validation sets, appended to ``val_log.csv``."""
    results = run.task.validate(run.core, sets, run.device)
    for name, r in results.items():
        append_csv(run.out / "val_log.csv", run.task.val_fields, {"step": at, "set": name, **r})
    return results


def describe_scores(results: dict) -> str:
    """One line of validation scores, e.g. ``synth_val mae 0.101, fbeta 0.816``."""
    return "; ".join(f"{name} " + ", ".join(f"{k} {v:.3f}" for k, v in r.items() if isinstance(v, float))
                     for name, r in results.items())


def _optimisation_step(run: Run, batch: dict) -> tuple[float, dict]:
    cfg = run.cfg
    factor = lr_at(run.step, cfg)
    for g in run.optimizer.param_groups:
        g["lr"] = g["base_lr"] * (1.0 if g.get("fixed_lr") else factor)
    amp_ctx = torch.autocast("cuda", dtype=torch.float16) if run.use_amp else nullcontext()
    loss, parts = run.task.loss(run.model, batch, run.device, run.step / cfg.steps, amp_ctx)
    loss_value = float(loss.detach())
    if not math.isfinite(loss_value):
        raise DefocusError(f"training diverged at step {run.step} (loss {loss_value}); lower the learning rate")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if cfg.clip_grad_norm:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip_grad_norm)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.step += 1
    return loss_value, parts


def _checkpoint(run: Run, seconds: float) -> None:
    state = {"config": run.cfg.to_dict(), "seconds": seconds, "torch": torch.__version__,
             "scaler": run.scaler.state_dict() if run.use_amp else None}
    save_checkpoint(run.checkpoints, run.step, run.core, run.optimizer, state, extras=run.task.extras())


def loop(run: Run, loader, val_sets: dict, progress: bool, stop_after: int | None) -> dict:
    """Step 3: optimisation steps until ``cfg.steps`` (or ``stop_after`` steps of this call), with the logs,
    periodic validation and checkpoints of rank 0; returns the last periodic validation's scores."""
    cfg, dist = run.cfg, run.dist
    bar = progress_bar(cfg.steps, f"train {cfg.name}", "step", enabled=progress and dist.main, initial=run.step)
    t0 = time.perf_counter()
    last_log_t, last_log_step, this_call = t0, run.step, 0
    val_results: dict = {}
    run.model.train()
    try:
        for batch in loader:
            if stop_after is not None and this_call >= stop_after:
                break
            loss_value, parts = _optimisation_step(run, batch)
            this_call += 1
            bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
            bar.update(1)
            step = run.step
            if dist.main:
                if step % cfg.log_every == 0 or step == cfg.steps:
                    now = time.perf_counter()
                    rate = (step - last_log_step) * cfg.batch_size * dist.world / max(now - last_log_t, 1e-9)
                    last_log_t, last_log_step = now, step
                    # One column per loss term: R²MRF has 30 side outputs, DeFusionNet 18, light-dffnet 4.
                    append_csv(run.out / "train_log.csv", [*TRAIN_FIELDS[:2], *parts, *TRAIN_FIELDS[2:]],
                               {"step": step, "loss": f"{loss_value:.5f}",
                                **{k: f"{v:.5f}" for k, v in parts.items()},
                                "lr": f"{cfg.lr * lr_at(step - 1, cfg):.3e}",
                                "seconds": f"{run.seconds + now - t0:.1f}", "samples_per_s": f"{rate:.2f}"})
                if cfg.val_every and step % cfg.val_every == 0 and step < cfg.steps:
                    val_results = validate(run, val_sets, step)
                    bar.write(f"step {step}: {describe_scores(val_results)}", file=sys.stderr)
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    _checkpoint(run, run.seconds + time.perf_counter() - t0)
            if step % cfg.checkpoint_every == 0:
                dist.barrier()
    finally:
        bar.close()
    run.seconds += time.perf_counter() - t0
    return val_results


def save(run: Run) -> Path:
    """Step 5: the final model file ``OUT/model.safetensors`` (float16, with its ``arch``), loadable with
    :func:`defocus.nets.modelfile.load_model`; a warm start is named in its metadata by file and sha256."""
    from ..nets.modelfile import resolve_model_path, save_model
    from ..nets.weights import sha256_of

    cfg = run.cfg
    meta = {"config": cfg.name, "task": cfg.task, "steps": run.step, "seed": cfg.seed,
            "train_seconds": round(run.seconds, 1)}
    if cfg.init_from:
        source = resolve_model_path(cfg.init_from)
        meta["init_from"] = {"file": source.name, "sha256": sha256_of(source), "prefix": cfg.init_prefix}
    return save_model(run.core, run.out / "model.safetensors", fp16=True, metadata=meta, force=True)


def train(cfg: TrainConfig, out_dir: str | os.PathLike, *, resume: bool = False, device: str | None = None,
          progress: bool = True, stop_after: int | None = None) -> dict:
    """Train a model as configured; returns ``{"step", "seconds", "val": {...}, "model": path or None}``.

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : path
        Run folder (created). A folder with checkpoints is only continued with ``resume=True``.
    resume : bool
        Continue from the newest complete checkpoint in ``out_dir`` (start fresh if there is none; an error if
        there are checkpoint folders but none is complete).
    device : str, optional
        ``"cpu"`` or ``"cuda"``; default CUDA when available.
    progress : bool
        Show progress (a bar on a terminal, plain lines otherwise).
    stop_after : int, optional
        Return after this many steps of this call (the schedule still spans ``cfg.steps``); for tests and
        time-sliced runs.
    """
    run = build(cfg, Path(out_dir), resume=resume, device=device)
    loader = data(run, progress)
    val_sets = run.task.validation_sets() if run.dist.main else {}
    val_results = loop(run, loader, val_sets, progress, stop_after)
    result = {"step": run.step, "seconds": run.seconds, "val": val_results, "model": None}
    if run.step >= cfg.steps and run.dist.main:
        result["val"] = validate(run, val_sets, run.step)
        result["model"] = str(save(run))
    run.dist.close()
    return result
