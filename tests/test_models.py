"""One tester for every trainable network of the model registry (MODELS) and every bundled weight file.

A new architecture is covered by adding its line to MODELS (and a small configuration below if its defaults are
too heavy for a test); a new weight file by its PRETRAINED entry.
"""

from __future__ import annotations

import copy
import inspect
import json

import pytest
import torch

from defocus.nets.layers import fuse_conv_bn
from defocus.nets.modelfile import BUNDLED_DIR, load_model, read_model_file, save_model
from defocus.nets.models import MODELS, build_model
from defocus.nets.weights import sha256_of
from defocus.registry import all_pretrained

from conftest import fit_summed_cross_entropy

torch.set_num_threads(2)

#: Small configurations of the architectures whose defaults (paper backbones) are too heavy for a unit test.
SMALL: dict[str, dict] = {
    "light_dffnet": {"backbone": "mobilenetv2", "width": 8},
    "dffnet": {"backbone": "mobilenetv2", "width": 8},
    "r2mrf": {"backbone": "mobilenetv2", "width": 8, "steps": 2},
    "br2net": {"backbone": "mobilenetv2", "width": 8},
    "defusionnet": {"backbone": "hed_vgg16", "width": 8, "steps": 1},
    "efenet": {"backbone": "mobilenetv2", "members": 2, "widths": [8, 8, 8, 4]},
}


def small(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model({"arch": arch, **SMALL.get(arch, {})}, pretrained=False)


def _randomise_batchnorm(net: torch.nn.Module) -> None:
    """Non-trivial BN statistics and affine parameters, so folding them into the convolutions is really tested."""
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)


def _is_dense(net: torch.nn.Module) -> bool:
    """A blur-map network (image in, logit map and side outputs out), not a patch classifier (B-Net, E-Net)."""
    return "return_sides" in inspect.signature(net.forward).parameters


def _fit_patches(net: torch.nn.Module, steps: int, lr: float = 1e-3) -> list[float]:
    """Adam steps of the cross-entropy of a patch classifier on one fixed batch of labelled 41×41 patches."""
    torch.manual_seed(0)
    x = torch.rand(8, 3, 41, 41)
    with torch.no_grad():
        labels = torch.arange(8) % net(x).shape[1]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(net(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_network(arch, tmp_path):
    net = small(arch)
    assert net.arch["arch"] == arch
    dense = _is_dense(net)
    x = torch.rand(2, 3, 64, 64) if dense else torch.rand(4, 3, 41, 41)

    # forward shapes: a full-size map (at 64²) and its side outputs, or one logit vector per patch
    net.eval()
    with torch.no_grad():
        out = net(x)
        if dense:
            fused, sides = net(x, return_sides=True)
    if dense:
        assert out.shape == (2, 1, 64, 64)
        assert torch.allclose(fused, out)
        # side outputs at full size, or (DMENet's auxiliary maps) at their own scale, 64 / 2^k
        assert len(sides) >= 1 and all(s.shape[:2] == (2, 1) and 64 % s.shape[-1] == 0 and s.shape[-2] == s.shape[-1]
                                       for s in sides)
    else:
        assert out.ndim == 2 and out.shape[0] == 4 and out.shape[1] >= 2

    # backward: every trainable tensor gets a finite gradient (from the fused map and every side output)
    net.train()
    if dense:
        fused, sides = net(x, return_sides=True)
        (fused.mean() + sum(s.mean() for s in sides)).backward()
    else:
        net(x).logsumexp(1).mean().backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)

    # model file round trip: the file rebuilds the same architecture with the same tensors
    net.eval()
    path = save_model(net, tmp_path / "m.safetensors", fp16=False, metadata={"steps": 3})
    loaded, meta = load_model(path, sha256=sha256_of(path))
    assert loaded.arch == net.arch and json.loads(meta["arch"]) == net.arch and meta["steps"] == "3"
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))

    # folding BatchNorm into the convolutions keeps the outputs
    _randomise_batchnorm(net)
    with torch.no_grad():
        ref = net(x)
        folded = fuse_conv_bn(copy.deepcopy(net))(x)
    torch.testing.assert_close(folded, ref, atol=1e-4, rtol=1e-4)

    # a few optimisation steps lower the loss
    if dense:
        losses, _ = fit_summed_cross_entropy(small(arch), steps=8, lr=3e-3)
    else:
        losses = _fit_patches(small(arch), steps=8)
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("entry", all_pretrained(), ids=lambda p: p.name)
def test_bundled_weight_file(entry):
    """Every registered weight file is bundled (missing = failure, not a skip), has its sha256, and holds the
    architecture its entry names."""
    path = BUNDLED_DIR / entry.file
    assert path.is_file(), f"{entry.name}: bundled weight file {entry.file} is missing"
    assert sha256_of(path) == entry.sha256, f"{entry.name}: {entry.file} does not have the registered sha256"
    meta, _ = read_model_file(path, entry.sha256)
    assert json.loads(meta["arch"]) == entry.model
    assert entry.arch in MODELS
