"""Khan et al. 2019: defocus blur segmentation with local triplicate (ternary) co-occurrence patterns (LTCoP).

Only the abstract is known to us: LTCoP patterns are extracted, split into a higher (upper) and a lower pattern, and
the fusion of the two separates in-focus from out-of-focus regions best. The pattern follows the local ternary
co-occurrence pattern of the texture literature (Murala & Wu 2013); the sharpness measure is built in the manner of
Yi & Eramian's LBP metric (``lbp``), whose pattern machinery this module reuses. See docs/methods/ltcop.md for what
is taken from where and what we chose.

1. Grey image: BT.601 luma min-max normalised to [0, 1] (as ``lbp``).
2. At every pixel, the 8 directions of the circle (diagonals bilinearly interpolated) are compared with the centre at
   radius 1 and radius 2 with a ternary threshold t: +1 when ``neighbour − centre > t``, −1 when ``< −t``, else 0.
3. Co-occurrence: direction k carries +1 in the LTCoP only when both radii give +1 (the intensity keeps rising
   outwards), −1 only when both give −1; otherwise 0. The ternary pattern is split as in local ternary patterns into
   an **upper** binary pattern (the +1 bits) and a **lower** one (the −1 bits), each coded LBP^{riu2} (0…8 set bits
   when uniform, 9 otherwise).
4. Per window size s (11, 15, 21 px) the sharpness of each pattern is the fraction of its codes ≥ 5 in the s×s
   window (``lbp.code_fraction``); upper and lower are **fused** by their mean, each scale is min-max normalised over
   the photo, and the scales are averaged. Blur = 1 − sharpness.

The threshold and the code set were chosen on the synthetic train split (docs/methods/ltcop.md).
"""

from __future__ import annotations

import numpy as np

from ..filters.normalize import minmax
from ..registry import Method
from .lbp import SCALES, code_fraction, gray01, riu2_code, strip_codes

#: Ternary threshold on the min-max normalised grey image (chosen on the synthetic train split).
T_LTCOP = 0.012
#: The two radii (px) whose ternary edges must co-occur.
RADII = (1, 2)
#: Codes counted as sharp in each binary pattern: this one and above (Yi & Eramian count 6…9; 5 chosen on synth train).
LOWEST_SHARP_CODE = 5
PATTERNS = ("upper", "lower")


def ltcop_codes(gray: np.ndarray, threshold: float = T_LTCOP, radii=RADII) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower LTCoP codes of every pixel.

    Parameters
    ----------
    gray : ndarray (H, W), float32 in [0, 1]
    threshold : float
        Ternary threshold t on ``neighbour − centre``.
    radii : tuple of int
        Circle radii in px whose ternary values must agree (one radius gives the plain local ternary pattern).

    Returns
    -------
    (upper, lower) : ndarray (H, W), uint8 each
        LBP^{riu2} codes (0…8 set bits of a uniform pattern, 9 non-uniform) of the directions where every radius is
        above ``+t`` (upper) or below ``−t`` (lower).
    """
    radii = tuple(int(r) for r in radii)

    def codes_of(ring):
        up = down = None
        for r in radii:
            diffs = ring.differences(r)
            u = [d > threshold for d in diffs]
            l = [d < -threshold for d in diffs]
            up = u if up is None else [a & b for a, b in zip(up, u)]
            down = l if down is None else [a & b for a, b in zip(down, l)]
        return [riu2_code(up), riu2_code(down)]

    upper, lower = strip_codes(gray, max(radii), codes_of)
    return upper, lower


class LTCoP(Method):
    """LTCoP sharpness: fraction of high upper and lower co-occurrence-pattern codes, fused, at 3 scales.

    Parameters
    ----------
    scales : tuple of int
        Odd window sizes in px (as ``lbp``: 11, 15, 21).
    threshold : float
        Ternary threshold t on the min-max normalised grey image (default 0.012).
    radii : tuple of int
        Radii whose ternary edges must co-occur (default (1, 2)).
    patterns : tuple of str
        ``("upper", "lower")`` fuses both (the paper's best); ``("upper",)`` or ``("lower",)`` uses one.
    lowest : int
        Codes ``lowest``…9 count as sharp (default 5).
    """

    task = "dbd"
    summary = "LTCoP (Khan et al. 2019): upper + lower local ternary co-occurrence pattern code fractions, 3 scales"
    paper = ("A. Khan, S. A. Irtaza, A. Javed, M. A. Khan, Segmentation of defocus blur using local triplicate "
             "co-occurrence patterns (LTCoP), MACS 2019")

    def __init__(self, device: str = "cpu", scales=SCALES, threshold: float = T_LTCOP, radii=RADII,
                 patterns=PATTERNS, lowest: int = LOWEST_SHARP_CODE):
        super().__init__(device=device)
        self.scales = tuple(int(s) for s in scales)
        if not self.scales or any(s < 1 or s % 2 == 0 for s in self.scales):
            raise ValueError(f"LTCoP scales must be odd positive window sizes, got {self.scales}")
        self.threshold = float(threshold)
        self.radii = tuple(int(r) for r in radii)
        if not self.radii or any(r < 1 for r in self.radii):
            raise ValueError(f"LTCoP radii must be positive integers, got {self.radii}")
        self.patterns = tuple(patterns)
        if not self.patterns or any(p not in PATTERNS for p in self.patterns):
            raise ValueError(f"LTCoP patterns must be a non-empty subset of {PATTERNS}, got {self.patterns}")
        self.lowest = int(lowest)
        if not 1 <= self.lowest <= 9:
            raise ValueError(f"LTCoP lowest must be a code in 1…9, got {self.lowest}")

    def sharpness(self, image: np.ndarray) -> np.ndarray:
        """Fused sharpness, float32 H×W in [0, 1] (each scale min-max normalised over the photo, then averaged)."""
        upper, lower = ltcop_codes(gray01(image), self.threshold, self.radii)
        chosen = [c for name, c in zip(PATTERNS, (upper, lower)) if name in self.patterns]
        total = np.zeros(upper.shape, np.float32)
        for s in self.scales:
            fused = np.mean([code_fraction(c, s, self.lowest) for c in chosen], axis=0)
            # As lbp: per-photo normalisation; a flat map (e.g. no sharp code anywhere) keeps its absolute fraction.
            total += minmax(fused, eps=1e-12, fallback=lambda flat: flat)
        return total / len(self.scales)

    def predict(self, image: np.ndarray) -> np.ndarray:
        return np.clip(1.0 - self.sharpness(image), 0.0, 1.0).astype(np.float32)
