"""Karaali, Harte & Jung 2022 (B-Net / E-Net, depth-edge-aware propagation) and its DBD variant."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import defocus
from defocus.errors import DefocusError, WeightsError
from defocus.methods import karaali_2022 as k22
from defocus.nets import modelfile
from defocus.nets.benet import PRETRAINED, RADII, BNet, ENet
from defocus.synth.psf import blur

from conftest import textured_image, two_values_and_a_wall

HAVE_WEIGHTS = all((modelfile.BUNDLED_DIR / p.file).is_file() for p in PRETRAINED)
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="bundled B-Net/E-Net weights not built")


@pytest.fixture(scope="module")
def method():
    torch.set_num_threads(1)
    return defocus.load("karaali-2022")


def sparse_edges(shape, step=9, margin=0):
    """A grid of isolated edge pixels (few patches keep the tests fast), including the image corners."""
    e = np.zeros(shape, bool)
    e[margin::step, margin::step] = True
    e[0, 0] = e[-1, -1] = e[0, -1] = e[-1, 0] = True
    return e


def test_net_shapes():
    x = torch.rand(5, 3, 41, 41)
    b = BNet()
    assert b(x).shape == (5, 23)
    assert ENet(b.f1)(x).shape == (5, 2)
    assert b.f1(x).shape == (5, 192, 7, 7)  # the three streams meet at 7×7
    assert BNet(scales=(41,))(x).shape == (5, 23)
    assert len(RADII) == 23 and RADII[0] == 0.5 and RADII[-1] == 6.0


def test_patches_at_image_borders():
    rng = np.random.default_rng(0)
    img = rng.random((30, 50, 3)).astype(np.float32)
    padded = k22.pad_image(img)
    ys = np.array([0, 0, 29, 29, 15])
    xs = np.array([0, 49, 0, 49, 25])
    p = k22.edge_patches(padded, ys, xs)
    assert p.shape == (5, 3, 41, 41) and p.dtype == np.float32
    ref = np.pad(img, ((20, 20), (20, 20), (0, 0)), mode="symmetric")
    for i, (y, x) in enumerate(zip(ys, xs)):
        assert np.array_equal(p[i], ref[y:y + 41, x:x + 41].transpose(2, 0, 1))
        assert np.array_equal(p[i][:, 20, 20], img[y, x])  # centred on the edge pixel
    # Mirror padding repeats the border row (like OpenCV's BORDER_REFLECT): pixel (0, 0) is beside itself.
    assert np.array_equal(p[0][:, 19, 20], img[0, 0])


def test_user_edge_map_and_errors():
    img = textured_image(40, 60)
    edges = sparse_edges((40, 60))
    assert np.array_equal(k22._edge_option(edges.astype(np.uint8) * 255, (40, 60)), edges)
    with pytest.raises(DefocusError):
        k22._edge_option(edges, (41, 60))
    assert k22.detect_edges(img).shape == (40, 60)
    with pytest.raises(DefocusError):
        k22.detect_edges(img, channel="nope")


@needs_weights
def test_batching_gives_the_same_result(method):
    img = textured_image(48, 64, seed=3)
    edges = sparse_edges(img.shape[:2], step=7)
    one = k22.classify_edges(img, edges, method.bnet, method.enet, batch=4096)
    many = k22.classify_edges(img, edges, method.bnet, method.enet, batch=5)
    for a, b in zip(one, many):
        assert np.array_equal(a, b)


@needs_weights
def test_uniform_disk_blur_gives_the_right_level(method):
    """The in-focus dahlia of examples/flower.jpg blurred with known disks: B-Net's median level over its edges rises
    with the blur and is within 1 px (4 classes) of the truth. (Our CPU-trained B-Net is coarse: 16.5 % top-1 and
    41 % within one class on held-out patches, see docs/methods/karaali-2022.md.)"""
    from pathlib import Path

    photo = defocus.read_image(Path(__file__).resolve().parents[1] / "examples" / "flower.jpg")
    img = np.ascontiguousarray(photo[110:310, 220:420])  # the sharp flower head
    medians = []
    for radius in (0.5, 1.5, 3.0):
        blurred = blur(img, radius)
        edges = np.zeros(img.shape[:2], bool)
        edges[20:-20:3, 20:-20:3] = k22.detect_edges(blurred)[20:-20:3, 20:-20:3]
        _, _, r, _ = k22.classify_edges(blurred, edges, method.bnet, None)
        assert len(r) > 20
        medians.append(float(np.median(r)))
        assert abs(medians[-1] - radius) <= 1.0 + 1e-6, (radius, medians[-1])
    assert medians[0] < medians[1] < medians[2], medians


@needs_weights
def test_dense_map(method):
    img = textured_image(64, 80, seed=1)
    img[:, 40:] = blur(img, 4.0)[:, 40:]
    m = defocus.load("karaali-2022", edges=sparse_edges(img.shape[:2], step=6))
    out = m.predict(img)
    assert out.shape == (64, 80) and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0
    no_enet = defocus.load("karaali-2022", psi=0, edges=sparse_edges(img.shape[:2], step=6))
    assert no_enet.enet is None and np.all(np.isfinite(no_enet.predict(img)))
    # No edges at all: no blur evidence, a zero map rather than NaN.
    flat = defocus.load("karaali-2022", edges=np.zeros((64, 80), bool)).predict(img)
    assert np.array_equal(flat, np.zeros((64, 80), np.float32))


@needs_weights
def test_dbd_variant_range():
    img = textured_image(64, 80, seed=2)
    img[:, 40:] = blur(img, 4.0)[:, 40:]
    edges = sparse_edges(img.shape[:2], step=6)
    sigma = defocus.load("karaali-2022", edges=edges).predict(img)
    assert sigma.max() - sigma.min() > 0.5  # the defocus map has contrast, so the blur map must span [0, 1]
    soft = defocus.load("karaali-2022-dbd", edges=edges).predict(img)
    assert soft.dtype == np.float32 and soft.shape == (64, 80)
    assert soft.min() == 0.0 and soft.max() == 1.0
    # The min-max normalised defocus map: same order as σ, 1 where σ is largest.
    np.testing.assert_allclose(soft, (sigma - sigma.min()) / (sigma.max() - sigma.min()), atol=1e-6)
    assert soft[:, 48:].mean() > soft[:, :32].mean() + 0.2  # the blurred half is the more defocused
    # Thresholding at α is the paper's Eq. 5 on the soft map, and both classes occur.
    hard = defocus.load("karaali-2022-dbd", alpha=0.5, edges=edges).predict(img)
    assert np.array_equal(hard, (soft > 0.5).astype(np.float32))
    assert set(np.unique(hard)) == {0.0, 1.0}
    assert defocus.describe("karaali-2022-dbd").task == "dbd" and defocus.describe("karaali-2022").task == "dme"


def _labelled_edges(monkeypatch, h: int = 64, w: int = 64):
    """Pattern edges of disk radius 1 (column 20) and 5 (column 44) on a flat photo, a depth edge at column 32
    between them: the networks are replaced by these labels, so only the propagation decides the map."""
    edges = np.zeros((h, w), bool)
    edges[:, [20, 32, 44]] = True

    def labels(image, edge_map, bnet, enet=None, batch=4096, device="cpu", **evaluation):
        ys, xs = np.nonzero(edge_map)
        return ys, xs, np.where(xs < 32, 1.0, 5.0).astype(np.float32), xs == 32

    monkeypatch.setattr(k22, "classify_edges", labels)
    return np.full((h, w, 3), 0.5, np.float32), edges


@needs_weights
def test_depth_edges_stop_the_propagation(monkeypatch):
    image, edges = _labelled_edges(monkeypatch)
    radius = defocus.load("karaali-2022", edges=edges).predict_radius(image)
    # ψ on the depth edge: each side keeps its own blur up to the edge, as a depth discontinuity should.
    np.testing.assert_allclose(radius[:, :32], 1.0, atol=0.01)
    np.testing.assert_allclose(radius[:, 33:], 5.0, atol=0.01)
    # The ablation without E-Net (ψ = 0): the two blur levels bleed into each other across the depth edge.
    plain = defocus.load("karaali-2022", edges=edges, psi=0).predict_radius(image)
    assert plain[:, 31].min() > 2.0 and plain[:, 33].max() < 4.0


def test_propagate_blocks_only_at_depth_edges():
    image, sparse, pattern, depth = two_values_and_a_wall(64, 64, left=20, right=44, wall=32)
    walled = k22.propagate(image, sparse, pattern, depth, psi=100.0)
    free = k22.propagate(image, sparse, pattern, depth, psi=0.0)
    np.testing.assert_allclose(walled[:, :32], 1.0, atol=0.01)
    np.testing.assert_allclose(walled[:, 33:], 5.0, atol=0.01)
    assert free[:, 31].min() > 2.0
    # No depth edge at all: ψ changes nothing.
    np.testing.assert_array_equal(k22.propagate(image, sparse, pattern, np.zeros_like(depth), psi=100.0), free)


@needs_weights
def test_sha256_mismatch_raises(tmp_path, monkeypatch):
    bad = tmp_path / "weights"
    bad.mkdir()
    for p in PRETRAINED:
        shutil.copy(modelfile.BUNDLED_DIR / p.file, bad / p.file)
    bnet_file = bad / PRETRAINED[0].file
    data = bytearray(bnet_file.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last tensor
    bnet_file.write_bytes(bytes(data))
    monkeypatch.setattr(modelfile, "BUNDLED_DIR", bad)
    with pytest.raises(WeightsError, match="sha256"):
        defocus.load("karaali-2022")
    with pytest.raises(WeightsError):
        defocus.load("karaali-2022", bnet_weights=tmp_path / "missing.safetensors")
