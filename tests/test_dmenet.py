"""DMENet (Lee et al., CVPR 2019) on MobileNetV2: the network's outputs, σ at the photo's scale, the defocus-map
training task and the bundled weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from defocus.nets.dmenet import SIGMA_SCALE, DMENet, FeatureDiscriminator, SharpnessCalibration
from defocus.nets.predict import predict_defocus

from conftest import SHARED, half_blurred

torch.set_num_threads(2)

SMALL = {"arch": "dmenet", "backbone": "mobilenetv2", "width": 8, "blocks": 1, "convs": 1}


def small() -> DMENet:
    return DMENet(width=8, blocks=1, convs=1)


def test_outputs_sides_and_features_have_their_scales():
    torch.manual_seed(0)
    net = small().eval()
    with torch.no_grad():
        out, sides, features = net(torch.rand(2, 3, 64, 96), return_sides=True, return_features=True)
    assert out.shape == (2, 1, 64, 96) and features.shape == (2, 8, 64, 96)
    assert [s.shape[-2:] for s in sides] == [(4, 6), (8, 12), (16, 24), (32, 48), (64, 96)]
    assert torch.isfinite(out).all()
    assert SharpnessCalibration()(torch.sigmoid(out)).shape == (2, 1, 64, 96)
    assert FeatureDiscriminator(8)(features).shape == (2, 1, 2, 3)
    with pytest.raises(ValueError):
        DMENet(backbone="vgg16")


def test_predict_defocus_any_size_finite_and_non_negative():
    torch.manual_seed(0)
    net = small().eval()
    for h, w in ((50, 70), (7, 5), (200, 90)):
        sigma = predict_defocus(net, np.random.default_rng(0).random((h, w, 3), dtype=np.float32), working_size=64)
        assert sigma.shape == (h, w) and sigma.dtype == np.float32
        assert np.isfinite(sigma).all() and sigma.min() >= 0 and sigma.max() <= SIGMA_SCALE * max(1, max(h, w) / 64) + 1e-3


def test_sigma_is_scaled_by_the_upsampling_factor():
    """A network that answers 0.5 everywhere means σ = 0.5·S working-size px, i.e. 0.5·S·(photo / working) photo px."""
    seen = []

    def constant(batch):
        seen.append(batch.shape)
        return np.full((1, 1, *batch.shape[-2:]), 0.5, np.float32)

    image = np.random.default_rng(1).random((128, 256, 3), dtype=np.float32)
    sigma = predict_defocus(constant, image, working_size=64, refine=False)
    assert seen == [(1, 3, 32, 64)]
    np.testing.assert_allclose(sigma, 0.5 * SIGMA_SCALE * 4, rtol=1e-5)
    small_photo = predict_defocus(constant, image[:40, :60], working_size=64, refine=False)  # never enlarged
    np.testing.assert_allclose(small_photo, 0.5 * SIGMA_SCALE, rtol=1e-5)


def test_augmentation_scales_sigma_with_the_zoom():
    from defocus.train.config import Augment
    from defocus.train.data import augment_pair

    aug = Augment(scale=(2.0, 2.0), aspect=0.0, rotate=0.0, hflip=0.0, brightness=0, contrast=0, saturation=0)
    image = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    sigma = np.full((64, 64), 1.5, np.float32)
    _, _, out = augment_pair(image, np.zeros((64, 64), np.float32), np.random.default_rng(0), aug, 32, sigma)
    np.testing.assert_allclose(out, 3.0, rtol=1e-5)


@pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(), reason="shared/ data (synthetic sources) not present")
def test_a_tiny_defocus_map_run_with_every_loss(tmp_path):
    """Two steps of the defocus-map task with the calibration head and the feature discriminator on real photos."""
    from defocus.train.config import from_dict
    from defocus.train.trainer import train

    cfg = from_dict({"base": "dmenet-cpu", "model": SMALL, "pretrained": False, "init_from": None,
                     "synth": {"length": 4, "size": 64, "sigma": True}, "crop": 64, "batch_size": 2, "steps": 2,
                     "adversarial_weight": 1e-3, "checkpoint_every": 2, "val_every": 2, "val_synth": 1, "log_every": 1,
                     "val_size": 64})
    out = tmp_path / "run"
    train(cfg, out, progress=False)
    rows = (out / "train_log.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"map", "aux1", "aux5", "calibration", "domain"} <= set(header) and len(rows) == 3
    assert all(np.isfinite(float(v)) for v in rows[-1].split(","))
    assert (out / "checkpoints" / "step_0000002" / "discriminator.safetensors").exists()
    val = (out / "val_log.csv").read_text().splitlines()
    assert val[0].startswith("step,set,n,mae_sigma") and np.isfinite(float(val[-1].split(",")[3]))
    assert json.loads((out / "config.json").read_text())["task"] == "defocus-map"


def test_defocus_map_task_needs_sigma_targets():
    from defocus.errors import DefocusError
    from defocus.train.config import from_dict

    with pytest.raises(DefocusError, match="synth.sigma"):
        from_dict({"base": "dmenet-cpu", "synth": {"length": 4, "size": 64, "sigma": False}})


def test_gpu_recipe_has_the_papers_settings():
    from defocus.train.config import get_config

    cfg = get_config("dmenet")
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.crop, cfg.decay_factor) == ("adam", 1e-4, 3, 240, 0.8)
    assert cfg.adversarial_weight == 1e-3 and cfg.calibration_weight == 2e-2 and cfg.model["blocks"] == 7
    assert abs(cfg.decay_every * cfg.batch_size - 20 * cfg.synth.length) < cfg.batch_size  # ×0.8 every 20 epochs


@pytest.mark.parametrize("name", ["dmenet", "dmenet-light"])
def test_bundled_estimator_finds_the_blurred_half(name):
    import defocus
    from defocus import registry

    if name not in registry.available("dme"):
        pytest.skip(f"{name} is not bundled")
    image, mask = half_blurred(128, 192, sigma=3.0)
    sigma = defocus.load(name).predict(image)
    assert sigma.shape == mask.shape and np.isfinite(sigma).all() and sigma.min() >= 0
    inner = np.zeros_like(mask, bool)
    inner[16:-16, 16:-16] = True  # away from the border and the seam
    inner[:, 80:112] = False
    assert np.median(sigma[inner & (mask > 0)]) > np.median(sigma[inner & (mask == 0)]) + 0.5


def test_loader_refuses_a_wrong_sha256(tmp_path):
    from defocus.errors import WeightsError
    from defocus.nets.modelfile import load_model, save_model

    path = save_model(small(), tmp_path / "m.safetensors")
    model, _ = load_model(path)
    assert model.arch == SMALL
    with pytest.raises(WeightsError):
        load_model(path, sha256="0" * 64)
