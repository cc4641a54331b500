"""Karaali & Jung 2018: edge-based defocus estimation with an adaptive re-blur scale per edge.

Pipeline (facts from the paper and the authors' MATLAB release, see docs/methods/karaali-jung-2018.md):

1. Grey image ``Y^2.4``, with ``Y`` the BT.601 studio-range luma of MATLAB's ``rgb2ycbcr`` (roughly linearising the
   sRGB values, so that a blurred edge is a blurred step in intensity).
2. Canny edges at 9 scales σ = 1, 1.5, …, 5. Reliable edges are the pixels that are edges at all of the first 4.
3. Per edge pixel, the re-blur scale is std2 = 0.5·σ_b, with σ_b the last scale of the unbroken run of scales at
   which the pixel is an edge (σ = 5 if it survives all 9); std1 = 1. Larger, smoother edges survive longer and get
   a larger std2, which keeps R = |∇₁|/|∇₂| away from 1 where a fixed std2 would lose precision.
4. σ = √((R²·std1² − std2²)/(1 − R²)) at each edge (no real solution → 0 in the original), clipped at 5.
5. Connected-edge filtering: on every 8-connected edge component, minimise
   Σ_i (1 + n_i)(x_i − σ_i)² + γ Σ_(i~j) (x_i − x_j)², γ = 10, n_i = the number of scales at which pixel i is an
   edge; one sparse symmetric positive-definite system over all edge pixels (components do not interact).
6. Dense map by domain-transform normalised convolution guided by the RF-simplified photo (σs = min(H, W)/8,
   σr = 3.75, 5 iterations, guide = RF(I, 7, 0.5, 5)).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from scipy.sparse.csgraph import connected_components

from ..filters.domain_transform import propagate
from ..registry import Method
from .zhuo_sim import MAX_SIGMA, canny, edge_sigma

#: Canny scales (px) of the multi-scale edge detection.
SCALES = tuple(1.0 + 0.5 * k for k in range(9))


def linear_gray(image: np.ndarray, gamma: float = 2.4) -> np.ndarray:
    """``Y^gamma`` with ``Y`` = MATLAB ``rgb2ycbcr`` luma of an RGB image in [0, 1] (range 16/255 … 235/255).

    Not :func:`defocus.filters.color.gray` on purpose: the authors' code uses the studio-range luma, and the power
    law roughly linearises it, which the re-blur model needs.

    Returns
    -------
    ndarray (H, W), float32
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        y = img
    else:
        y = (16.0 + 65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0
    return np.power(np.clip(y, 0.0, None), gamma, dtype=np.float32)


def multiscale_edges(gray: np.ndarray, scales=SCALES, reliable: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliable edges and, per pixel, how long and how often it survives across the Canny scales.

    Returns
    -------
    reliable_edges : ndarray (H, W), bool
        Edges at each of the first ``reliable`` scales.
    run : ndarray (H, W), uint8
        Length of the unbroken run of scales, from the first, at which the pixel is an edge.
    count : ndarray (H, W), uint8
        Number of scales at which the pixel is an edge.
    """
    h, w = gray.shape
    run = np.zeros((h, w), np.uint8)
    count = np.zeros((h, w), np.uint8)
    alive = np.ones((h, w), bool)
    for k, s in enumerate(scales):
        e = canny(gray, s)
        count += e
        alive &= e
        run += alive
        if k + 1 == reliable:
            reliable_edges = alive.copy()
    return reliable_edges, run, count


def edge_consistency(
    edges: np.ndarray, values: np.ndarray, weights: np.ndarray, gamma: float = 10.0
) -> np.ndarray:
    """Smooth values along 8-connected edges: solve (W + γ·L)x = W·v on the edge-pixel graph.

    ``L`` is the graph Laplacian with unit weight per 8-neighbour link, scaled by 2 (the original's factor 2γ
    per link comes from differentiating γ Σ (x_i − x_j)²). Pixels with weight 0 take the values of their
    component; components without any positive weight are returned as NaN.

    Parameters
    ----------
    edges : ndarray (H, W), bool
    values, weights : ndarray (N,), float
        Per edge pixel in ``np.nonzero(edges)`` order.
    gamma : float

    Returns
    -------
    ndarray (N,), float64
    """
    h, w = edges.shape
    ys, xs = np.nonzero(edges)
    n = len(ys)
    if n == 0:
        return np.zeros(0)
    index = np.full((h, w), -1, np.int64)
    index[ys, xs] = np.arange(n)
    rows, cols = [], []
    # Each undirected link once: right, down, down-right, down-left.
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        y2, x2 = ys + dy, xs + dx
        ok = (y2 < h) & (x2 >= 0) & (x2 < w)
        j = np.full(n, -1, np.int64)
        j[ok] = index[y2[ok], x2[ok]]
        linked = j >= 0
        rows.append(np.arange(n)[linked])
        cols.append(j[linked])
    i = np.concatenate(rows)
    j = np.concatenate(cols)
    adj = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    adj = (adj + adj.T).tocsr()
    degree = np.asarray(adj.sum(axis=1)).ravel()
    wts = np.asarray(weights, dtype=np.float64)
    vals = np.nan_to_num(np.asarray(values, dtype=np.float64))
    # Components with no data would make the system singular: find them and pin them to 0, report NaN.
    n_comp, comp = connected_components(adj, directed=False)
    has_data = np.bincount(comp, weights=(wts > 0).astype(float), minlength=n_comp) > 0
    orphan = ~has_data[comp]
    wts = np.where(orphan, 1.0, wts)
    a = sp.diags(wts + 2.0 * gamma * degree) - 2.0 * gamma * adj
    b = wts * np.where(orphan, 0.0, vals)
    x, info = sla.cg(a.tocsr(), b, x0=np.where(wts > 0, vals, 0.0), rtol=1e-8, atol=0.0, maxiter=5000,
                     M=sp.diags(1.0 / (wts + 2.0 * gamma * degree)))
    if info != 0:  # fall back to the direct solver if CG did not converge
        x = sla.spsolve(a.tocsc(), b)
    return np.where(orphan, np.nan, x)


class KaraaliJung2018(Method):
    """Karaali & Jung 2018 defocus map (Gaussian σ in px, clipped at 5).

    Parameters
    ----------
    gamma : float
        Smoothness weight of the connected-edge filtering (paper: 10).
    invalid : {"drop", "zero"}
        Edges whose gradient ratio R ≤ 1 (no real solution: noise, or blur far beyond 5 px). "drop" (default) gives
        them zero data weight so that the edge filtering fills them from their connected edge (and leaves them out
        of the propagation if the whole edge is such); "zero" sets them to σ = 0 as the authors' code does (it
        treats every unsolvable ratio, R ≥ std2/std1 and R ≤ 1, as sharp). R ≥ std2/std1 gives σ = 0 either way.
    subpixel : bool
        Refine the gradient peak across each edge (not in the original; removes a bias of up to 13 % at σ ≈ 1).
    consistency : bool
        Run the connected-edge filtering.
    sigma_r, iterations : float, int
        Domain-transform interpolation parameters.
    """

    task = "dme"
    summary = "multi-scale Canny, adaptive re-blur scale per edge, edge filtering, domain-transform propagation"
    paper = (
        "Karaali & Jung, 'Edge-Based Defocus Blur Estimation With Adaptive Scale Selection', "
        "IEEE TIP 27(3):1126-1137, 2018"
    )

    def __init__(
        self,
        device: str = "cpu",
        gamma: float = 10.0,
        std1: float = 1.0,
        invalid: str = "drop",
        subpixel: bool = True,
        consistency: bool = True,
        sigma_r: float = 3.75,
        iterations: int = 5,
    ) -> None:
        super().__init__(device=device)
        if invalid not in ("drop", "zero"):
            raise ValueError(f"invalid must be 'drop' or 'zero', not {invalid!r}")
        self.gamma = float(gamma)
        self.std1 = float(std1)
        self.invalid = invalid
        self.subpixel = bool(subpixel)
        self.consistency = bool(consistency)
        self.sigma_r = float(sigma_r)
        self.iterations = int(iterations)

    def sparse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filtered sparse σ map (float32 H×W, 0 off edges) and the mask of edge pixels that carry a value."""
        gray = linear_gray(image)
        edges, run, count = multiscale_edges(gray)
        ys, xs = np.nonzero(edges)
        sparse = np.zeros(gray.shape, np.float32)
        if len(ys) == 0:
            return sparse, edges
        last = np.asarray(SCALES)[run[ys, xs].astype(np.intp) - 1]  # last scale of the unbroken run
        sigma = edge_sigma(gray, ys, xs, self.std1, 0.5 * last, MAX_SIGMA, self.subpixel)
        bad = np.isnan(sigma)
        weights = 1.0 + count[ys, xs].astype(np.float64)
        if self.invalid == "zero":
            sigma[bad] = 0.0
        else:
            weights[bad] = 0.0
        if self.consistency:
            sigma = edge_consistency(edges, sigma, weights, self.gamma)
        elif self.invalid == "drop":
            sigma[bad] = np.nan
        keep = np.isfinite(sigma)
        sparse[ys[keep], xs[keep]] = np.clip(sigma[keep], 0.0, MAX_SIGMA)
        known = np.zeros_like(edges)
        known[ys[keep], xs[keep]] = True
        return sparse, known

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        sparse, known = self.sparse(image)
        dense = propagate(image, sparse, known, self.sigma_r, self.iterations)
        return np.clip(dense, 0.0, MAX_SIGMA).astype(np.float32)
