"""BR²Net (Tang et al., TMM 2020): channel attention, two residual refining pathways, 10 sides + fused, weights."""

from __future__ import annotations

import pytest
import torch

import defocus
from defocus.nets.br2net import BR2Net, ChannelAttention
from defocus.nets.models import MODELS, build_model

from conftest import fit_summed_cross_entropy

torch.set_num_threads(2)


@pytest.mark.parametrize("backbone", ["mobilenetv2", "resnet50"])
def test_ten_sides_and_the_fused_mean_of_both_pathways(backbone):
    net = BR2Net(backbone=backbone, width=8).eval()
    with torch.no_grad():
        fused, sides = net(torch.rand(1, 3, 64, 96), return_sides=True)
    assert fused.shape == (1, 1, 64, 96)
    assert len(sides) == 10 and all(s.shape == (1, 1, 64, 96) for s in sides)
    assert torch.allclose(fused, (sides[4] + sides[9]) / 2)  # (L2H_4 + H2L_4) / 2


def test_pathways_work_at_a_quarter_and_a_32nd_and_take_any_size():
    """L2H runs at layer0's resolution (MobileNetV2's 1/2 tap max-pooled to 1/4, as ResNeXt's layer0), H2L at 1/32;
    the paper's 300-px crops (not a multiple of 32) work too."""
    net = BR2Net(backbone="mobilenetv2", width=8).eval()
    seen = {}
    net.l2h_start.register_forward_hook(lambda m, i, o: seen.update(l2h=o.shape[-2:]))
    net.h2l_start.register_forward_hook(lambda m, i, o: seen.update(h2l=o.shape[-2:]))
    with torch.no_grad():
        net(torch.rand(1, 3, 128, 64))
        assert seen == {"l2h": (32, 16), "h2l": (4, 2)}
        assert net(torch.rand(1, 3, 300, 300)).shape == (1, 1, 300, 300)


def test_each_step_adds_a_residual_to_the_previous_map():
    """With every R_k's last convolution zeroed, each pathway's five maps equal its start map (P_k = R_k + P_{k−1})."""
    torch.manual_seed(0)
    net = BR2Net(backbone="mobilenetv2", width=8).eval()
    for block in list(net.l2h) + list(net.h2l):
        torch.nn.init.zeros_(block[-1].weight)
        torch.nn.init.zeros_(block[-1].bias)
    with torch.no_grad():
        _, sides = net(torch.rand(1, 3, 64, 64), return_sides=True)
    for start in (0, 5):
        assert all(torch.allclose(sides[start + k], sides[start]) for k in range(1, 5))
    assert not torch.allclose(sides[0], sides[5])


def test_channel_attention_scales_each_channel_by_a_weight_in_0_1():
    torch.manual_seed(0)
    ca = ChannelAttention(24)
    x = torch.rand(2, 24, 8, 8) + 0.1
    ratio = ca(x) / x
    assert ca.weights[0].out_channels == 1  # 24 // 16, at least one
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-6)  # one weight per channel
    assert (ratio > 0).all() and (ratio < 1).all()


def test_trains_with_the_sum_of_eleven_cross_entropies_and_every_tensor_learns():
    torch.manual_seed(0)
    net = build_model({"arch": "br2net", "backbone": "mobilenetv2", "width": 8})
    losses, parts = fit_summed_cross_entropy(net, steps=30, lr=3e-3)
    assert len(parts) == 11  # fused + 10 sides, all weights 1
    # H2L's five maps are 1×1 at the helper's 32² (1/32): they cannot split the image, so the sum stays above 5·ln 2
    assert min(losses[-5:]) < 0.65 * losses[0]
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing[:5]


def test_registered_and_bundled_weights_load_with_their_sha256():
    from defocus.nets.modelfile import BUNDLED_DIR
    from defocus.nets.weights import sha256_of

    assert MODELS["br2net"] == "defocus.nets.br2net:BR2Net"
    assert "br2net" in defocus.available("dbd")
    entry = defocus.describe("br2net").pretrained
    assert sha256_of(BUNDLED_DIR / entry.file) == entry.sha256
    det = defocus.load("br2net")
    assert det.model.arch == entry.model
    blur = det.predict(torch.rand(96, 128, 3).numpy())
    assert blur.shape == (96, 128) and 0 <= blur.min() and blur.max() <= 1
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        fused, sides = det.model(x, return_sides=True)
        det.model.output = 1  # what the first public version returned: L2H's last map
        assert torch.allclose(det.model(x), sides[4])
    with pytest.raises(ValueError):
        defocus.load("br2net", output=3)
