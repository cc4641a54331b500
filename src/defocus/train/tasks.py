"""What the one training loop trains (``TrainConfig.task``): its data, its loss and its validation.

* ``"dense"`` — a blur map per photo (every blur-detection network): augmented crops of synthetic scenes and real
  folders, BCE + DOF-edge Dice with deep supervision (and depth distillation with a ``distill`` block), validated
  with the detector's own predict on held-out scenes and real samples.
* ``"patch"`` — one class per 41×41 edge patch (B-Net's blur level, E-Net's edge type; Karaali et al. 2022):
  cached patches with a random flip/transpose each, softmax cross-entropy, top-1 accuracy on held-out patches.
* ``"defocus-map"`` — a σ map per photo (DMENet, Lee et al. 2019): the dense task's augmented synthetic crops with
  their exact σ maps, MSE of the map and of its auxiliary maps, BCE of the sharpness-calibration head, and the
  domain-adversarial feature loss on unlabelled real photos; validated as MAE σ px on held-out synthetic scenes.
* ``"edge-crop"`` — B-Net trained densely: a whole blurred crop per sample, rendered on the fly, the network run over
  it fully convolutionally (:mod:`defocus.nets.benet_dense`, the same arithmetic as per patch) and the
  cross-entropy taken at every edge pixel, so one pass serves thousands of edge samples; validated like ``"patch"``.

Everything else — schedule, checkpoints, resume, logs, DDP — is the loop's (:mod:`defocus.train.trainer`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import DefocusError
from .config import TrainConfig
from .progress import say


class DenseTask:
    """Blur maps: see the module docstring."""

    val_fields = ["step", "set", "n", "mae", "fbeta", "iou", "metrics"]

    def __init__(self, cfg: TrainConfig, model: torch.nn.Module, device: str):
        self.cfg = cfg
        self.distiller = None
        if cfg.distill is not None:
            from .distill import Distiller

            self.distiller = Distiller(cfg.distill, model.backbone.channels[-4:], device)

    def extras(self) -> dict[str, torch.nn.Module] | None:
        """Trained modules besides the model, checkpointed beside it (the distillation projectors)."""
        return {"projectors": self.distiller.projectors} if self.distiller is not None else None

    def param_groups(self) -> list[dict]:
        """Optimiser groups besides the model's."""
        group = self.distiller.param_group() if self.distiller is not None else None
        return [group] if group is not None else []

    def _synth_sources(self, out: Path, dist, progress: bool) -> list[tuple[object, int]]:
        """The synthetic source (rank 0 renders the pool; the others wait), with σ maps when ``synth.sigma``."""
        from .data import PoolSource, SynthSource, render_pool

        synth = self.cfg.synth
        if synth.length <= 0 or synth.repeat <= 0:
            return []
        if not synth.pool:
            return [(SynthSource(synth), synth.repeat)]
        folder = out / "synth_pool"
        if dist.main:
            render_pool(folder, synth, workers=min(8, os.cpu_count() or 1), progress=progress)
        dist.barrier()
        return [(PoolSource(folder, synth.length, sigma=synth.sigma), synth.repeat)]

    def dataset(self, out: Path, dist, progress: bool) -> Dataset:
        """The augmented training crops (rank 0 renders the synthetic pool; the others wait)."""
        from .data import RealSource, TrainSet

        cfg = self.cfg
        sources = self._synth_sources(out, dist, progress)
        for real in cfg.real:
            sources.append((RealSource(real, cfg.val_size), real.repeat))
        if not sources:
            raise DefocusError("the configuration has no training data (synth.length is 0 and no real folders)")
        return TrainSet(sources, cfg.augment, cfg.crop, cfg.seed)

    def loss(self, model: torch.nn.Module, batch: dict, device: str, progress: float, amp_ctx):
        """(total loss, {term: value}) of one batch; ``progress`` in [0, 1] drives the distillation weight."""
        from .losses import deep_supervision_loss

        image = batch["image"].to(device, non_blocking=True)
        target = batch["mask"].to(device, non_blocking=True)
        with amp_ctx:
            if self.distiller is None:
                fused, sides = model(image, return_sides=True)
            else:
                fused, sides, features = model(image, return_sides=True, return_features=True)
        loss, parts = deep_supervision_loss(fused, sides, target, self.cfg.edge_weight, self.cfg.side_weight,
                                            self.cfg.ncl_weight)
        if self.distiller is not None:
            extra_loss, extra_parts = self.distiller(features, image, progress)
            loss = loss + extra_loss
            parts.update(extra_parts)
        return loss, parts

    def validation_sets(self) -> dict:
        from .validate import load_real_sets, load_synth_set

        sets = {}
        if self.cfg.val_synth > 0:
            sets["synth_val"] = load_synth_set(self.cfg.val_synth, self.cfg.val_size)
        if self.cfg.val_real:
            sets.update(load_real_sets())
        return sets

    def validate(self, model: torch.nn.Module, sets: dict, device: str) -> dict[str, dict]:
        from .validate import validate

        return validate(model, sets, self.cfg.val_size, device) if sets else {}


class PatchSet(Dataset):
    """Cached uint8 (N, 41, 41, 3) patches and their labels, each patch under one random symmetry of the square
    (blur level and edge type do not depend on orientation). Indexed like :class:`defocus.train.data.TrainSet`."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int):
        self.x, self.y, self.seed = x, np.asarray(y), seed

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, key) -> dict:
        index, _, aug_seed = key
        patch = patch_tensor(self.x[index : index + 1])[0]
        k = int(np.random.default_rng([self.seed, aug_seed]).integers(8))
        if k & 1:
            patch = patch.flip(2)
        if k & 2:
            patch = patch.flip(1)
        if k & 4:
            patch = patch.transpose(1, 2)
        return {"image": patch.contiguous(), "label": torch.tensor(int(self.y[index]))}


def patch_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, 41, 41, 3) patches → float32 (N, 3, 41, 41) in [0, 1]."""
    return torch.from_numpy(np.array(x, np.float32)).permute(0, 3, 1, 2).div_(255.0)


def patch_scores(logits: torch.Tensor, y: np.ndarray) -> dict:
    """Top-1 accuracy, within one class (meaningful for B-Net's ordered blur levels) and, for two classes (E-Net),
    the recall of each: ``pattern_recall`` (class 0) and ``depth_recall`` (class 1)."""
    pred = logits.argmax(1).cpu().numpy()
    y = np.asarray(y)
    out = {"top1": float(np.mean(pred == y)), "within1": float(np.mean(np.abs(pred - y) <= 1)), "n": int(len(y))}
    if logits.shape[1] == 2:
        for cls, name in ((0, "pattern_recall"), (1, "depth_recall")):
            out[name] = float(np.mean(pred[y == cls] == cls)) if np.any(y == cls) else float("nan")
    return out


def level_loss(logits: torch.Tensor, labels: torch.Tensor, soft: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of (N, C) logits against class indices (N,): one-hot targets (``soft`` = 0) or, for
    ordered classes such as B-Net's blur levels, a Gaussian of σ = ``soft`` classes around the true one,
    renormalised over the C classes."""
    logits = logits.float()
    if soft <= 0:
        return F.cross_entropy(logits, labels)
    levels = torch.arange(logits.shape[1], device=logits.device, dtype=torch.float32)
    target = torch.softmax(-0.5 * ((levels[None] - labels[:, None].float()) / soft) ** 2, dim=1)
    return F.cross_entropy(logits, target)


class PatchTask:
    """Edge-patch classes: see the module docstring."""

    val_fields = ["step", "set", "n", "top1", "within1", "pattern_recall", "depth_recall"]

    def __init__(self, cfg: TrainConfig, model: torch.nn.Module, device: str):
        self.cfg = cfg

    def extras(self) -> None:
        return None

    def param_groups(self) -> list[dict]:
        return []

    def _patches(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        from .benet_data import build, default_cache

        p = self.cfg.patches
        n, seed = p.train if split == "train" else p.val
        # The engine rendering is a training-data choice: validation stays on the bundled patch sets' rendering.
        engine = p.engine if split == "train" else 0.0
        return build(p.kind, split, n, Path(p.cache) if p.cache else default_cache(), seed, log=say, engine=engine,
                     camera=p.camera)

    def dataset(self, out: Path, dist, progress: bool) -> Dataset:
        """The training patches (rank 0 builds the cache; the others wait, then read it)."""
        if dist.main:
            self._patches("train")
        dist.barrier()
        return PatchSet(*self._patches("train"), self.cfg.seed)

    def loss(self, model: torch.nn.Module, batch: dict, device: str, progress: float, amp_ctx):
        with amp_ctx:
            logits = model(batch["image"].to(device, non_blocking=True))
        return level_loss(logits, batch["label"].to(device, non_blocking=True), self.cfg.patches.soft), {}

    def validation_sets(self) -> dict:
        return {f"{self.cfg.patches.kind}_val": self._patches("val")}

    @torch.no_grad()
    def validate(self, model: torch.nn.Module, sets: dict, device: str, batch: int = 512) -> dict[str, dict]:
        was_training = model.training
        model.eval()
        results = {}
        for name, (x, y) in sets.items():
            logits = [model(patch_tensor(x[i:i + batch]).to(device)) for i in range(0, len(x), batch)]
            results[name] = patch_scores(torch.cat(logits), y)
        model.train(was_training)
        return results


class DefocusMapTask(DenseTask):
    """Defocus maps (σ px): see the module docstring. Loss of one batch (DMENet's, Lee et al. 2019)::

        MSE(map, σ/S) + side_weight·Σ_k MSE(aux_k, σ/S at scale k) + calibration_weight·BCE(C(map), blur mask)
        + adversarial_weight·(domain loss of the discriminator on the 64-ch full-resolution feature)

    with S = :data:`defocus.nets.dmenet.SIGMA_SCALE`, the auxiliary targets area-averaged to each scale. The paper
    alternates generator and discriminator updates; here one optimiser step trains both through a gradient-reversal
    layer (Ganin & Lempitsky 2015): the discriminator learns synthetic = 1 / real = 0 on its own features and the
    network gets the reversed gradient, so its features on real photos move towards what the discriminator calls
    synthetic. The paper's blur masks for the calibration head are real CUHK masks; here they are the synthetic
    scenes' (CUHK is validation data in this project). The perceptual term is left out (no VGG19).
    """

    val_fields = ["step", "set", "n", "mae_sigma", "rmse_sigma"]

    def __init__(self, cfg: TrainConfig, model: torch.nn.Module, device: str):
        from ..nets.dmenet import FeatureDiscriminator, SharpnessCalibration

        self.cfg = cfg
        self.distiller = None
        self.calibration = SharpnessCalibration().to(device) if cfg.calibration_weight > 0 else None
        width = model.arch["width"]
        self.discriminator = FeatureDiscriminator(width).to(device) if cfg.adversarial_weight > 0 else None

    def extras(self) -> dict[str, torch.nn.Module] | None:
        extras = {"calibration": self.calibration, "discriminator": self.discriminator}
        return {k: v for k, v in extras.items() if v is not None} or None

    def param_groups(self) -> list[dict]:
        lr = self.cfg.lr
        return [{"params": list(m.parameters()), "lr": lr, "base_lr": lr} for m in (self.extras() or {}).values()]

    def dataset(self, out: Path, dist, progress: bool) -> Dataset:
        from .data import PairedRealSet, TrainSet, unlabelled_photos

        cfg = self.cfg
        sources = self._synth_sources(out, dist, progress)
        if not sources:
            raise DefocusError("the defocus-map task trains on synthetic scenes: synth.length must be positive")
        train = TrainSet(sources, cfg.augment, cfg.crop, cfg.seed)
        if self.discriminator is None:
            return train
        return PairedRealSet(train, unlabelled_photos(), cfg.val_size)

    def loss(self, model: torch.nn.Module, batch: dict, device: str, progress: float, amp_ctx):
        from ..nets.dmenet import SIGMA_SCALE

        image = batch["image"].to(device, non_blocking=True)
        target = batch["sigma"].to(device, non_blocking=True) / SIGMA_SCALE
        with amp_ctx:
            out, sides, features = model(image, return_sides=True, return_features=True)
        pred = torch.sigmoid(out.float())
        main = F.mse_loss(pred, target)
        parts = {"map": float(main.detach())}
        total = main
        for k, side in enumerate(sides):
            aux = F.mse_loss(torch.sigmoid(side.float()), F.adaptive_avg_pool2d(target, side.shape[-2:]))
            parts[f"aux{k + 1}"] = float(aux.detach())
            total = total + self.cfg.side_weight * aux
        if self.calibration is not None:
            mask = batch["mask"].to(device, non_blocking=True)
            bce = F.binary_cross_entropy_with_logits(self.calibration(pred), mask)
            parts["calibration"] = float(bce.detach())
            total = total + self.cfg.calibration_weight * bce
        if self.discriminator is not None:
            with amp_ctx:
                _, real_features = model(batch["real"].to(device, non_blocking=True), return_features=True)
            synth_logit = self.discriminator(_reverse_gradient(features))
            real_logit = self.discriminator(_reverse_gradient(real_features))
            domain = 0.5 * (F.binary_cross_entropy_with_logits(synth_logit.float(), torch.ones_like(synth_logit))
                            + F.binary_cross_entropy_with_logits(real_logit.float(), torch.zeros_like(real_logit)))
            parts["domain"] = float(domain.detach())
            total = total + self.cfg.adversarial_weight * domain
        return total, parts

    def validation_sets(self) -> dict:
        from .validate import load_synth_sigma_set

        return {"synth_val": load_synth_sigma_set(self.cfg.val_synth, self.cfg.val_size)} if self.cfg.val_synth else {}

    def validate(self, model: torch.nn.Module, sets: dict, device: str) -> dict[str, dict]:
        from .validate import validate_defocus

        return validate_defocus(model, sets, self.cfg.val_size, device) if sets else {}


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    """Identity forward, negated gradient backward (the discriminator's gradient trains the network adversarially)."""
    return _GradientReversal.apply(x)


class EdgeCropSet(Dataset):
    """Dense B-Net samples (:func:`defocus.train.benet_data.edge_crop`) from the training split's sharp photos.

    Sample g of the run gets blur level g mod 23, so the levels are balanced exactly; its crop, scale, rotation and
    camera draw are seeded by (run seed, g). Items: ``image`` float32 (3, 200, 200) in [0, 1], ``label`` int64
    (160, 160) with −1 off the edges.
    """

    def __init__(self, photos, seed: int, camera: float, linear: bool):
        if not photos:
            raise DefocusError("no sharp training photos (data/photos/*/A_sharp) for the edge-crop task")
        self.photos, self.seed, self.camera, self.linear = photos, seed, camera, linear

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, key) -> dict:
        from ..nets.benet import N_LEVELS
        from ..synth.sources import load_rgb
        from .benet_data import edge_crop

        index, _, aug_seed = key
        rng = np.random.default_rng([self.seed, 104729, aug_seed])
        image, labels = edge_crop(rng, load_rgb(self.photos[index]), aug_seed % N_LEVELS, camera=self.camera,
                                  linear=self.linear)
        return {"image": torch.from_numpy(image).permute(2, 0, 1).contiguous(), "label": torch.from_numpy(labels)}


class EdgeCropTask(PatchTask):
    """B-Net's blur level at the edge pixels of whole crops: see the module docstring."""

    def dataset(self, out: Path, dist, progress: bool) -> Dataset:
        from ..synth.sources import find_sources

        patches = self.cfg.patches
        return EdgeCropSet(find_sources("train").sharp, self.cfg.seed, patches.camera, patches.linear)

    def loss(self, model: torch.nn.Module, batch: dict, device: str, progress: float, amp_ctx):
        """Mean over the crops of each crop's mean cross-entropy at its edge pixels."""
        from ..nets.benet_dense import block_logits

        bnet = getattr(model, "module", model)
        images = batch["image"].to(device, non_blocking=True) - 0.5
        labels = batch["label"].to(device, non_blocking=True)
        losses, edges = [], 0
        for image, label in zip(images, labels):
            ys, xs = torch.nonzero(label >= 0, as_tuple=True)
            if len(ys) == 0:
                continue
            with amp_ctx:
                logits, _ = block_logits(bnet, None, image[None].contiguous(memory_format=torch.channels_last),
                                         ys.cpu().numpy(), xs.cpu().numpy())
            losses.append(level_loss(logits, label[ys, xs], self.cfg.patches.soft))
            edges += len(ys)
        if not losses:  # every crop of the batch edge-free: a zero loss that still reaches the weights
            return sum(p.sum() for p in bnet.parameters()) * 0.0, {"edges": 0.0}
        return torch.stack(losses).mean(), {"edges": float(edges)}


TASKS = {"dense": DenseTask, "patch": PatchTask, "edge-crop": EdgeCropTask, "defocus-map": DefocusMapTask}
