"""Pulse-coupled neural network (PCNN): the first firing time of every neuron of a simplified PCNN.

One neuron per pixel (Eckhorn's model in the discrete form of Johnson & Padgett 1999 / Lindblad & Kinser, with the
feeding input simplified to the stimulus, as in most PCNN segmentation work):

    F[n] = S                                          feeding = the stimulus
    L[n] = exp(−α_L)·L[n−1] + V_L·(W ⊛ Y[n−1])        linking, from the neighbours' pulses of the previous step
    U[n] = F[n]·(1 + β·L[n])                           internal activity
    Y[n] = U[n] > E[n−1]                               pulse
    E[n] = exp(−α_E)·E[n−1] + V_E·Y[n]                 dynamic threshold, raised by V_E after a pulse

with L[0] = 0, Y[0] = 0, E[0] = ``threshold0`` and W the 3×3 inverse-distance kernel (1 on the 4 axial neighbours,
1/√2 on the diagonals, 0 in the centre; zero outside the image). The threshold decays geometrically, so an isolated
neuron of stimulus S first fires after about ln(E[0]/S)/α_E steps: stronger stimuli fire earlier, and the linking
term lets a neuron whose neighbours have just fired fire earlier than its own stimulus would — neighbouring pixels
of similar stimulus are captured into one pulse wave, which is what makes a PCNN segment.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: Linking kernel W: inverse distance to the 8 neighbours.
LINK_KERNEL = np.array([[0.5 ** 0.5, 1.0, 0.5 ** 0.5], [1.0, 0.0, 1.0], [0.5 ** 0.5, 1.0, 0.5 ** 0.5]], np.float32)
_ROWS_PER_STRIP = 1024  # rows per strip on large images (plus a halo of `iterations` rows each side)


def pcnn_firing_times(stimulus: np.ndarray, iterations: int = 32, beta: float = 0.2, alpha_l: float = 1.0,
                      v_l: float = 1.0, alpha_e: float = 0.15, v_e: float = 1e4, threshold0: float = 1.0) -> np.ndarray:
    """First firing step of every neuron of a simplified PCNN fed with ``stimulus``.

    Parameters
    ----------
    stimulus : ndarray (H, W), float, ≥ 0
        Feeding input S (e.g. a sharpness map in [0, 1]).
    iterations : int
        Steps n = 1 … ``iterations`` that are run (≥ 1).
    beta : float
        Linking strength β ≥ 0 (0 = uncoupled neurons: the firing time is a function of S alone).
    alpha_l, v_l : float
        Linking decay constant (per step) and amplitude.
    alpha_e, v_e : float
        Threshold decay constant (per step, > 0) and the jump after a pulse (a large ``v_e`` makes every neuron
        fire once within the run).
    threshold0 : float
        Initial threshold E[0] (> 0), in the stimulus's units.

    Returns
    -------
    ndarray (H, W), float32
        The first n with Y[n] = 1, in 1 … ``iterations``; ``iterations + 1`` for a neuron that never fired.

    The network runs over strips of rows with a halo of ``iterations`` rows on each side (a pulse travels at most one
    pixel per step), so large images need bounded memory and the result equals the whole-image run.
    """
    s = np.asarray(stimulus, np.float32)
    if s.ndim != 2:
        raise ValueError(f"pcnn_firing_times expects an H×W stimulus, got shape {s.shape}")
    iterations = int(iterations)
    if iterations < 1 or alpha_e <= 0 or threshold0 <= 0 or beta < 0:
        raise ValueError("pcnn_firing_times needs iterations ≥ 1, alpha_e > 0, threshold0 > 0 and beta ≥ 0")
    h = s.shape[0]
    out = np.empty(s.shape, np.float32)
    for r0 in range(0, h, _ROWS_PER_STRIP):
        r1 = min(h, r0 + _ROWS_PER_STRIP)
        a, b = max(0, r0 - iterations), min(h, r1 + iterations)
        times = _run(np.ascontiguousarray(s[a:b]), iterations, beta, alpha_l, v_l, alpha_e, v_e, threshold0)
        out[r0:r1] = times[r0 - a : r1 - a]
    return out


def _run(s, iterations, beta, alpha_l, v_l, alpha_e, v_e, threshold0):
    decay_l, decay_e = math.exp(-alpha_l), math.exp(-alpha_e)
    link = np.zeros_like(s)
    pulse = np.zeros_like(s)
    threshold = np.full_like(s, threshold0)
    times = np.full(s.shape, iterations + 1, np.float32)
    activity = np.empty_like(s)
    for n in range(1, iterations + 1):
        link *= decay_l
        if beta > 0 and n > 1:
            link += v_l * cv2.filter2D(pulse, -1, LINK_KERNEL, borderType=cv2.BORDER_CONSTANT)
        np.multiply(link, beta, out=activity)
        activity += 1.0
        activity *= s
        fired = activity > threshold
        threshold *= decay_e
        threshold[fired] += v_e
        times[fired & (times > iterations)] = n
        pulse = fired.astype(np.float32)
    return times
