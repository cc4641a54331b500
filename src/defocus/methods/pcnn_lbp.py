"""Basar et al. 2021: defocused-image segmentation by an LBP sharpness measure and a pulse-coupled neural network.

Only the abstract is known to us: an LBP sharpness measure (blurry patches have less prominent LBP descriptors) is
combined with a PCNN that segments the in-focus regions with their edges. See docs/methods/pcnn-lbp.md for what is
taken from where and what we chose.

1. Sharpness S: Yi & Eramian's LBP measure exactly as ``lbp`` computes it (fraction of LBP_{8,1}^{riu2} codes 6…9
   in 11/15/21 px windows, each scale min-max normalised over the photo, averaged), S ∈ [0, 1], 1 = sharpest.
2. S is the stimulus of a simplified PCNN (:func:`defocus.filters.pcnn.pcnn_firing_times`): one neuron per pixel,
   3×3 inverse-distance linking with strength β, a threshold that starts at 1 and decays geometrically so that a
   neuron of stimulus ``floor`` fires at the last step, and a refractory jump large enough that each neuron pulses
   once. Sharp pixels fire first; a pixel whose neighbours have just fired fires earlier than its own S says, so
   pixels of similar sharpness next to an in-focus region join its pulse wave.
3. Blur map = the firing order: (firing step − 1) / ``iterations`` in [0, 1], 1 for a neuron that never fired.
   It is graded (``iterations`` levels) rather than the binary mask of one firing step.
"""

from __future__ import annotations

import math

import numpy as np

from ..filters.pcnn import pcnn_firing_times
from ..registry import Method
from .lbp import LBP, SCALES, T_LBP

#: Steps of the PCNN run, i.e. grey levels of the blur map.
ITERATIONS = 64
#: Linking strength β (chosen on the synthetic train split).
BETA = 0.2
#: The stimulus that fires at the last step; weaker ones never fire (chosen on the synthetic train split).
FLOOR = 0.2
_ALPHA_L = 1.0  # linking decays by e⁻¹ a step: a neuron feels its neighbours' pulses of the last few steps
_V_L = 1.0
_V_E = 1e4  # threshold jump after a pulse: far above any activity, so every neuron fires once


class PCNNLBP(Method):
    """LBP sharpness fed to a pulse-coupled neural network; blur = firing order (late = out of focus).

    Parameters
    ----------
    scales, threshold :
        The LBP measure's window sizes (px, odd) and T_LBP, as ``lbp`` (11, 15, 21 and 0.016).
    iterations : int
        PCNN steps (≥ 2); the blur map has this many levels (default 64).
    beta : float
        Linking strength β ≥ 0 (default 0.2; 0 makes the map a monotone function of the LBP sharpness).
    floor : float
        Sharpness in (0, 1) that fires at the last step; weaker pixels get blur 1 (default 0.2).
    """

    task = "dbd"
    summary = "LBP sharpness (Yi & Eramian) as the stimulus of a pulse-coupled neural network; blur = firing order"
    paper = ("S. Basar, M. Ali, G. Ochoa-Ruiz, A. Waheed, G. Rodriguez-Hernandez, M. Zareei, A novel defocused image "
             "segmentation method based on PCNN and LBP, IEEE Access 9:87219-87240, 2021")

    def __init__(self, device: str = "cpu", scales=SCALES, threshold: float = T_LBP, iterations: int = ITERATIONS,
                 beta: float = BETA, floor: float = FLOOR):
        super().__init__(device=device)
        self.lbp = LBP(device=device, scales=scales, threshold=threshold)
        self.iterations = int(iterations)
        if self.iterations < 2:
            raise ValueError(f"pcnn-lbp iterations must be at least 2, got {iterations}")
        self.beta = float(beta)
        if self.beta < 0:
            raise ValueError(f"pcnn-lbp beta must be >= 0, got {beta}")
        self.floor = float(floor)
        if not 0.0 < self.floor < 1.0:
            raise ValueError(f"pcnn-lbp floor must lie in (0, 1), got {floor}")

    def predict(self, image: np.ndarray) -> np.ndarray:
        sharpness = 1.0 - self.lbp.predict(image)
        # E[n−1] = e^{−α_E (n−1)} reaches `floor` at the last step.
        alpha_e = math.log(1.0 / self.floor) / (self.iterations - 1)
        times = pcnn_firing_times(sharpness, self.iterations, beta=self.beta, alpha_l=_ALPHA_L, v_l=_V_L,
                                  alpha_e=alpha_e, v_e=_V_E, threshold0=1.0)
        return np.clip((times - 1.0) / self.iterations, 0.0, 1.0).astype(np.float32)
