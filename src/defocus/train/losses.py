"""Losses for blur detection: BCE plus the DOF-edge Dice loss of D-DFFNet, with deep supervision.

D-DFFNet (Jin et al., ICME 2023) Eq. 4–7: the DBD loss of a prediction is
ℓ_d = ℓ_bce + λ·ℓ_e with λ = 0.5, where ℓ_e = 1 − Dice(Ê, E) compares the edges of the predicted map with the edges
of the label ("DOF edges": the in-focus / out-of-focus boundary); the total is ℓ_d of the fused output plus
α_k·ℓ_d of each side output, α_k = 1.

Edges (as the authors' public implementation computes them): a fixed 3×3 Laplacian (ones, centre −8)
applied to the label marks E = 1 wherever the response is non-zero; applied to the predicted probability p it gives a
response r whose soft edge is Ê = r² / (r² + α) with α = 1. Dice uses squared terms and smoothing 1, summed over the
batch. Borders are replicated so the frame of the image is not an edge.

Ensembles (EFENet): when the side outputs are the members of an ensemble, each member's loss can add λ times the
negative-correlation penalty of Liu & Yao (1999), :func:`negative_correlation_penalty` (``ncl_weight`` = λ).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LAPLACIAN = torch.tensor([[1.0, 1.0, 1.0], [1.0, -8.0, 1.0], [1.0, 1.0, 1.0]]).view(1, 1, 3, 3)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """3×3 Laplacian (ones, centre −8) of (B, 1, H, W) maps with replicated borders."""
    k = _LAPLACIAN.to(device=x.device, dtype=x.dtype)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)


def label_edges(target: torch.Tensor) -> torch.Tensor:
    """Binary DOF edges of a {0, 1} label map (B, 1, H, W): 1 where the Laplacian response is non-zero."""
    return (laplacian(target).abs() > 1e-6).to(target.dtype)


def soft_edges(prob: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Soft edges r² / (r² + α) of a probability map (B, 1, H, W), r its Laplacian; values in [0, 1)."""
    r2 = laplacian(prob) ** 2
    return r2 / (r2 + alpha)


def dof_edge_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 1.0, smooth: float = 1.0) -> torch.Tensor:
    """ℓ_e = 1 − Dice between soft predicted edges and binary label edges (Eq. 4), over the whole batch.

    Parameters
    ----------
    logits, target : Tensor (B, 1, H, W)
        Blur-map logits and the {0, 1} label.
    """
    pred = soft_edges(torch.sigmoid(logits.float()), alpha)
    edges = label_edges(target.float())
    inter = (pred * edges).sum()
    return 1.0 - (2.0 * inter + smooth) / ((pred ** 2).sum() + (edges ** 2).sum() + smooth)


def dbd_loss(logits: torch.Tensor, target: torch.Tensor, edge_weight: float = 0.5) -> torch.Tensor:
    """ℓ_d = BCE + λ·ℓ_e (Eq. 5–6) of one output; logits and target (B, 1, H, W)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    if edge_weight == 0:
        return bce
    return bce + edge_weight * dof_edge_loss(logits, target)


def negative_correlation_penalty(sides: list[torch.Tensor]) -> torch.Tensor:
    """Negative-correlation penalty of each ensemble member (Liu & Yao, Neural Networks 12, 1999), per pixel.

    Member i with probability map p_i = σ(side_i) and ensemble mean p̄: p_i = (p_i − p̄)·Σ_{j≠i}(p_j − p̄), which is
    −(p_i − p̄)² since the deviations from the mean sum to zero. Adding λ·p_i to a member's loss rewards it for
    departing from the ensemble's mean, i.e. for making errors the other members do not make.

    Parameters
    ----------
    sides : list of Tensor (B, 1, H, W)
        The members' logits (at least two).

    Returns
    -------
    Tensor (M,)
        The penalty of each member, averaged over pixels and batch; each value in [−1, 0].
    """
    probs = torch.sigmoid(torch.stack([s.float() for s in sides]))
    return -((probs - probs.mean(0, keepdim=True)) ** 2).flatten(1).mean(1)


def deep_supervision_loss(fused: torch.Tensor, sides: list[torch.Tensor], target: torch.Tensor,
                          edge_weight: float = 0.5, side_weight: float = 1.0,
                          ncl_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """Eq. 7: ℓ_d(fused) + Σ_k α_k ℓ_d(side_k), α_k = ``side_weight``; with ``ncl_weight`` λ > 0 the sides are an
    ensemble's members and each adds α_k·λ·(its :func:`negative_correlation_penalty`), logged as ``ncl``.

    Returns
    -------
    loss : Tensor (scalar)
    parts : dict of float
        ``fused`` and ``side{k}`` loss values, for logging.
    """
    main = dbd_loss(fused, target, edge_weight)
    parts = {"fused": float(main.detach())}
    total = main
    for k, s in enumerate(sides):
        ls = dbd_loss(s, target, edge_weight)
        parts[f"side{k + 1}"] = float(ls.detach())
        total = total + side_weight * ls
    if ncl_weight and len(sides) > 1:
        penalty = negative_correlation_penalty(sides).sum()
        parts["ncl"] = float(penalty.detach())
        total = total + side_weight * ncl_weight * penalty
    return total, parts
