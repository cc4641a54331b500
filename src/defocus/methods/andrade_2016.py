"""Andrade 2016: σ at edges, filled in by heat diffusion (a 2-D Poisson problem), then a guided filter.

From the paper's abstract: a training-free local blur estimate from edge features; since edges are sparse, the map is
completed following the heat-diffusion principle with a 2-D discrete Poisson solver, followed by a guided filter.

What we chose (the abstract names no edge feature and no parameter; see docs/methods/andrade-2016.md):

* Edge feature: Zhuo & Sim's re-blur gradient ratio (std 1 and 1.5 px) at Canny edges (σ = 1), measured on the
  linearised grey image ``Y^2.4`` of :func:`defocus.methods.karaali_jung_2018.linear_gray` — the single-scale
  estimator (one Canny pass instead of Karaali & Jung's nine) keeps the method cheap, and linearising made it as
  accurate as Karaali & Jung's multi-scale sparse map under this propagation on synthetic training scenes.
* Diffusion: :func:`defocus.filters.poisson.harmonic_interpolate` with the edge estimates as Dirichlet constraints
  (isotropic 5-point Laplacian, insulated borders), solved coarse to fine.
* Guided filter: :func:`defocus.filters.guided_filter` (striped, through :func:`~defocus.filters.guided_upsample`)
  with the grey photo as guide, radius 8 px, ε = 0.01.
"""

from __future__ import annotations

import numpy as np

from ..filters import guided_upsample
from ..filters.poisson import harmonic_interpolate
from ..registry import Method
from .karaali_jung_2018 import linear_gray
from .zhuo_sim import MAX_SIGMA, solvable_sparse_defocus


class Andrade2016(Method):
    """Andrade 2016 defocus map (Gaussian σ in px, clipped at 5).

    Parameters
    ----------
    std1, std2 : float
        Re-blur (derivative-of-Gaussian) scales of the edge estimate, px.
    canny_sigma : float
        Canny smoothing, px.
    data_weight : float or None
        None (default): edge estimates are Dirichlet constraints of the diffusion; a positive λ makes them soft.
    radius, eps : int, float
        Guided filter: window radius in px (0 skips the filter) and regularisation in squared grey levels.
    max_iter : int
        Conjugate-gradient iterations per pyramid level of the Poisson solve.
    """

    task = "dme"
    summary = "re-blur ratio at Canny edges, heat-diffusion (Poisson) fill-in, guided filter (Gaussian sigma, px)"
    paper = ("Andrade, 'Defocus Map Detection Using a Single Image', International Conference on Computational "
             "Science and Computational Intelligence (CSCI), pp. 777-780, 2016")

    def __init__(self, device: str = "cpu", std1: float = 1.0, std2: float = 1.5, canny_sigma: float = 1.0,
                 data_weight: float | None = None, radius: int = 8, eps: float = 1e-2, max_iter: int = 60) -> None:
        super().__init__(device=device)
        if not 0 < std1 < std2:
            raise ValueError(f"need 0 < std1 < std2, got {std1}, {std2}")
        if int(radius) < 0 or not float(eps) > 0:
            raise ValueError(f"need radius >= 0 and eps > 0, got {radius}, {eps}")
        self.std1, self.std2 = float(std1), float(std2)
        self.canny_sigma = float(canny_sigma)
        self.data_weight = None if data_weight is None else float(data_weight)
        self.radius, self.eps = int(radius), float(eps)
        self.max_iter = int(max_iter)

    def sparse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sparse σ map (float32 H×W, 0 off edges) and the mask of edge pixels whose ratio had a solution."""
        return solvable_sparse_defocus(linear_gray(image), self.canny_sigma, self.std1, self.std2, MAX_SIGMA)

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        sparse, known = self.sparse(image)
        dense = harmonic_interpolate(sparse, known, self.data_weight, self.max_iter)
        # guided_upsample is the striped guided filter (bounded memory on large photos) of a map in [0, 1]; the
        # map is scaled into that range and back (σ is clipped to [0, MAX_SIGMA] anyway).
        dense = guided_upsample(np.nan_to_num(dense) / MAX_SIGMA, image, self.radius, self.eps) * MAX_SIGMA
        return np.clip(dense, 0.0, MAX_SIGMA).astype(np.float32)
