"""Dense (fully convolutional, tiled) evaluation of B-Net and E-Net equals the patch-wise reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import defocus
from defocus.errors import DefocusError
from defocus.methods import karaali_2022 as k22
from defocus.nets import modelfile
from defocus.nets.benet import PRETRAINED, BNet, ENet
from defocus.nets.benet_dense import dense_logits
from defocus.synth.psf import blur

from conftest import textured_image

SHARED = Path(__file__).resolve().parents[2] / "shared"
RTF_IMAGE = SHARED / "data" / "real" / "rtf_sample" / "images" / "image_01.png"
HAVE_WEIGHTS = all((modelfile.BUNDLED_DIR / p.file).is_file() for p in PRETRAINED)
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="bundled B-Net/E-Net weights not built")
TOL = 1e-4  # max abs difference of class probabilities, float32


@pytest.fixture(scope="module")
def bundled():
    torch.set_num_threads(1)
    return k22.load_networks()


def random_networks(seed: int, scales=(41, 27, 15), share_f1: bool = True):
    """Untrained networks with weights scaled up so the logits spread (default init gives near-uniform softmax,
    which would hide differences)."""
    torch.manual_seed(seed)
    bnet = BNet(scales)
    enet = ENet(bnet.f1 if share_f1 else None, scales)
    with torch.no_grad():
        for p in list(bnet.parameters()) + list(enet.parameters()):
            p.mul_(1.6)
    return bnet.eval(), enet.eval()


def patchwise(bnet, enet, image, ys, xs):
    with torch.inference_mode():
        p = torch.from_numpy(k22.edge_patches(k22.pad_image(image), ys, xs))
        return bnet(p), enet(p)


def assert_dense_equals_patchwise(bnet, enet, image, ys, xs, tile):
    """Probabilities within TOL, and logits within 1e-5 of their spread (untrained networks have near-uniform
    probabilities, where only the logits show an error)."""
    ref_b, ref_e = patchwise(bnet, enet, image, ys, xs)
    b, e = dense_logits(bnet, enet, k22.pad_image(image), ys, xs, tile=tile, batch=50)
    assert b.shape == ref_b.shape and e.shape == ref_e.shape
    for dense, ref in ((b, ref_b), (e, ref_e)):
        assert (dense.softmax(1) - ref.softmax(1)).abs().max().item() <= TOL
        assert (dense - ref).abs().max().item() <= 1e-5 * (ref.max() - ref.min()).item()
        assert (ref - ref.mean(0)).abs().max().item() > 1e-3 * (ref.max() - ref.min()).item()  # not all alike


def border_and_seam_pixels(h, w, tile, density, seed):
    """Random edge pixels plus every border pixel and the pixels on both sides of each tile seam."""
    rng = np.random.default_rng(seed)
    e = rng.random((h, w)) < density
    e[[0, -1], :] = True
    e[:, [0, -1]] = True
    for s in range(tile, max(h, w), tile):
        e[min(s, h - 1), ::5] = e[min(s - 1, h - 1), 2::5] = True
        e[::5, min(s, w - 1)] = e[2::5, min(s - 1, w - 1)] = True
    return np.nonzero(e)


@pytest.mark.parametrize("scales,share_f1", [((41, 27, 15), True), ((41,), False), ((27, 15), True)])
def test_random_networks_on_random_images(scales, share_f1):
    """All stream layouts (pooled 41/27 streams, unpooled 15 stream, E-Net with its own f1), many tiles of 16 px."""
    bnet, enet = random_networks(0, scales, share_f1)
    image = np.random.default_rng(1).random((45, 58, 3)).astype(np.float32)
    ys, xs = border_and_seam_pixels(45, 58, 16, 0.05, seed=2)
    assert_dense_equals_patchwise(bnet, enet, image, ys, xs, tile=16)


def test_tile_size_and_order_do_not_matter():
    bnet, enet = random_networks(3)
    image = textured_image(40, 50, seed=4)
    ys, xs = border_and_seam_pixels(40, 50, 13, 0.1, seed=5)
    perm = np.random.default_rng(6).permutation(len(ys))
    padded = k22.pad_image(image)
    whole, _ = dense_logits(bnet, enet, padded, ys, xs, tile=512)
    tiled, _ = dense_logits(bnet, enet, padded, ys[perm], xs[perm], tile=13, batch=7)
    assert (whole[perm] - tiled).abs().max().item() < 1e-5
    empty_b, empty_e = dense_logits(bnet, enet, padded, ys[:0], xs[:0])
    assert empty_b.shape == (0, 23) and empty_e.shape == (0, 2)
    no_enet_b, no_enet_e = dense_logits(bnet, None, padded, ys, xs)
    assert no_enet_e is None and torch.allclose(no_enet_b, whole)


@needs_weights
def test_bundled_networks_on_random_image(bundled):
    bnet, enet = bundled
    image = textured_image(50, 60, seed=7)
    ys, xs = border_and_seam_pixels(50, 60, 24, 0.03, seed=8)
    assert_dense_equals_patchwise(bnet, enet, image, ys, xs, tile=24)


@needs_weights
@pytest.mark.skipif(not RTF_IMAGE.is_file(), reason="RTF sample not present")
def test_bundled_networks_on_rtf_sample(bundled):
    """A corner crop of the RTF sample with its own hue-Canny edges (the method's edges), tiles of 32 px."""
    bnet, enet = bundled
    image = np.ascontiguousarray(defocus.read_image(RTF_IMAGE)[:64, -72:])
    edges = k22.detect_edges(image)
    edges[0, ::7] = edges[-1, 3::7] = True  # and pixels on the image border
    ys, xs = np.nonzero(edges)
    assert len(ys) > 100
    assert_dense_equals_patchwise(bnet, enet, image, ys, xs, tile=32)


@needs_weights
def test_method_map_dense_equals_patchwise():
    image = textured_image(48, 64, seed=9)
    image[:, 32:] = blur(image, 3.0)[:, 32:]
    edges = np.zeros((48, 64), bool)
    edges[::5, ::4] = True
    edges[-1, ::3] = True
    options = dict(edges=edges, tile=20)
    dense = defocus.load("karaali-2022", **options)
    patch = defocus.load("karaali-2022", dense=False, **options)
    assert dense.dense and not patch.dense
    for a, b in zip(dense.edge_labels(image), patch.edge_labels(image)):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(dense.predict(image), patch.predict(image), atol=1e-6)
    with pytest.raises(DefocusError, match="tile"):
        defocus.load("karaali-2022", tile=0)
