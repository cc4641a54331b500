"""Scene layouts: which parts of a real photo are in focus, which are not, and how far from the focal plane.

Every builder returns a :class:`Scene` — a list of :class:`~defocus.synth.render.Layer` objects (linear-light colour,
alpha, signed CoC radius) back to front, plus the thin-lens camera that produced the radii. Kinds:

``object_sharp``
    (a) A photo with an exact object mask (ECSSD, DUTS-TR subset, alpha mattes): the object is in focus, the rest
    (extended behind the object by filling) lies behind the focal plane — flat or tilted.
``object_blurred``
    (a, reversed) The object in front of the focal plane, blurred, over a background in focus. Used only where the
    background is measurably as sharp as the object (:func:`is_background_sharp`), otherwise the object is pasted
    over an all-in-focus photo.
``layout``
    (b) A real CUHK focus layout (255 = blurred), warped, over an all-in-focus photo: the blurred part is a surface
    behind (mostly) or in front of the in-focus one.
``depth``
    (c) Smooth depth fields — a ground receding to the horizon or a tilted plane textured with an all-in-focus
    photo, often with an object standing on it — so blur changes gradually and crosses the focal plane.
``all_sharp`` / ``all_blurred``
    (d) Whole frames in focus, or whole frames out of focus (flat or tilted).

Flat in-focus patches (smooth gradients with sharp outlines: "sky", "wall", "skin") are added to many scenes, so a
network cannot take "smooth" for "blurred"; the all-in-focus photos also keep their own flat regions sharp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .render import Layer, ThinLens, srgb_to_linear, u8_to_linear
from .sources import MaskedPhoto, Sources, load_gray, load_rgb

KINDS = ("object_sharp", "object_blurred", "layout", "depth", "all_sharp", "all_blurred")

#: Default mixture of scene kinds (probabilities).
KIND_WEIGHTS = {
    "object_sharp": 0.30,
    "object_blurred": 0.10,
    "layout": 0.22,
    "depth": 0.24,
    "all_sharp": 0.08,
    "all_blurred": 0.06,
}

#: Sensor widths (mm) a camera is drawn from: full frame, APS-C, Micro Four Thirds, 1-inch.
SENSOR_WIDTHS_MM = (36.0, 23.5, 17.3, 13.2)
#: Usable f-numbers.
F_NUMBER_RANGE = (1.2, 16.0)


@dataclass
class Scene:
    """Layers back to front, the camera, and the scene kind."""

    layers: list[Layer]
    lens: ThinLens
    kind: str


# ----------------------------------------------------------------------------------------------------------------------
# Small image helpers


def _u8_to_linear(img: np.ndarray) -> np.ndarray:
    return u8_to_linear(img)


def fill(color: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown pixels of an image smoothly from the known ones (push–pull pyramid interpolation).

    Used to extend a background behind the object that hid it: a blurred foreground edge lets the hidden background
    show through, and blurring a background that still contained the object would smear the object's colours
    into a halo around it.

    Parameters
    ----------
    color : ndarray (H, W, C) float32
    known : ndarray (H, W) bool or float weights in [0, 1]

    Returns
    -------
    ndarray (H, W, C) float32; equal to ``color`` where ``known`` is 1.
    """
    w0 = np.asarray(known, dtype=np.float32)
    if w0.min() >= 1.0:
        return color.astype(np.float32)
    if w0.max() <= 0.0:
        return np.broadcast_to(color.reshape(-1, color.shape[-1]).mean(0), color.shape).astype(np.float32)
    levels = [(color * w0[..., None], w0)]
    while min(levels[-1][1].shape) > 2:
        cw, w = levels[-1]
        size = (max(1, w.shape[1] // 2), max(1, w.shape[0] // 2))
        cw2 = cv2.resize(cw, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        levels.append((cw2, cv2.resize(w, size, interpolation=cv2.INTER_AREA)))
    cw, w = levels[-1]
    value = cw.reshape(-1, cw.shape[-1]).sum(0) / max(float(w.sum()), 1e-6)
    value = np.broadcast_to(value, cw.shape).astype(np.float32)
    for cw, w in reversed(levels):
        up = cv2.resize(value, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR).reshape(cw.shape)
        rest = np.clip(1.0 - w, 0.0, 1.0)[..., None]
        value = (cw + up * rest) / (w[..., None] + rest + 1e-12)
    return np.where(w0[..., None] >= 1.0, color, value).astype(np.float32)


def _crop_resize(img: np.ndarray, size: int, top: int, left: int, side: int, interp_up=cv2.INTER_LANCZOS4):
    crop = img[top : top + side, left : left + side]
    interp = cv2.INTER_AREA if side >= size else interp_up
    out = cv2.resize(crop, (size, size), interpolation=interp)
    return out


def random_crop(rng: np.random.Generator, img: np.ndarray, size: int, min_frac: float = 0.35) -> np.ndarray:
    """A random square crop of ``img`` (side between ``min_frac`` of the short side — but ≥ ``size`` where possible —
    and the full short side, log-uniform), resized to ``size``; random horizontal flip. Same dtype as ``img``."""
    h, w = img.shape[:2]
    short = min(h, w)
    lo = min(short, max(size, int(min_frac * short)))
    side = int(round(math.exp(rng.uniform(math.log(lo), math.log(short))))) if short > lo else short
    top = int(rng.integers(0, h - side + 1))
    left = int(rng.integers(0, w - side + 1))
    out = _crop_resize(img, size, top, left, side)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def _object_crop(rng: np.random.Generator, img: np.ndarray, alpha: np.ndarray, size: int):
    """A square crop (≥ 70 % of the short side) of a masked photo that keeps most of its object; flipped at random.
    Returns (image uint8, alpha float32), both resized to ``size``."""
    h, w = alpha.shape
    short = min(h, w)
    side = int(round(short * rng.uniform(0.7, 1.0)))
    ys, xs = np.nonzero(alpha > 0.5)
    if len(ys):
        cy, cx = ys.mean(), xs.mean()
    else:
        cy, cx = h / 2, w / 2
    # Centre the crop near the object's centroid, with some jitter.
    top = int(np.clip(cy - side / 2 + rng.normal(0, 0.1 * side), 0, h - side))
    left = int(np.clip(cx - side / 2 + rng.normal(0, 0.1 * side), 0, w - side))
    im = _crop_resize(img, size, top, left, side)
    al = cv2.resize(alpha[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        im, al = im[:, ::-1], al[:, ::-1]
    return np.ascontiguousarray(im), np.ascontiguousarray(np.clip(al, 0, 1))


def _load_masked(photo: MaskedPhoto) -> tuple[np.ndarray, np.ndarray]:
    img = load_rgb(photo.image)
    m = load_gray(photo.mask).astype(np.float32) / 255.0
    if m.shape != img.shape[:2]:
        m = cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    if not photo.soft:
        m = (m >= 0.5).astype(np.float32)
    return img, m


def _ramp(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear ramp over the frame in a random direction, from −0.5 to 0.5 (float32 H×W)."""
    theta = rng.uniform(0, 2 * math.pi)
    c, s = math.cos(theta), math.sin(theta)
    u = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    r = np.float32(c) * u[None, :] + np.float32(s) * u[:, None]
    return r / np.float32(max(abs(c) + abs(s), 1e-6))


# ----------------------------------------------------------------------------------------------------------------------
# Sharpness of the source photos


def reblur_ratio(gray: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """How much the strongest edges of a region lose when re-blurred with a Gaussian of σ = 1 px.

    Returns (ratio, strength): ratio = Σ|∇(I∗G₁)| / Σ|∇I| over the region's top-10 % gradient pixels (≈ 0.4–0.6 on
    crisp edges, → 1 on edges that are already blurred), and strength = the 90th percentile of |∇I| (how much edge
    evidence there is). NaN ratio if the region has fewer than 200 pixels.
    """
    region = region.astype(bool)
    if region.sum() < 200:
        return float("nan"), 0.0
    g = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    b = cv2.GaussianBlur(gray, (0, 0), 1.0)
    gb = np.hypot(cv2.Sobel(b, cv2.CV_32F, 1, 0), cv2.Sobel(b, cv2.CV_32F, 0, 1))
    vals = g[region]
    t = float(np.quantile(vals, 0.9))
    sel = region & (g >= t)
    return float(gb[sel].sum() / max(float(g[sel].sum()), 1e-6)), t


@lru_cache(maxsize=4096)
def photo_sharpness(photo: MaskedPhoto) -> tuple[float, float, float]:
    """(object ratio, background ratio, background strength) of a masked photo, by :func:`reblur_ratio` on regions
    eroded by 3 px away from the object boundary. Cached."""
    img, m = _load_masked(photo)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    k = np.ones((7, 7), np.uint8)
    obj = cv2.erode((m > 0.5).astype(np.uint8), k) > 0
    bg = cv2.erode((m <= 0.05).astype(np.uint8), k) > 0
    ro, _ = reblur_ratio(gray, obj)
    rb, tb = reblur_ratio(gray, bg)
    return ro, rb, tb


def soft_fraction(img: np.ndarray, tile: int = 64, short_side: int = 480) -> float:
    """Fraction of the textured tiles of a photo whose edges are already soft (re-blur ratio > 0.8, i.e. blur of
    about σ ≥ 1.5 px), measured at the scale the photo is used at (short side ``short_side`` px).

    "All-in-focus" photo collections still contain shallow depth-of-field shots (a parrot before a blurred wall,
    tilt-shift clouds); such photos must not be used where the ground truth says "in focus".
    """
    h, w = img.shape[:2]
    scale = short_side / min(h, w)
    if scale < 1:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    g = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    b = cv2.GaussianBlur(gray, (0, 0), 1.0)
    gb = np.hypot(cv2.Sobel(b, cv2.CV_32F, 1, 0), cv2.Sobel(b, cv2.CV_32F, 0, 1))
    th, tw = gray.shape[0] // tile, gray.shape[1] // tile
    if th == 0 or tw == 0:
        return 0.0

    def tiles(a):
        return a[: th * tile, : tw * tile].reshape(th, tile, tw, tile).swapaxes(1, 2).reshape(th * tw, tile * tile)

    gt, gbt = tiles(g), tiles(gb)
    k = int(0.9 * tile * tile)
    p90 = np.partition(gt, k, axis=1)[:, k : k + 1]
    sel = gt >= p90
    ratio = (gbt * sel).sum(1) / np.maximum((gt * sel).sum(1), 1e-6)
    textured = p90[:, 0] > 0.15
    if not textured.any():
        return 0.0
    return float((ratio[textured] > 0.8).mean())


#: All-in-focus photos with more than this fraction of soft textured tiles are used only where they get blurred.
SOFT_FRACTION_MAX = 0.35


@lru_cache(maxsize=1024)
def is_photo_sharp(path) -> bool:
    """Whether an all-in-focus photo really is in focus throughout (:func:`soft_fraction` ≤ SOFT_FRACTION_MAX)."""
    return soft_fraction(load_rgb(path)) <= SOFT_FRACTION_MAX


#: A masked photo's object counts as in focus if its re-blur ratio is at most this (≈ edges no softer than a
#: Gaussian of σ ≈ 1.3 px); its background counts as in focus if its ratio is at most BACKGROUND_SHARP_MAX, no
#: larger than the object's + 0.02, and its edges are strong enough to judge (90th percentile |∇| ≥ 0.2).
OBJECT_SHARP_MAX = 0.75
BACKGROUND_SHARP_MAX = 0.62


def is_object_sharp(photo: MaskedPhoto) -> bool:
    ro, _, _ = photo_sharpness(photo)
    return bool(np.isfinite(ro) and ro <= OBJECT_SHARP_MAX)


def is_background_sharp(photo: MaskedPhoto) -> bool:
    """Whether the background of a masked photo is verifiably as sharp as its object (see the constants above)."""
    ro, rb, tb = photo_sharpness(photo)
    return bool(np.isfinite(rb) and rb <= BACKGROUND_SHARP_MAX and rb <= (ro if np.isfinite(ro) else 1) + 0.02
                and tb >= 0.2)


# ----------------------------------------------------------------------------------------------------------------------
# Camera and blur amounts


def sample_blur_radius(rng: np.random.Generator, size: int, lo: float = 1.5, hi: float = 14.0) -> float:
    """A CoC radius (px) for a clearly out-of-focus region, log-uniform in [lo, hi] scaled by size/320 (but never
    below ``lo`` px: the in-focus threshold is absolute)."""
    s = size / 320.0
    lo_px = max(lo, lo * s)
    hi_px = max(hi * s, 1.5 * lo_px)
    return float(math.exp(rng.uniform(math.log(lo_px), math.log(hi_px))))


def sample_lens(rng: np.random.Generator, width_px: int, focus_m: float) -> ThinLens:
    """A plausible camera focused at ``focus_m`` (f-number still to be chosen): sensor width from
    :data:`SENSOR_WIDTHS_MM`, focal length 24–200 mm full-frame equivalent (log-uniform), pixel pitch = sensor
    width / image width (the render shows the whole frame)."""
    sensor = float(rng.choice(SENSOR_WIDTHS_MM))
    equiv = math.exp(rng.uniform(math.log(24.0), math.log(200.0)))
    focal = equiv * sensor / 36.0
    focus = max(focus_m, 10 * focal / 1000.0)  # no closer than ~10 focal lengths (not macro)
    return ThinLens(focal, 4.0, focus, sensor / width_px)


def lens_for_blur(rng: np.random.Generator, width_px: int, u_ref: float, radius_px: float, tries: int = 16) -> ThinLens:
    """A plausible camera that blurs points at relative inverse depth ``u_ref`` (= s_f / s: 1 at the focal plane, 0
    at infinity, > 1 in front) by ``radius_px``.

    A focus distance (0.5–12 m, log-uniform) and a camera (:func:`sample_lens`) are drawn and the f-number is solved
    for; if it falls outside :data:`F_NUMBER_RANGE`, the photographer focuses closer (too little blur possible) or
    farther (too much) and a new camera is drawn. After ``tries`` the last camera is kept with its f-number clipped,
    so it may blur less or more than asked — the ground truth always follows the camera actually used.
    """
    need = radius_px / max(abs(1.0 - u_ref), 1e-6)  # the CoC radius at infinity that gives radius_px at u_ref
    focus = _focus_distance(rng)
    lens = None
    for _ in range(tries):
        base = sample_lens(rng, width_px, focus)
        f = base.focal_mm
        n = f * f / ((base.focus_m * 1000.0 - f) * 2.0 * base.pixel_pitch_mm * need)
        lens = ThinLens(f, float(np.clip(n, *F_NUMBER_RANGE)), base.focus_m, base.pixel_pitch_mm)
        if F_NUMBER_RANGE[0] <= n <= F_NUMBER_RANGE[1]:
            return lens
        focus = float(np.clip(focus * (0.7 if n < F_NUMBER_RANGE[0] else 1.4), 0.25, 50.0))
    return lens


def radius_field(lens: ThinLens, u: np.ndarray | float) -> np.ndarray:
    """Signed CoC radius (px) at relative inverse depth ``u`` = s_f / s: R∞ · (1 − u) (thin lens). float32."""
    return (np.float32(lens.radius_at_infinity_px) * (np.float32(1.0) - np.asarray(u, dtype=np.float32))).astype(
        np.float32)


def _focus_distance(rng: np.random.Generator) -> float:
    return float(math.exp(rng.uniform(math.log(0.5), math.log(12.0))))


# ----------------------------------------------------------------------------------------------------------------------
# Appearance helpers: highlights, point lights, flat in-focus patches


def unclip_highlights(lin: np.ndarray, gain: float, knee: float = 0.75, *, white_only: bool = False) -> np.ndarray:
    """Undo the clipping of bright highlights: a photo stores them at 1.0 while the scene was often many times
    brighter, which is what makes out-of-focus highlights spread into bright disks. Linear-light pixels whose
    brightest channel (``white_only``: darkest channel) exceeds ``knee`` (0.75 ≈ 0.89 sRGB) are scaled up smoothly,
    by ``gain`` at white. ``white_only`` leaves saturated colours alone (a clear sky that clipped only in blue), whose
    hue scaling all channels would shift once the result clips again."""
    pick = np.minimum if white_only else np.maximum
    peak = pick(pick(lin[..., 0], lin[..., 1]), lin[..., 2])
    ys, xs = np.nonzero(peak > knee)  # usually a small fraction of the frame
    if ys.size == 0 or gain == 1.0:
        return lin
    out = lin.copy()
    t = np.clip((peak[ys, xs] - knee) / (1.0 - knee), 0.0, 1.0)
    out[ys, xs] *= (1.0 + (gain - 1.0) * t * t).astype(np.float32)[:, None]
    return out


def boost_highlights(rng: np.random.Generator, lin: np.ndarray) -> np.ndarray:
    """:func:`unclip_highlights` by a random gain (1.5–6)."""
    gain = math.exp(rng.uniform(math.log(1.5), math.log(6.0)))
    return unclip_highlights(lin, gain)


def add_point_lights(rng: np.random.Generator, lin: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """Scatter a few small bright lights (lamps, glints on leaves or water) where ``region`` is true; out of focus
    they become the disks ("bokeh") typical of defocused photos."""
    h, w = lin.shape[:2]
    out = lin.copy()
    n = int(rng.integers(3, 30))
    ys = rng.integers(0, h, n)
    xs = rng.integers(0, w, n)
    warm = rng.random() < 0.5
    for y, x in zip(ys, xs):
        if region is not None and not region[y, x]:
            continue
        tint = np.array([1.0, 0.8, 0.55], np.float32) if warm else np.ones(3, np.float32)
        colour = tint * rng.uniform(0.85, 1.0, 3).astype(np.float32) * np.float32(
            math.exp(rng.uniform(math.log(1.5), math.log(12.0))))
        cv2.circle(out, (int(x) * 4, int(y) * 4), int(rng.uniform(0.5, 1.2) * 4), colour.tolist(), -1, cv2.LINE_AA,
                   shift=2)
    return out


def _random_shape(rng: np.random.Generator, sources: Sources, size: int) -> np.ndarray:
    """A random outline (float32 alpha, sharp anti-aliased edge): an object mask or CUHK region, or a polygon/
    ellipse, placed at random and covering roughly 5–35 % of the frame."""
    choice = rng.random()
    if choice < 0.45 and sources.masked:
        photo = sources.masked[int(rng.integers(len(sources.masked)))]
        m = (load_gray(photo.mask) >= 128).astype(np.float32)
    elif choice < 0.6 and sources.layouts:
        m = (load_gray(sources.layouts[int(rng.integers(len(sources.layouts)))]) >= 128).astype(np.float32)
        if rng.random() < 0.5:
            m = 1.0 - m
    else:
        m = np.zeros((size * 2, size * 2), np.float32)
        c = (size, size)
        if rng.random() < 0.5:
            axes = (int(rng.uniform(0.2, 0.6) * size), int(rng.uniform(0.2, 0.6) * size))
            cv2.ellipse(m, c, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)
        else:
            k = int(rng.integers(3, 8))
            ang = np.sort(rng.uniform(0, 2 * math.pi, k))
            rad = rng.uniform(0.2, 0.7, k) * size
            pts = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1).astype(np.int32)
            cv2.fillPoly(m, [pts], 1.0, cv2.LINE_AA)
    # Random placement: scale the shape's bounding box to a random size and position.
    ys, xs = np.nonzero(m > 0.5)
    if len(ys) == 0:
        return np.zeros((size, size), np.float32)
    m = m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = rng.uniform(0.25, 0.7) * size / max(m.shape)
    hh, ww = max(2, int(m.shape[0] * scale)), max(2, int(m.shape[1] * scale))
    m = cv2.resize(m, (ww, hh), interpolation=cv2.INTER_AREA)
    out = np.zeros((size, size), np.float32)
    top = int(rng.integers(-hh // 4, size - 3 * hh // 4))
    left = int(rng.integers(-ww // 4, size - 3 * ww // 4))
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + hh, size), min(left + ww, size)
    out[y0:y1, x0:x1] = m[y0 - top : y1 - top, x0 - left : x1 - left]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def flat_patch_colour(rng: np.random.Generator, size: int) -> np.ndarray:
    """Linear-light colour of a homogeneous surface: a smooth two-colour gradient (sky blues, wall greys, skin tones
    or any colour), optional soft shading and a faint fine texture, so it is flat but in focus."""
    family = rng.random()
    if family < 0.3:  # sky
        c0 = np.array([rng.uniform(0.35, 0.6), rng.uniform(0.55, 0.8), rng.uniform(0.8, 1.0)])
        c1 = c0 * rng.uniform(0.7, 1.1) + rng.uniform(0.0, 0.15)
    elif family < 0.55:  # skin
        base = np.array([0.87, 0.65, 0.52]) * rng.uniform(0.45, 1.05)
        c0, c1 = base, base * rng.uniform(0.8, 1.05, 3)
    elif family < 0.8:  # wall / paper / concrete
        g = rng.uniform(0.25, 0.95)
        c0 = np.clip(g + rng.normal(0, 0.04, 3), 0, 1)
        c1 = c0 * rng.uniform(0.85, 1.1)
    else:
        c0, c1 = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    c0, c1 = np.clip(c0, 0, 1).astype(np.float32), np.clip(c1, 0, 1).astype(np.float32)
    t = _ramp(rng, size)[..., None] + np.float32(0.5)
    srgb = c0 + t * (c1 - c0)
    if rng.random() < 0.5:  # low-frequency shading
        lowres = rng.normal(0, 1, (4, 4)).astype(np.float32)
        shade = cv2.resize(lowres, (size, size), interpolation=cv2.INTER_CUBIC)
        srgb = srgb * (1 + np.float32(0.04) * shade[..., None])
    # Faint sharp texture (paper grain, plaster, skin pores): present in real in-focus flat surfaces.
    amp = np.float32(rng.uniform(0.0, 0.02))
    srgb = srgb + amp * rng.standard_normal((size, size, 1), dtype=np.float32)
    return srgb_to_linear(srgb)


def _flat_patch_layer(rng: np.random.Generator, sources: Sources, size: int, radius: float = 0.0) -> Layer:
    alpha = _random_shape(rng, sources, size)
    return Layer(flat_patch_colour(rng, size), alpha, np.full((size, size), radius, np.float32), "flat")


# ----------------------------------------------------------------------------------------------------------------------
# Scene builders


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _sharp_photo(rng: np.random.Generator, sources: Sources, size: int, in_focus: bool = True,
                 candidates: int = 1) -> np.ndarray:
    """A random crop of an all-in-focus photo (or, if the split has none, of a masked photo) as linear float32.

    With ``in_focus`` (the crop will be labelled in focus somewhere) photos that fail :func:`is_photo_sharp` are
    skipped. With ``candidates`` > 1, that many crops are drawn and the most textured one is kept (for surfaces
    whose blur varies smoothly: in a flat sky the in-focus band of a tilted plane would be invisible).
    """
    best, best_score = None, -1.0
    for _ in range(candidates):
        if sources.sharp:
            path = _pick(rng, sources.sharp)
            for _ in range(10):
                if not in_focus or is_photo_sharp(path):
                    break
                path = _pick(rng, sources.sharp)
            img = load_rgb(path)
        else:
            img = load_rgb(_pick(rng, sources.masked).image)
        crop = random_crop(rng, img, size)
        score = _texture_score(crop) if candidates > 1 else 0.0
        if score > best_score:
            best, best_score = crop, score
    return _u8_to_linear(best)


def _texture_score(img: np.ndarray) -> float:
    """Fraction of pixels of an 8-bit RGB image with a visible gradient (|∇| > 0.05 at 1/4 resolution)."""
    small = cv2.resize(img, (max(8, img.shape[1] // 4), max(8, img.shape[0] // 4)), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    g = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    return float((g > 0.05).mean())


def _pick_masked(rng: np.random.Generator, sources: Sources, test, tries: int = 10) -> MaskedPhoto | None:
    for _ in range(tries):
        photo = _pick(rng, sources.masked)
        if test(photo):
            return photo
    return None


def _tilted(rng: np.random.Generator, size: int, base: float, spread: float) -> np.ndarray:
    """base · (1 + 2 · spread · ramp): the inverse depth of a tilted plane (inverse depth is affine in image
    position), varying by ±spread around ``base`` across the frame."""
    return (base * (1.0 + spread * 2 * _ramp(rng, size))).astype(np.float32)


def _background_u(rng: np.random.Generator, size: int) -> tuple[float, np.ndarray]:
    """Relative inverse depth of a background behind the focal plane: 1.4–40 × the focus distance (or infinity, 15 %),
    flat or tilted (50 %); never closer than 1.15 × the focus distance. Returns (reference u, u field)."""
    u_ref = 0.0 if rng.random() < 0.15 else 1.0 / math.exp(rng.uniform(math.log(1.4), math.log(40.0)))
    if u_ref > 0 and rng.random() < 0.5:
        u = _tilted(rng, size, u_ref, rng.uniform(0.0, 0.6))
    else:
        u = np.full((size, size), u_ref, np.float32)
    return u_ref, np.minimum(u, np.float32(1 / 1.15))


def _in_focus_radius(rng: np.random.Generator, size: int) -> np.ndarray:
    """A constant signed CoC of an in-focus surface, within ±0.4 px (inside the depth of field)."""
    return np.full((size, size), rng.uniform(-0.4, 0.4), np.float32)


def _hide(alpha: np.ndarray) -> np.ndarray:
    """Pixels of a background hidden by an object (its alpha > 0.02, grown by 2 px)."""
    return cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by (dy, dx) px; vacated pixels are 0."""
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[max(-dy, 0) : h - max(dy, 0),
                                                                      max(-dx, 0) : w - max(dx, 0)]
    return out


def _borders(alpha: np.ndarray, width: int = 2) -> set[str]:
    """Sides of the frame an object mask touches ("top", "bottom", "left", "right"): there the object was cut by
    its photo's border, so that side must stay at a border of the new frame (or a straight cut would show)."""
    a = alpha > 0.5
    sides = {"top": a[:width].any(), "bottom": a[-width:].any(), "left": a[:, :width].any(),
             "right": a[:, -width:].any()}
    return {k for k, v in sides.items() if v}


def _foreground_occluder(rng: np.random.Generator, sources: Sources, size: int, lens: ThinLens) -> Layer | None:
    """A blurred object close to the camera entering the frame from one side (a branch, a shoulder, a railing in
    front of the subject): an object from a masked photo, moved towards an edge, 0.15–0.6 × the focus distance
    away (but with a CoC radius of 3–24 px). None if little of it stays in the frame."""
    img, m = _load_masked(_pick(rng, sources.masked))
    img, alpha = _object_crop(rng, img, m, size)
    side = int(rng.integers(4))
    off = int(rng.uniform(0.45, 0.75) * size)
    # Moving the object down brings its top border into the frame, and so on: that border must not cut it.
    dy, dx, exposed = [(off, 0, "top"), (-off, 0, "bottom"), (0, off, "left"), (0, -off, "right")][side]
    if exposed in _borders(alpha):
        return None
    alpha = _shift(alpha, dy, dx)
    if alpha.mean() < 0.03:
        return None
    colour = _shift(_u8_to_linear(img), dy, dx)
    r_inf = max(lens.radius_at_infinity_px, 1e-3)
    u = min(max(1.0 / rng.uniform(0.15, 0.6), 1.0 + 3.0 / r_inf), 1.0 + 24.0 / r_inf)  # 3 ≤ |CoC| ≤ 24 px
    return Layer(colour, alpha, np.full((size, size), radius_field(lens, u), np.float32), "occluder")


def _object_sharp(rng: np.random.Generator, sources: Sources, size: int) -> Scene:
    photo = _pick_masked(rng, sources, is_object_sharp) or _pick(rng, sources.masked)
    img, m = _load_masked(photo)
    img, alpha = _object_crop(rng, img, m, size)
    lin = _u8_to_linear(img)
    u_ref, u = _background_u(rng, size)
    lens = lens_for_blur(rng, size, u_ref, sample_blur_radius(rng, size))
    bg = fill(lin, ~_hide(alpha))
    if rng.random() < 0.12:
        bg = add_point_lights(rng, bg)
    layers = [Layer(bg, np.ones((size, size), np.float32), radius_field(lens, u), "background")]
    if rng.random() < 0.2:
        layers.append(_flat_patch_layer(rng, sources, size))
    layers.append(Layer(lin, alpha, _in_focus_radius(rng, size), "object"))
    if rng.random() < 0.15:
        occluder = _foreground_occluder(rng, sources, size, lens)
        if occluder is not None:
            layers.append(occluder)
    return Scene(layers, lens, "object_sharp")


def _object_blurred(rng: np.random.Generator, sources: Sources, size: int) -> Scene:
    u_obj = 1.0 / rng.uniform(0.15, 0.7)  # the object is 0.15–0.7 × the focus distance away
    lens = lens_for_blur(rng, size, u_obj, sample_blur_radius(rng, size))
    photo = _pick_masked(rng, sources, is_background_sharp) if rng.random() < 0.5 else None
    if photo is not None:
        img, m = _load_masked(photo)
        img, alpha = _object_crop(rng, img, m, size)
        obj = _u8_to_linear(img)
        bg = fill(obj, ~_hide(alpha))
    else:
        # Paste an object over an all-in-focus photo; its own background is irrelevant (alpha = 0 there).
        bg = _sharp_photo(rng, sources, size)
        img, m = _load_masked(_pick(rng, sources.masked))
        img, alpha = _object_crop(rng, img, m, size)
        obj = _u8_to_linear(img)
        if rng.random() < 0.5:  # shift the object towards a side, as foreground objects often are
            shift = int(rng.uniform(-0.35, 0.35) * size)
            if ("left" if shift > 0 else "right") not in _borders(alpha):  # keep cut borders at the frame edge
                alpha, obj = _shift(alpha, 0, shift), _shift(obj, 0, shift)
    layers = [Layer(bg, np.ones((size, size), np.float32), _in_focus_radius(rng, size), "background")]
    if rng.random() < 0.2:
        layers.append(_flat_patch_layer(rng, sources, size))
    layers.append(Layer(obj, alpha, np.full((size, size), radius_field(lens, u_obj), np.float32), "object"))
    return Scene(layers, lens, "object_blurred")


def _warp_layout(rng: np.random.Generator, layout: np.ndarray, size: int) -> np.ndarray:
    """Resize a focus layout to the frame with a random similarity transform (±12°, zoom 1–1.4) and flips; the
    uncovered border takes the nearest layout value."""
    h, w = layout.shape
    scale = size / min(h, w) * rng.uniform(1.0, 1.4)
    angle = rng.uniform(-12, 12)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[0, 2] += size / 2 - w / 2 + rng.uniform(-0.15, 0.15) * size
    m[1, 2] += size / 2 - h / 2 + rng.uniform(-0.15, 0.15) * size
    out = cv2.warpAffine(layout, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.15:
        out = out[::-1]
    return np.ascontiguousarray(np.clip(out, 0, 1))


def _layout(rng: np.random.Generator, sources: Sources, size: int) -> Scene:
    raw = load_gray(_pick(rng, sources.layouts)).astype(np.float32) / 255.0
    blurred = _warp_layout(rng, (raw >= 0.5).astype(np.float32), size)
    blurred = cv2.GaussianBlur(blurred, (0, 0), 0.6)  # anti-aliased outline
    sharp_img = _sharp_photo(rng, sources, size)
    # Mostly two photos, so that the focus boundary is also a content boundary, as in real photos (where it follows
    # depth discontinuities); sometimes one photo, so that blur itself, not a change of content, must be detected.
    other_img = _sharp_photo(rng, sources, size, in_focus=False) if rng.random() < 0.65 else sharp_img
    flat = np.ones((size, size), np.float32)
    radius = sample_blur_radius(rng, size)
    if rng.random() < 0.75:  # the blurred part is behind the in-focus part
        u_ref, u = _background_u(rng, size)
        lens = lens_for_blur(rng, size, u_ref, radius)
        bg = fill(other_img, blurred > 0.98) if other_img is sharp_img else other_img
        if rng.random() < 0.12:
            bg = add_point_lights(rng, bg)
        layers = [Layer(bg, flat, radius_field(lens, u), "blurred")]
        if rng.random() < 0.2:
            layers.append(_flat_patch_layer(rng, sources, size))
        layers.append(Layer(sharp_img, 1.0 - blurred, _in_focus_radius(rng, size), "in-focus"))
        if rng.random() < 0.1:
            occluder = _foreground_occluder(rng, sources, size, lens)
            if occluder is not None:
                layers.append(occluder)
    else:  # the blurred part is a foreground in front of the focal plane
        u_near = 1.0 / rng.uniform(0.15, 0.7)
        lens = lens_for_blur(rng, size, u_near, radius)
        bg = fill(sharp_img, blurred < 0.02) if other_img is sharp_img else sharp_img
        layers = [Layer(bg, flat, _in_focus_radius(rng, size), "in-focus")]
        if rng.random() < 0.2:
            layers.append(_flat_patch_layer(rng, sources, size))
        layers.append(Layer(other_img, blurred, radius_field(lens, u_near) * flat, "blurred"))
    return Scene(layers, lens, "layout")


def _depth(rng: np.random.Generator, sources: Sources, size: int) -> Scene:
    u01 = np.linspace(0.0, 1.0, size, dtype=np.float32)
    yy, xx = u01[:, None], u01[None, :]
    if rng.random() < 0.6:
        # A ground plane receding to a horizon (inverse depth ∝ distance below the horizon), a far backdrop above.
        horizon = rng.uniform(-0.2, 0.6)
        z_near = math.exp(rng.uniform(math.log(0.6), math.log(4.0)))
        inv_far = 0.0 if rng.random() < 0.4 else 1.0 / (z_near * math.exp(rng.uniform(math.log(5), math.log(60))))
        t = np.clip((yy - horizon) / max(1.0 - horizon, 1e-3), 0.0, 1.0)
        t = t + np.float32(0.15 * rng.uniform(-1, 1)) * (xx - 0.5) * t  # slight roll
        inv = np.maximum(inv_far + (1.0 / z_near - inv_far) * t, inv_far)
        kind = "ground"
    else:
        # A tilted plane (wall, table top, facade): inverse depth affine in position.
        z0 = math.exp(rng.uniform(math.log(0.5), math.log(20.0)))
        ratio = math.exp(rng.uniform(math.log(1.5), math.log(12.0)))
        inv = (1.0 / z0) * (1.0 + (1.0 / ratio - 1.0) * (_ramp(rng, size) + 0.5))
        kind = "plane"
    inv = inv.astype(np.float32)  # 1 / depth in 1/m
    texture = _sharp_photo(rng, sources, size, candidates=3)
    obj = None
    if rng.random() < 0.6 and sources.masked:
        obj = _standing_object(rng, sources, size, inv)
    if obj is not None and rng.random() < 0.6:
        focus_inv = obj[2]  # focus on the object
    else:
        focus_inv = float(inv[int(rng.integers(size)), int(rng.integers(size))])  # focus somewhere on the surface
    focus_inv = max(focus_inv, 1.0 / 200.0)
    u = inv / np.float32(focus_inv)  # s_f / s
    u_all = [float(u.min()), float(u.max())] + ([obj[2] / focus_inv] if obj is not None else [])
    u_ref = max(u_all, key=lambda v: abs(1.0 - v))  # the most defocused point sets the aperture
    lens = lens_for_blur(rng, size, u_ref, sample_blur_radius(rng, size, 2.0, 16.0))
    if rng.random() < 0.1:
        texture = add_point_lights(rng, texture, u < 0.7)
    layers = [Layer(texture, np.ones((size, size), np.float32), radius_field(lens, u), kind)]
    if rng.random() < 0.2:
        layers.append(_flat_patch_layer(rng, sources, size, radius=0.0))
    if obj is not None:
        r_obj = float(radius_field(lens, obj[2] / focus_inv))
        layers.append(Layer(obj[0], obj[1], np.full((size, size), r_obj, np.float32), "object"))
    return Scene(layers, lens, "depth")


def _standing_object(rng: np.random.Generator, sources: Sources, size: int, inv: np.ndarray, tries: int = 6):
    """An object from a masked photo, scaled to 40–90 % of the frame height and standing near the bottom of the
    frame, at the inverse depth of the surface under its lowest point (slightly in front of it). Objects cut by
    their photo's border keep that border on the new frame's border (objects cut at the top, or at both sides, are
    not used). Returns (linear colour, alpha, inverse depth) or None."""
    for _ in range(tries):
        photo = _pick_masked(rng, sources, is_object_sharp) or _pick(rng, sources.masked)
        img, m = _load_masked(photo)
        img, alpha = _object_crop(rng, img, m, size)
        cut = _borders(alpha)
        if "top" in cut or {"left", "right"} <= cut:
            continue
        hh = int(size * rng.uniform(0.4, 0.9))
        small_a = cv2.resize(alpha, (hh, hh), interpolation=cv2.INTER_AREA)
        small_i = cv2.resize(img, (hh, hh), interpolation=cv2.INTER_AREA)
        top = size - hh if "bottom" in cut else size - hh - int(rng.uniform(0, 0.1) * size)
        left = int(rng.uniform(-0.2, 1.0) * (size - hh))
        if "left" in cut:
            left = min(left, 0)
        elif "right" in cut:
            left = max(left, size - hh)
        a_full = np.zeros((size, size), np.float32)
        i_full = np.zeros((size, size, 3), np.uint8)
        x0, x1 = max(left, 0), min(left + hh, size)
        a_full[top : top + hh, x0:x1] = small_a[:, x0 - left : x1 - left]
        i_full[top : top + hh, x0:x1] = small_i[:, x0 - left : x1 - left]
        ys, xs = np.nonzero(a_full > 0.5)
        if len(ys) == 0:
            continue
        foot = float(inv[int(ys.max()), int(np.clip(np.median(xs), 0, size - 1))])
        return _u8_to_linear(i_full), a_full, max(foot, 1e-3) / 0.97
    return None


def _all_sharp(rng: np.random.Generator, sources: Sources, size: int) -> Scene:
    if rng.random() < 0.7 or not sources.masked:
        lin = _sharp_photo(rng, sources, size)
    else:
        photo = _pick_masked(rng, sources, is_background_sharp) or _pick(rng, sources.masked)
        img, m = _load_masked(photo)
        lin = _u8_to_linear(_object_crop(rng, img, m, size)[0])
    lens = lens_for_blur(rng, size, 1.0 / 3.0, 0.3)  # deep depth of field: everything within ±0.5 px
    r = np.clip(rng.uniform(-0.3, 0.3) + 0.2 * _ramp(rng, size), -0.5, 0.5).astype(np.float32)
    layers = [Layer(lin, np.ones((size, size), np.float32), r, "in-focus")]
    if rng.random() < 0.35:
        layers.append(_flat_patch_layer(rng, sources, size))
    return Scene(layers, lens, "all_sharp")


def _all_blurred(rng: np.random.Generator, sources: Sources, size: int) -> Scene:
    lin = _sharp_photo(rng, sources, size, in_focus=False)
    u_ref = 1.0 / math.exp(rng.uniform(math.log(1.5), math.log(30.0)))
    lens = lens_for_blur(rng, size, u_ref, sample_blur_radius(rng, size, 1.5, 12.0))
    u = _tilted(rng, size, u_ref, rng.uniform(0, 0.4)) if rng.random() < 0.5 else np.full((size, size), u_ref, np.float32)
    # Keep every pixel clearly out of focus: a frame that is "all blurred" must not contain a sharp strip.
    r = np.maximum(radius_field(lens, u), max(1.5, 1.5 * size / 320.0)).astype(np.float32)
    if rng.random() < 0.15:
        lin = add_point_lights(rng, lin)
    return Scene([Layer(lin, np.ones((size, size), np.float32), r, "out-of-focus")], lens, "all_blurred")


_BUILDERS = {
    "object_sharp": _object_sharp,
    "object_blurred": _object_blurred,
    "layout": _layout,
    "depth": _depth,
    "all_sharp": _all_sharp,
    "all_blurred": _all_blurred,
}


def available_kinds(sources: Sources) -> list[str]:
    """Scene kinds that the given sources can build."""
    kinds = []
    for k in KINDS:
        if k in ("object_sharp",) and not sources.masked:
            continue
        if k == "object_blurred" and not sources.masked:
            continue
        if k == "layout" and not sources.layouts:
            continue
        kinds.append(k)
    return kinds


def build_scene(rng: np.random.Generator, sources: Sources, size: int, kind: str) -> Scene:
    """Build a scene of ``kind`` (one of :data:`KINDS`) at ``size``×``size`` px from ``sources``; with probability
    0.5 the highlights of every layer that is (partly) out of focus are un-clipped (see :func:`boost_highlights`)."""
    if kind not in _BUILDERS:
        raise ValueError(f"scene kind must be one of {KINDS}, not {kind!r}")
    scene = _BUILDERS[kind](rng, sources, size)
    if rng.random() < 0.5:
        sub = np.random.default_rng(rng.integers(2**63))
        for layer in scene.layers:
            # Only where it shows: in focus, an un-clipped highlight would just clip again (and lose its detail).
            if float(np.abs(layer.signed_radius).max()) >= 1.0:
                layer.color = boost_highlights(sub, layer.color)
    return scene
