"""Synthetic defocus samples: one engine for blur detection (DBD) and defocus map estimation (DME).

:func:`render_sample` builds a random scene (:mod:`~defocus.synth.scenes`), renders it through a thin lens in
linear light (:mod:`~defocus.synth.render`) and passes it through a camera (:mod:`~defocus.synth.camera`). Each
sample carries the photo and three aligned ground truths:

* ``coc_radius`` — CoC (disk PSF) radius in px of the surface that dominates each pixel;
* ``sigma`` — the same blur as Gaussian σ in px (:func:`defocus.units.radius_to_sigma`, the RTF table);
* ``blur_mask`` — 1 where ``coc_radius`` > :data:`SHARP_RADIUS` (1 px), else 0.

Why 1 px: a disk of radius 1 px corresponds to σ ≈ 0.65 px, about the blur that demosaicing, lens aberrations and
resampling leave in a photo that is *in focus* (the all-in-focus source photos themselves measure about that), so
blur up to that radius is invisible; from 1.5 px on a defocused region looks soft. The scene builders keep
in-focus surfaces at |radius| ≤ 0.5 px and clearly defocused ones at ≥ 1.5 px (× size/320), so labels are ambiguous
only where blur varies continuously (tilted planes and grounds) through the threshold, as in real photos.

:class:`SynthDataset` serves samples on the fly to PyTorch; :func:`write_dataset` writes them to a folder that
``defocus.data.open_dataset("folder", root, polarity="blur")`` reads.
"""

from __future__ import annotations

import csv
import io as _io
import os
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..units import radius_to_sigma
from .camera import apply_camera
from .render import render
from .scenes import KIND_WEIGHTS, KINDS, available_kinds, build_scene
from .sources import SPLITS, find_sources

#: CoC radius (px) above which a pixel counts as out of focus in ``blur_mask``.
SHARP_RADIUS = 1.0

#: Probability of each PSF shape per sample: disk (a real lens's defocus PSF, with hard-edged bokeh) or Gaussian
#: (a softer PSF, as lenses with aberrations or apodisation give).
PSF_WEIGHTS = {"disk": 0.75, "gaussian": 0.25}


@dataclass(frozen=True)
class Realism:
    """Optional departures from the ideal lens and camera (all off by default, so the default stream of scenes
    stays the one the bundled models were trained on; each is an ablation of docs/training.md).

    Attributes
    ----------
    lens_psfs : float
        Probability that a disk-PSF sample's discs get one of the lens profiles of
        :data:`defocus.synth.psf.LENS_PROFILES` instead (soap-bubble rim, spherical-aberration core, onion rings).
    demosaic : float
        Probability that the camera samples the frame through a Bayer colour filter and demosaics it (after the
        sensor noise, before the tone curve), as every raw pipeline does.
    chromatic : float
        Probability of chromatic aberration: axial (red and blue focus :data:`AXIAL_CA_PX` px of CoC radius on
        either side of green, so in-focus edges get coloured fringes and blurred ones a coloured tint) and lateral
        (red and blue magnified by ±:data:`LATERAL_CA` about the centre). The labels stay green's.
    cats_eye : float
        Probability that a disk-PSF sample's discs turn into cat's eyes away from the frame's centre (mechanical
        vignetting): the PSF goes from the disc at the centre to :func:`defocus.synth.psf.kernel`'s
        ``"cats_eye:K:S"`` shapes, oriented along the direction to the centre, at the corners.
    """

    lens_psfs: float = 0.0
    demosaic: float = 0.0
    chromatic: float = 0.0
    cats_eye: float = 0.0

    def __post_init__(self):
        for name in REALISM_FIELDS:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ValueError(f"Realism.{name} must be a probability in [0, 1], not {v!r}")


#: The options of :class:`Realism`, as training configs and the synth dataset name them.
REALISM_FIELDS = ("lens_psfs", "demosaic", "chromatic", "cats_eye")
#: Ranges of the chromatic aberration draw: axial shift of the red/blue CoC radius in px (at the rendered size),
#: lateral magnification difference of red/blue against green.
AXIAL_CA_PX = (0.2, 1.0)
LATERAL_CA = (0.0, 0.003)

_SPLIT_CODE = {s: i for i, s in enumerate(SPLITS)}


@dataclass
class SynthSample:
    """One rendered sample.

    Attributes
    ----------
    image : ndarray (H, W, 3) float32, sRGB in [0, 1]
    blur_mask : ndarray (H, W) float32 in {0, 1}; 1 = out of focus (coc_radius > SHARP_RADIUS)
    coc_radius : ndarray (H, W) float32, CoC disk radius in px
    sigma : ndarray (H, W) float32, equivalent Gaussian σ in px
    kind : str, the scene kind (see :data:`defocus.synth.scenes.KINDS`)
    psf : str, "disk" or "gaussian"
    """

    image: np.ndarray
    blur_mask: np.ndarray
    coc_radius: np.ndarray
    sigma: np.ndarray
    kind: str
    psf: str = "disk"


def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (tuple, list)):
        h, w = int(size[0]), int(size[1])
    else:
        h = w = int(size)
    if h < 32 or w < 32:
        raise ValueError(f"size must be at least 32 px, not {size!r}")
    return h, w


def _choose_kind(rng: np.random.Generator, kinds: list[str]) -> str:
    p = np.array([KIND_WEIGHTS[k] for k in kinds], dtype=np.float64)
    return kinds[int(rng.choice(len(kinds), p=p / p.sum()))]


def render_sample(
    rng: np.random.Generator,
    size: int | tuple[int, int] = 320,
    split: str = "train",
    kind: str | None = None,
    *,
    kinds: list[str] | tuple[str, ...] | None = None,
    shared: str | os.PathLike | None = None,
    camera: bool = True,
    realism: Realism = Realism(),
) -> SynthSample:
    """Render one random synthetic defocus sample.

    Parameters
    ----------
    rng : numpy.random.Generator
        All randomness is drawn from it: equal generator states give equal samples.
    size : int or (H, W)
        Output size in px. Scenes are built square at max(H, W) and centre-cropped to (H, W).
    split : {"train", "val", "test"}
        Which source photos to use (disjoint, see :func:`defocus.synth.sources.split_of`).
    kind : str, optional
        Force a scene kind; by default one is drawn from :data:`~defocus.synth.scenes.KIND_WEIGHTS` (restricted to
        ``kinds`` if given).
    shared : path, optional
        The shared data folder (default ``$DEFOCUS_SHARED`` or ``shared/`` beside the repository).
    camera : bool
        Apply the camera model (noise, JPEG, ...); false gives the clean optical rendering (8-bit quantised).
    realism : Realism
        Optional lens and camera effects (none by default).

    Returns
    -------
    SynthSample
    """
    return render_scaled(rng, (1.0,), size, split, kind, kinds=kinds, shared=shared, camera=camera,
                         realism=realism)[0]


def render_scaled(
    rng: np.random.Generator,
    scales: tuple[float, ...] | list[float],
    size: int | tuple[int, int] = 320,
    split: str = "train",
    kind: str | None = None,
    *,
    kinds: list[str] | tuple[str, ...] | None = None,
    shared: str | os.PathLike | None = None,
    camera: bool = True,
    realism: Realism = Realism(),
) -> list[SynthSample]:
    """One random scene rendered once per entry of ``scales``, with every CoC radius multiplied by that factor.

    Scale 0 gives the all-in-focus photo of the scene (the sharp reference of a deblurring benchmark), 1 the sample
    :func:`render_sample` returns for the same generator state, K > 1 the scene through a lens with K times the blur
    (the reference of defocus magnification). Every rendering goes through the same camera draw (equal noise, JPEG
    quality, ...), so the renderings differ only in their blur. Arguments as for :func:`render_sample`.

    Returns
    -------
    list of SynthSample, one per scale, in the order given.
    """
    h, w = _size_hw(size)
    side = max(h, w)
    sources = find_sources(split, shared)
    possible = available_kinds(sources)
    if kind is None:
        pool = [k for k in (kinds or KINDS) if k in possible]
        if not pool:
            raise ValueError(f"none of the scene kinds {list(kinds or KINDS)} can be built from the {split} sources")
        kind = _choose_kind(rng, pool)
    elif kind not in KINDS:
        raise ValueError(f"scene kind must be one of {KINDS}, not {kind!r}")
    psf_names = list(PSF_WEIGHTS)
    psf = psf_names[int(rng.choice(len(psf_names), p=list(PSF_WEIGHTS.values())))]
    scene = build_scene(rng, sources, side, kind)
    if realism.lens_psfs > 0 and psf == "disk" and rng.random() < realism.lens_psfs:  # drawn after the scene: same scene
        psf = _pick_lens_profile(rng)
    cats_eye = bool(realism.cats_eye > 0 and psf == "disk" and rng.random() < realism.cats_eye)
    chroma = None
    if realism.chromatic > 0 and rng.random() < realism.chromatic:
        chroma = (float(rng.uniform(*AXIAL_CA_PX)) * float(rng.choice([-1.0, 1.0])), float(rng.uniform(*LATERAL_CA)))
    camera_state = rng.bit_generator.state
    top, left = (side - h) // 2, (side - w) // 2
    samples = []
    for scale in scales:
        if not (np.isfinite(scale) and scale >= 0):
            raise ValueError(f"blur scales must be finite and >= 0, not {scale!r}")
        layers = [replace(layer, signed_radius=np.asarray(layer.signed_radius, np.float32) * np.float32(scale))
                  for layer in scene.layers] if scale != 1.0 else scene.layers
        result = render(layers, psf)
        if cats_eye:
            result = replace(result, image=_with_cats_eyes(layers, result.image))
        if chroma is not None:  # red and blue through the same lens as green, off its focus
            lens = _cats_eye_lens if cats_eye else (lambda ls: render(ls, psf).image)
            result = replace(result, image=_with_chromatic_aberration(lens, layers, result.image, *chroma))
        rng.bit_generator.state = camera_state
        image = apply_camera(rng, result.image, effects=camera, demosaic=realism.demosaic)
        image = np.ascontiguousarray(image[top : top + h, left : left + w])
        radius = np.ascontiguousarray(result.radius[top : top + h, left : left + w], dtype=np.float32)
        samples.append(SynthSample(
            image=image,
            blur_mask=(radius > SHARP_RADIUS).astype(np.float32),
            coc_radius=radius,
            sigma=radius_to_sigma(radius),
            kind=kind,
            psf=psf,
        ))
    return samples


def _with_chromatic_aberration(lens, layers, image: np.ndarray, axial: float, lateral: float) -> np.ndarray:
    """``image`` (green's rendering, ``lens(layers)``) with red and blue rendered by ``lens`` ``±axial`` px of signed
    CoC radius off green's focus and magnified by ``1 ± lateral`` about the centre."""
    image = image.copy()
    h, w = image.shape[:2]
    for channel, sign in ((0, 1.0), (2, -1.0)):
        shifted = [replace(layer, signed_radius=np.asarray(layer.signed_radius, np.float32) + np.float32(sign * axial))
                   for layer in layers]
        plane = np.ascontiguousarray(lens(shifted)[..., channel])
        zoom = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, 1.0 + sign * lateral)
        image[..., channel] = cv2.warpAffine(plane, zoom, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return image


def _interpolation_weights(position: np.ndarray, count: int, *, cyclic: bool) -> list[np.ndarray]:
    """Linear-interpolation weights of ``count`` nodes at 0, 1, … for every value of ``position`` (cyclic: node
    ``count`` is node 0 again); they sum to 1 at every pixel."""
    low = np.floor(position)
    frac = (position - low).astype(np.float32)
    low = low.astype(np.int64)
    high = low + 1
    if cyclic:
        low, high = low % count, high % count
    else:
        low, high = np.clip(low, 0, count - 1), np.clip(high, 0, count - 1)
    return [np.where(low == k, 1.0 - frac, 0.0).astype(np.float32) + np.where(high == k, frac, 0.0).astype(np.float32)
            for k in range(count)]


def _cats_eye_lens(layers) -> np.ndarray:
    """The linear image of ``layers`` through a disk-PSF lens with cat's eyes away from the centre."""
    return _with_cats_eyes(layers, render(layers, "disk").image)


def _with_cats_eyes(layers, image: np.ndarray) -> np.ndarray:
    """``image`` (the disk-PSF rendering) with its PSF turned into cat's eyes away from the centre: the clipping disc's
    shift grows with the squared distance from the centre (0 there, the largest of :data:`~.psf.CATS_EYE_SHIFTS` at the
    corners) and points along the pixel's direction; each pixel interpolates the renderings of the flanking kernels."""
    from .psf import CATS_EYE_DIRECTIONS, CATS_EYE_SHIFTS

    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x - (w - 1) / 2, y - (h - 1) / 2
    edge = (x * x + y * y) / np.float32(((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
    by_shift = _interpolation_weights(edge * len(CATS_EYE_SHIFTS), len(CATS_EYE_SHIFTS) + 1, cyclic=False)
    by_direction = _interpolation_weights((np.arctan2(y, x) % (2 * np.pi)) / (2 * np.pi / CATS_EYE_DIRECTIONS),
                                          CATS_EYE_DIRECTIONS, cyclic=True)
    out = by_shift[0][..., None] * image
    for level, shift in enumerate(CATS_EYE_SHIFTS, start=1):
        for k in range(CATS_EYE_DIRECTIONS):
            weight = by_shift[level] * by_direction[k]
            if weight.any():
                out += weight[..., None] * render(layers, f"cats_eye:{k}:{shift}").image
    return out


def _pick_lens_profile(rng: np.random.Generator) -> str:
    from .psf import LENS_PROFILES

    names = list(LENS_PROFILES)
    return names[int(rng.integers(len(names)))]


def sample_rng(seed: int, index: int, split: str = "train", epoch: int = 0) -> np.random.Generator:
    """The generator of sample ``index`` of a dataset: independent streams per (seed, split, epoch, index)."""
    return np.random.default_rng([int(seed), _SPLIT_CODE.get(split, 0), int(epoch), int(index)])


class SynthDataset:
    """Synthetic defocus samples rendered on the fly, deterministic per (seed, split, epoch, index).

    Parameters
    ----------
    length : int
        Number of samples (indices 0 … length − 1).
    size : int or (H, W)
        Sample size in px (default 320).
    seed : int
    split : {"train", "val", "test"}
        Source photos to draw from (held-out photos for "val"/"test").
    kinds : sequence of str, optional
        Restrict the scene kinds.
    shared : path, optional
        The shared data folder.
    realism : Realism, optional
        Optional lens and camera effects (none by default).

    ``dataset[i]`` is a dict of float32 tensors: ``image`` 3×H×W (sRGB in [0, 1]), ``mask`` 1×H×W (1 = out of
    focus), ``sigma`` 1×H×W and ``radius`` 1×H×W (px). :meth:`sample` gives the :class:`SynthSample` with its kind.
    Call :meth:`set_epoch` to draw fresh scenes for every epoch of training while staying reproducible.
    """

    def __init__(self, length: int, size: int | tuple[int, int] = 320, seed: int = 0, split: str = "train",
                 kinds: list[str] | tuple[str, ...] | None = None, shared: str | os.PathLike | None = None,
                 realism: Realism = Realism()):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        self.length = int(length)
        self.size = size
        self.seed = int(seed)
        self.split = split
        self.kinds = tuple(kinds) if kinds else None
        self.shared = shared
        self.realism = realism
        self.epoch = 0
        find_sources(split, shared)  # fail early (DefocusError) if the shared data folder is missing

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Use the scenes of ``epoch`` (0 by default)."""
        self.epoch = int(epoch)

    def sample(self, index: int) -> SynthSample:
        """The rendered sample ``index`` as numpy arrays."""
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length}")
        index %= self.length
        rng = sample_rng(self.seed, index, self.split, self.epoch)
        return render_sample(rng, self.size, self.split, kinds=self.kinds, shared=self.shared, realism=self.realism)

    def __getitem__(self, index: int) -> dict:
        # A map-style dataset for torch's DataLoader; torch is imported here so that the numpy engine (and the CLI)
        # start without it.
        import torch

        _single_thread_in_workers()
        s = self.sample(index)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(s.image.transpose(2, 0, 1))),
            "mask": torch.from_numpy(s.blur_mask[None]),
            "sigma": torch.from_numpy(s.sigma[None]),
            "radius": torch.from_numpy(s.coc_radius[None]),
        }


_THREADS_SET = False


def _single_thread_in_workers() -> None:
    """Inside a DataLoader worker process, let OpenCV use one thread: the workers already use every core, and
    OpenCV's own thread pool on top of them only adds contention."""
    global _THREADS_SET
    import torch.utils.data

    if not _THREADS_SET and torch.utils.data.get_worker_info() is not None:
        import cv2

        cv2.setNumThreads(1)
        _THREADS_SET = True


def write_dataset(out_dir: str | os.PathLike, n: int, seed: int = 0, size: int | tuple[int, int] = 320,
                  split: str = "train", *, kinds: list[str] | tuple[str, ...] | None = None,
                  shared: str | os.PathLike | None = None, force: bool = False, progress: bool = False) -> None:
    """Render ``n`` samples of ``SynthDataset(n, size, seed, split)`` to a folder.

    Layout (NAME = ``synth_{index:06d}``): ``images/NAME.png`` (8-bit sRGB), ``masks/NAME.png`` (255 = out of focus),
    ``sigma/NAME.npy`` and ``radius/NAME.npy`` (float32 px), and ``samples.csv`` (name, kind, psf). Existing files are
    refused unless ``force``.
    """
    from ..io import atomic_write, write_image, write_npy, write_png8

    out = Path(out_dir)
    ds = SynthDataset(n, size, seed, split, kinds=kinds, shared=shared)
    names = [f"synth_{i:06d}" for i in range(n)]
    if not force:
        from ..errors import OutputExistsError

        for name in names:
            for p in (out / "images" / f"{name}.png", out / "masks" / f"{name}.png"):
                if p.exists():
                    raise OutputExistsError(f"{p}: exists already (use --force to overwrite)")
    rows = []
    indices = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"synth {split}", unit="img")
    for i in indices:
        s = ds.sample(i)
        name = names[i]
        write_image(out / "images" / f"{name}.png", s.image, force=force)
        write_png8(out / "masks" / f"{name}.png", s.blur_mask, force=force)
        write_npy(out / "sigma" / f"{name}.npy", s.sigma, force=force)
        write_npy(out / "radius" / f"{name}.npy", s.coc_radius, force=force)
        rows.append((name, s.kind, s.psf))

    def _csv(f):
        text = _io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["name", "kind", "psf"])
        writer.writerows(rows)
        f.write(text.getvalue().encode())

    atomic_write(out / "samples.csv", _csv, force=force)
