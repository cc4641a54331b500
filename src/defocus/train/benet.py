"""Training B-Net and then E-Net (Karaali, Harte & Jung, TIP 2022, Sec. IV-B) on synthetic edge patches.

Recipe (paper, adapted to a CPU time budget): softmax cross-entropy, Adam, learning rate 1e-3 divided by 10 twice
(the paper: every 10 epochs for B-Net, every 5 for E-Net, over 75 / 30 epochs; here at 60 % and 90 % of the step or
time budget, whichever runs out first). B-Net first; then E-Net with B-Net's f1 streams frozen (their weights are
not in the E-Net file, which names the B-Net file it was trained on by sha256). Patches: :mod:`.benet_data`, with a
random flip/transpose of each patch (blur and edge type do not depend on orientation).

The main DBD trainer (:mod:`.trainer`) is built around dense-map models, crops and DBD validation, so this loop is
separate and small; it reuses that package's crash-safe checkpoints (:mod:`.checkpoint`) and CSV logs
(:mod:`.csvlog`) for resuming, and :func:`defocus.io.atomic_write` for the final files.

Usage::

    python -m defocus.train.benet --out runs/benet --bnet-minutes 20 --enet-minutes 10
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..io import atomic_write
from ..nets.benet import BNet, ENet, N_LEVELS
from .benet_data import build, default_cache
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .csvlog import append_csv, truncate_csv

#: Default patch counts and seeds of the caches (train / validation photos are disjoint by file hash).
DATA = {
    "bnet": {"train": (46000, 1), "val": (2300, 2)},
    "enet": {"train": (24000, 3), "val": (2000, 4)},
}


def _cached(kind: str, split: str, cache: Path, log) -> tuple[np.ndarray, np.ndarray]:
    n, seed = DATA[kind][split]
    return build(kind, split, n, cache, seed, log=log)


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, 41, 41, 3) patches → float32 (N, 3, 41, 41) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div_(255.0)


def dihedral(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """One random flip/transpose for the whole batch (8 symmetries of the square)."""
    k = int(rng.integers(8))
    if k & 1:
        x = x.flip(3)
    if k & 2:
        x = x.flip(2)
    if k & 4:
        x = x.transpose(2, 3)
    return x


@torch.no_grad()
def predict_logits(model: torch.nn.Module, x: np.ndarray, batch: int = 512) -> torch.Tensor:
    model.eval()
    out = [model(to_tensor(x[i:i + batch])) for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.zeros(0)


def accuracy(logits: torch.Tensor, y: np.ndarray) -> dict:
    """Top-1 accuracy, and within one class (meaningful for the ordered blur levels)."""
    pred = logits.argmax(1).numpy()
    return {"top1": float(np.mean(pred == y)), "within1": float(np.mean(np.abs(pred - y) <= 1)), "n": int(len(y))}


def _lr(progress: float, base: float) -> float:
    return base if progress < 0.6 else base * 0.1 if progress < 0.9 else base * 0.01


def fit(model: torch.nn.Module, params, x: np.ndarray, y: np.ndarray, *, out: Path, steps: int, minutes: float,
        batch: int, lr: float, seed: int, log_name: str, frozen: torch.nn.Module | None = None,
        resume: bool = False, log=print) -> dict:
    """Adam on cross-entropy until ``steps`` or ``minutes`` run out; returns {"steps", "seconds", "loss"}."""
    opt = torch.optim.Adam(params, lr=lr)
    ck_dir = out / f"checkpoints_{log_name}"
    step, spent = 0, 0.0
    if resume and (ck := latest_checkpoint(ck_dir)) is not None:
        state = load_checkpoint(ck, model, opt)
        step, spent = int(state["step"]), float(state["seconds"])
        log(f"{log_name}: resumed at step {step}")
    log_path = out / f"{log_name}_log.csv"
    truncate_csv(log_path, step)  # rows written after the checkpoint are logged again by this run
    rng = np.random.default_rng(seed + step)
    t0, last_ck, run_loss = time.time() - spent, time.time(), None
    while True:
        elapsed = time.time() - t0
        progress = max(step / steps, elapsed / (60.0 * minutes))
        if progress >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = _lr(progress, lr)
        model.train()
        if frozen is not None:
            frozen.eval()  # no dropout/BN here, but keep the frozen part in inference mode regardless
        idx = np.sort(rng.choice(len(y), size=batch, replace=False))
        xb = dihedral(to_tensor(x[idx]), rng)
        loss = F.cross_entropy(model(xb), torch.from_numpy(np.asarray(y[idx])))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        run_loss = loss.item() if run_loss is None else 0.98 * run_loss + 0.02 * loss.item()
        if step % 50 == 0:
            row = {"step": step, "seconds": round(time.time() - t0, 1), "lr": opt.param_groups[0]["lr"],
                   "loss": round(run_loss, 4)}
            append_csv(log_path, list(row), row)
            log(f"{log_name}: step {step} {row['seconds']:.0f} s lr {row['lr']:.0e} loss {run_loss:.3f}")
        if time.time() - last_ck > 180:
            save_checkpoint(ck_dir, step, model, opt, {"step": step, "seconds": time.time() - t0}, keep=1)
            last_ck = time.time()
    return {"steps": step, "seconds": round(time.time() - t0, 1), "loss": run_loss}


def save_weights(module_sd: dict, path: Path, metadata: dict, force: bool = True) -> str:
    """Write a float16 safetensors file atomically; returns its sha256."""
    import hashlib

    from ..nets.modelfile import state_dict_bytes

    data = state_dict_bytes(module_sd, fp16=True, metadata=metadata)
    atomic_write(path, lambda f: f.write(data), force=force)
    return hashlib.sha256(data).hexdigest()


def train_bnet(out: Path, *, minutes: float, steps: int, batch: int, seed: int, scales=(41, 27, 15),
               resume: bool = False, cache: Path | None = None, name: str = "benet_bnet_v1", log=print) -> dict:
    cache = cache or default_cache()
    x, y = _cached("bnet", "train", cache, log)
    xv, yv = _cached("bnet", "val", cache, log)
    torch.manual_seed(seed)
    model = BNet(tuple(scales))
    stats = fit(model, model.parameters(), x, y, out=out, steps=steps, minutes=minutes, batch=batch, lr=1e-3,
                seed=seed, log_name=name, resume=resume, log=log)
    val = accuracy(predict_logits(model, xv), np.asarray(yv))
    log(f"{name}: validation top-1 {val['top1']:.3f}, within ±1 class {val['within1']:.3f} (n = {val['n']})")
    meta = {"arch": model.arch, "classes": "disk radius 0.5:0.25:6.0 px", "val": val, "train": stats,
            "data": {"train": DATA["bnet"]["train"], "val": DATA["bnet"]["val"], "n_classes": N_LEVELS}}
    sha = save_weights(model.state_dict(), out / f"{name}.safetensors", meta)
    return {"file": f"{name}.safetensors", "sha256": sha, "val": val, **stats}


def train_enet(out: Path, bnet_file: Path, *, minutes: float, steps: int, batch: int, seed: int,
               resume: bool = False, cache: Path | None = None, name: str = "enet_v1", log=print) -> dict:
    from ..methods.karaali_2022 import load_bnet

    cache = cache or default_cache()
    x, y = _cached("enet", "train", cache, log)
    xv, yv = _cached("enet", "val", cache, log)
    bnet = load_bnet(bnet_file, sha256=None)
    torch.manual_seed(seed)
    model = ENet(bnet.f1)
    for p in model.f1.parameters():
        p.requires_grad_(False)
    stats = fit(model, model.trainable_parameters(), x, y, out=out, steps=steps, minutes=minutes, batch=batch,
                lr=1e-3, seed=seed, log_name=name, frozen=model.f1, resume=resume, log=log)
    val = accuracy(predict_logits(model, xv), np.asarray(yv))
    pred = predict_logits(model, xv).argmax(1).numpy()
    yv = np.asarray(yv)
    val["depth_recall"] = float(np.mean(pred[yv == 1] == 1)) if np.any(yv == 1) else float("nan")
    val["pattern_recall"] = float(np.mean(pred[yv == 0] == 0)) if np.any(yv == 0) else float("nan")
    log(f"{name}: validation accuracy {val['top1']:.3f} (depth recall {val['depth_recall']:.3f}, "
        f"pattern recall {val['pattern_recall']:.3f}, n = {val['n']})")
    from ..nets.weights import sha256_of

    own = {k: v for k, v in model.state_dict().items() if not k.startswith("f1.")}
    meta = {"arch": model.arch, "classes": "0 pattern edge, 1 depth edge", "val": val, "train": stats,
            "f1_from": {"file": Path(bnet_file).name, "sha256": sha256_of(bnet_file)},
            "data": {"train": DATA["enet"]["train"], "val": DATA["enet"]["val"]}}
    sha = save_weights(own, out / f"{name}.safetensors", meta)
    return {"file": f"{name}.safetensors", "sha256": sha, "val": val, **stats}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m defocus.train.benet", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="output folder (weights, logs, checkpoints)")
    p.add_argument("--what", choices=("both", "bnet", "enet"), default="both")
    p.add_argument("--bnet-minutes", type=float, default=20.0)
    p.add_argument("--enet-minutes", type=float, default=10.0)
    p.add_argument("--bnet-steps", type=int, default=100000)
    p.add_argument("--enet-steps", type=int, default=100000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--scales", default="41,27,15", help="B-Net patch streams (ablation: 41)")
    p.add_argument("--bnet-name", default="benet_bnet_v1")
    p.add_argument("--enet-name", default="enet_v1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=None, help="patch cache folder (default /tmp/defocus-benet-cache)")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {}
    bnet_path = args.out / f"{args.bnet_name}.safetensors"
    if args.what in ("both", "bnet"):
        scales = tuple(int(s) for s in args.scales.split(","))
        report["bnet"] = train_bnet(args.out, minutes=args.bnet_minutes, steps=args.bnet_steps, batch=args.batch,
                                    seed=args.seed, scales=scales, resume=args.resume, cache=args.cache,
                                    name=args.bnet_name)
    if args.what in ("both", "enet"):
        report["enet"] = train_enet(args.out, bnet_path, minutes=args.enet_minutes, steps=args.enet_steps,
                                    batch=args.batch, seed=args.seed + 1, resume=args.resume, cache=args.cache,
                                    name=args.enet_name)
    path = args.out / f"report_{args.what}_{args.bnet_name}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
