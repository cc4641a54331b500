"""Edge-based defocus estimates spread only within the regions a blur detector tells apart.

Why: an edge method measures σ well at edges, but fills every other pixel by edge-aware propagation from the
nearest edges, and the propagation follows colour, not depth. A blurred background with few detectable edges is
then filled from the sharp subject's many strong edges (σ too small), and a flat in-focus surface (sky, skin, a
stem) from the blurred background (σ too large). A blur detector (a network trained on whole scenes) separates
in-focus from out-of-focus regions well even where there are no edges, but does not measure σ. So:

1. the base estimator's sparse σ at its edges (``base.sparse``);
2. the detector's blur map ``b`` (1 = out of focus), smoothed by a Gaussian of 1 px;
3. the domain-transform propagation of the base method with the per-pixel penalty Ψ = ``psi``·|∇b| (as Karaali et
   al. 2022 block it at E-Net's depth edges), so values do not cross a boundary between in-focus and defocused
   regions;
4. seeds: pixels the detector calls clearly in focus (b < ``seed_below``) that carry no edge estimate get
   ``seed_sigma`` (σ of a 0.5-px CoC radius, the in-focus limit of the synthetic engine) with the low confidence
   ``seed_weight``, so an in-focus region without edges is not filled from its neighbours.

The defaults were chosen on 20 scenes of the synthetic ``val`` split (docs/methods/focus-guided.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import DefocusError
from ..filters.domain_transform import propagate
from .. import registry
from ..registry import Method
from ..units import radius_to_sigma
from .zhuo_sim import MAX_SIGMA

#: The estimator whose edge estimates are spread unless ``base`` names another (it needs a ``sparse`` method).
BASE = "karaali-jung-2018"
#: The blur detector that draws the region boundaries.
DETECTOR = "light-dffnet"


class FocusGuided(Method):
    """Defocus map: an edge method's σ at edges, propagated within the in-focus / out-of-focus regions of a detector.

    Parameters
    ----------
    base : str
        A defocus-map estimator with ``sparse(image) -> (σ at edges, known)`` and a domain-transform propagation
        (``karaali-jung-2018``, ``zhuo-sim``, ``xu-2017``, …); its ``sigma_r`` / ``iterations`` are used.
    detector : str
        A blur detector (task dbd).
    psi : float ≥ 0
        Ψ per unit of blur-map gradient (per px); 0 turns the boundary blocking off.
    seed_below : float in [0, 1]
        Blur-map value under which a pixel without an edge estimate is seeded as in focus (0: no seeds).
    seed_weight : float ≥ 0
        Confidence of a seed relative to an edge estimate (1).
    """

    task = "dme"
    summary = ("edge-method sigma at edges, propagated only within the in-focus / defocused regions of a blur "
               "detector (light-dffnet), in-focus seeds where it is sure")
    paper = ("defocus (this toolkit), issue 14 item 4: combination of an edge-based estimator (default Karaali & "
             "Jung, TIP 2018) with a learned blur detector, propagation blocked as in Karaali, Harte & Jung 2022")

    def __init__(self, device: str = "cpu", base: str = BASE, detector: str = DETECTOR, psi: float = 1000.0,
                 seed_below: float = 0.1, seed_weight: float = 0.3) -> None:
        super().__init__(device=device)
        if registry.describe(detector).task != "dbd":
            raise DefocusError(f"focus-guided: detector {detector!r} is not a blur detector (task dbd)")
        if registry.describe(base).task != "dme":
            raise DefocusError(f"focus-guided: base {base!r} is not a defocus-map estimator (task dme)")
        if psi < 0 or not 0.0 <= seed_below <= 1.0 or seed_weight < 0:
            raise DefocusError("focus-guided: need psi >= 0, 0 <= seed_below <= 1 and seed_weight >= 0")
        self.base = registry.load(base, device=device)
        if not callable(getattr(self.base, "sparse", None)) or not hasattr(self.base, "sigma_r"):
            raise DefocusError(f"focus-guided: base {base!r} has no sparse edge estimates with a domain-transform "
                               "propagation")
        self.detector = registry.load(detector, device=device)
        self.psi, self.seed_below, self.seed_weight = float(psi), float(seed_below), float(seed_weight)
        self.seed_sigma = float(radius_to_sigma(np.array([0.5]))[0])

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Defocus map, float32 (H, W), Gaussian σ in px, in [0, 5]."""
        sparse, known = self.base.sparse(image)
        sparse = np.asarray(sparse, np.float32).copy()
        known = np.asarray(known)
        weight = known.astype(np.float32)
        blur = cv2.GaussianBlur(np.asarray(self.detector.predict(image), np.float32), (0, 0), 1.0)
        penalty = None
        if self.psi > 0:
            gy, gx = np.gradient(blur)
            penalty = (np.hypot(gx, gy) * self.psi).astype(np.float32)
        if self.seed_below > 0 and self.seed_weight > 0:
            seeds = (blur < self.seed_below) & ~(known > 0)
            sparse[seeds] = self.seed_sigma
            weight[seeds] = self.seed_weight
        dense = propagate(image, sparse, weight, self.base.sigma_r, self.base.iterations, penalty)
        return np.clip(dense, 0.0, MAX_SIGMA).astype(np.float32)
