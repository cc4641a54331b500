"""Liu, Zhou & Liao 2016: defocus map from a two-parameter model of defocused edges.

One-parameter edge models (Zhuo & Sim, Karaali & Jung) give one σ per edge, which is wrong where depth changes
across the edge. Here an edge has a blur on each side: its gradient-magnitude profile across the edge is a *split
Gaussian* — std σ₊ on the side the gradient points to (the brighter side), σ₋ on the other — i.e. the edge is
the cumulative distribution of a two-piece normal. Pipeline (what comes from the paper and what we chose is in
docs/methods/liu-2016.md):

1. Grey image ``Y^2.4`` (:func:`defocus.methods.karaali_jung_2018.linear_gray`), Canny edges at σ = 1.
2. Per edge pixel, the derivative-of-Gaussian (std s = 1.5) magnitude is sampled along the gradient direction; the
   sub-pixel peak is found from a log-parabola and, on each side separately, log(m_peak / m(d)) at d = 1, 2, 3 px
   is fitted by d² / (2σ_eff²) (σ_eff² = σ² + s² for a Gaussian profile; the fit stops where the profile stops
   falling — another edge — or drops below 5 % of its peak). A 2-D calibration, computed once in code on rendered two-piece edges, maps the
   measured pair to (σ₊, σ₋) (the re-blur by s mixes the two sides a little).
3. Optionally (``gamma > 0``; off by default) both sides are smoothed along 8-connected edges (Karaali & Jung's
   :func:`edge_consistency`).
4. Pattern-edge confidence ``c = exp(−½ (|σ₊ − σ₋| / (τ·(1 + σ̄)))²)``: 1 where both sides agree (same depth),
   → 0 at depth edges. Both sides are then moved towards the peak re-blur-ratio σ (Zhuo & Sim's
   :func:`edge_sigma`, scales 1 and 2 px) by c times the difference: on a pattern edge the common σ comes from
   the less noisy peak ratio, at a depth edge the two sides stay as measured.
5. Modified TV-L1 structure-texture decomposition (:func:`defocus.filters.tv.tv_l1`) with a per-pixel TV weight
   raised on pattern edges (removed with the texture) and lowered on depth edges (kept in the structure).
6. Sparse values: σ̄ at the edge pixel with weight c, and σ₊ / σ₋ two pixels out on each side with weight 1 − c;
   propagated by the closed-form matting Laplacian of the structure component (solve (L + λD)x = λD·x̂) on a
   working grid, then guided-upsampled to full resolution.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator
from scipy.special import erf
import scipy.sparse as sp

from ..filters.domain_transform import interpolate
from ..filters.knn_matting import shrink_sparse, upsample_values
from ..filters.poisson import sparse_conjugate_gradients
from ..filters.matting import MattingLaplacian
from ..filters.tv import tv_l1
from ..registry import Method
from .karaali_jung_2018 import edge_consistency, linear_gray
from .zhuo_sim import MAX_SIGMA, canny, dog_gradients, edge_sigma

#: Distances (px) along the gradient at which each side of the profile is sampled.
DISTANCES = (1.0, 2.0, 3.0)
#: A side sample counts while log(m_peak / m(d)) is below this (m(d) above e^-3 ≈ 5 % of the peak).
TAIL_LOG_RATIO = 3.0
#: Std (px) of the derivative-of-Gaussian gradient the profile is measured on.
GRADIENT_STD = 1.5
_GRID = np.arange(0.0, 6.01, 0.25)  # σ values of the calibration grid (px), beyond MAX_SIGMA so 5 is inside


def _bilinear(img: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``img`` at real coordinates (clamped inside the image)."""
    h, w = img.shape
    x = np.clip(x, 0.0, max(w - 1.001, 0.0))
    y = np.clip(y, 0.0, max(h - 1.001, 0.0))
    x0 = np.minimum(np.floor(x).astype(np.intp), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.intp), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    return (img[y0, x0] * (1 - fx) + img[y0, x1] * fx) * (1 - fy) + (img[y1, x0] * (1 - fx) + img[y1, x1] * fx) * fy


def side_widths(
    gray: np.ndarray, ys: np.ndarray, xs: np.ndarray, std: float = GRADIENT_STD, distances=DISTANCES
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw width of the gradient profile on each side of the edge pixels ``(ys, xs)``.

    Returns
    -------
    plus, minus : ndarray (N,), float64
        √(σ_eff² − std²) in px on the side the gradient points to (+) and the other (−), before calibration; NaN
        where the profile does not fall within one step on that side.
    ny, nx : ndarray (N,), float64
        Unit gradient direction at each pixel.
    """
    gx, gy = dog_gradients(gray, std)
    mag = np.hypot(gx, gy)
    g = np.maximum(mag[ys, xs].astype(np.float64), 1e-12)
    nx, ny = gx[ys, xs] / g, gy[ys, xs] / g
    fy, fx = ys.astype(np.float64), xs.astype(np.float64)

    def log_at(t):
        return np.log(np.maximum(_bilinear(mag, fy + t * ny, fx + t * nx), 1e-12))

    lm, l0, lp = log_at(-1.0), log_at(0.0), log_at(1.0)
    curv = np.minimum(lm - 2 * l0 + lp, -1e-12)
    peaked = lm - 2 * l0 + lp < 0
    # The log of a Gaussian profile is a parabola: its vertex is the sub-pixel peak (within half a step).
    delta = np.where(peaked, np.clip(0.5 * (lm - lp) / curv, -0.5, 0.5), 0.0)
    l_peak = np.where(peaked, np.maximum(l0 - 0.125 * (lm - lp) ** 2 / curv, l0), l0)
    widths = []
    for sign in (1.0, -1.0):
        prev = l_peak
        falling = np.ones(len(ys), bool)
        num = np.zeros(len(ys))
        den = np.zeros(len(ys))
        for d in distances:
            ld = log_at(delta + sign * d)
            falling &= ld < prev  # past the first rise the profile belongs to another edge
            prev = ld
            # Below ~5 % of the peak the tail is other structure, noise and tone-curve error more than this edge.
            falling &= l_peak - ld < TAIL_LOG_RATIO
            num += np.where(falling, d * d * (l_peak - ld), 0.0)
            den += np.where(falling, d**4, 0.0)
        b = num / np.maximum(den, 1e-300)
        var = np.where((den > 0) & (b > 0), 0.5 / np.maximum(b, 1e-300) - std * std, np.nan)
        widths.append(np.sqrt(np.clip(var, 0.0, (2 * _GRID[-1]) ** 2)))
    return widths[0], widths[1], ny, nx


def two_piece_edge(sigma_minus: np.ndarray, sigma_plus: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Unit edge (0 → 1) whose derivative is a two-piece normal: std σ₋ for offset < 0, σ₊ for offset ≥ 0.

    All arguments broadcast; σ of 0 gives a step. Pixel area is not integrated (samples at the given offsets).
    """
    s_m = np.maximum(np.asarray(sigma_minus, np.float64), 1e-3)
    s_p = np.maximum(np.asarray(sigma_plus, np.float64), 1e-3)
    d = np.asarray(offset, np.float64)
    w_m, w_p = 2 * s_m / (s_m + s_p), 2 * s_p / (s_m + s_p)  # continuity of the derivative at 0
    left = w_m * 0.5 * (1 + erf(d / (np.sqrt(2) * s_m)))
    right = 0.5 * w_m + w_p * 0.5 * erf(d / (np.sqrt(2) * s_p))
    return np.where(d < 0, left, right)


@functools.lru_cache(maxsize=2)
def calibration(std: float = GRADIENT_STD) -> tuple[LinearNDInterpolator, NearestNDInterpolator]:
    """Map from measured (plus, minus) widths to the true (σ₊, σ₋), built once on rendered two-piece edges.

    Every pair of the grid 0, 0.25, …, 6 px is rendered as a 12-row block of a vertical edge 0, 0.2 and 0.4 px
    right of pixel 23 (blocks stacked into one image, far enough apart along y that the derivative filter does not
    mix them) and measured, exactly as photos are, at the pixel of largest gradient (the one Canny keeps); the median over the offsets gives the forward map,
    which is inverted by linear interpolation over the measured points (nearest point outside their hull).
    """
    pairs = np.array([(p, m) for p in _GRID for m in _GRID])
    n, rows, width = len(pairs), 12, 48
    measured = []
    for offset in (0.0, 0.2, 0.4):  # where the true edge lies from its Canny pixel (x = 23)
        x = np.arange(width, dtype=np.float64) - 23.0 - offset
        profiles = 0.2 + 0.6 * two_piece_edge(pairs[:, 1:2], pairs[:, 0:1], x[None, :])  # dark (−) on the left
        gray = np.repeat(profiles, rows, axis=0).astype(np.float32)
        centre = np.arange(n) * rows + rows // 2
        gx, _ = dog_gradients(gray, std)
        peak = np.argmax(np.abs(gx[centre]), axis=1)  # the pixel non-maximum suppression keeps
        plus, minus, _, _ = side_widths(gray, centre, peak, std)
        measured.append(np.stack([plus, minus], 1))
    measured = np.median(np.stack(measured), axis=0)
    ok = np.all(np.isfinite(measured), axis=1)
    return LinearNDInterpolator(measured[ok], pairs[ok]), NearestNDInterpolator(measured[ok], pairs[ok])


def two_sided_sigma(plus: np.ndarray, minus: np.ndarray, std: float = GRADIENT_STD) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated (σ₊, σ₋) in px, clipped at MAX_SIGMA; a side measured NaN takes the other side's width."""
    p = np.where(np.isfinite(plus), plus, minus)
    m = np.where(np.isfinite(minus), minus, plus)
    out = np.full((len(p), 2), np.nan)
    ok = np.isfinite(p) & np.isfinite(m)
    if ok.any():
        linear, nearest = calibration(std)
        pts = np.stack([p[ok], m[ok]], 1)
        est = linear(pts)
        outside = ~np.all(np.isfinite(est), axis=1)
        if outside.any():
            est[outside] = nearest(pts[outside])
        out[ok] = est
    out = np.clip(out, 0.0, MAX_SIGMA)
    return out[:, 0], out[:, 1]


def _matting_solve(guide, sparse, weights, lam, eps, x0, max_iter):
    """(L + λW)x = λW·x̂ with the assembled matting Laplacian of ``guide``, by CG from ``x0``."""
    h, w = weights.shape
    lap = MattingLaplacian(guide, eps).matrix()
    d = lam * weights.ravel()
    a = lap + sp.diags(d + 1e-9)
    b = d * sparse.ravel() + 1e-9 * x0.ravel()
    x, it, rel = sparse_conjugate_gradients(a, b, x0.ravel(), max_iter, 1e-5)
    return x.reshape(h, w), {"iterations": it, "relative_residual": rel}


class Liu2016(Method):
    """Liu, Zhou & Liao 2016 defocus map (Gaussian σ in px, clipped at 5).

    Parameters
    ----------
    canny_sigma : float
        Canny smoothing in px.
    gradient_std : float
        Std (px) of the derivative-of-Gaussian whose magnitude profile is measured: larger is less noisy, but
        separates small σ less well (σ_eff² = σ² + std²).
    tau : float
        Width of the pattern-edge confidence, relative to 1 + the mean side σ (|σ₊ − σ₋| = τ·(1 + σ̄) gives
        c = e^−½ ≈ 0.61).
    reblur_std2 : float
        Second scale (px; the first is 1) of the peak re-blur ratio towards which both sides of a pattern edge are
        moved, by the confidence c (σ± += c·(σ_ratio − σ̄)); 0 turns it off.
    gamma : float
        Smoothness of the per-side estimates along connected edges (Karaali & Jung's 10).
    texture_scale : float
        TV-L1 texture radius in full-resolution px: with unit weight, structures smaller than this go to the
        texture (λ = 2 / (scale × working-grid factor)).
    tv_weight_range : float
        TV weight at an edge pixel is 1 + r·(2c − 1): up to 1 + r on pattern edges, down to 1 − r on depth edges.
    tv_iterations : int
        Primal-dual iterations of the TV-L1 decomposition.
    lam, eps : float
        Matting propagation data weight λ and matting ε.
    max_iter : int
        Conjugate-gradient iterations of the matting solve (started from a domain-transform interpolation).
    max_pixels : int
        Working grid of the decomposition and propagation; larger photos are solved at reduced size and
        guided-upsampled.
    """

    task = "dme"
    summary = "two-sided edge blur, pattern-edge confidence, weighted TV-L1 structure, matting propagation (sigma, px)"
    paper = (
        "Liu, Zhou & Liao, 'Defocus Map Estimation From a Single Image Based on Two-Parameter Defocus Model', "
        "IEEE TIP 25(12):5943-5956, 2016"
    )

    def __init__(
        self,
        device: str = "cpu",
        canny_sigma: float = 1.0,
        gradient_std: float = GRADIENT_STD,
        tau: float = 0.15,
        reblur_std2: float = 2.0,
        gamma: float = 0.0,
        texture_scale: float = 4.0,
        tv_weight_range: float = 0.75,
        tv_iterations: int = 100,
        lam: float = 0.1,
        eps: float = 1e-4,
        max_iter: int = 300,
        max_pixels: int = 30_000,
    ) -> None:
        super().__init__(device=device)
        if tau <= 0 or texture_scale <= 0 or not 0 <= tv_weight_range < 1 or lam <= 0 or max_pixels < 16:
            raise ValueError("need tau > 0, texture_scale > 0, 0 <= tv_weight_range < 1, lam > 0, max_pixels >= 16")
        if reblur_std2 != 0 and reblur_std2 <= 1:
            raise ValueError(f"reblur_std2 must be 0 (off) or > 1 px (the first scale), got {reblur_std2}")
        self.canny_sigma = float(canny_sigma)
        self.gradient_std = float(gradient_std)
        self.tau = float(tau)
        self.reblur_std2 = float(reblur_std2)
        self.gamma = float(gamma)
        self.texture_scale = float(texture_scale)
        self.tv_weight_range = float(tv_weight_range)
        self.tv_iterations = int(tv_iterations)
        self.lam, self.eps = float(lam), float(eps)
        self.max_iter = int(max_iter)
        self.max_pixels = int(max_pixels)
        self.last_info: dict = {}

    def edges(self, image: np.ndarray) -> dict:
        """Per-edge-pixel estimates: ``ys, xs`` (int), ``plus, minus`` (σ₊, σ₋ in px), ``confidence`` in [0, 1],
        ``ny, nx`` (unit gradient direction, towards the + side). σ is NaN where neither side could be measured."""
        gray = linear_gray(image)
        edges = canny(gray, self.canny_sigma)
        ys, xs = np.nonzero(edges)
        plus_raw, minus_raw, ny, nx = side_widths(gray, ys, xs, self.gradient_std)
        plus, minus = two_sided_sigma(plus_raw, minus_raw, self.gradient_std)
        if len(ys) and self.gamma > 0:
            for side in (plus, minus):
                wts = np.isfinite(side).astype(np.float64)
                side[:] = edge_consistency(edges, side, wts, self.gamma)
        mean = 0.5 * (plus + minus)
        conf = np.nan_to_num(np.exp(-0.5 * (np.abs(plus - minus) / (self.tau * (1.0 + mean))) ** 2))
        if len(ys) and self.reblur_std2 > 0:
            # On a pattern edge both sides share one σ, and the peak re-blur ratio (Zhuo & Sim) measures it with
            # less noise than the profile tails; move both sides towards it in proportion to the confidence.
            ratio = edge_sigma(gray, ys, xs, 1.0, self.reblur_std2)
            shift = np.where(np.isfinite(ratio), conf * (np.nan_to_num(ratio) - mean), 0.0)
            plus = np.clip(plus + shift, 0.0, MAX_SIGMA)
            minus = np.clip(minus + shift, 0.0, MAX_SIGMA)
        return {"ys": ys, "xs": xs, "plus": plus, "minus": minus, "confidence": conf, "ny": ny, "nx": nx}

    def sparse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sparse σ (float32 H×W) and its weight in [0, 1] (0 = unknown): σ̄ on edges, σ± beside depth edges."""
        h, w = image.shape[:2]
        e = self.edges(image)
        sparse = np.zeros((h, w), np.float32)
        weight = np.zeros((h, w), np.float32)
        ok = np.isfinite(e["plus"]) & np.isfinite(e["minus"])
        ys, xs, c = e["ys"][ok], e["xs"][ok], e["confidence"][ok]
        on_edge = np.zeros((h, w), bool)
        on_edge[e["ys"], e["xs"]] = True
        # The sides first, so that an edge pixel's own value wins where a side sample lands on another edge.
        for key, sign in (("plus", 2.0), ("minus", -2.0)):
            sy = np.clip(np.rint(ys + sign * e["ny"][ok]).astype(np.intp), 0, h - 1)
            sx = np.clip(np.rint(xs + sign * e["nx"][ok]).astype(np.intp), 0, w - 1)
            free = ~on_edge[sy, sx] & (1.0 - c > weight[sy, sx])
            sparse[sy[free], sx[free]] = e[key][ok][free]
            weight[sy[free], sx[free]] = 1.0 - c[free]
        sparse[ys, xs] = 0.5 * (e["plus"][ok] + e["minus"][ok])
        weight[ys, xs] = c
        self._confidence = (ys, xs, c)
        return sparse, weight

    def tv_weight(self, shape: tuple[int, int]) -> np.ndarray:
        """Per-pixel TV weight of the last :meth:`sparse` call's edges (3×3 neighbourhood of each edge pixel)."""
        ys, xs, c = self._confidence
        up = np.zeros(shape, np.float32)
        down = np.zeros(shape, np.float32)
        up[ys, xs] = np.clip(2 * c - 1, 0, 1)
        down[ys, xs] = np.clip(1 - 2 * c, 0, 1)
        kernel = np.ones((3, 3), np.uint8)
        up, down = cv2.dilate(up, kernel), cv2.dilate(down, kernel)
        return 1.0 + self.tv_weight_range * (up - down)

    def predict(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        h, w = image.shape[:2]
        sparse, weight = self.sparse(image)
        if weight.max() <= 0 or min(h, w) < 3:
            return np.zeros((h, w), np.float32)
        tv_w = self.tv_weight((h, w))
        small, sparse_s, weight_s, factor = shrink_sparse(image, sparse, weight, self.max_pixels, min_side=3)
        sh, sw = weight_s.shape
        if factor < 1.0:
            tv_w = cv2.resize(tv_w, (sw, sh), interpolation=cv2.INTER_AREA)
        lam_tv = 2.0 / (self.texture_scale * factor)
        structure = np.clip(tv_l1(small, lam_tv, tv_w, self.tv_iterations), 0.0, 1.0)
        x0 = interpolate(sparse_s, weight_s, structure, max(min(sh, sw) / 8.0, 1.0), 3.75)
        dense, self.last_info = _matting_solve(structure.astype(np.float64), sparse_s.astype(np.float64),
                                               weight_s.astype(np.float64), self.lam, self.eps,
                                               x0.astype(np.float64), self.max_iter)
        dense = np.clip(dense, 0.0, MAX_SIGMA).astype(np.float32)
        if (sh, sw) != (h, w):
            dense = upsample_values(dense, image, 0.0, MAX_SIGMA)
        return dense.astype(np.float32)
