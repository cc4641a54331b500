"""Shared fixtures: synthetic photos whose focus layout is known."""

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow (CI runs them: the environment variable CI is set there)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def textured_image(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A sharp random texture (float32 RGB in [0, 1])."""
    rng = np.random.default_rng(seed)
    base = rng.random((h // 4 + 1, w // 4 + 1, 3)).astype(np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_NEAREST)
    return np.clip(img * 0.8 + 0.1 * rng.random((h, w, 3)).astype(np.float32), 0, 1)


def half_blurred(h: int = 96, w: int = 128, sigma: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Left half sharp texture, right half the same texture blurred; returns (image, blur mask 1 = blurred)."""
    img = textured_image(h, w, seed)
    blurred = cv2.GaussianBlur(img, (0, 0), sigma)
    out = img.copy()
    out[:, w // 2 :] = blurred[:, w // 2 :]
    mask = np.zeros((h, w), np.float32)
    mask[:, w // 2 :] = 1
    return out, mask


def two_values_and_a_wall(h: int, w: int, left: int, right: int, wall: int):
    """A uniform grey photo with σ known on two columns (1 px at ``left``, 5 px at ``right``) and a marked edge on
    column ``wall`` between them: (image, sparse values, known mask, wall mask). Nothing in the photo separates the
    two halves, so only a penalty on the wall can keep the values apart."""
    image = np.full((h, w, 3), 0.5, np.float32)
    sparse = np.zeros((h, w), np.float32)
    known = np.zeros((h, w), bool)
    known[:, left], sparse[:, left] = True, 1.0
    known[:, right], sparse[:, right] = True, 5.0
    marked = np.zeros((h, w), bool)
    marked[:, wall] = True
    return image, sparse, known, marked


@pytest.fixture(autouse=True, scope="session")
def onnx_cache(tmp_path_factory):
    """A cache folder of the test session: ONNX exports (the default runtime of some networks where onnxruntime is
    installed) never go into the user's cache."""
    previous = os.environ.get("DEFOCUS_CACHE")
    os.environ["DEFOCUS_CACHE"] = str(tmp_path_factory.mktemp("defocus-cache"))
    yield Path(os.environ["DEFOCUS_CACHE"])
    if previous is None:
        os.environ.pop("DEFOCUS_CACHE", None)
    else:
        os.environ["DEFOCUS_CACHE"] = previous


@pytest.fixture
def half_blurred_image():
    return half_blurred()


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip("shared/ data folder not present beside the repo")
    return SHARED


def fit_summed_cross_entropy(net, steps: int, lr: float = 1e-3) -> tuple[list[float], dict]:
    """Train a deeply supervised network for ``steps`` Adam steps on a 32×32 texture whose right half is blurred,
    with the papers' loss (the sum of the cross-entropies of every output, all weights 1); returns the losses and
    the last step's per-output parts."""
    import torch
    import torch.nn.functional as F

    from defocus.train.losses import deep_supervision_loss

    x = torch.rand(2, 3, 32, 32)
    x[..., 16:] = F.avg_pool2d(x, 5, 1, 2)[..., 16:]
    target = torch.zeros(2, 1, 32, 32)
    target[..., 16:] = 1
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses, parts = [], {}
    for _ in range(steps):
        fused, sides = net(x, return_sides=True)
        # side outputs at their own scale (DMENet's auxiliary maps) are compared at full size
        sides = [F.interpolate(s, size=target.shape[-2:], mode="bilinear", align_corners=False) for s in sides]
        loss, parts = deep_supervision_loss(fused, sides, target, edge_weight=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses, parts


@pytest.fixture
def examples_and_a_bad_file(tmp_path):
    """A copy of examples/ with one file that is not a JPEG: a batch the engines must write and report alike."""
    folder = tmp_path / "photos"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples", folder, ignore=shutil.ignore_patterns("*.md"))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return folder


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file directly in ``folder``, by name, as bytes (to compare two output folders byte for byte)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
