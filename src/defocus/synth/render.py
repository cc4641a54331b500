"""Physically based defocus rendering: thin-lens circle of confusion and layered, occlusion-aware compositing.

Light adds linearly only in linear (radiometric) units, so every blur here operates on linear-light colour: sRGB
photos are decoded with the sRGB transfer curve, blurred, and re-encoded. That is what turns a bright point into a
bright disk ("bokeh") rather than a dim smudge.

Scenes are lists of :class:`Layer` objects, back to front. Each layer is a surface with colour, coverage (alpha) and a
per-pixel *signed* CoC radius (negative in front of the focal plane, positive behind it; for a thin lens the signed
CoC grows monotonically with distance, so it also orders the surfaces in depth). :func:`render` cuts every layer into
slices of nearly equal CoC, blurs each slice's premultiplied colour and its alpha with that slice's PSF and composites
the slices with the *blurred* alpha, front to back. So a blurred foreground spreads over (and becomes partly
transparent over) whatever lies behind it, while a sharp foreground keeps a crisp edge over a blurred background —
the two behaviours of a real lens at an occlusion boundary that a single spatially varying filter cannot produce.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import psf as _psf

# ----------------------------------------------------------------------------------------------------------------------
# sRGB transfer curve (IEC 61966-2-1)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] → linear light (float32, same shape)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    curve = _pow((x + np.float32(0.055)) * np.float32(1 / 1.055), 2.4)
    return np.where(x <= 0.04045, x * np.float32(1 / 12.92), curve).astype(np.float32, copy=False)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light → sRGB-encoded values, clipped to [0, 1] (float32). Values above 1 saturate like a sensor.

    Evaluated through a 65 536-entry table (error < 1e-4, far below one 8-bit step)."""
    x = np.asarray(x, dtype=np.float32)
    idx = np.clip(x * np.float32(65535.0) + np.float32(0.5), 0.0, 65535.0).astype(np.int32)
    return np.take(_LINEAR16_TO_SRGB, idx)


def _linear_to_srgb_exact(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(np.float32)


def _pow(x: np.ndarray, p: float) -> np.ndarray:
    """x**p for float32 x ≥ 0 (OpenCV's pow is several times faster than NumPy's)."""
    if x.ndim == 0 or x.size < 64:
        return np.power(x, np.float32(p)).astype(np.float32)
    flat = np.ascontiguousarray(x).reshape(x.shape[0], -1)
    return cv2.pow(flat, p).reshape(x.shape)


def u8_to_linear(img: np.ndarray) -> np.ndarray:
    """8-bit sRGB image → linear light float32 (by a 256-entry table)."""
    return _SRGB8_LUT[np.asarray(img, dtype=np.uint8)]


_SRGB8_LUT = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)
_LINEAR16_TO_SRGB = _linear_to_srgb_exact(np.arange(65536, dtype=np.float64) / 65535.0)

# ----------------------------------------------------------------------------------------------------------------------
# Thin lens


@dataclass(frozen=True)
class ThinLens:
    """A thin-lens camera focused at ``focus_m``.

    The blur-circle (CoC) diameter on the sensor of a point at distance s is

        c(s) = f² / (N · (s_f − f)) · |s − s_f| / s

    with focal length f, f-number N and focus distance s_f (all lengths in the same unit). Divided by the sensor's
    pixel pitch this is the CoC diameter in pixels; half of it is the disk-PSF radius used everywhere in defocus.

    Parameters
    ----------
    focal_mm : float
        Focal length f in mm.
    f_number : float
        Aperture N (f/N is the aperture diameter).
    focus_m : float
        Focus distance s_f in metres (> f).
    pixel_pitch_mm : float
        Width of one pixel *of the rendered image* on the sensor, in mm (sensor width / image width in px).
    """

    focal_mm: float
    f_number: float
    focus_m: float
    pixel_pitch_mm: float

    @property
    def radius_at_infinity_px(self) -> float:
        """CoC radius in px of a point at infinity: f² / (N (s_f − f)) / (2 · pitch)."""
        f = self.focal_mm
        return f * f / (self.f_number * (self.focus_m * 1000.0 - f)) / (2.0 * self.pixel_pitch_mm)

    def signed_radius_px(self, depth_m: np.ndarray | float) -> np.ndarray:
        """Signed CoC radius in px of points at ``depth_m`` metres (``np.inf`` allowed): negative in front of the
        focal plane, positive behind it. Equals ``radius_at_infinity_px · (1 − s_f / s)``. Returns float32."""
        depth = np.asarray(depth_m, dtype=np.float64)
        with np.errstate(divide="ignore"):
            inv = np.where(np.isinf(depth), 0.0, 1.0 / np.maximum(depth, 1e-6))
        return (self.radius_at_infinity_px * (1.0 - self.focus_m * inv)).astype(np.float32)

    def coc_diameter_mm(self, depth_m: np.ndarray | float) -> np.ndarray:
        """CoC diameter on the sensor in mm of points at ``depth_m`` metres (the formula in the class docstring)."""
        return np.abs(self.signed_radius_px(depth_m)).astype(np.float64) * 2.0 * self.pixel_pitch_mm

    def with_radius_at_infinity(self, radius_px: float, n_min: float = 1.0, n_max: float = 22.0) -> "ThinLens":
        """The same camera with the f-number chosen so that infinity blurs by ``radius_px`` (clipped to
        ``[n_min, n_max]``, so the result may blur less or more than asked)."""
        f = self.focal_mm
        n = f * f / ((self.focus_m * 1000.0 - f) * 2.0 * self.pixel_pitch_mm * max(radius_px, 1e-6))
        return ThinLens(self.focal_mm, float(np.clip(n, n_min, n_max)), self.focus_m, self.pixel_pitch_mm)


# ----------------------------------------------------------------------------------------------------------------------
# Layered compositing


@dataclass
class Layer:
    """One surface of a scene.

    Attributes
    ----------
    color : ndarray (H, W, 3), float32
        Linear-light colour, defined wherever ``alpha`` > 0 (and, for a background, everywhere: parts hidden by
        nearer layers must be filled in, since a blurred foreground lets them show through).
    alpha : ndarray (H, W), float32 in [0, 1]
        Coverage. The back layer must cover the frame (alpha = 1). A layer whose depth varies should have binary
        alpha (fractional alpha is exact on layers of constant CoC).
    signed_radius : ndarray (H, W), float32
        Signed CoC radius in px (see :class:`ThinLens`); must increase with distance, defined where alpha > 0.
    """

    color: np.ndarray
    alpha: np.ndarray
    signed_radius: np.ndarray
    name: str = ""


#: CoC radii (px) at which layers are sliced; a pixel is rendered with the nearest level. Steps are ≤ 0.25 px up to
#: 2 px, where small differences are visible, and ≤ 8 % beyond 6 px.
LEVELS = np.array(
    [0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0,
     10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.5, 19.0, 20.5, 22.0, 24.0, 26.0, 28.0, 30.0, 33.0, 36.0, 40.0],
    dtype=np.float32,
)


def quantize_radius(signed_radius: np.ndarray, levels: np.ndarray = LEVELS) -> np.ndarray:
    """Signed CoC radius → the signed nearest entry of ``levels`` (float32; radii beyond the last level clip)."""
    r = np.abs(signed_radius)
    mids = (levels[1:] + levels[:-1]) / 2
    q = levels[np.searchsorted(mids, r)]
    return (np.sign(signed_radius) * q).astype(np.float32)


@dataclass
class Rendering:
    """Result of :func:`render`: ``image`` linear RGB (H, W, 3) float32 (may exceed 1 where highlights were boosted),
    ``radius`` (H, W) float32 CoC radius in px of the surface that dominates each pixel after blurring."""

    image: np.ndarray
    radius: np.ndarray


def render(layers: list[Layer], psf: str = "disk", *, levels: np.ndarray = LEVELS, exact: bool = False) -> Rendering:
    """Render a layered scene through a defocused lens.

    Every layer is cut into slices of equal quantised CoC. A slice covers its own pixels *and the nearer pixels of the
    same surface* (which are hidden behind the nearer slices anyway), so neighbouring slices of a continuous surface
    join without seams. Each slice's premultiplied colour and alpha are blurred with its PSF; slices are composited
    front to back (``out += T · colour``, ``T ← T · (1 − alpha)``) — the *over* operator with blurred alpha.

    The radius map reports, per pixel, the (unquantised) CoC radius of the slice at which the accumulated opacity
    (1 − T) first reaches one half, i.e. the surface one mostly sees there: at a sharp edge over a blurred background it
    switches exactly at the object's edge; for a blurred foreground, where its blurred alpha crosses one half (at its
    geometric edge for a straight edge).

    Work is restricted to the rectangle where a slice can still change the result (its blurred support, intersected
    with the pixels not yet covered), which keeps smooth depth fields with dozens of slices fast.

    Parameters
    ----------
    layers : list of Layer, back to front
        The first layer must cover the whole frame.
    psf : {"disk", "gaussian"}
    levels : ndarray
        Quantisation levels of |CoC radius| (px), ascending, starting at 0.
    exact : bool
        Blur large radii at full resolution (see :func:`defocus.synth.psf.blur`).

    Returns
    -------
    Rendering
    """
    if not layers:
        raise ValueError("render needs at least one layer")
    h, w = layers[0].alpha.shape
    out = np.zeros((h, w, 3), np.float32)
    transmit = np.ones((h, w), np.float32)
    radius = np.zeros((h, w), np.float32)
    for layer in reversed(layers):  # front to back
        alpha = np.clip(layer.alpha.astype(np.float32), 0.0, 1.0)
        present = alpha > 0
        if not present.any():
            continue
        signed = np.asarray(layer.signed_radius, dtype=np.float32)
        constant = float(signed.min()) == float(signed.max())  # the common case: one slice, no per-pixel work
        if constant:
            q = None
            values = [float(quantize_radius(signed.ravel()[:1], levels)[0])]
        else:
            q = quantize_radius(signed, levels)
            values = np.unique(q[present])  # ascending signed CoC = near to far
        true_r = np.abs(signed)
        color = np.asarray(layer.color, dtype=np.float32)
        for v in values:
            open_box = _bbox(transmit > 1e-5)
            if open_box is None:
                break  # everything is covered already
            sel = present if constant else present & (q <= v)
            r = float(abs(v))
            reach = _psf.footprint(r, psf, exact=exact)
            box = _bbox(sel, reach)
            if box is None:
                continue
            y0, y1, x0, x1 = max(box[0], open_box[0]), min(box[1], open_box[1]), max(box[2], open_box[2]), min(
                box[3], open_box[3])
            if y0 >= y1 or x0 >= x1:
                continue
            # Blur a margin around the box so that light entering it from outside is included.
            Y0, Y1, X0, X1 = max(y0 - reach, 0), min(y1 + reach, h), max(x0 - reach, 0), min(x1 + reach, w)
            cover = alpha[Y0:Y1, X0:X1] * sel[Y0:Y1, X0:X1]
            stack = np.empty((Y1 - Y0, X1 - X0, 4), np.float32)
            np.multiply(color[Y0:Y1, X0:X1], cover[..., None], out=stack[..., :3])
            stack[..., 3] = cover
            if r > 0:
                stack = _psf.blur(stack, r, psf, exact=exact)
            stack = stack[y0 - Y0 : y1 - Y0, x0 - X0 : x1 - X0]
            a = np.clip(stack[..., 3], 0.0, 1.0)
            t = transmit[y0:y1, x0:x1]
            out[y0:y1, x0:x1] += t[..., None] * stack[..., :3]
            t_new = t * (1.0 - a)
            crossed = (t > 0.5) & (t_new <= 0.5)
            if crossed.any():
                own = present[y0:y1, x0:x1] if constant else present[y0:y1, x0:x1] & (q[y0:y1, x0:x1] == v)
                r_here = np.where(own, true_r[y0:y1, x0:x1], np.float32(r))
                radius[y0:y1, x0:x1][crossed] = r_here[crossed]
            transmit[y0:y1, x0:x1] = t_new
    return Rendering(image=np.maximum(out, 0.0), radius=radius)


def _bbox(mask: np.ndarray, grow: int = 0) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the true pixels of ``mask`` grown by ``grow`` px and clipped to the frame; None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (max(int(rows[0]) - grow, 0), min(int(rows[-1]) + 1 + grow, h),
            max(int(cols[0]) - grow, 0), min(int(cols[-1]) + 1 + grow, w))
