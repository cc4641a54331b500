"""What a camera does to the optical image after the lens: exposure, white balance, slight shake, sensor noise,
tone curve, sharpening, 8-bit quantisation and JPEG compression.

All of it is applied to the whole frame *after* defocus blur, so in-focus and out-of-focus regions carry the same
noise and compression artefacts — a network cannot tell them apart by noise level or JPEG blocking.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .render import _LINEAR16_TO_SRGB


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised, anti-aliased line PSF of ``length`` px at ``angle`` radians."""
    half = int(math.ceil(length / 2)) + 1
    n = 2 * half + 1
    k = np.zeros((n * 4, n * 4), np.float32)
    dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    c = n * 2
    p0 = (int(round((c - dx) * 4)), int(round((c - dy) * 4)))
    p1 = (int(round((c + dx) * 4)), int(round((c + dy) * 4)))
    cv2.line(k, p0, p1, 1.0, 4, cv2.LINE_AA, shift=2)
    k = cv2.resize(k, (n, n), interpolation=cv2.INTER_AREA)
    return k / max(float(k.sum()), 1e-12)


def apply_camera(rng: np.random.Generator, linear: np.ndarray, *, effects: bool = True, shake: bool = True,
                 demosaic: float = 0.0) -> np.ndarray:
    """Turn a linear-light rendering into the sRGB photo a camera would save.

    Steps (each drawn at random; ``effects=False`` keeps only sRGB encoding and 8-bit quantisation):

    1. exposure ×2^U(−0.5, 0.5) and white balance (red/blue gains ×U(0.9, 1.1));
    2. slight camera shake with probability 0.15: a line PSF of 1–2 px (too small to count as motion blur);
    3. sensor noise with probability 0.85, Poisson–Gaussian in linear light: variance a·x + b, a ∈ [1e-4, 3e-3]
       (shot noise), b ∈ [1e-6, 1e-4] (read noise), log-uniform, partly correlated across channels;
    3b. with probability ``demosaic`` (default 0): one colour per pixel through a Bayer filter of random phase,
        clipped at white, and demosaiced again (bilinear or OpenCV's edge-aware, at random);
    4. clipping at white (sensor saturation), sRGB encoding, a mild tone curve (gamma 0.9–1.1), saturation ±15 %;
    5. unsharp-mask sharpening with probability 0.25 (amount 0.2–0.6, σ 1 px), as in-camera processing does;
    6. 8-bit quantisation; JPEG with probability 0.7 at quality 55–95.

    Parameters
    ----------
    linear : ndarray (H, W, 3) float32, linear light (≥ 0, may exceed 1)
    shake : bool
        False leaves out step 2 (for data whose blur must stay exactly the rendered one); the other steps are unchanged.
    demosaic : float
        Probability of step 3b (drawn only when > 0, so the default stream of random numbers is unchanged).

    Returns
    -------
    ndarray (H, W, 3) float32 sRGB in [0, 1], multiples of 1/255.
    """
    img = np.asarray(linear, dtype=np.float32)
    h, w = img.shape[:2]
    gamma = 1.0
    if effects:
        gains = np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.9, 1.1)], np.float32)
        img = img * (np.float32(2.0 ** rng.uniform(-0.5, 0.5)) * gains)
        if rng.random() < 0.15 and shake:
            k = _motion_kernel(rng.uniform(1.0, 2.0), rng.uniform(0, math.pi))
            img = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT_101)
        if rng.random() < 0.85:
            a = math.exp(rng.uniform(math.log(1e-4), math.log(3e-3)))
            b = math.exp(rng.uniform(math.log(1e-6), math.log(1e-4)))
            rho = rng.uniform(0.0, 0.7)  # demosaicing and denoising correlate the noise across channels
            col, mono = _normal(rng, (h, w, 3)), _normal(rng, (h, w, 1))
            noise = np.float32(math.sqrt(1 - rho)) * col + np.float32(math.sqrt(rho)) * mono
            std = cv2.sqrt((np.maximum(img, 0) * np.float32(a) + np.float32(b)).reshape(h, -1)).reshape(h, w, 3)
            img = img + std * noise
        if demosaic > 0 and rng.random() < demosaic:
            img = bayer_demosaic(img, int(rng.integers(4)), edge_aware=bool(rng.random() < 0.5))
        gamma = rng.uniform(0.9, 1.1)
    srgb = _encode(img, gamma)
    if effects:
        sat = np.float32(rng.uniform(0.85, 1.15))
        grey = cv2.cvtColor(srgb, cv2.COLOR_RGB2GRAY)[..., None]
        srgb = grey + (srgb - grey) * sat
        if rng.random() < 0.25:
            amount = np.float32(rng.uniform(0.2, 0.6))
            soft = cv2.GaussianBlur(srgb, (0, 0), 1.0)
            srgb = srgb + amount * (srgb - soft)
    u8 = cv2.convertScaleAbs(srgb, alpha=255.0)  # rounds and saturates to 0..255
    if effects and rng.random() < 0.7:
        quality = int(rng.integers(55, 96))
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(u8[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            u8 = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(u8, dtype=np.float32) * np.float32(1 / 255.0)


#: OpenCV's demosaicing codes for the four phases of the Bayer pattern (RGGB, GRBG, GBRG, BGGR at the top-left).
_BAYER_CODES = ((cv2.COLOR_BayerRGGB2RGB, cv2.COLOR_BayerRGGB2RGB_EA), (cv2.COLOR_BayerGRBG2RGB, cv2.COLOR_BayerGRBG2RGB_EA),
                (cv2.COLOR_BayerGBRG2RGB, cv2.COLOR_BayerGBRG2RGB_EA), (cv2.COLOR_BayerBGGR2RGB, cv2.COLOR_BayerBGGR2RGB_EA))
#: Colour (0 R, 1 G, 2 B) at the 2×2 cells (0,0), (0,1), (1,0), (1,1) of each phase.
_BAYER_CELLS = ((0, 1, 1, 2), (1, 0, 2, 1), (1, 2, 0, 1), (2, 1, 1, 0))


def bayer_demosaic(linear: np.ndarray, phase: int = 0, *, edge_aware: bool = False) -> np.ndarray:
    """What a raw pipeline does to an RGB frame: keep one colour per pixel through a Bayer colour filter array (of
    ``phase`` 0–3: RGGB, GRBG, GBRG, BGGR) and interpolate the other two back (bilinear, or OpenCV's edge-aware
    variant). Values are clipped at white first (16-bit working precision). Returns float32 (H, W, 3) in [0, 1]."""
    img = np.clip(np.asarray(linear, np.float32), 0.0, 1.0)
    h, w = img.shape[:2]
    x16 = np.round(img * np.float32(65535.0)).astype(np.uint16)
    mosaic = np.empty((h, w), np.uint16)
    for cell, colour in enumerate(_BAYER_CELLS[phase]):
        dy, dx = divmod(cell, 2)
        mosaic[dy::2, dx::2] = x16[dy::2, dx::2, colour]
    rgb = cv2.cvtColor(mosaic, _BAYER_CODES[phase][int(edge_aware)])
    return rgb.astype(np.float32) * np.float32(1 / 65535.0)


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 noise, seeded from ``rng`` (OpenCV's generator: several times faster than NumPy's)."""
    out = np.empty(shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(2**31 - 1)))
    cv2.randn(out.reshape(shape[0], -1), 0.0, 1.0)
    return out


def _encode(linear: np.ndarray, gamma: float) -> np.ndarray:
    """Linear light → sRGB (clipped) followed by a power-law tone tweak ``srgb ** gamma``, through a 16-bit table."""
    table = _LINEAR16_TO_SRGB if gamma == 1.0 else np.power(_LINEAR16_TO_SRGB, np.float32(gamma))
    idx = np.clip(linear * np.float32(65535.0) + np.float32(0.5), 0.0, 65535.0).astype(np.int32)
    return np.take(table, idx)
