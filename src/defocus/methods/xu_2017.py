"""Xu, Quan & Ji 2017: defocus σ from the rank of local patches at edges.

Idea (from the paper): a Gaussian blur is a low-pass filter, so a blurred image patch is closer to a low-rank matrix
than a sharp one — the number of its singular values that stand out decreases as σ grows. Measured at edge pixels
and turned into σ by a monotone mapping, the rank gives a sparse defocus map that is then spread to every pixel.

What we chose where we did not have the paper's full text (see docs/methods/xu-2017.md):

* The patch is sampled (bilinearly) on axes turned 45° from the local gradient. A patch of an edge aligned with the
  pixel grid has rank 1 whatever its blur (all its rows are equal); in the turned frame every edge, whatever its
  orientation, gives the same Hankel matrix, whose rank falls with σ.
* "Rank" is made continuous: the mean, over several relative thresholds τ, of the number of singular values above
  τ·s₁ (patch mean removed first). A count at one threshold moves in whole steps only.
* The rank → σ mapping is calibrated once, in code, on rendered oblique step edges of known σ (no real photo), run
  through exactly the same sampling; it is made monotone and inverted by linear interpolation.
* Edges: Canny at σ = 1 on the linearised grey image; propagation: the domain-transform interpolation the other
  DME methods use.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from ..filters.domain_transform import propagate
from ..registry import Method
from .karaali_jung_2018 import linear_gray
from .step_edges import curve_to_sigma, step_edge_curve
from .zhuo_sim import MAX_SIGMA, canny, dog_gradients

PATCH = 11  # patch side in samples
SCALES = 3  # sample spacings 1, 2, 4 px (2^k, k < SCALES); the soft ranks add up
THRESHOLDS = (0.03, 0.05, 0.08, 0.12, 0.18, 0.27, 0.4)  # relative to the largest singular value
CANNY_SIGMA = 1.0
CHUNK = 16384  # edge pixels per batch: bounds the temporaries (~16 MB per array) on large photos
TAPER = 0.2  # std of the patch's Gaussian taper, as a fraction of its side


def patch_rank(gray: np.ndarray, ys: np.ndarray, xs: np.ndarray, gx: np.ndarray, gy: np.ndarray,
               patch: int = PATCH, spacing: float = 1.0, thresholds=THRESHOLDS) -> np.ndarray:
    """Soft rank of the ``patch``×``patch`` patch around each pixel, sampled on axes at ±45° to its gradient.

    Parameters
    ----------
    gray : ndarray (H, W), float
    ys, xs : ndarray (N,), int
        Pixels.
    gx, gy : ndarray (N,), float
        Gradient at those pixels (its direction turns the patch).
    thresholds : sequence of float in (0, 1)
        Relative thresholds τ; a singular value counts where it exceeds τ times the largest.

    Returns
    -------
    ndarray (N,), float64 in [0, patch]
        Mean over τ of the number of singular values above τ·s₁ (0 for a constant patch).
    """
    gray = np.asarray(gray, np.float64)
    ranks = [_patch_rank_chunk(gray, ys[i : i + CHUNK], xs[i : i + CHUNK], gx[i : i + CHUNK], gy[i : i + CHUNK],
                               patch, spacing, thresholds) for i in range(0, len(ys), CHUNK)]
    return np.concatenate(ranks) if ranks else np.zeros(0)


def _patch_rank_chunk(gray, ys, xs, gx, gy, patch, spacing, thresholds):
    """One batch of :func:`patch_rank` (``gray`` already float64)."""
    n = len(ys)
    theta = np.arctan2(gy, gx)
    offsets = (np.arange(patch) - (patch - 1) / 2.0) * spacing
    # Axis a at θ + 45°, axis b at θ − 45°: the gradient direction is their bisector, so the patch is Hankel.
    ax, ay = np.cos(theta + np.pi / 4), np.sin(theta + np.pi / 4)
    bx, by = np.cos(theta - np.pi / 4), np.sin(theta - np.pi / 4)
    u = offsets[None, :, None]
    v = offsets[None, None, :]
    px = xs[:, None, None] + u * ax[:, None, None] + v * bx[:, None, None]
    py = ys[:, None, None] + u * ay[:, None, None] + v * by[:, None, None]
    samples = ndimage.map_coordinates(gray, [py.ravel(), px.ravel()], order=1,
                                      mode="reflect").reshape(n, patch, patch)
    samples -= samples.mean(axis=(1, 2), keepdims=True)
    # A separable Gaussian taper (D·P·D keeps the rank of P) lowers the weight of other edges near the patch's
    # border, which would otherwise raise s₁ and hide the singular values of the edge being measured.
    taper = np.exp(-0.5 * (offsets / (spacing * patch * TAPER)) ** 2)
    samples *= taper[None, :, None] * taper[None, None, :]
    gram = np.einsum("nij,nik->njk", samples, samples)
    s = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))  # ascending
    top = s[:, -1:]
    tau = np.asarray(thresholds, np.float64)
    above = s[:, None, :] > tau[None, :, None] * top[:, :, None]
    rank = above.sum(axis=2).mean(axis=1).astype(np.float64)
    return np.where(top[:, 0] > 1e-12, rank, 0.0)


def multiscale_rank(gray: np.ndarray, ys: np.ndarray, xs: np.ndarray, gx: np.ndarray, gy: np.ndarray,
                    patch: int = PATCH, scales: int = SCALES) -> np.ndarray:
    """Sum of :func:`patch_rank` at sample spacings 1, 2, … 2^(scales−1) px.

    One spacing saturates once the edge profile is wider than the patch (a blurred edge then looks like a ramp, of
    rank 2); a coarser spacing sees the same edge as if σ were halved, which extends the measurable range.
    """
    return sum(patch_rank(gray, ys, xs, gx, gy, patch, 2.0**k) for k in range(scales))


@functools.lru_cache(maxsize=8)
def calibration(patch: int = PATCH, scales: int = SCALES) -> tuple[np.ndarray, np.ndarray]:
    """Soft rank of rendered step edges against their σ, made non-increasing (deterministic, computed once).

    Returns
    -------
    sigmas, ranks : ndarray (K,), float64
    """

    def rank(image, ys, xs):
        gx, gy = dog_gradients(image.astype(np.float32), CANNY_SIGMA)
        return multiscale_rank(image, ys, xs, gx[ys, xs], gy[ys, xs], patch, scales)

    sigmas, ranks = step_edge_curve(rank, size=2 ** (scales + 1) * patch + 1)
    return sigmas, np.minimum.accumulate(ranks)


def rank_to_sigma(rank: np.ndarray, patch: int = PATCH, scales: int = SCALES) -> np.ndarray:
    """σ in px for soft ranks of :func:`multiscale_rank`, by the inverse of :func:`calibration` (clipped to its σ
    range)."""
    return curve_to_sigma(rank, *calibration(patch, scales))


class Xu2017(Method):
    """Xu et al. 2017 defocus map from the rank of local patches (Gaussian σ in px, clipped at 5).

    Parameters
    ----------
    patch : int
        Patch side in samples (our choice: 11).
    scales : int
        Number of sample spacings (1, 2, … 2^(scales−1) px) whose ranks are summed; more reach larger σ.
    canny_sigma : float
        Smoothing of the Canny edge detector that picks the measured pixels.
    sigma_r, iterations : float, int
        Domain-transform interpolation parameters.
    """

    task = "dme"
    summary = "rank of 45-degree-turned local patches at Canny edges, calibrated on rendered edges, propagated"
    paper = (
        "Xu, Quan & Ji, 'Estimating Defocus Blur via Rank of Local Patches', ICCV 2017"
    )

    def __init__(self, device: str = "cpu", patch: int = PATCH, scales: int = SCALES,
                 canny_sigma: float = CANNY_SIGMA, sigma_r: float = 3.75, iterations: int = 5) -> None:
        super().__init__(device=device)
        if int(patch) < 3 or int(scales) < 1 or not float(canny_sigma) > 0:
            raise ValueError(f"need patch >= 3, scales >= 1, canny_sigma > 0; got {patch}, {scales}, {canny_sigma}")
        self.patch = int(patch)
        self.scales = int(scales)
        self.canny_sigma = float(canny_sigma)
        self.sigma_r = float(sigma_r)
        self.iterations = int(iterations)

    def sparse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sparse σ map (float32 H×W, 0 off edges) and the mask of edge pixels that carry a value."""
        gray = linear_gray(image)
        edges = canny(gray, self.canny_sigma)
        sparse = np.zeros(gray.shape, np.float32)
        ys, xs = np.nonzero(edges)
        if len(ys) == 0:
            return sparse, edges
        gx, gy = dog_gradients(gray, self.canny_sigma)
        rank = multiscale_rank(gray, ys, xs, gx[ys, xs], gy[ys, xs], self.patch, self.scales)
        sparse[ys, xs] = np.clip(rank_to_sigma(rank, self.patch, self.scales), 0.0, MAX_SIGMA)
        return sparse, edges

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        sparse, known = self.sparse(image)
        dense = propagate(image, sparse, known, self.sigma_r, self.iterations)
        return np.clip(np.nan_to_num(dense), 0.0, MAX_SIGMA).astype(np.float32)
