"""Edge-patch training data for B-Net and E-Net (Karaali, Harte & Jung, TIP 2022, Sec. IV-A), made on the fly.

B-Net patches: a crop of a sharp (all-in-focus) photo, rotated, blurred uniformly with the anti-aliased disk PSF of
one of the 23 radii 0.5 … 6.0 px (:data:`defocus.nets.benet.RADII`); edges found by the same detector the method
uses at inference (:func:`defocus.nets.benet.detect_edges`); the same number of edge pixels per level
from every crop, so the classes are balanced. Label = level index.

E-Net patches:

* depth edges — an object cut from a masked photo (ECSSD / DUTS-TR, binary masks) blurred with disk radius R1 and
  alpha-blended with its equally blurred mask over a background photo blurred with R2 > R1, (R1, R2) from the
  paper's levels {0, 1, 3, 5} (its six pairs); edge pixels within :data:`DEPTH_BAND` px of the object boundary.
* pattern edges — photos blurred uniformly, with gradually varying blur (radius a linear ramp across the crop) or
  step-wise blur (bands whose radius differs by 0.25 px), plus edges of the composites far (> :data:`PATTERN_GAP`
  px) from the object boundary (constant depth on either side). Half of the patches are of each class.

Rotations by one of the paper's angles (−90, −30, 60, 135, 180°, or none) augment both sets; the crop is rotated
before it is cut to its final size, so no border fill enters a patch. Photos, objects and masks come from
:func:`defocus.synth.sources.find_sources`, so validation/test photos (split by file hash) never enter training.

Patches are uint8 (N, 41, 41, 3) arrays saved as ``.npy`` in a cache folder (under /tmp, never in the repository)
and read back memory-mapped.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import cv2
import numpy as np

from ..io import atomic_write
from ..nets.benet import RADII, detect_edges
from ..synth.psf import blur
from ..synth.sources import find_sources, load_gray, load_rgb

PATCH = 41
HALF = PATCH // 2
#: Crop side (px) in which edges are found and patches cut.
CROP = 200
ANGLES = (0.0, -90.0, -30.0, 60.0, 135.0, 180.0)
#: E-Net composite blur radii (px) and their pairs R1 < R2 (paper, Fig. 4).
DEPTH_LEVELS = (0.0, 1.0, 3.0, 5.0)
DEPTH_PAIRS = tuple((a, b) for i, a in enumerate(DEPTH_LEVELS) for b in DEPTH_LEVELS[i + 1:])
#: Edge pixels at most this far (px) from the object boundary are depth edges ...
DEPTH_BAND = 2.0
#: ... and composite edges farther than this are pattern edges (in between: left out as ambiguous).
PATTERN_GAP = 14.0


def _rotated_crop(img: np.ndarray, rng: np.random.Generator, size: int, angle: float,
                  extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A random ``size``×``size`` crop of ``img`` (and the same of ``extra``) rotated by ``angle`` degrees.

    A larger window (size·√2) is cut first and rotated about its centre, so the final crop has no border fill.
    Images smaller than the window are up-scaled to fit.
    """
    big = int(math.ceil(size * math.sqrt(2))) + 2
    h, w = img.shape[:2]
    if min(h, w) < big:
        s = big / min(h, w)
        img = cv2.resize(img, (int(math.ceil(w * s)), int(math.ceil(h * s))), interpolation=cv2.INTER_LINEAR)
        if extra is not None:
            extra = cv2.resize(extra, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        h, w = img.shape[:2]
    y0 = int(rng.integers(0, h - big + 1))
    x0 = int(rng.integers(0, w - big + 1))
    win = img[y0:y0 + big, x0:x0 + big]
    ewin = None if extra is None else extra[y0:y0 + big, x0:x0 + big]
    if angle:
        m = cv2.getRotationMatrix2D(((big - 1) / 2, (big - 1) / 2), angle, 1.0)
        win = cv2.warpAffine(win, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if ewin is not None:
            ewin = cv2.warpAffine(ewin, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    o = (big - size) // 2
    out = np.ascontiguousarray(win[o:o + size, o:o + size])
    eout = None if ewin is None else np.ascontiguousarray(ewin[o:o + size, o:o + size])
    return out, eout


def _interior_edges(image: np.ndarray, margin: int = HALF) -> tuple[np.ndarray, np.ndarray]:
    """Edge pixels (detector of the method) at least ``margin`` px from the crop border; (ys, xs)."""
    e = detect_edges(image)
    e[:margin] = False
    e[-margin:] = False
    e[:, :margin] = False
    e[:, -margin:] = False
    return np.nonzero(e)


def cut_patches(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """41×41 patches centred on interior pixels (ys, xs) of a float [0, 1] image, as uint8 (N, 41, 41, 3)."""
    u8 = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    win = np.lib.stride_tricks.sliding_window_view(u8, (PATCH, PATCH), axis=(0, 1))  # (H-40, W-40, 3, 41, 41)
    return np.ascontiguousarray(win[ys - HALF, xs - HALF].transpose(0, 2, 3, 1))


def _pick(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    if n == 0:
        return np.zeros(0, np.intp)
    return rng.choice(n, size=k, replace=n < k)


def _photo(rng: np.random.Generator, paths) -> np.ndarray:
    return load_rgb(paths[int(rng.integers(len(paths)))])


# --- B-Net ---------------------------------------------------------------------------------------------------------


#: Edge pixels of one training crop used at most (a random subset beyond that): a crop at a small radius has several
#: times the edges of one at a large radius, and the loss is averaged per crop so that every level weighs the same.
MAX_EDGES = 4000
#: Range of the factor by which a sharp photo is reduced before it is cropped (several image scales).
SCALES = (0.4, 1.0)
#: Probability that a crop goes through the camera model (noise, tone, sharpening, JPEG) after the blur.
CAMERA = 0.6


def bnet_crop_patches(rng: np.random.Generator, sharp: np.ndarray, per_level: int, *, engine: float = 0.0,
                      camera: float = CAMERA) -> tuple[np.ndarray, np.ndarray]:
    """``per_level`` patches of every blur level from one random rotated crop of a sharp uint8 photo.

    The crop is blurred in sRGB (the bundled B-Net's data) or, with probability ``engine``, rendered as the
    synthetic engine renders scenes (:func:`render_blur`: blur in linear light, then the camera model with its
    effects with probability ``camera``, a fresh draw per level).

    Returns
    -------
    patches : uint8 (N, 41, 41, 3); labels : int64 (N,) level indices into :data:`RADII`.
    """
    crop_u8, _ = _rotated_crop(sharp, rng, CROP, float(rng.choice(ANGLES)))
    crop = crop_u8.astype(np.float32) / 255.0
    as_engine = engine > 0 and rng.random() < engine
    xs_all, ys_all = [], []
    for level, r in enumerate(RADII):
        blurred = render_blur(rng, crop_u8, float(r), camera=camera) if as_engine else blur(crop, float(r))
        ys, xs = _interior_edges(blurred)
        sel = _pick(rng, len(ys), per_level)
        if len(sel) == 0:
            continue
        xs_all.append(cut_patches(blurred, ys[sel], xs[sel]))
        ys_all.append(np.full(len(sel), level, np.int64))
    if not xs_all:
        return np.zeros((0, PATCH, PATCH, 3), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(xs_all), np.concatenate(ys_all)


def render_blur(rng: np.random.Generator, crop: np.ndarray, radius: float, *, camera: float = CAMERA,
                linear: bool = True) -> np.ndarray:
    """A sharp uint8 sRGB crop blurred with the disk of ``radius`` px (full resolution), as an 8-bit photo.

    Blurred in linear light (``linear``; or the sRGB values, as :func:`bnet_crop_patches` does by default) and
    turned back into sRGB by :func:`defocus.synth.camera.apply_camera`, with its camera effects (noise, tone,
    sharpening, JPEG) with probability ``camera`` and never camera shake (which would change the blur level).
    Returns float32 (H, W, 3) in [0, 1].
    """
    from ..synth.camera import apply_camera
    from ..synth.render import srgb_to_linear, u8_to_linear

    if linear:
        light = blur(u8_to_linear(crop), radius, exact=True)
    else:  # blur the sRGB values, then decode them: the camera model takes linear light
        light = srgb_to_linear(blur(crop.astype(np.float32) / np.float32(255.0), radius, exact=True))
    return apply_camera(rng, light, effects=bool(rng.random() < camera), shake=False).astype(np.float32)


def edge_crop(rng: np.random.Generator, sharp: np.ndarray, level: int, *, camera: float = CAMERA,
              linear: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One dense B-Net training sample: a sharp photo reduced, rotated, cropped and blurred with one disk radius.

    The photo (uint8) is reduced by a factor in :data:`SCALES` (area filter), a random rotated :data:`CROP`-px crop
    is blurred with the disk of radius ``RADII[level]`` and made an 8-bit sRGB photo by :func:`render_blur` (in
    linear light, camera effects with probability ``camera``, default :data:`CAMERA`). ``linear=False`` blurs the
    sRGB values instead, as the patch sets of :func:`bnet_crop_patches` (the bundled B-Net's data) do.

    Returns
    -------
    crop : float32 (CROP, CROP, 3) in [0, 1]
    labels : int64 (CROP − 40, CROP − 40)
        ``level`` at the edge pixels (the method's hue Canny) of the crop's interior, −1 elsewhere; entry (y, x)
        belongs to crop pixel (y + 20, x + 20), the centre of the 41×41 window with top-left corner (y, x).
    """
    s = float(rng.uniform(*SCALES))
    if s < 1.0:
        h, w = sharp.shape[:2]
        sharp = cv2.resize(sharp, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    crop, _ = _rotated_crop(sharp, rng, CROP, float(rng.choice(ANGLES)))
    image = render_blur(rng, crop, float(RADII[level]), camera=camera, linear=linear)
    ys, xs = _interior_edges(image)
    if len(ys) > MAX_EDGES:
        keep = rng.choice(len(ys), MAX_EDGES, replace=False)
        ys, xs = ys[keep], xs[keep]
    labels = np.full((CROP - 2 * HALF, CROP - 2 * HALF), -1, np.int64)
    labels[ys - HALF, xs - HALF] = level
    return image.astype(np.float32), labels


# --- E-Net ---------------------------------------------------------------------------------------------------------


def _boundary_distance(mask: np.ndarray) -> np.ndarray:
    """Distance (px) of every pixel to the boundary of a binary mask (float32 (H, W))."""
    m = (mask > 0.5).astype(np.uint8)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)
    return np.where(m > 0, inside, outside).astype(np.float32)


def composite(rng: np.random.Generator, obj: np.ndarray, mask: np.ndarray, bg: np.ndarray, r1: float, r2: float,
              angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Object (blurred with ``r1``) alpha-blended over a background (blurred with ``r2``), rotated by ``angle``.

    Returns the float32 (CROP, CROP, 3) composite and the distance (px) of each pixel to the object boundary.
    """
    size = CROP
    big = int(math.ceil(size * math.sqrt(2))) + 2
    obj = cv2.resize(obj, (big, big), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    alpha = (cv2.resize(mask, (big, big), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0 > 0.5)
    alpha = alpha.astype(np.float32)
    back, _ = _rotated_crop(bg, rng, big, 0.0)
    back = back.astype(np.float32) / 255.0
    a = blur(alpha, r1)[..., None]
    img = a * blur(obj, r1) + (1.0 - a) * blur(back, r2)
    dist = _boundary_distance(alpha)
    return _rotated_crop(img, rng, size, angle, extra=dist)


def gradual(rng: np.random.Generator, sharp: np.ndarray, step: bool) -> np.ndarray:
    """A rotated crop with blur that varies across it: a linear ramp of disk radius, or bands 0.25 px apart.

    The ramp is rendered by blending, per pixel, the two neighbouring blur levels of a 0.25-px grid.
    """
    crop, _ = _rotated_crop(sharp, rng, CROP, float(rng.choice(ANGLES)))
    crop = crop.astype(np.float32) / 255.0
    lo = float(rng.choice(RADII[:-4]))
    span = float(rng.uniform(0.5, 1.5))
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:CROP, 0:CROP].astype(np.float32) / (CROP - 1)
    t = np.clip((np.cos(theta) * (xx - 0.5) + np.sin(theta) * (yy - 0.5)) / 1.42 + 0.5, 0, 1)
    r = lo + span * t
    grid = np.arange(math.floor(lo * 4) / 4, lo + span + 0.5, 0.25)
    stack = np.stack([blur(crop, float(g)) for g in grid])
    pos = (r - grid[0]) / 0.25
    if step:
        idx = np.clip(np.floor(pos).astype(int), 0, len(grid) - 1)
        return stack[idx, np.arange(CROP)[:, None], np.arange(CROP)[None, :]]
    i0 = np.clip(np.floor(pos).astype(int), 0, len(grid) - 2)
    f = (pos - i0)[..., None]
    rows, cols = np.arange(CROP)[:, None], np.arange(CROP)[None, :]
    return (1 - f) * stack[i0, rows, cols] + f * stack[i0 + 1, rows, cols]


def enet_patches(rng: np.random.Generator, sources, per_image: int) -> tuple[np.ndarray, np.ndarray]:
    """About ``2·per_image`` E-Net patches: depth edges of one composite and pattern edges of equal number.

    Returns patches uint8 (N, 41, 41, 3) and labels int64 (N,) (0 = pattern, 1 = depth).
    """
    masked = [m for m in sources.masked if not m.soft]
    item = masked[int(rng.integers(len(masked)))]
    obj, mask = load_rgb(item.image), load_gray(item.mask)
    r1, r2 = DEPTH_PAIRS[int(rng.integers(len(DEPTH_PAIRS)))]
    img, dist = composite(rng, obj, mask, _photo(rng, sources.sharp), r1, r2, float(rng.choice(ANGLES)))
    ys, xs = _interior_edges(img)
    d = dist[ys, xs]
    depth = np.nonzero(d <= DEPTH_BAND)[0]
    sel = depth[_pick(rng, len(depth), per_image)]
    out = [cut_patches(img, ys[sel], xs[sel])]
    labels = [np.ones(len(sel), np.int64)]
    n_pattern = len(sel)
    if n_pattern == 0:
        return np.zeros((0, PATCH, PATCH, 3), np.uint8), np.zeros(0, np.int64)
    # A quarter of the pattern edges from the same composite (away from the boundary), the rest from photos with
    # uniform, gradual or step-wise blur, so "composite or not" is no shortcut to the label.
    inner = np.nonzero(d > PATTERN_GAP)[0]
    k_in = min(len(inner), n_pattern // 4)
    if k_in:
        s = inner[_pick(rng, len(inner), k_in)]
        out.append(cut_patches(img, ys[s], xs[s]))
        labels.append(np.zeros(k_in, np.int64))
    need = n_pattern - k_in
    tries = 0
    while need > 0 and tries < 4:
        tries += 1
        kind = int(rng.integers(3))
        sharp = _photo(rng, sources.sharp)
        if kind == 0:
            crop, _ = _rotated_crop(sharp, rng, CROP, float(rng.choice(ANGLES)))
            pat = blur(crop.astype(np.float32) / 255.0, float(rng.choice(np.concatenate([[0.0], RADII]))))
        else:
            pat = gradual(rng, sharp, step=kind == 2)
        py, px = _interior_edges(pat)
        s = _pick(rng, len(py), min(need, max(1, len(py))))
        if len(s):
            out.append(cut_patches(pat, py[s], px[s]))
            labels.append(np.zeros(len(s), np.int64))
            need -= len(s)
    return np.concatenate(out), np.concatenate(labels)


# --- cache ---------------------------------------------------------------------------------------------------------


def default_cache() -> Path:
    """Patch cache folder: ``$DEFOCUS_BENET_CACHE`` or /tmp/defocus-benet-cache."""
    return Path(os.environ.get("DEFOCUS_BENET_CACHE", "/tmp/defocus-benet-cache"))


def build(kind: str, split: str, n: int, folder: Path, seed: int, shared=None, log=print, *, engine: float = 0.0,
          camera: float = CAMERA) -> tuple[np.ndarray, np.ndarray]:
    """Generate about ``n`` patches of ``kind`` ("bnet" or "enet") from ``split`` photos, cache and return them.

    ``engine`` and ``camera`` (B-Net only) are :func:`bnet_crop_patches`'s. The cache files
    ``{kind}_{split}_{n}_{seed}_x.npy`` / ``_y.npy`` (with ``_engine{E}_camera{C}`` before ``_x`` when ``engine``
    > 0) are reused when present (memory-mapped).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if engine > 0 and kind != "bnet":
        raise ValueError("engine rendering is for B-Net patches only")
    rendering = f"_engine{engine:g}_camera{camera:g}" if engine > 0 else ""
    stem = folder / f"{kind}_{split}_{n}_{seed}{rendering}"
    fx, fy = Path(f"{stem}_x.npy"), Path(f"{stem}_y.npy")
    if fx.exists() and fy.exists():
        return np.load(fx, mmap_mode="r"), np.load(fy)
    rng = np.random.default_rng(seed)
    sources = find_sources(split, shared)
    xs, ys, total, t0 = [], [], 0, time.time()
    while total < n:
        if kind == "bnet":
            x, y = bnet_crop_patches(rng, _photo(rng, sources.sharp), per_level=4, engine=engine, camera=camera)
        elif kind == "enet":
            x, y = enet_patches(rng, sources, per_image=24)
        else:
            raise ValueError(f"kind must be 'bnet' or 'enet', not {kind!r}")
        xs.append(x)
        ys.append(y)
        total += len(y)
        if len(xs) % 50 == 0:
            log(f"{kind}/{split}: {total}/{n} patches, {time.time() - t0:.0f} s")
    x, y = np.concatenate(xs)[:n], np.concatenate(ys)[:n]
    # Atomic writes, so an interrupted run never leaves a half cache behind.
    for arr, final in ((x, fx), (y, fy)):
        atomic_write(final, lambda f, a=arr: np.save(f, a), force=True)
    log(f"{kind}/{split}: {len(y)} patches in {time.time() - t0:.0f} s -> {stem}_*.npy")
    return np.load(fx, mmap_mode="r"), np.load(fy)
