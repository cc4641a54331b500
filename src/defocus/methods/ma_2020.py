"""Ma, Lu & Lyu 2020: defocus blur detection from re-blurred DCT coefficient ratios of edge-pixel patches.

Idea (from the paper's abstract): re-blurring a sharp patch removes much of its high-frequency DCT energy, re-blurring
an already blurred one changes little, so the ratio of the DCT coefficients of a local patch after and before a
re-blur measures its blur. The ratio is taken at edge points, with a local re-blur scale chosen by the blur degree and
texture richness, a fusion of DCT sub-bands that widens the in-focus / out-of-focus difference, windows of several
scales and orientations, extra points added to the sparse map, and a matting-Laplacian propagation to a dense map.

What we chose where the abstract is silent (docs/methods/ma-2020.md gives the reasons):

* Points: Canny edges at σ = 1, plus the Canny edges at σ = 2 that the fine detector misses (blurred edges are
  under-detected at the fine scale, which would bias the sparse map towards "sharp"). "More blur points": every
  pixel farther than the largest window side from all edge points (no edge in any of its windows) is added with
  blur degree 1, the convention of the block-based detectors (no detail = blurred).
* Feature: for a window of side M around the point, the orthonormal 2-D DCT of the grey patch and of the same patch
  of the photo re-blurred by a Gaussian of std s_r. The AC coefficients are split into three orientation sub-bands
  (mostly horizontal frequencies, mostly vertical, diagonal) and two radial ones (mid and high frequency; the lowest
  band, which a re-blur barely changes at any blur, is left out). Only the orientation carrying most of the patch's
  energy is used (the one across the edge; other structure in the window falls mostly elsewhere). Per radial band
  the amplitude ratio √(E_reblurred / E_original) is taken, both energies raised by a noise floor, and the two bands
  are averaged with equal weight (the high band, where sharp and blurred patches differ most, counts as much as the
  mid band despite its lower energy).
* The ratio is turned into a Gaussian σ by a table computed once, in code, on rendered step edges (no photo), for
  every (M, s_r) pair, which makes ratios of different windows and re-blur scales comparable.
* Adaptive re-blur scale: s_r = 1 px where the s_r = 1 estimate says the edge is sharp or slightly blurred or where
  the window is rich in texture (many edge pixels: a wider re-blur would mix neighbouring edges), else s_r = 2 px
  (the s_r = 1 ratio saturates near 1 for strongly blurred edges).
* Windows of 8, 12 and 16 px; their σ are fused by the median. σ is turned into a blur degree
  1 / (1 + (σ_½ / σ)^p) (0.5 at σ_½ = 0.65 px, p = 4; both picked on the synthetic validation split),
  propagated, and clipped to [0, 1].
* Propagation: the domain-transform interpolation the other edge methods use (default: it scored slightly better on
  the synthetic validation split, in half the time), or the paper's matting-Laplacian propagation,
  :func:`defocus.methods.zhuo_sim.matting_propagate` (coarse to fine, which is our multi-scale fusion).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ..filters import color
from ..filters.domain_transform import propagate
from ..filters.patch_dct import patch_dct
from ..registry import Method
from .step_edges import curve_to_sigma, step_edge_curve
from .zhuo_sim import MAX_SIGMA, canny, matting_propagate

SIZES = (8, 12, 16)  # window sides in px
REBLUR = (1.0, 2.0)  # re-blur Gaussian stds in px: the fine one and the one for strongly blurred edges
SWITCH_SIGMA = 1.5  # σ (px, from the s_r = 1 estimate) above which the coarser re-blur is used
RICH_DENSITY = 0.15  # edge pixels per window pixel above which a window counts as rich in texture
NOISE_FLOOR = 0.002  # std (grey levels in [0, 1]) of the noise floor added to every DCT coefficient's energy
SIGMA_HALF = 0.65  # σ (px) mapped to blur degree 0.5 (picked on the synthetic val split)
STEEPNESS = 4.0  # exponent p of the blur degree 1 / (1 + (σ_½/σ)^p) (picked on the synthetic val split)
CANNY_SIGMAS = (1.0, 2.0)
MID_BAND, HIGH_BAND = 0.2, 0.45  # radial frequency bounds of the bands, in cycles per 2 px (DCT index / M)


@functools.lru_cache(maxsize=16)
def _sub_bands(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the DCT sub-bands of a size×size patch: (3 orientations, 2 radial bands, size, size) bool, and the
    coefficient count of each (3, 2)."""
    u = np.arange(size)
    vert, horiz = np.meshgrid(u, u, indexing="ij")
    radius = np.hypot(vert, horiz) / size
    radial = [(radius >= MID_BAND) & (radius < HIGH_BAND), radius >= HIGH_BAND]
    orientation = [horiz > 2 * vert, vert > 2 * horiz, (horiz <= 2 * vert) & (vert <= 2 * horiz)]
    masks = np.array([[o & r for r in radial] for o in orientation])
    return masks, masks.sum(axis=(2, 3))


def band_energies(images: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """DCT energy of the size×size patch of each image around each pixel, per sub-band.

    Parameters
    ----------
    images : ndarray (K, H, W), float
        The grey photo and its re-blurred copies.
    ys, xs : ndarray (N,), int
    size : int
        Window side in px.

    Returns
    -------
    ndarray (K, N, 3, 2), float32
        Sum of squared orthonormal DCT coefficients per orientation (horizontal, vertical, diagonal frequencies) and
        radial band (mid, high).
    """
    masks, _ = _sub_bands(size)
    weights = masks.reshape(6, -1).T.astype(np.float32)  # (size², 6)

    def energies(coeffs: np.ndarray) -> np.ndarray:
        k, n = coeffs.shape[:2]
        return (np.square(coeffs, out=coeffs).reshape(k * n, -1) @ weights).reshape(k, n, 3, 2)

    return patch_dct(images, ys, xs, size, reduce=energies)


def fused_ratio(original: np.ndarray, reblurred: np.ndarray, size: int, noise: float = NOISE_FLOOR) -> np.ndarray:
    """Fused DCT amplitude ratio (re-blurred / original) from the sub-band energies of :func:`band_energies`.

    Parameters
    ----------
    original, reblurred : ndarray (N, 3, 2)
        Sub-band energies of the patches of the photo and of its re-blurred copy.
    size : int
        Window side in px (for the coefficient counts of the noise floor).
    noise : float
        Std of the noise floor added to each coefficient's energy (so that a patch without high frequencies reads
        as blurred, ratio ≈ 1, rather than as noise).

    Returns
    -------
    ndarray (N,), float64, ≥ 0
        Small (≈ 0.1–0.4) for sharp edges, ≈ 1 for strongly blurred ones.
    """
    _, counts = _sub_bands(size)
    n = len(original)
    across = np.argmax(original.sum(axis=2), axis=1)  # the orientation with the most mid+high energy
    floor = counts[across] * noise**2  # (N, 2)
    num = reblurred[np.arange(n), across].astype(np.float64) + floor
    den = original[np.arange(n), across].astype(np.float64) + floor
    return np.sqrt(num / den).mean(axis=1)


def _reblur(gray: np.ndarray, std: float) -> np.ndarray:
    return cv2.GaussianBlur(gray, (0, 0), std, borderType=cv2.BORDER_REFLECT_101)


@functools.lru_cache(maxsize=32)
def calibration(size: int, reblur: float, noise: float = NOISE_FLOOR) -> tuple[np.ndarray, np.ndarray]:
    """Fused ratio of rendered step edges (contrast 0.6) against their σ, made non-decreasing (computed once).

    Returns
    -------
    sigmas, ratios : ndarray (K,), float64
    """

    def ratio(image, ys, xs):
        image = image.astype(np.float32)
        energies = band_energies(np.stack([image, _reblur(image, reblur)]), ys, xs, size)
        return fused_ratio(energies[0], energies[1], size, noise)

    sigmas, ratios = step_edge_curve(ratio, size=4 * size + 1)
    return sigmas, np.maximum.accumulate(ratios)


def ratio_to_sigma(ratio: np.ndarray, size: int, reblur: float, noise: float = NOISE_FLOOR) -> np.ndarray:
    """σ in px for fused ratios, by the inverse of :func:`calibration` (clipped to its σ range)."""
    return curve_to_sigma(ratio, *calibration(size, reblur, noise))


def edge_sigma(gray: np.ndarray, ys: np.ndarray, xs: np.ndarray, edges: np.ndarray, sizes=SIZES,
               noise: float = NOISE_FLOOR) -> np.ndarray:
    """σ (px) at each point: adaptive re-blur scale per window, median over the window sizes."""
    gray = np.asarray(gray, np.float32)
    stack = np.stack([gray] + [_reblur(gray, s) for s in REBLUR])
    per_size = []
    for size in sizes:
        original, fine, coarse = band_energies(stack, ys, xs, size)
        s_fine = ratio_to_sigma(fused_ratio(original, fine, size, noise), size, REBLUR[0], noise)
        s_coarse = ratio_to_sigma(fused_ratio(original, coarse, size, noise), size, REBLUR[1], noise)
        density = cv2.blur(edges.astype(np.float32), (size, size), borderType=cv2.BORDER_REFLECT_101)[ys, xs]
        keep_fine = (s_fine <= SWITCH_SIGMA) | (density > RICH_DENSITY)
        per_size.append(np.where(keep_fine, s_fine, s_coarse))
    return np.median(np.stack(per_size), axis=0)


class Ma2020(Method):
    """Ma, Lu & Lyu 2020 blur map from re-blurred DCT ratios of edge patches (float32 in [0, 1], 1 = out of focus).

    Parameters
    ----------
    sizes : sequence of int
        Window sides in px whose σ estimates are fused by the median (our choice: 8, 12, 16).
    sigma_half, steepness : float
        The blur degree of an edge of σ px is 1 / (1 + (σ_½/σ)^p): 0.5 at σ_½ (0.65 px; the synthetic sets call a
        region out of focus from a CoC radius of 1 px, σ ≈ 0.65), steeper for a larger p (4). Both were picked on
        100 scenes of the synthetic validation split.
    noise : float
        Std of the DCT noise floor (grey levels in [0, 1]).
    propagation : {"dt", "matting"}
        ``"dt"`` (default): domain-transform interpolation, as the other edge methods propagate. ``"matting"``: the
        paper's matting-Laplacian propagation (coarse-to-fine CG, approximate), which scored slightly lower on
        100 synthetic validation scenes (MAE / Fβ / IoU 0.356 / 0.679 / 0.607 against 0.352 / 0.684 / 0.611) at
        about twice the time.
    lam, max_iter : float, int
        Matting propagation: data weight λ and CG iterations per pyramid level.
    blur_points : bool
        Add the pixels farther than max(sizes) px from every edge point to the sparse map with blur degree 1
        (default); ``False`` propagates the edge values alone.
    """

    task = "dbd"
    summary = "re-blurred DCT sub-band ratios of edge patches, adaptive re-blur scale, propagated (dt or matting)"
    paper = "Ma, Lu & Lyu, 'Defocus blur detection via edge pixel DCT feature of local patches', Signal Processing 176, 2020"

    def __init__(self, device: str = "cpu", sizes=SIZES, sigma_half: float = SIGMA_HALF, steepness: float = STEEPNESS,
                 noise: float = NOISE_FLOOR, propagation: str = "dt", lam: float = 1e-2, max_iter: int = 10,
                 blur_points: bool = True) -> None:
        super().__init__(device=device)
        self.sizes = tuple(int(s) for s in sizes)
        if not self.sizes or min(self.sizes) < 4:
            raise ValueError(f"sizes must be window sides >= 4 px, got {sizes}")
        if not (float(sigma_half) > 0 and float(steepness) > 0 and float(noise) > 0):
            raise ValueError(f"need sigma_half, steepness and noise > 0, got {sigma_half}, {steepness}, {noise}")
        if propagation not in ("matting", "dt"):
            raise ValueError(f"propagation must be 'matting' or 'dt', not {propagation!r}")
        self.sigma_half = float(sigma_half)
        self.steepness = float(steepness)
        self.noise = float(noise)
        self.propagation = propagation
        self.lam = float(lam)
        self.max_iter = int(max_iter)
        self.blur_points = bool(blur_points)

    def sparse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sparse blur degree (float32 H×W, 0 off the points) and the mask of points (edge and added blur points)."""
        gray = color.gray(image)
        edges = np.zeros(gray.shape, bool)
        for s in CANNY_SIGMAS:
            edges |= canny(gray, s)
        sparse = np.zeros(gray.shape, np.float32)
        ys, xs = np.nonzero(edges)
        if len(ys):
            sigma = np.minimum(edge_sigma(gray, ys, xs, edges, self.sizes, self.noise), MAX_SIGMA)
            sparse[ys, xs] = 1.0 / (1.0 + (self.sigma_half / np.maximum(sigma, 1e-6)) ** self.steepness)
        known = edges
        if self.blur_points and len(ys):
            far = cv2.distanceTransform((~edges).astype(np.uint8), cv2.DIST_L2, 3) > max(self.sizes)
            sparse[far] = 1.0
            known = edges | far
        return sparse, known

    def predict(self, image: np.ndarray) -> np.ndarray:
        sparse, known = self.sparse(image)
        if not known.any():
            return np.ones(image.shape[:2], np.float32)  # no structure anywhere: nothing reads as in focus
        if self.propagation == "matting" and min(image.shape[:2]) >= 3:
            dense, _ = matting_propagate(image, sparse, known, self.lam, max_iter=self.max_iter)
        else:
            dense = propagate(image, sparse, known)
        return np.clip(np.nan_to_num(dense, nan=1.0), 0.0, 1.0).astype(np.float32)
