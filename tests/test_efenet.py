"""EFENet (Zhao et al., TIP 2021): members on a shared encoder, their features averaged; the members' own maps and
the negative-correlation penalty that keeps them diverse."""

from __future__ import annotations

import pytest
import torch

from defocus.nets.efenet import EFENet
from defocus.nets.models import build_model
from defocus.train.losses import deep_supervision_loss, negative_correlation_penalty

from conftest import fit_summed_cross_entropy

torch.set_num_threads(2)


def small(members: int = 3) -> EFENet:
    return EFENet(backbone="mobilenetv2", members=members, widths=(8, 8, 8, 4))


def test_fused_map_and_one_map_per_member():
    torch.manual_seed(0)
    net = small(3).eval()
    with torch.no_grad():
        fused, sides = net(torch.rand(1, 3, 64, 96), return_sides=True)
        alone = net(torch.rand(1, 3, 64, 96))
    assert fused.shape == alone.shape == (1, 1, 64, 96)
    assert len(sides) == 3 and all(s.shape == (1, 1, 64, 96) for s in sides)
    assert not torch.allclose(sides[0], sides[1])  # members start from different random weights
    with pytest.raises(ValueError):
        EFENet(members=0)


def test_fused_map_reads_the_mean_of_the_members_features_not_their_maps():
    torch.manual_seed(0)
    net = small(2).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        net.member_heads[0].weight.add_(1.0)  # a member's own classifier does not feed the fused map
        assert torch.equal(net(x), before)
        # swapping two members leaves their mean, hence the fused map, unchanged
        a, b = net.members[0].state_dict(), net.members[1].state_dict()
        net.members[0].load_state_dict(b)
        net.members[1].load_state_dict(a)
        assert torch.allclose(net(x), before, atol=1e-6)


def test_gradients_reach_every_member_and_the_decoder():
    torch.manual_seed(0)
    net = small(3)
    x, target = torch.rand(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.5).float()
    fused, sides = net(x, return_sides=True)
    loss, parts = deep_supervision_loss(fused, sides, target, edge_weight=0.0, side_weight=0.125, ncl_weight=0.5)
    loss.backward()
    assert "ncl" in parts and parts["ncl"] <= 0
    for name in ("members.0", "members.1", "members.2", "member_heads.2", "up8", "up2", "head", "backbone"):
        grads = [p.grad for n, p in net.named_parameters() if n.startswith(name)]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads), name


def test_negative_correlation_keeps_members_apart():
    """Members fitted to one label: with λ = 0 they collapse onto it together; the penalty slows that down (λ·2(1 −
    1/M) = 3 against the BCE's curvature 4 in probability space at p = 0.5) and, above it, holds them apart."""
    target = torch.full((1, 1, 2, 2), 0.5)

    def spread_after(ncl_weight: float) -> float:
        torch.manual_seed(0)
        logits = [torch.nn.Parameter(torch.randn(1, 1, 2, 2)) for _ in range(4)]
        opt = torch.optim.SGD(logits, lr=1.0)
        for _ in range(300):
            own = sum(torch.nn.functional.binary_cross_entropy_with_logits(s, target) for s in logits)
            total = own + ncl_weight * negative_correlation_penalty(logits).sum()
            opt.zero_grad()
            total.backward()
            opt.step()
        return float(-negative_correlation_penalty([s.detach() for s in logits]).mean())

    assert spread_after(0.0) < 1e-6
    assert spread_after(2.0) > 100 * spread_after(0.0)
    assert spread_after(3.0) > 1e-3  # above BCE's curvature the members do not collapse
    # the penalty is −(p_i − p̄)² averaged over pixels: zero for identical members
    same = torch.zeros(1, 1, 4, 4)
    assert torch.equal(negative_correlation_penalty([same, same]), torch.zeros(2))


def test_build_from_arch_and_train_a_few_steps():
    torch.manual_seed(0)
    net = build_model({"arch": "efenet", "backbone": "mobilenetv2", "members": 2, "widths": [8, 8, 8, 4]})
    losses, parts = fit_summed_cross_entropy(net, steps=30)
    assert len(parts) == 1 + 2
    assert min(losses[-5:]) < 0.6 * losses[0]


def test_vgg16_taps_are_its_deepest_per_reduction():
    net = EFENet(backbone="vgg16", members=1, widths=(8, 8, 8, 4))
    assert [f.reduction for f in net.backbone.feature_info] == [2, 4, 8, 16]
    assert net.backbone.channels == [128, 256, 512, 512]


def test_bundled_weights_load_and_are_listed():
    from defocus import registry
    from defocus.nets import modelfile
    from defocus.nets.efenet import PRETRAINED
    from defocus.nets.weights import sha256_of

    (entry,) = PRETRAINED
    assert entry.name in registry.available()
    path = modelfile.BUNDLED_DIR / entry.file
    assert sha256_of(path) == entry.sha256 and path.stat().st_size < 20e6
    model, meta = modelfile.load_model(path, entry.sha256)
    assert model.arch == entry.model
    with torch.no_grad():
        fused, sides = model(torch.rand(1, 3, 64, 64), return_sides=True)
    assert len(sides) == entry.arch_kwargs["members"] and torch.isfinite(fused).all()
