"""Yi & Eramian 2016: LBP-based sharpness and segmentation of defocus blur.

Sharpness metric (the paper's Eq. 15). The grey image is min-max normalised to [0, 1]. Each pixel gets the rotation
invariant uniform local binary pattern LBP_{8,1}^{riu2}: its 8 neighbours on a circle of radius 1 (the 4 diagonal
ones bilinearly interpolated at (±√2/2, ±√2/2)) set a bit when ``neighbour − centre > T_LBP`` (0.016); a pattern
with at most two 0/1 transitions around the circle is coded by its number of set bits (0…8), any other pattern by 9.
Blurred patches have few of the codes {6, 7, 8, 9}; the sharpness at a pixel is the fraction of those codes in the
s×s window around it (box filter = the integral-image sum of the paper, replicated borders), at s = 11, 15, 21.

Segmentation (``segment=True``, the paper's Sec. IV, following the authors' MATLAB release):

1. per scale, the sharpness map is min-max normalised and double-thresholded into a trimap: > T_m1 = 0.3 is sure
   sharp (α = 1), < T_m2 = 0.01 is sure blurred (α = 0);
2. the trimap is completed by Levin et al.'s closed-form matting on the colour photo (3×3 windows, ε = 1e-7,
   constraint weight λ = 100) solved coarse-to-fine: the sparse system is solved once at the coarsest of 3 pyramid
   levels (more levels for large photos, so the solved level never exceeds ~0.25 MP) and α is carried to the finer
   levels by the local linear colour model of each 3×3 window;
3. the three α maps are fused by sum-product loopy belief propagation on the 3-layer grid graph of Shi et al. 2014:
   4-connected inside each layer, each pixel linked to itself in the next layer, two states, node potentials
   exp(−|1 − x|) and exp(−|x|) of the jointly standardised α, edge potentials 1 (same state) and exp(−0.5)
   (different). The output is the belief of the sharp state in the layer of the largest scale (s = 21), as in the
   release.

Our blur map is ``1 − sharpness`` in both modes. Without segmentation the sharpness is the mean of the three per-scale
maps, each min-max normalised over the photo as in the authors' code (``normalize=False`` keeps the absolute
fractions instead).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import njit

from ..filters import color
from ..filters.matting import MattingLaplacian
from ..filters.normalize import minmax
from ..registry import Method

#: Window sizes (px) of the three scales of the paper.
SCALES = (11, 15, 21)
#: The paper's LBP threshold on the min-max normalised grey image.
T_LBP = 0.016
#: Trimap thresholds on the normalised sharpness (Eq. 21): sure sharp above T_M1, sure blurred below T_M2.
T_M1 = 0.3
T_M2 = 0.01

_DIAG = math.sqrt(2.0) / 2.0  # offset of the interpolated diagonal neighbours
_ROWS_PER_STRIP = 1024  # LBP codes are computed in strips of rows to bound the temporaries on huge photos


# --- sharpness metric -------------------------------------------------------------------------------------------


def gray01(image: np.ndarray) -> np.ndarray:
    """Luma (ITU-R BT.601 weights) min-max normalised to [0, 1]; H×W float32 (zeros for a constant image)."""
    return minmax(color.gray(image), eps=1e-12)


def lbp_codes(gray: np.ndarray, threshold: float = T_LBP) -> np.ndarray:
    """LBP_{8,1}^{riu2} code of every pixel.

    Parameters
    ----------
    gray : ndarray (H, W), float32 in [0, 1]
    threshold : float
        A neighbour sets its bit when ``neighbour − centre > threshold``.

    Returns
    -------
    ndarray (H, W), uint8
        0…8 = number of set bits of a uniform pattern, 9 = non-uniform pattern.
    """
    return strip_codes(gray, 1, lambda ring: [riu2_code([d > threshold for d in ring.differences(1)])])[0]


class Ring:
    """The centre rows of a padded strip of the grey image and their 8 circular neighbours at any radius.

    ``pad`` is a strip padded by ``margin`` px on every side (replicated borders); ``differences(r)`` gives the 8
    ``neighbour − centre`` arrays on the circle of radius ``r`` ≤ ``margin``, counter-clockwise from the right
    neighbour, the 4 diagonal ones bilinearly interpolated at (±r√2/2, ±r√2/2).
    """

    def __init__(self, pad: np.ndarray, margin: int):
        self.pad, self.margin = pad, margin
        h, w = pad.shape
        self.shape = (h - 2 * margin, w - 2 * margin)
        self.centre = self.at(0, 0)

    def at(self, dy: int, dx: int) -> np.ndarray:
        """The centre rows shifted by (dy, dx) whole pixels (dy > 0 = down)."""
        m, (h, w) = self.margin, self.shape
        return self.pad[m + dy : m + dy + h, m + dx : m + dx + w]

    def _diagonal(self, radius: int, sy: int, sx: int) -> np.ndarray:
        """Bilinear sample at (sy, sx)·r√2/2 from the 4 pixels around it."""
        off = radius * _DIAG
        i = int(math.floor(off))
        b = off - i  # weight of the outer pixel on each axis
        a = 1.0 - b
        near_row = a * self.at(sy * i, sx * i) + b * self.at(sy * i, sx * (i + 1))
        far_row = a * self.at(sy * (i + 1), sx * i) + b * self.at(sy * (i + 1), sx * (i + 1))
        return a * near_row + b * far_row

    def differences(self, radius: int) -> list[np.ndarray]:
        r, c = radius, self.centre
        neighbours = (
            self.at(0, r),
            self._diagonal(r, -1, 1),
            self.at(-r, 0),
            self._diagonal(r, -1, -1),
            self.at(0, -r),
            self._diagonal(r, 1, -1),
            self.at(r, 0),
            self._diagonal(r, 1, 1),
        )
        return [n - c for n in neighbours]


def riu2_code(bits: list[np.ndarray]) -> np.ndarray:
    """Rotation invariant uniform code of 8 circular bit arrays: the number of set bits (0…8) of a pattern with at
    most two 0/1 transitions around the circle, 9 for any other; uint8."""
    count = np.zeros(bits[0].shape, np.uint8)
    transitions = np.zeros(bits[0].shape, np.uint8)
    for k in range(8):
        count += bits[k]
        transitions += bits[k] != bits[k - 1]
    count[transitions > 2] = 9
    return count


def strip_codes(gray: np.ndarray, margin: int, codes_of) -> list[np.ndarray]:
    """Pattern code maps of a grey image, computed over strips of rows so the temporaries stay small on huge photos.

    ``codes_of(ring)`` maps a :class:`Ring` of one strip (padded by ``margin`` px, replicated borders) to a list of
    uint8 code arrays of the strip's shape; the strips are stitched into full H×W maps.
    """
    h, w = gray.shape
    pad = cv2.copyMakeBorder(gray, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    out: list[np.ndarray] = []
    for r0 in range(0, h, _ROWS_PER_STRIP):
        r1 = min(h, r0 + _ROWS_PER_STRIP)
        parts = codes_of(Ring(pad[r0 : r1 + 2 * margin], margin))
        if not out:
            out = [np.empty((h, w), np.uint8) for _ in parts]
        for o, part in zip(out, parts):
            o[r0:r1] = part
    return out


def code_fraction(codes: np.ndarray, size: int, lowest: int = 6) -> np.ndarray:
    """Fraction of codes ≥ ``lowest`` in the ``size``×``size`` window around each pixel (replicated borders).

    Returns
    -------
    ndarray (H, W), float32 in [0, 1]
    """
    chosen = (codes >= lowest).astype(np.float32)
    return cv2.boxFilter(chosen, cv2.CV_32F, (size, size), normalize=True, borderType=cv2.BORDER_REPLICATE)


def lbp_sharpness(codes: np.ndarray, size: int) -> np.ndarray:
    """Fraction of codes 6…9 in the ``size``×``size`` window around each pixel (replicated borders).

    Returns
    -------
    ndarray (H, W), float32 in [0, 1]
    """
    return code_fraction(codes, size, 6)


def _minmax(a: np.ndarray) -> np.ndarray:
    """Per-photo normalisation of a sharpness map, as the release does; a flat map is kept as it is."""
    return minmax(a, eps=1e-12, fallback=lambda flat: flat).astype(np.float32, copy=False)


# --- closed-form matting (Levin, Lischinski, Weiss 2006/2008) -----------------------------------------------------

_EPS = 1e-7  # matting regulariser ε of the release
_LAMBDA = 100.0  # weight of the trimap constraints
_MAX_SOLVE_PIXELS = 250_000  # largest pyramid level on which the sparse system is solved


def _window_stats(img: np.ndarray):
    """Mean colour and colour covariance of every 3×3 window (centred), via box filters."""
    mean = cv2.blur(img, (3, 3), borderType=cv2.BORDER_REPLICATE)
    h, w, c = img.shape
    cov = np.empty((h, w, c, c), np.float64)
    for i in range(c):
        for j in range(i, c):
            m = cv2.blur(img[..., i] * img[..., j], (3, 3), borderType=cv2.BORDER_REPLICATE)
            cov[..., i, j] = cov[..., j, i] = m - mean[..., i] * mean[..., j]
    return mean, cov


def _solve_alpha(img: np.ndarray, known: np.ndarray, values: np.ndarray) -> np.ndarray:
    """α minimising αᵀLα + λ Σ_known (α − value)², clipped to [0, 1]."""
    h, w = known.shape
    if not known.any():
        return np.full((h, w), 0.5)
    # The release leaves out windows wholly inside the known region, where the constraints decide α anyway.
    skip = cv2.erode(known.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    lap = MattingLaplacian(img, _EPS).matrix(skip) if min(h, w) >= 3 else sp.csr_matrix((h * w, h * w))
    d = known.ravel().astype(np.float64)
    a = (lap + sp.diags(_LAMBDA * d)).tocsc()
    b = _LAMBDA * d * values.ravel()
    alpha = spla.spsolve(a, b)
    return np.clip(alpha.reshape(h, w), 0.0, 1.0)


_PYR = np.array([1, 4, 6, 4, 1], np.float64) / 16.0


def _downsample(a: np.ndarray) -> np.ndarray:
    """Binomial [1 4 6 4 1]/16 low-pass then every second pixel (Levin's pyramid)."""
    depth = cv2.CV_32F if a.dtype == np.float32 else cv2.CV_64F
    f = cv2.sepFilter2D(a, depth, _PYR, _PYR, borderType=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(f[::2, ::2])


def _linear_coefficients(alpha: np.ndarray, img: np.ndarray, eps: float = _EPS) -> np.ndarray:
    """Per-pixel coefficients (a, b) of the ridge fit α ≈ a·I + b over the 3×3 window; (H, W, C+1) float32.

    Computed in float64 (the covariances of near-flat windows are ~ε) over strips of rows to bound memory.
    """
    h, w, c = img.shape
    out = np.empty((h, w, c + 1), np.float32)
    for r0 in range(0, h, _ROWS_PER_STRIP):
        r1 = min(h, r0 + _ROWS_PER_STRIP)
        a, b = max(0, r0 - 1), min(h, r1 + 1)  # one halo row each side for the 3×3 windows
        im = img[a:b].astype(np.float64)
        al = alpha[a:b].astype(np.float64)
        mean, cov = _window_stats(im)
        mean_a = cv2.blur(al, (3, 3), borderType=cv2.BORDER_REPLICATE)
        cov_ia = np.stack(
            [cv2.blur(im[..., i] * al, (3, 3), borderType=cv2.BORDER_REPLICATE) - mean[..., i] * mean_a
             for i in range(c)],
            axis=-1,
        )
        coeff_a = np.linalg.solve(cov + (eps / 9.0) * np.eye(c), cov_ia[..., None])[..., 0]
        coeff_b = mean_a - np.einsum("hwc,hwc->hw", coeff_a, mean)
        out[r0:r1, :, :c] = coeff_a[r0 - a : r1 - a]
        out[r0:r1, :, c] = coeff_b[r0 - a : r1 - a]
    return out


def _upsample_alpha(alpha: np.ndarray, small: np.ndarray, big: np.ndarray) -> np.ndarray:
    """Carry α from a pyramid level to the next finer one through the local linear colour model."""
    coeff = _linear_coefficients(alpha, small)
    h, w = big.shape[:2]
    coeff = cv2.resize(coeff, (w, h), interpolation=cv2.INTER_LINEAR)
    out = coeff[..., -1]
    for i in range(big.shape[2]):
        out += coeff[..., i] * big[..., i]
    return np.clip(out, 0.0, 1.0)


def closed_form_matting(img: np.ndarray, known: np.ndarray, values: np.ndarray, levels: int = 3) -> np.ndarray:
    """Coarse-to-fine closed-form matting: solve at the coarsest level, propagate α upwards.

    Parameters
    ----------
    img : ndarray (H, W, 3), float in [0, 1]
        Colour photo.
    known : ndarray (H, W), bool
        Pixels whose α is given by ``values``.
    values : ndarray (H, W), float
        α at the known pixels (0 or 1).
    levels : int
        Pyramid levels (at least); more are added so the solved level has ≤ 250 000 pixels.

    Returns
    -------
    ndarray (H, W), float32 in [0, 1]
    """
    h, w = known.shape
    extra = max(0, math.ceil(0.5 * math.log2(max(1.0, h * w / _MAX_SOLVE_PIXELS))) + 1 - levels)
    levels = levels + extra
    pyramid = [np.asarray(img, np.float32)]
    known_l, values_l = [known.astype(np.float32)], [values.astype(np.float32) * known]
    for _ in range(levels - 1):
        if min(pyramid[-1].shape[:2]) < 6:
            break
        pyramid.append(_downsample(pyramid[-1]))
        known_l.append(np.round(_downsample(known_l[-1])))
        values_l.append(np.round(_downsample(values_l[-1])))
    alpha = _solve_alpha(pyramid[-1].astype(np.float64), known_l[-1] > 0.5, values_l[-1].astype(np.float64))
    for lvl in range(len(pyramid) - 2, -1, -1):
        alpha = _upsample_alpha(alpha, pyramid[lvl + 1], pyramid[lvl])
    return alpha.astype(np.float32)


def trimap_alpha(image: np.ndarray, sharpness: np.ndarray) -> np.ndarray:
    """Per-scale segmentation: double threshold of the normalised sharpness, then matting (α = 1 sharp)."""
    norm = _minmax(sharpness)
    sure_sharp = norm > T_M1
    sure_blur = norm < T_M2
    return closed_form_matting(image, sure_sharp | sure_blur, sure_sharp.astype(np.float64))


# --- multi-scale fusion by loopy belief propagation ---------------------------------------------------------------

_BP_ALPHA = 0.5  # edge potential exp(−α) for neighbours in different states
_BP_MAX_ITER = 100
_BP_TOL = 1e-5  # largest change of any message's odds in a sweep that ends the iterations
_BP_STRIP = 512  # rows per strip on large photos
_BP_MARGIN = 48  # extra rows each side of a strip; messages die out within a few pixels at this coupling


@njit(cache=True)
def _message(cavity, d):  # pragma: no cover - compiled
    """Outgoing message odds for sender cavity odds ``cavity`` and edge potential [[1, d], [d, 1]]."""
    return (cavity + d) / (d * cavity + 1.0)


@njit(cache=True)
def _bp_sweeps(odds, d, max_iter, tol):  # pragma: no cover - compiled
    """Sum-product loopy BP on the 3-layer grid, binary states, messages kept as odds p(sharp)/p(blurred).

    odds: (L, H, W) node-potential odds. Edge potential [[1, d], [d, 1]]. Messages are updated in place node by
    node (layer, row, column order), like UGM's sequential schedule. Stops when no message odds changed by more
    than ``tol`` in a sweep. Returns the belief odds of every node and the number of sweeps.
    """
    nl, h, w = odds.shape
    # Messages into (l, y, x) from its left, right, upper and lower neighbours and from layers l-1 and l+1;
    # 1 (= uninformative) where the neighbour does not exist.
    into = np.ones((6, nl, h, w), np.float32)
    sweeps = 0
    for _ in range(max_iter):
        sweeps += 1
        change = 0.0
        for l in range(nl):
            for y in range(h):
                for x in range(w):
                    ml, mr, mu = into[0, l, y, x], into[1, l, y, x], into[2, l, y, x]
                    md, mp, mn = into[3, l, y, x], into[4, l, y, x], into[5, l, y, x]
                    o = odds[l, y, x]
                    # Cavity products (all incoming but one) without divisions.
                    a = o * ml * mr
                    b = mu * md
                    c = mp * mn
                    if x + 1 < w:
                        m = _message(o * ml * b * c, d)
                        change = max(change, abs(m - into[0, l, y, x + 1]))
                        into[0, l, y, x + 1] = m
                    if x > 0:
                        m = _message(o * mr * b * c, d)
                        change = max(change, abs(m - into[1, l, y, x - 1]))
                        into[1, l, y, x - 1] = m
                    if y + 1 < h:
                        m = _message(a * mu * c, d)
                        change = max(change, abs(m - into[2, l, y + 1, x]))
                        into[2, l, y + 1, x] = m
                    if y > 0:
                        m = _message(a * md * c, d)
                        change = max(change, abs(m - into[3, l, y - 1, x]))
                        into[3, l, y - 1, x] = m
                    if l + 1 < nl:
                        m = _message(a * b * mp, d)
                        change = max(change, abs(m - into[4, l + 1, y, x]))
                        into[4, l + 1, y, x] = m
                    if l > 0:
                        m = _message(a * b * mn, d)
                        change = max(change, abs(m - into[5, l - 1, y, x]))
                        into[5, l - 1, y, x] = m
        if change < tol:
            break
    belief = odds.astype(np.float64)
    for k in range(6):
        belief *= into[k]
    return belief, sweeps


def fuse_scales(alphas: list[np.ndarray], edge_alpha: float = _BP_ALPHA) -> np.ndarray:
    """Multi-scale inference: belief of the sharp state in the first layer of the 3-layer graph.

    Parameters
    ----------
    alphas : list of ndarray (H, W), float in [0, 1]
        Per-scale sharpness (α) maps, first = the layer whose belief is returned (the largest scale in the paper).
    edge_alpha : float
        Edge potential exp(−edge_alpha) between neighbours in different states.

    Returns
    -------
    ndarray (H, W), float32 in [0, 1]
        P(sharp).
    """
    x = np.stack([np.asarray(a, np.float32) for a in alphas])
    mean = float(x.mean(dtype=np.float64))
    std = float(x.std(ddof=1, dtype=np.float64)) if x.size > 1 else 0.0
    x -= mean
    if std > 1e-12:
        x /= std
    # exp(−|1 − x|) / exp(−|x|) lies in [e⁻¹, e], so the odds never overflow.
    odds = np.exp(np.abs(x) - np.abs(1.0 - x)).astype(np.float32)
    del x
    d = math.exp(-edge_alpha)
    h = odds.shape[1]
    if h <= _BP_STRIP + 2 * _BP_MARGIN:
        belief = _bp_sweeps(odds, d, _BP_MAX_ITER, _BP_TOL)[0][0]
    else:
        # Message passing over strips with overlapping margins: at this weak coupling a message's influence decays
        # by more than half per pixel, so the margin makes the strip seams invisible while bounding memory.
        belief = np.empty(odds.shape[1:], np.float32)
        for r0 in range(0, h, _BP_STRIP):
            r1 = min(h, r0 + _BP_STRIP)
            a, b = max(0, r0 - _BP_MARGIN), min(h, r1 + _BP_MARGIN)
            part = _bp_sweeps(np.ascontiguousarray(odds[:, a:b]), d, _BP_MAX_ITER, _BP_TOL)[0][0]
            belief[r0:r1] = part[r0 - a : r1 - a]
    return (belief / (1.0 + belief)).astype(np.float32)


# --- the method -------------------------------------------------------------------------------------------------


class LBP(Method):
    """Yi & Eramian 2016 LBP sharpness (blur = 1 − sharpness), optionally with trimap matting and multi-scale BP.

    Parameters
    ----------
    scales : tuple of int
        Odd window sizes in px (paper: 11, 15, 21).
    threshold : float
        T_LBP on the min-max normalised grey image (paper: 0.016).
    segment : bool
        Run the paper's segmentation (trimap → matting → 3-layer loopy BP). Slower; sharper region boundaries.
    normalize : bool
        Min-max normalise each scale's sharpness over the photo (as the authors' code does). Only used without
        ``segment``; with ``False`` the blur map is 1 − the absolute fraction of sharp codes.
    """

    task = "dbd"
    summary = "LBP sharpness (Yi & Eramian 2016), fraction of LBP codes 6-9 at 3 scales; segment=True adds matting + BP"
    paper = "X. Yi, M. Eramian, LBP-based segmentation of defocus blur, IEEE TIP 25(4):1626-1638, 2016"

    def __init__(self, device: str = "cpu", scales=SCALES, threshold: float = T_LBP, segment: bool = False,
                 normalize: bool = True):
        super().__init__(device=device)
        self.scales = tuple(int(s) for s in scales)
        if any(s < 1 or s % 2 == 0 for s in self.scales):
            raise ValueError(f"LBP scales must be odd positive window sizes, got {self.scales}")
        self.threshold = float(threshold)
        self.segment = bool(segment)
        self.normalize = bool(normalize)

    def sharpness_maps(self, image: np.ndarray) -> list[np.ndarray]:
        """Raw per-scale sharpness (fraction of codes 6-9), one float32 H×W map per scale."""
        codes = lbp_codes(gray01(image), self.threshold)
        return [lbp_sharpness(codes, s) for s in self.scales]

    def predict(self, image: np.ndarray) -> np.ndarray:
        maps = self.sharpness_maps(image)
        if self.segment:
            rgb = np.ascontiguousarray(image if image.ndim == 3 else np.repeat(image[..., None], 3, 2))
            alphas = [trimap_alpha(rgb, m) for m in maps]
            del maps
            # The release stacks the layers largest scale first and reports the first layer.
            order = np.argsort(self.scales)[::-1]
            sharp = fuse_scales([alphas[i] for i in order])
        else:
            maps = [_minmax(m) for m in maps] if self.normalize else maps
            sharp = np.mean(maps, axis=0)
        return np.clip(1.0 - sharp, 0.0, 1.0).astype(np.float32)
