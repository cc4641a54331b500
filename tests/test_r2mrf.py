"""R²MRF (Tang et al., AAAI 2020): five branches × T steps of residual refinement, AMDF, deep supervision, ablations."""

from __future__ import annotations

import pytest
import torch

from defocus.nets.models import build_model
from defocus.nets.r2mrf import R2MRF

from conftest import SHARED, fit_summed_cross_entropy

torch.set_num_threads(2)


@pytest.mark.parametrize("backbone", ["mobilenetv2", "resnet50"])
def test_outputs_per_branch_and_step(backbone):
    net = R2MRF(backbone=backbone, width=8, steps=3).eval()
    with torch.no_grad():
        fused, sides = net(torch.rand(1, 3, 64, 96), return_sides=True)
    assert fused.shape == (1, 1, 64, 96)
    assert len(sides) == 5 * 3 and all(s.shape == (1, 1, 64, 96) for s in sides)


def test_steps_refine_by_adding_residuals():
    """With residual=True, step t's output of a branch is step t−1's plus what that step's RRM adds (Eq. 4)."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    net = R2MRF(backbone="mobilenetv2", width=8, steps=2).eval()
    plain = R2MRF(backbone="mobilenetv2", width=8, steps=2, residual=False).eval()
    plain.load_state_dict(net.state_dict())
    with torch.no_grad():
        _, s_res = net(x, return_sides=True)
        _, s_plain = plain(x, return_sides=True)
    assert torch.allclose(s_res[0], s_plain[0])  # step 1 is the same in both
    # The top branch (first side of each step) has no input from above, so its step-2 difference is exactly step 1.
    assert torch.allclose(s_res[5] - s_plain[5], s_res[0], atol=1e-5)


def test_build_from_arch_and_train_a_few_steps():
    torch.manual_seed(0)
    net = build_model({"arch": "r2mrf", "backbone": "mobilenetv2", "width": 8, "steps": 2})
    losses, parts = fit_summed_cross_entropy(net, steps=30)  # Eq. 7, all weights 1
    assert len(parts) == 1 + 10
    assert min(losses[-5:]) < 0.6 * losses[0]
    with pytest.raises(ValueError):
        R2MRF(backbone="mobilenetv2", steps=0)


@pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="shared/ data (synthetic sources) not present")
def test_train_log_has_a_column_per_side_output(tmp_path):
    import csv

    from defocus.train.config import from_dict
    from defocus.train.trainer import train

    cfg = {"base": "tiny", "model": {"arch": "r2mrf", "backbone": "mobilenetv2", "width": 8, "steps": 2},
           "steps": 4, "log_every": 1, "checkpoint_every": 2, "val_every": 0, "val_synth": 0,
           "synth": {"length": 4, "size": 64}}
    out = tmp_path / "run"
    train(from_dict(cfg), out, progress=False, stop_after=2)
    train(from_dict(cfg), out, resume=True, progress=False)
    with open(out / "train_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    sides = [f"side{k}" for k in range(1, 11)]  # 5 branches × 2 steps
    assert list(rows[0])[:3] == ["step", "loss", "fused"] and all(s in rows[0] for s in sides)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["side10"]) > 0 for r in rows)  # the resumed rows fill the same columns
