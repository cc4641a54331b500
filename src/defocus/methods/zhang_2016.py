"""Zhang, Wang, Jiang, Wang & Gao 2016: defocus map from edge blur estimates interpolated by KNN matting.

The paper (JVCIR 2016) estimates a blur map "from the edge information" and fills it in by KNN matting, then
segments it into kernels for a BM3D-based non-blind deconvolution. Only the defocus-map half is here; the toolkit's
``defocus deblur --method zhang-2016`` runs this map through its own hyper-Laplacian deconvolution instead.

Edge estimate: Zhuo & Sim's re-blur gradient ratio at Canny edges (:func:`defocus.methods.zhuo_sim.sparse_defocus`),
the edge-based estimator of that period that the paper's "edge information" most plausibly denotes (see
docs/methods/zhang-2016.md). Interpolation: :func:`defocus.filters.knn_matting.knn_interpolate`.
"""

from __future__ import annotations

import numpy as np

from ..filters import color
from ..filters.knn_matting import knn_interpolate
from ..registry import Method
from .zhuo_sim import MAX_SIGMA, solvable_sparse_defocus


class Zhang2016(Method):
    """Zhang et al. 2016 defocus map (Gaussian σ in px, clipped at 5).

    Parameters
    ----------
    std1, std2 : float
        Re-blur (derivative-of-Gaussian) scales in px of the edge estimate (Zhuo & Sim's 1 and 1.5).
    canny_sigma : float
        Canny smoothing in px.
    k : int
        Neighbours per pixel of the KNN graph (Chen et al.: 10).
    lam : float
        Data weight λ of the known edge values (Chen et al.: 100).
    position_weight : float
        Weight of the pixel position (in units of the longer image side) against HSV colour in the KNN features.
    max_pixels : int
        Largest grid the KNN system is solved on; larger photos are solved at reduced size and guided-upsampled.
    """

    task = "dme"
    summary = "re-blur gradient ratio at edges, interpolated by KNN matting (Gaussian sigma, px)"
    paper = (
        "Zhang, Wang, Jiang, Wang & Gao, 'Spatially variant defocus blur map estimation and deblurring from a "
        "single image', J. Visual Communication and Image Representation 35:257-264, 2016"
    )

    def __init__(
        self,
        device: str = "cpu",
        std1: float = 1.0,
        std2: float = 1.5,
        canny_sigma: float = 1.0,
        k: int = 10,
        lam: float = 100.0,
        position_weight: float = 3.0,
        max_pixels: int = 30_000,
    ) -> None:
        super().__init__(device=device)
        if not 0 < std1 < std2:
            raise ValueError(f"need 0 < std1 < std2, got {std1}, {std2}")
        if k < 1 or lam <= 0 or max_pixels < 16:
            raise ValueError(f"need k >= 1, lam > 0, max_pixels >= 16; got {k}, {lam}, {max_pixels}")
        self.std1, self.std2 = float(std1), float(std2)
        self.canny_sigma = float(canny_sigma)
        self.k, self.lam = int(k), float(lam)
        self.position_weight = float(position_weight)
        self.max_pixels = int(max_pixels)

    def sparse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sparse σ map (float32 H×W, 0 off edges) and the mask of edge pixels whose ratio had a solution."""
        return solvable_sparse_defocus(color.gray(image), self.canny_sigma, self.std1, self.std2, MAX_SIGMA)

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        sparse, known = self.sparse(image)
        dense = knn_interpolate(image, sparse, known, self.k, self.lam, self.position_weight, self.max_pixels)
        return np.clip(dense, 0.0, MAX_SIGMA).astype(np.float32)
