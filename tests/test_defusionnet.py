"""DeFusionNet (Tang et al., CVPR 2019): layer taps, FFRM steps, deep-supervision outputs, deconvolution init, model round trip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from defocus.nets.defusionnet import DeFusionNet, _bilinear_deconv
from defocus.nets.models import build_model

from conftest import fit_summed_cross_entropy

torch.set_num_threads(2)


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_outputs_per_layer_and_step(steps):
    net = DeFusionNet(backbone="vgg16", width=8, steps=steps).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        fused, sides = net(x, return_sides=True)
    assert fused.shape == (2, 1, 64, 96)
    assert len(sides) == 6 * max(steps, 1)  # n = 6 layers (conv1_2 … conv5_3, pool5) at every step
    assert all(s.shape == (2, 1, 64, 96) for s in sides)
    assert net.reductions == [1, 2, 4, 8, 16, 32]


def test_deconvolution_starts_as_bilinear_upsampling():
    up = _bilinear_deconv(3, 4)
    x = torch.rand(1, 3, 8, 8)
    ref = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    with torch.no_grad():
        y = up(x)
    assert y.shape == ref.shape
    assert torch.allclose(y[..., 4:-4, 4:-4], ref[..., 4:-4, 4:-4], atol=1e-5)  # equal away from the border


def test_build_from_arch_and_reject_other_backbones():
    net = build_model({"arch": "defusionnet", "backbone": "vgg16", "width": 8, "steps": 2})
    assert isinstance(net, DeFusionNet) and net.arch["steps"] == 2
    with pytest.raises(ValueError, match="VGG16"):
        DeFusionNet(backbone="mobilenetv2")


def test_training_steps_reduce_the_summed_cross_entropy():
    torch.manual_seed(0)
    losses, parts = fit_summed_cross_entropy(DeFusionNet(backbone="vgg16", width=8, steps=1), steps=40)  # Eq. 6
    assert len(parts) == 1 + 6
    assert min(losses[-5:]) < 0.6 * losses[0]


def test_single_output_ablation():
    """DeFusionNet_Ok (Table 3): the last step's map of layer k instead of the final fusion."""
    net = DeFusionNet(width=8, steps=1).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        fused, sides = net(x, return_sides=True)
        net.output = 3
        single = net(x)
    assert torch.allclose(single, sides[-6 + 2])
