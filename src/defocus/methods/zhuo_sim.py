"""Zhuo & Sim 2011: defocus map from the gradient ratio of re-blurred edges, propagated to every pixel.

Re-blur model. A step edge of height A blurred by a Gaussian of std σ has, under a derivative-of-Gaussian filter of
std s, a gradient magnitude at the edge of A / √(2π(σ² + s²)). The ratio of the magnitudes at two filter scales
s1 < s2 is therefore

    R = |∇₁| / |∇₂| = √((σ² + s2²) / (σ² + s1²)),   so   σ = √((s2² − R²·s1²) / (R² − 1)),

independent of A and of the edge offset B. R lies in (1, s2/s1]: R ≥ s2/s1 means σ = 0 (sharp), R → 1 means σ → ∞
and R ≤ 1 has no solution. Estimates are made at Canny edges and clipped at 5 px.

This module also holds the edge tools shared with :mod:`defocus.methods.karaali_jung_2018`: a Canny detector with
MATLAB-style automatic thresholds, sampled derivative-of-Gaussian gradients, and the sub-pixel measurement of the
gradient peak at an edge.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage

from ..filters import color
from ..filters.domain_transform import propagate
from ..filters.matting import MattingLaplacian
from ..filters.poisson import conjugate_gradients as _pcg
from ..registry import Method

#: Largest σ (px) reported; beyond it the gradient ratio is too close to 1 to be measured reliably.
MAX_SIGMA = 5.0
_TINY = 1e-12


# --- gradients --------------------------------------------------------------------------------------------------


def gaussian_kernels(std: float) -> tuple[np.ndarray, np.ndarray]:
    """Sampled 1-D Gaussian and derivative-of-Gaussian kernels of standard deviation ``std`` px.

    The Gaussian sums to 1; the derivative kernel is scaled so that its response to a unit ramp is exactly 1 (the
    continuous normalisation), which keeps gradient magnitudes comparable across scales. Radius ⌈4·std⌉.

    Returns
    -------
    g, dg : ndarray (2r+1,), float64
        ``dg`` is in correlation form (as cv2 filters apply it): rising edges give positive responses.
    """
    r = max(1, int(math.ceil(4.0 * std)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / std) ** 2)
    g /= g.sum()
    # Correlation form: out(x) = Σ_t dg(t)·f(x + t), so a unit ramp f(x) = x gives Σ_t t·dg(t), made exactly 1.
    dg = x * g
    dg /= float(np.sum(x * dg))
    return g, dg


def dog_gradients(gray: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Image gradient by derivative-of-Gaussian filtering.

    Parameters
    ----------
    gray : ndarray (H, W), float32
    std : float
        Filter standard deviation in px.

    Returns
    -------
    gx, gy : ndarray (H, W), float32
        Derivatives along columns (x) and rows (y); symmetric (reflect) borders.
    """
    g, dg = gaussian_kernels(std)
    src = np.ascontiguousarray(gray, dtype=np.float32)
    gx = cv2.sepFilter2D(src, cv2.CV_32F, dg, g, borderType=cv2.BORDER_REFLECT)
    gy = cv2.sepFilter2D(src, cv2.CV_32F, g, dg, borderType=cv2.BORDER_REFLECT)
    return gx, gy


# --- Canny ------------------------------------------------------------------------------------------------------


def _shifted(padded: np.ndarray, dy: int, dx: int, h: int, w: int) -> np.ndarray:
    return padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _at_offset(mag_p: np.ndarray, pos_y: np.ndarray, pos_x: np.ndarray, use_y: bool, use_x: bool) -> np.ndarray:
    """Per-pixel magnitude one step away: along y (if ``use_y``; +1 where ``pos_y``, else −1) and along x likewise."""
    h, w = pos_y.shape
    out = np.empty((h, w), np.float32)
    for dy in (-1, 1) if use_y else (0,):
        for dx in (-1, 1) if use_x else (0,):
            sel = np.ones((h, w), bool)
            if use_y:
                sel &= pos_y if dy > 0 else ~pos_y
            if use_x:
                sel &= pos_x if dx > 0 else ~pos_x
            np.copyto(out, _shifted(mag_p, dy, dx, h, w), where=sel)
    return out


def _nms_band(mag_p: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Non-maximum suppression with linear interpolation along the gradient (rows of one band).

    ``mag_p`` is the magnitude of the band padded by one pixel on every side; gx, gy are the band's gradients. The
    magnitude on the gradient line one step ahead (and behind) is interpolated between the axis neighbour and the
    diagonal neighbour, weighted by the tangent of the angle to that axis.
    """
    h, w = gx.shape
    ax, ay = np.abs(gx), np.abs(gy)
    horiz = ax >= ay
    wgt = np.where(horiz, ay / np.maximum(ax, _TINY), ax / np.maximum(ay, _TINY)).astype(np.float32)
    mag = _shifted(mag_p, 0, 0, h, w)
    keep = np.ones((h, w), bool)
    ahead_y, ahead_x = gy >= 0, gx >= 0
    for pos_y, pos_x in ((ahead_y, ahead_x), (~ahead_y, ~ahead_x)):  # ahead, then behind
        axis_x = _at_offset(mag_p, pos_y, pos_x, False, True)
        axis_y = _at_offset(mag_p, pos_y, pos_x, True, False)
        diag = _at_offset(mag_p, pos_y, pos_x, True, True)
        keep &= mag >= np.where(horiz, axis_x, axis_y) * (1 - wgt) + wgt * diag
    return keep


def non_maximum_suppression(mag: np.ndarray, gx: np.ndarray, gy: np.ndarray, band: int = 512) -> np.ndarray:
    """Pixels whose gradient magnitude is a local maximum along the gradient direction; bool (H, W).

    Processed in bands of ``band`` rows so that the temporaries stay small on very large images.
    """
    h, w = mag.shape
    padded = np.pad(mag, 1, mode="constant")
    out = np.empty((h, w), bool)
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        out[y0:y1] = _nms_band(padded[y0 : y1 + 2], gx[y0:y1], gy[y0:y1])
    return out


def canny(
    gray: np.ndarray,
    sigma: float,
    low: float | None = None,
    high: float | None = None,
    percent_not_edges: float = 0.7,
    low_ratio: float = 0.4,
) -> np.ndarray:
    """Canny edges of a grey image.

    Gradients by derivative-of-Gaussian at ``sigma``, magnitude normalised by its maximum, non-maximum suppression
    along the gradient, and hysteresis (8-connected). Without explicit thresholds they are chosen like MATLAB's
    ``edge(I, 'canny', [], sigma)``: ``high`` is the upper edge of the first of 64 magnitude-histogram bins below
    which ``percent_not_edges`` of the pixels lie, ``low = low_ratio·high``.

    Parameters
    ----------
    gray : ndarray (H, W), float
    sigma : float
        Smoothing std in px.
    low, high : float, optional
        Hysteresis thresholds on the max-normalised magnitude, in [0, 1].

    Returns
    -------
    ndarray (H, W), bool
        Edge pixels; all False for an image without gradient.
    """
    gx, gy = dog_gradients(gray, sigma)
    mag = np.hypot(gx, gy)
    peak = float(mag.max()) if mag.size else 0.0
    if peak <= 1e-8:
        return np.zeros(mag.shape, bool)
    mag /= peak
    if high is None:
        counts, _ = np.histogram(mag, bins=64, range=(0.0, 1.0))
        high = (int(np.argmax(np.cumsum(counts) > percent_not_edges * mag.size)) + 1) / 64.0
        low = low_ratio * high if low is None else low
    elif low is None:
        low = low_ratio * high
    maxima = non_maximum_suppression(mag, gx, gy)
    weak = maxima & (mag > low)
    labels, n = ndimage.label(weak, structure=np.ones((3, 3), bool))
    if n == 0:
        return weak
    strong_labels = np.zeros(n + 1, bool)
    strong_labels[np.unique(labels[weak & (mag > high)])] = True
    strong_labels[0] = False
    return strong_labels[labels]


# --- the re-blur estimate at edges ------------------------------------------------------------------------------

_STEPS = np.array([[0, 1], [1, 1], [1, 0], [1, -1]], dtype=np.intp)  # (dy, dx) for 0°, 45°, 90°, 135°


def gradient_steps(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Nearest of the 8 neighbour directions to the gradient, as (dy, dx) int steps; shape (N, 2)."""
    angle = np.arctan2(gy, gx)  # (-π, π]
    sector = np.round(angle / (np.pi / 4)).astype(np.intp) % 4  # the opposite direction is the same line
    return _STEPS[sector]


def peak_magnitude(mag: np.ndarray, ys: np.ndarray, xs: np.ndarray, steps: np.ndarray | None) -> np.ndarray:
    """Gradient magnitude at edge pixels, refined to the sub-pixel peak across the edge.

    The magnitude profile across a blurred step edge is a Gaussian, so its logarithm is a parabola; fitting it
    through the pixel and its two neighbours along the gradient gives the peak value wherever the true edge lies
    between pixels (an unrefined sample at 0.5 px off-centre biases σ by ~13 % at σ = 1). Where the fit is not a
    maximum within one step, the pixel's own value is used.

    Parameters
    ----------
    mag : ndarray (H, W), float32
    ys, xs : ndarray (N,), int
    steps : ndarray (N, 2), int or None
        Neighbour direction per pixel (from :func:`gradient_steps`); None skips the refinement.

    Returns
    -------
    ndarray (N,), float64
    """
    h, w = mag.shape
    b = mag[ys, xs].astype(np.float64)
    if steps is None or len(ys) == 0:
        return b
    y0 = np.clip(ys - steps[:, 0], 0, h - 1)
    x0 = np.clip(xs - steps[:, 1], 0, w - 1)
    y2 = np.clip(ys + steps[:, 0], 0, h - 1)
    x2 = np.clip(xs + steps[:, 1], 0, w - 1)
    la = np.log(np.maximum(mag[y0, x0].astype(np.float64), _TINY))
    lb = np.log(np.maximum(b, _TINY))
    lc = np.log(np.maximum(mag[y2, x2].astype(np.float64), _TINY))
    curv = la - 2.0 * lb + lc
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = (la - lc) / (2.0 * curv)
        peak = lb - (la - lc) ** 2 / (8.0 * curv)
    good = (curv < -1e-9) & (np.abs(offset) <= 1.0) & np.isfinite(peak)
    return np.where(good, np.exp(np.where(good, peak, lb)), b)


def sigma_from_ratio(ratio: np.ndarray, std1: float, std2: np.ndarray | float, max_sigma: float = MAX_SIGMA) -> np.ndarray:
    """Blur σ (px) of an edge from its gradient ratio R = |∇ at std1| / |∇ at std2| (std2 > std1).

    Returns
    -------
    ndarray, float64
        σ = √((std2² − R²·std1²) / (R² − 1)) clipped to [0, max_sigma]; 0 where R ≥ std2/std1 (sharper than the
        model can resolve); NaN where R ≤ 1 (no real solution: noise, or blur far beyond ``max_sigma``).
    """
    r2 = np.asarray(ratio, dtype=np.float64) ** 2
    s2 = np.asarray(std2, dtype=np.float64) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = (s2 - r2 * std1 * std1) / (r2 - 1.0)
    sigma = np.sqrt(np.clip(sigma2, 0.0, None))
    sigma = np.where(r2 * std1 * std1 >= s2, 0.0, np.minimum(sigma, max_sigma))
    return np.where((r2 > 1.0) & np.isfinite(r2), sigma, np.nan)


def edge_sigma(
    gray: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    std1: float,
    std2: np.ndarray | float,
    max_sigma: float = MAX_SIGMA,
    subpixel: bool = True,
) -> np.ndarray:
    """Re-blur σ estimate at the edge pixels ``(ys, xs)``; float64 (N,), NaN where R ≤ 1.

    ``std2`` may be one value or one per pixel (Karaali & Jung's adaptive scale); one gradient image is computed
    per distinct value.
    """
    std2_arr = np.broadcast_to(np.asarray(std2, dtype=np.float64), ys.shape)
    gx1, gy1 = dog_gradients(gray, std1)
    steps = gradient_steps(gx1[ys, xs], gy1[ys, xs]) if subpixel else None
    m1 = peak_magnitude(np.hypot(gx1, gy1), ys, xs, steps)
    del gx1, gy1
    m2 = np.empty_like(m1)
    for s2 in np.unique(std2_arr):
        sel = std2_arr == s2
        gx2, gy2 = dog_gradients(gray, float(s2))
        m2[sel] = peak_magnitude(np.hypot(gx2, gy2), ys[sel], xs[sel], None if steps is None else steps[sel])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = m1 / m2
    ratio = np.where(m2 > _TINY, ratio, np.nan)
    return sigma_from_ratio(ratio, std1, std2_arr, max_sigma)


# --- propagation ------------------------------------------------------------------------------------------------


def _solve_level(image, sparse, known, lam, eps, x0, max_iter, tol):
    lap = MattingLaplacian(image, eps)
    d = known.astype(np.float64) * lam
    rhs = d * np.where(known, sparse, 0.0)
    precond = 1.0 / np.maximum(lap.diag + d, 1e-12)
    return _pcg(lambda v: lap.matvec(v) + d * v, rhs, precond, x0, max_iter, tol)


def _downsample(image: np.ndarray, sparse: np.ndarray, known: np.ndarray):
    """Half-resolution problem: area-averaged image, confidence-weighted average of the sparse values."""
    h, w = known.shape
    size = ((w + 1) // 2, (h + 1) // 2)
    img = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    k = known.astype(np.float64)
    num = cv2.resize(np.where(known, sparse, 0.0) * k, size, interpolation=cv2.INTER_AREA)
    den = cv2.resize(k, size, interpolation=cv2.INTER_AREA)
    known_c = den > 0
    return img, np.where(known_c, num / np.maximum(den, 1e-12), 0.0), known_c


def matting_propagate(
    image: np.ndarray,
    sparse: np.ndarray,
    known: np.ndarray,
    lam: float = 1e-3,
    eps: float = 1e-7,
    max_iter: int = 100,
    tol: float = 1e-4,
    coarse_pixels: int = 4_000,
    coarse_iter: int = 500,
) -> tuple[np.ndarray, dict]:
    """Zhuo & Sim's propagation: solve (L + λD)·d = λD·d̂, coarse to fine, by preconditioned conjugate gradients.

    L is the matting Laplacian (applied matrix-free), D the diagonal indicator of pixels with a sparse estimate.
    CG on this system converges slowly in its smooth components, so the problem is first solved on a pyramid level
    of at most ``coarse_pixels`` pixels (``coarse_iter`` iterations), and each finer level starts from the
    upsampled solution of the coarser one and runs at most ``max_iter`` Jacobi-preconditioned CG iterations
    (a cascadic multigrid). The iteration caps bound the time; the result is an approximation of the exact solution
    (docs/methods/zhuo-sim.md gives its measured distance to a sparse direct solve).

    Returns
    -------
    dense : ndarray (H, W), float32
    info : dict
        ``iterations`` and ``relative_residual`` (‖b − Ax‖/‖b‖, b = λD·d̂) at full resolution, and ``levels``.
    """
    levels = [(np.asarray(image, dtype=np.float64), np.asarray(sparse, dtype=np.float64), np.asarray(known, bool))]
    while levels[-1][2].size > coarse_pixels and min(levels[-1][2].shape) >= 16:
        levels.append(_downsample(*levels[-1]))
    x = np.zeros(levels[-1][2].shape)
    for depth in range(len(levels) - 1, -1, -1):
        img, sp, kn = levels[depth]
        if x.shape != kn.shape:
            x = cv2.resize(x, (kn.shape[1], kn.shape[0]), interpolation=cv2.INTER_LINEAR)
        iters = coarse_iter if depth == len(levels) - 1 else max_iter
        x, it, rel = _solve_level(img, sp, kn, lam, eps, x, iters, tol)
    return x.astype(np.float32), {"iterations": it, "relative_residual": rel, "levels": len(levels)}


# --- the method -------------------------------------------------------------------------------------------------


def sparse_defocus(
    gray: np.ndarray,
    canny_sigma: float = 1.0,
    std1: float = 1.0,
    std2: float = 1.5,
    max_sigma: float = MAX_SIGMA,
    subpixel: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Zhuo & Sim's sparse defocus map: σ at Canny edges.

    Returns
    -------
    sparse : ndarray (H, W), float32
        σ in px at edge pixels, NaN where the ratio had no solution, 0 elsewhere.
    edges : ndarray (H, W), bool
    """
    edges = canny(gray, canny_sigma)
    ys, xs = np.nonzero(edges)
    sparse = np.zeros(gray.shape, np.float32)
    if len(ys):
        sparse[ys, xs] = edge_sigma(gray, ys, xs, std1, std2, max_sigma, subpixel)
    return sparse, edges


def solvable_sparse_defocus(gray: np.ndarray, canny_sigma: float = 1.0, std1: float = 1.0, std2: float = 1.5,
                            max_sigma: float = MAX_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sparse_defocus` without the edges whose ratio has no solution: σ (float32 H×W, 0 there and off
    edges) and the mask of the edge pixels that carry a value."""
    sparse, edges = sparse_defocus(gray, canny_sigma, std1, std2, max_sigma)
    bad = np.isnan(sparse)
    sparse[bad] = 0.0
    return sparse, edges & ~bad


class ZhuoSim(Method):
    """Zhuo & Sim 2011 defocus map (Gaussian σ in px, clipped at 5).

    Parameters
    ----------
    propagation : {"dt", "matting"}
        ``"dt"`` (default): domain-transform normalised convolution of the edge estimates (linear time, ~0.1 s at
        640×427). ``"matting"``: the paper's matting-Laplacian propagation, solved approximately by
        coarse-to-fine Jacobi-preconditioned CG on the matrix-free Laplacian (seconds; see docs/methods/zhuo-sim.md).
    std1, std2 : float
        Re-blur (derivative-of-Gaussian) scales in px; the paper's 1 and 1.5.
    canny_sigma : float
        Canny smoothing in px.
    invalid : {"drop", "zero"}
        Edges whose ratio has no solution (R ≤ 1): left out of the propagation (default) or set to σ = 0 as the
        public ports do.
    subpixel : bool
        Refine the gradient peak across each edge (see :func:`peak_magnitude`).
    lam, eps, max_iter : float, float, int
        Matting propagation: data weight λ, matting ε, CG iterations per pyramid level.
    """

    task = "dme"
    summary = "re-blur gradient ratio at Canny edges, propagated edge-aware (Gaussian sigma, px)"
    paper = "Zhuo & Sim, 'Defocus map estimation from a single image', Pattern Recognition 44(9):1852-1858, 2011"

    def __init__(
        self,
        device: str = "cpu",
        propagation: str = "dt",
        std1: float = 1.0,
        std2: float = 1.5,
        canny_sigma: float = 1.0,
        invalid: str = "drop",
        subpixel: bool = True,
        lam: float = 1e-3,
        eps: float = 1e-7,
        max_iter: int = 100,
    ) -> None:
        super().__init__(device=device)
        if propagation not in ("dt", "matting"):
            raise ValueError(f"propagation must be 'dt' or 'matting', not {propagation!r}")
        if invalid not in ("drop", "zero"):
            raise ValueError(f"invalid must be 'drop' or 'zero', not {invalid!r}")
        if not 0 < std1 < std2:
            raise ValueError(f"need 0 < std1 < std2, got {std1}, {std2}")
        self.propagation = propagation
        self.std1, self.std2 = float(std1), float(std2)
        self.canny_sigma = float(canny_sigma)
        self.invalid = invalid
        self.subpixel = bool(subpixel)
        self.lam, self.eps, self.max_iter = float(lam), float(eps), int(max_iter)
        self.last_info: dict = {}

    def sparse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sparse σ map and its mask of usable edge pixels, both (H, W) (float32, bool)."""
        sparse, edges = sparse_defocus(color.gray(image), self.canny_sigma, self.std1, self.std2, MAX_SIGMA, self.subpixel)
        bad = np.isnan(sparse)
        sparse[bad] = 0.0
        return sparse, (edges if self.invalid == "zero" else edges & ~bad)

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        sparse, known = self.sparse(image)
        if self.propagation == "matting" and known.any() and min(image.shape[:2]) >= 3:
            dense, self.last_info = matting_propagate(image, sparse, known, self.lam, self.eps, self.max_iter)
        else:
            dense = propagate(image, sparse, known)
        return np.clip(dense, 0.0, MAX_SIGMA).astype(np.float32)
