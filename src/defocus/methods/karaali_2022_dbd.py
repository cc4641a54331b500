"""Defocus blur detection from the Karaali, Harte & Jung 2022 defocus map (TIP 2022, Sec. IV-C, Fig. 9).

The paper detects blur by thresholding its defocus map at τ = α·v_max + (1 − α)·v_min (Eq. 5; v_min, v_max = the
map's extremes, α tuned per method for the best accuracy on CUHK). The min–max normalised map
``(v − v_min)/(v_max − v_min)`` is therefore the natural soft blur map: thresholding it at t is exactly Eq. 5 with
α = t, so every threshold sweep of an evaluation protocol (PR curves, max-F) is the paper's sweep over α, and
fixed-threshold protocols (0.5) use α = 0.5. With ``alpha=`` the binary map at that α is returned instead.
"""

from __future__ import annotations

import numpy as np

from ..errors import DefocusError
from ..filters.normalize import minmax
from .karaali_2022 import Karaali2022


class Karaali2022DBD(Karaali2022):
    """Blur map from the Karaali 2022 defocus map, min–max normalised (1 = most defocused) or thresholded.

    Parameters
    ----------
    alpha : float in [0, 1], optional
        If given, return the binary map ``v > α·v_max + (1 − α)·v_min`` (paper Eq. 5); default: the soft map.
    **options
        Those of :class:`defocus.methods.karaali_2022.Karaali2022` (``psi``, ``edges``, ``batch``, …).
    """

    task = "dbd"
    summary = "Blur detection by thresholding the Karaali 2022 deep edge-based defocus map (min-max normalised)"
    paper = ("A. Karaali, N. Harte, C. R. Jung, 'Deep Multi-Scale Feature Learning for Defocus Blur Estimation', "
             "IEEE TIP 31:1097-1106, 2022, Sec. IV-C (blur detection by thresholding the defocus map, Eq. 5)")

    def __init__(self, device: str = "cpu", alpha: float | None = None, **options) -> None:
        if alpha is not None and not 0.0 <= float(alpha) <= 1.0:
            raise DefocusError(f"alpha must be in [0, 1], not {alpha}")
        super().__init__(device=device, **options)
        self.alpha = None if alpha is None else float(alpha)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Blur map float32 (H, W) in [0, 1], 1 = out of focus."""
        # a constant map carries no in-focus/out-of-focus contrast: all in focus
        soft = minmax(super().predict(image), eps=1e-6, fallback=0.0).astype(np.float32)
        if self.alpha is None:
            return soft
        return (soft > self.alpha).astype(np.float32)
