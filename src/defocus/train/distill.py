"""Depth distillation for D-DFFNet (feature-based, stage 2) and R-DFFNet (response-based) (Jin et al., ICME 2023).

D-DFFNet (Eq. 2, 3, 8, 9): a fresh student DFFNet is trained with the DBD loss plus β·ℓ_f, where ℓ_f compares the
student's four encoder taps, each mapped by a 1×1 projector (no bias, Xavier init), with the taps of two frozen
teachers — the stage-1 DFFNet (defocus teacher) and MiDaS v2.1 (depth teacher). The distance of one level is
``Σ_channels (u/‖u‖ − v/‖v‖)²`` (vectors over channels at each pixel), averaged over pixels, summed over levels and
teachers. β follows Eq. 9: 3 for the first 15 of 75 epochs, then 3·(epoch − 15)/75 — here in steps, with the same
fractions. The projectors have their own fixed learning rate (Adam 0.1, weight decay 5e-4).

R-DFFNet (supplementary Eq. 10): one-stage training of a DFFNet with depth heads; its final and four side depth
maps regress the depth teacher's output with ℓ2 (weight λ = 1 each). The teacher's relative inverse depth is scaled
to [0, 1] per image first (its scale is arbitrary).

Either teacher may be absent; the bundled D-DFFNet distils from the defocus teacher only, since no depth model can
be obtained here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DefocusError
from .config import Distill


def feature_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Eq. 2 averaged over pixels: mean over (B, H, W) of Σ_c (s/‖s‖ − t/‖t‖)², norms over channels.

    ``student`` and ``teacher`` are (B, C, H, W) with the same C; the teacher is resized to the student's H×W."""
    if teacher.shape[-2:] != student.shape[-2:]:
        teacher = F.interpolate(teacher, size=student.shape[-2:], mode="bilinear", align_corners=False)
    diff = F.normalize(student.float(), dim=1) - F.normalize(teacher.float(), dim=1)
    return (diff ** 2).sum(1).mean()


def beta_at(progress: float, beta: float, hold: float) -> float:
    """Eq. 9 with training progress in [0, 1]: ``beta`` up to ``hold``, then ``beta·(progress − hold)``."""
    return beta if progress <= hold else beta * (progress - hold)


def _min_max(depth: torch.Tensor) -> torch.Tensor:
    lo = depth.amin(dim=(1, 2, 3), keepdim=True)
    hi = depth.amax(dim=(1, 2, 3), keepdim=True)
    return (depth - lo) / (hi - lo).clamp_min(1e-6)


class _Teacher:
    """A frozen network and how to get its four encoder taps (and, for a depth teacher, its depth)."""

    def __init__(self, net: nn.Module, kind: str):
        self.net, self.kind = net, kind
        for p in net.parameters():
            p.requires_grad_(False)
        net.eval()

    @torch.no_grad()
    def taps(self, image: torch.Tensor) -> list[torch.Tensor]:
        if self.kind == "depth":
            return self.net.encode(self.net.normalize(image))
        backbone = self.net.backbone
        return backbone(backbone.normalize(image))[-4:]

    @torch.no_grad()
    def depth(self, image: torch.Tensor) -> torch.Tensor:
        return _min_max(self.net(self.net.normalize(image)))

    def channels(self, image_size: int = 64) -> list[int]:
        probe = torch.zeros(1, 3, image_size, image_size, device=next(self.net.parameters()).device)
        return [t.shape[1] for t in self.taps(probe)]


class Distiller(nn.Module):
    """The distillation term of the loss; its projectors are trained, its teachers frozen.

    Parameters
    ----------
    cfg : Distill
    student_channels : list of int
        Channels of the student's four encoder taps.
    device : str
    """

    def __init__(self, cfg: Distill, student_channels: list[int], device: str = "cpu"):
        super().__init__()
        from ..nets.midas import load_midas
        from ..nets.modelfile import load_model, resolve_model_path

        if cfg.mode not in ("feature", "response"):
            raise DefocusError(f"distill.mode must be 'feature' or 'response', not {cfg.mode!r}")
        self.cfg = cfg
        self.teachers: dict[str, _Teacher] = {}
        if cfg.defocus_teacher and cfg.mode == "feature":
            net, _ = load_model(resolve_model_path(cfg.defocus_teacher), sha256=cfg.defocus_teacher_sha256,
                                device=device)
            self.teachers["defocus"] = _Teacher(net, "defocus")
        if cfg.depth_teacher:
            self.teachers["depth"] = _Teacher(load_midas(cfg.depth_teacher, cfg.depth_teacher_sha256).to(device),
                                              "depth")
        if not self.teachers:
            raise DefocusError("distill: no teacher (set distill.defocus_teacher and/or distill.depth_teacher; "
                               "response mode needs the depth teacher)")
        if cfg.mode == "response" and "depth" not in self.teachers:
            raise DefocusError("distill.mode 'response' (R-DFFNet) needs distill.depth_teacher")
        self.projectors = nn.ModuleDict()
        if cfg.mode == "feature":
            for name, teacher in self.teachers.items():
                convs = nn.ModuleList(nn.Conv2d(cs, ct, 1, bias=False)
                                      for cs, ct in zip(student_channels, teacher.channels()))
                for conv in convs:
                    nn.init.xavier_uniform_(conv.weight)
                self.projectors[name] = convs
        self.to(device)

    def param_group(self) -> dict | None:
        """The projectors' optimiser group: a fixed learning rate (no warm-up or decay)."""
        params = list(self.projectors.parameters())
        if not params:
            return None
        return {"params": params, "lr": self.cfg.projector_lr, "base_lr": self.cfg.projector_lr,
                "weight_decay": self.cfg.projector_weight_decay, "fixed_lr": True}

    def forward(self, extras: dict, image: torch.Tensor, progress: float) -> tuple[torch.Tensor, dict]:
        """Distillation loss for one batch.

        Parameters
        ----------
        extras : dict
            The student's ``return_features`` output (``features``; ``depth`` for R-DFFNet).
        image : Tensor (B, 3, H, W), RGB in [0, 1]
        progress : float
            Training progress in [0, 1] (for β).

        Returns
        -------
        loss : Tensor (scalar)
        parts : dict of float, for logging
        """
        parts: dict[str, float] = {}
        if self.cfg.mode == "response":
            target = self.teachers["depth"].depth(image)
            heads = extras.get("depth")
            if heads is None:
                raise DefocusError("distill.mode 'response' needs a student with depth heads "
                                   "(model option depth_heads: true)")
            depth_loss = sum(F.mse_loss(d.float(), F.interpolate(target, size=d.shape[-2:], mode="bilinear",
                                                                 align_corners=False)) for d in heads)
            parts["depth"] = float(depth_loss.detach())
            return self.cfg.depth_weight * depth_loss, parts
        beta = beta_at(progress, self.cfg.beta, self.cfg.hold)
        total = image.new_zeros(())
        for name, teacher in self.teachers.items():
            taps = teacher.taps(image)
            d = sum(feature_distance(proj(s), t) for proj, s, t in zip(self.projectors[name], extras["features"], taps))
            parts[f"distill_{name}"] = float(d.detach())
            total = total + d
        parts["beta"] = beta
        return beta * total, parts
