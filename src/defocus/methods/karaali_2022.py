"""Karaali, Harte & Jung 2022: deep edge-based defocus map estimation with depth-edge-aware propagation.

Pipeline (the paper and the facts of the authors' inference code; see docs/methods/karaali-2022.md):

1. Edges: Canny on channel 0 (hue) of the HSV image, σ = √2, hysteresis thresholds 0.05 / 0.06 (scikit-image
   convention: absolute, on the Sobel magnitude), as the authors' code does; or an edge map the user supplies.
2. For every edge pixel a 41×41 RGB patch (image reflect-padded by 20 px, values in [0, 1]) and its centred 27×27 and
   15×15 crops. E-Net labels each edge pattern (constant depth) or depth (depth discontinuity); B-Net gives the
   blur level of the pattern edges: one of 23 disk radii 0.5 … 6.0 px (paper Eq. 4: the training blur is a disk
   kernel of radius R_i; the same radii as the RTF ground truth). By default both networks run fully convolutionally
   over overlapping tiles of the padded image and are read at the edge pixels (:mod:`defocus.nets.benet_dense`),
   which gives the patch-wise scores; ``dense=False`` classifies the patches in batches. Memory is bounded whatever
   the image size either way.
3. Sparse radii on pattern edges are propagated by domain-transform normalised convolution (Eq. 1–3): guide = the
   photo simplified by the RF filter itself (σs = 7, σr = 0.5), σs = min(H, W)/8, σr = 3.75, 5 iterations, and a
   penalty ψ added to the domain-transform derivative on depth edges (paper ψ = 100; the authors' code uses 20).
4. The dense radius map is converted to Gaussian σ with the RTF table (:func:`defocus.units.radius_to_sigma`).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import DefocusError, UsageError
from ..filters import domain_transform
from ..nets.benet import detect_edges  # the edge detector B-Net/E-Net patches are centred on, in training too
from ..registry import Method
from ..units import radius_to_sigma

PAD = 20


# --- weights --------------------------------------------------------------------------------------------------------


def load_networks(bnet_weights=None, enet_weights=None, with_enet: bool = True):
    """B-Net and (if ``with_enet``) E-Net sharing its f1 streams, in eval mode on the CPU.

    Default: the bundled files ``benet`` + ``enet`` of :data:`defocus.nets.benet.PRETRAINED`, sha256-checked; a
    user's files (from ``defocus train --config benet`` / ``enet``) are read without a digest, and
    ``bundled:<file>`` names another bundled file (checked against its own digest), e.g. the first pair
    ``bundled:benet_bnet_v1.safetensors`` + ``bundled:enet_v1.safetensors``.
    """
    from ..nets.benet import bundled_entry, load_enet
    from ..nets.modelfile import load_model, resolve_model_path
    from ..nets.weights import sha256_of

    def where(user, name):  # a user's file (``bundled:<file>`` allowed) or the bundled default, with its digest
        if user:
            return resolve_model_path(user), None
        entry = bundled_entry(name)
        return resolve_model_path(f"bundled:{entry.file}"), entry.sha256

    bnet_path, bnet_sha256 = where(bnet_weights, "benet")
    bnet, _ = load_model(bnet_path, bnet_sha256)
    if not with_enet:
        return bnet, None
    path, sha256 = where(enet_weights, "enet")
    return bnet, load_enet(path, bnet, sha256, bnet_sha256 or sha256_of(bnet_path))


# --- patches --------------------------------------------------------------------------------------------------------


def edge_patches(padded: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """41×41 patches of a 20-px reflect-padded float32 image centred on pixels (ys, xs) of the unpadded image.

    Returns
    -------
    ndarray (N, 3, 41, 41), float32
    """
    win = np.lib.stride_tricks.sliding_window_view(padded, (2 * PAD + 1, 2 * PAD + 1), axis=(0, 1))
    return np.ascontiguousarray(win[ys, xs])  # window (y, x) of the padded image is centred on pixel (y, x)


def pad_image(image: np.ndarray) -> np.ndarray:
    """Mirror-pad by 20 px (the edge row repeated, like OpenCV's BORDER_REFLECT), so every pixel has a patch."""
    img = np.asarray(image, dtype=np.float32)
    return np.pad(img, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="symmetric")


READOUTS = ("argmax", "expected")


def level_radius(logits, readout: str = "argmax") -> np.ndarray:
    """Disk radius (px, float32 (N,)) from B-Net's (N, 23) logits: the most likely level (``"argmax"``, the paper)
    or the mean radius under the softmax (``"expected"``, which spreads between neighbouring levels)."""
    import torch

    from ..nets.benet import RADII

    if readout == "argmax":
        return RADII[logits.argmax(1).cpu().numpy()].astype(np.float32)
    if readout == "expected":
        return (torch.softmax(logits.float(), 1) @ torch.from_numpy(RADII)).cpu().numpy().astype(np.float32)
    raise UsageError(f"readout must be one of {', '.join(READOUTS)}, not {readout!r}")


def classify_edges(image: np.ndarray, edges: np.ndarray, bnet, enet=None, batch: int = 4096, device: str = "cpu",
                   dense: bool = True, tile: int = 512, runtime=None, readout: str = "argmax"):
    """Blur level and edge type of every edge pixel.

    Parameters
    ----------
    dense : bool
        True: the networks run fully convolutionally over ``tile``×``tile`` blocks of the padded image and are read
        at the edge pixels (:mod:`defocus.nets.benet_dense`; blocks without edges are skipped). False: patch by
        patch, ``batch`` patches per call — the reference; both give the same scores up to float32 rounding.
    batch : int
        Patches (or, dense, edge pixels in the per-pixel part of the heads) per network call.
    runtime : callable, optional
        Runs the dense blocks instead of torch (:class:`defocus.nets.onnx.OnnxDense`; dense only).
    readout : {"argmax", "expected"}
        How the level scores become a radius (:func:`level_radius`).

    Returns
    -------
    ys, xs : ndarray (N,), int
        Edge pixels (``np.nonzero(edges)`` order).
    radius : ndarray (N,), float32
        B-Net's disk radius (px) of each.
    depth : ndarray (N,), bool
        E-Net's depth-edge label (all False without ``enet``).
    """
    import torch

    ys, xs = np.nonzero(edges)
    n = len(ys)
    radius = np.zeros(n, np.float32)
    depth = np.zeros(n, bool)
    padded = pad_image(image)
    batch = max(1, int(batch))
    if dense:
        from ..nets.benet_dense import dense_logits

        blur_logits, edge_logits = dense_logits(bnet, enet, padded, ys, xs, tile, batch, device, runtime)
        radius[:] = level_radius(blur_logits, readout)
        if edge_logits is not None:
            depth[:] = edge_logits.argmax(1).numpy() == 1
        return ys, xs, radius, depth
    with torch.inference_mode():
        for i in range(0, n, batch):
            p = torch.from_numpy(edge_patches(padded, ys[i:i + batch], xs[i:i + batch])).to(device)
            f1 = bnet.f1(p)
            radius[i:i + batch] = level_radius(bnet.b(f1), readout)
            if enet is not None:
                shared = f1 if enet.f1 is bnet.f1 else None
                depth[i:i + batch] = enet(p, shared).argmax(1).cpu().numpy() == 1
    return ys, xs, radius, depth


def propagate(image: np.ndarray, sparse: np.ndarray, pattern: np.ndarray, depth: np.ndarray, psi: float = 100.0,
              sigma_r: float = 3.75, iterations: int = 5) -> np.ndarray:
    """Dense map from values on pattern edges, with propagation blocked by ψ on depth edges (Eq. 1–3).

    Parameters
    ----------
    image : ndarray (H, W, 3), float32 in [0, 1]
    sparse : ndarray (H, W), float32
        Values (read where ``pattern``).
    pattern, depth : ndarray (H, W), bool
    psi : float
        Penalty added to the domain-transform derivative on depth edges (0 = plain propagation).

    Returns
    -------
    ndarray (H, W), float32
    """
    penalty = depth.astype(np.float32) * np.float32(psi) if psi > 0 else None
    return domain_transform.propagate(image, sparse, pattern, sigma_r, iterations, penalty)


def _edge_option(edges, shape) -> np.ndarray:
    """A user edge map (path or array) as bool (H, W); any value > 0.5 (after scaling to [0, 1]) is an edge."""
    if isinstance(edges, (str, os.PathLike)):
        from ..io import read_map

        arr = read_map(edges)
        where = str(edges)
    else:
        arr = np.asarray(edges)
        where = "edges array"
        if arr.dtype == np.uint8:
            arr = arr / 255.0
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    if arr.shape != tuple(shape):
        raise DefocusError(f"{where}: edge map is {arr.shape[1]}×{arr.shape[0]} but the image is {shape[1]}×{shape[0]}")
    return np.asarray(arr, dtype=np.float32) > 0.5


class Karaali2022(Method):
    """Karaali, Harte & Jung 2022 defocus map (Gaussian σ in px, from disk radii 0.5 … 6.0 px).

    Parameters
    ----------
    edges : str, path or ndarray (H, W), optional
        Edge map to use instead of Canny (nonzero/white = edge); must match the image size.
    edge_channel : {"hue", "value", "gray"}
        Canny input channel (default "hue", as the authors' code).
    psi : float
        Depth-edge penalty ψ of the propagation (paper: 100; authors' code: 20; 0 disables E-Net, the ablation).
    batch : int
        Edge patches per network call (memory: ~20 kB per patch plus activations); with ``dense``, edge pixels per
        call of the per-pixel part of the heads.
    dense : bool
        Evaluate B-Net and E-Net fully convolutionally over the image, tile by tile (default; 7–21× faster than
        patch-wise on a 2-core CPU), or patch by patch (False, the reference). Same scores up to float32 rounding.
    tile : int
        Side (px) of the blocks of the dense evaluation; memory grows with its square (≈ 80 MB per activation at 512).
    bnet_weights, enet_weights : str or path, optional
        Other weight files (written by ``defocus train --config benet`` / ``enet``); no sha256 is required for them.
    runtime : {"torch", "onnx"}
        What runs the dense B-Net + E-Net: torch, or onnxruntime on their export (``defocus export -m
        karaali-2022``; made once into the cache folder, docs/onnx.md). onnx needs ``dense`` and E-Net (ψ > 0).
    readout : {"argmax", "expected"}
        B-Net's level scores → radius: the most likely of the 23 levels (the paper) or the softmax mean
        (:func:`level_radius`; the ablation of docs/benchmarks.md).
    """

    task = "dme"
    summary = "Deep edge-based defocus map: B-Net blur levels on E-Net pattern edges, depth-edge-aware propagation"
    paper = ("A. Karaali, N. Harte, C. R. Jung, 'Deep Multi-Scale Feature Learning for Defocus Blur Estimation', "
             "IEEE TIP 31:1097-1106, 2022")

    def __init__(self, device: str = "cpu", edges=None, edge_channel: str = "hue", psi: float = 100.0,
                 batch: int = 4096, bnet_weights=None, enet_weights=None, sigma_r: float = 3.75,
                 iterations: int = 5, dense: bool = True, tile: int = 512, runtime: str = "torch",
                 readout: str = "argmax") -> None:
        super().__init__(device=device)
        if readout not in READOUTS:
            raise UsageError(f"karaali-2022: readout={readout!r} is not one of {', '.join(READOUTS)}")
        self.readout = readout
        self.edges = edges
        self.edge_channel = edge_channel
        self.psi = float(psi)
        if self.psi < 0:
            raise DefocusError(f"psi must be >= 0, not {psi}")
        self.batch = int(batch)
        self.dense = bool(dense)
        self.tile = int(tile)
        if self.tile < 1:
            raise DefocusError(f"tile must be >= 1, not {tile}")
        self.sigma_r = float(sigma_r)
        self.iterations = int(iterations)
        self.bnet, self.enet = load_networks(bnet_weights, enet_weights, with_enet=self.psi > 0)
        self.bnet.to(device)
        if self.enet is not None:
            self.enet.to(device)
        self.runtime = runtime
        self._dense_runtime = None
        if runtime == "onnx":
            if not self.dense or self.enet is None:
                raise UsageError("karaali-2022: runtime='onnx' runs the dense B-Net + E-Net: it needs dense=True "
                                 "and psi > 0")
            from ..nets.onnx import dense_runtime

            self._dense_runtime = dense_runtime(self.bnet, self.enet, device)
        elif runtime != "torch":
            raise UsageError(f"karaali-2022: runtime={runtime!r} is not one of torch, onnx")

    def edge_map(self, image: np.ndarray) -> np.ndarray:
        """The edges the method uses: the user's map or Canny (bool (H, W))."""
        if self.edges is not None:
            return _edge_option(self.edges, image.shape[:2])
        return detect_edges(image, self.edge_channel)

    def sparse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """σ (px) on pattern edges (float32 (H, W), 0 elsewhere) and the pattern-edge mask: the sparse estimates of
        the edge methods' common interface (what ``focus-guided`` and ``pyramid`` spread)."""
        radius, pattern, _ = self.edge_labels(image)
        return np.where(pattern, radius_to_sigma(radius), 0.0).astype(np.float32), pattern

    def edge_labels(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse disk-radius map on pattern edges and the pattern/depth edge masks, all (H, W).

        Returns radius float32 (0 off pattern edges), pattern bool, depth bool.
        """
        img = np.asarray(image, dtype=np.float32)
        edges = self.edge_map(img)
        ys, xs, radius, depth = classify_edges(img, edges, self.bnet, self.enet, self.batch, self.device,
                                             dense=self.dense, tile=self.tile, runtime=self._dense_runtime,
                                             readout=self.readout)
        h, w = edges.shape
        sparse = np.zeros((h, w), np.float32)
        pattern = np.zeros((h, w), bool)
        dmask = np.zeros((h, w), bool)
        sparse[ys[~depth], xs[~depth]] = radius[~depth]
        pattern[ys[~depth], xs[~depth]] = True
        dmask[ys[depth], xs[depth]] = True
        return sparse, pattern, dmask

    def predict_radius(self, image: np.ndarray) -> np.ndarray:
        """Dense disk-radius map (px), float32 (H, W)."""
        img = np.asarray(image, dtype=np.float32)
        sparse, pattern, depth = self.edge_labels(img)
        if not pattern.any():  # no usable edge: no blur evidence anywhere
            return np.zeros(img.shape[:2], np.float32)
        dense = propagate(img, sparse, pattern, depth, self.psi, self.sigma_r, self.iterations)
        return np.clip(dense, 0.0, None).astype(np.float32)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Dense defocus map, Gaussian σ in px (float32 (H, W)), from the disk radii through the RTF table."""
        return radius_to_sigma(self.predict_radius(image)).astype(np.float32)
