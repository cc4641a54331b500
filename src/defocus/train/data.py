"""Training data: synthetic scenes (pre-rendered pool or on the fly) and real labelled folders, with joint
augmentation and a step-indexed, resumable sample order.

Every batch is a pure function of (run seed, step): :class:`StepBatchSampler` draws the sample order from a
per-epoch permutation and gives each sample an augmentation seed derived from its global position, so a run resumed
from a checkpoint at step s sees exactly the batches an uninterrupted run would have seen from step s on.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..io import atomic_write
from ..synth.dataset import REALISM_FIELDS
from .config import Augment, RealData, SynthData

POOL_CHUNK = 100  # scenes per pool file


# ----------------------------------------------------------------------------------------------------------------------
# Augmentation


def _random_warp(shape: tuple[int, int], rng: np.random.Generator, aug: Augment,
                 out_size: int) -> tuple[np.ndarray, float]:
    """One random similarity warp (zoom, stretch, rotate, flip, crop) of an image of ``shape`` (H, W) onto an
    ``out_size`` square: the inverse 2×3 affine matrix (output px → input px) and the mean zoom (output px per
    input px, the factor by which blur sizes grow)."""
    h, w = shape
    lo, hi = aug.scale
    zoom = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    stretch = float(np.exp(rng.uniform(-np.log1p(aug.aspect), np.log1p(aug.aspect)))) if aug.aspect > 0 else 1.0
    sx, sy = zoom * stretch ** 0.5, zoom / stretch ** 0.5  # output px per input px along each output axis
    theta = np.deg2rad(rng.uniform(-aug.rotate, aug.rotate)) if aug.rotate > 0 else 0.0
    flip = rng.random() < aug.hflip
    # Centre of the crop in the input: anywhere that keeps the (unrotated) crop inside, else the image centre.
    half_x, half_y = out_size / (2 * sx), out_size / (2 * sy)
    cx = rng.uniform(half_x, w - half_x) if w > 2 * half_x else w / 2
    cy = rng.uniform(half_y, h - half_y) if h > 2 * half_y else h / 2
    c, s = np.cos(theta), np.sin(theta)
    # Output pixel (u, v) -> input point: centre + R(theta) · diag(±1/sx, 1/sy) · ((u, v) − output centre).
    a = np.array([[c / sx * (-1 if flip else 1), -s / sy], [s / sx * (-1 if flip else 1), c / sy]])
    o = (out_size - 1) / 2.0
    t = np.array([cx - 0.5, cy - 0.5]) - a @ np.array([o, o])
    return np.hstack([a, t[:, None]]).astype(np.float64), zoom


def _warp(plane: np.ndarray, m: np.ndarray, out_size: int) -> np.ndarray:
    return cv2.warpAffine(plane, m, (out_size, out_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)


def augment_pair(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, aug: Augment,
                 out_size: int, sigma: np.ndarray | None = None):
    """Jointly warp (zoom, stretch, rotate, flip, crop) an image and its label; colour-jitter the image.

    Parameters
    ----------
    image : ndarray (H, W, 3) float32 in [0, 1]
    mask : ndarray (H, W) float32 in [0, 1] (1 = out of focus)
    rng : numpy Generator
    aug : Augment
    out_size : int
        Side of the square output crop in px.
    sigma : ndarray (H, W) float32, optional
        A defocus map (Gaussian σ in px) warped with them, its values multiplied by the zoom (a blur of σ input px
        covers σ·zoom output px).

    Returns
    -------
    image : ndarray (out_size, out_size, 3) float32 in [0, 1]
    mask : ndarray (out_size, out_size) float32 in {0, 1} (bilinear warp, then thresholded at 0.5)
    sigma : ndarray (out_size, out_size) float32 σ px — only when ``sigma`` is given
    """
    m, zoom = _random_warp(mask.shape, rng, aug, out_size)
    img = colour_jitter(_warp(image, m, out_size), rng, aug)
    msk = (_warp(mask, m, out_size) > 0.5).astype(np.float32)
    if sigma is None:
        return img, msk
    return img, msk, np.maximum(_warp(sigma, m, out_size), 0.0) * np.float32(zoom)


def colour_jitter(image: np.ndarray, rng: np.random.Generator, aug: Augment) -> np.ndarray:
    """Brightness, contrast and saturation jitter of a float32 RGB image in [0, 1] (result clipped to [0, 1])."""
    img = image * rng.uniform(1 - aug.brightness, 1 + aug.brightness)
    gray = img @ np.array([0.299, 0.587, 0.114], np.float32)
    img = (img - gray.mean()) * rng.uniform(1 - aug.contrast, 1 + aug.contrast) + gray.mean()
    gray = img @ np.array([0.299, 0.587, 0.114], np.float32)
    img = gray[..., None] + (img - gray[..., None]) * rng.uniform(1 - aug.saturation, 1 + aug.saturation)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------------
# Synthetic pool


def _render_chunk(args) -> tuple[int, np.ndarray, np.ndarray, np.ndarray | None]:
    chunk, length, size, seed, with_sigma, realism = args
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    from ..synth import SynthDataset

    ds = SynthDataset(length, size=size, seed=seed, split="train", realism=realism)
    idx = range(chunk * POOL_CHUNK, min(length, (chunk + 1) * POOL_CHUNK))
    images = np.empty((len(idx), size, size, 3), np.uint8)
    masks = np.empty((len(idx), size, size), np.uint8)
    sigmas = np.empty((len(idx), size, size), np.float16) if with_sigma else None
    for j, i in enumerate(idx):
        s = ds.sample(i)
        images[j] = np.round(s.image * 255).astype(np.uint8)
        masks[j] = (s.blur_mask > 0.5).astype(np.uint8)
        if with_sigma:
            sigmas[j] = s.sigma
    return chunk, images, masks, sigmas


def render_pool(folder: str | os.PathLike, synth: SynthData, workers: int = 1, progress: bool = True) -> Path:
    """Render ``synth.length`` training scenes into ``folder`` (chunks of :data:`POOL_CHUNK` as .npy files), with
    their σ maps (float16 px) when ``synth.sigma``.

    Chunks already present (from an interrupted run with the same settings) are kept, so the pool survives a crash.
    Returns the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"length": synth.length, "size": synth.size, "seed": synth.seed, "split": "train"}
    if synth.sigma:  # only then: pools rendered before σ maps existed keep their spec
        spec["sigma"] = True
    for name in REALISM_FIELDS:  # likewise
        if getattr(synth, name):
            spec[name] = getattr(synth, name)
    spec_file = folder / "pool.json"
    if spec_file.exists() and json.loads(spec_file.read_text()) != spec:
        raise ValueError(f"{folder}: holds a pool rendered with other settings ({spec_file.read_text()}); "
                         "use another output folder")
    spec_file.write_text(json.dumps(spec))
    n_chunks = math.ceil(synth.length / POOL_CHUNK)
    todo = [k for k in range(n_chunks) if not (folder / f"mask_{k:04d}.npy").exists()]
    if not todo:
        return folder
    from .progress import progress as progress_bar

    sizes = {k: min(synth.length, (k + 1) * POOL_CHUNK) - k * POOL_CHUNK for k in todo}
    bar = progress_bar(sum(sizes.values()), "render synthetic pool", "img", enabled=progress)
    jobs = [(k, synth.length, synth.size, synth.seed, synth.sigma, synth.realism()) for k in todo]

    def store(result):
        k, images, masks, sigmas = result
        atomic_write(folder / f"img_{k:04d}.npy", lambda f: np.save(f, images), force=True)
        if sigmas is not None:
            atomic_write(folder / f"sigma_{k:04d}.npy", lambda f: np.save(f, sigmas), force=True)
        # written last: its presence marks the chunk complete
        atomic_write(folder / f"mask_{k:04d}.npy", lambda f: np.save(f, masks), force=True)
        bar.update(len(masks))

    if workers <= 1:
        for job in jobs:
            store(_render_chunk(job))
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as ex:
            for result in ex.map(_render_chunk, jobs):
                store(result)
    bar.close()
    return folder


class PoolSource:
    """Pre-rendered synthetic scenes (memory-mapped), as float32 image / mask pairs, or image / mask / σ triples
    with ``sigma=True`` (a pool rendered with ``synth.sigma``)."""

    def __init__(self, folder: str | os.PathLike, length: int, sigma: bool = False):
        self.folder = Path(folder)
        self.length = length
        self.sigma = sigma
        self._chunks: dict[int, tuple[np.ndarray, ...]] = {}

    def __len__(self) -> int:
        return self.length

    def get(self, index: int, epoch: int) -> tuple[np.ndarray, ...]:
        k, j = divmod(index, POOL_CHUNK)
        if k not in self._chunks:
            names = ("img", "mask", "sigma") if self.sigma else ("img", "mask")
            self._chunks[k] = tuple(np.load(self.folder / f"{n}_{k:04d}.npy", mmap_mode="r") for n in names)
        planes = self._chunks[k]
        image, mask = planes[0][j].astype(np.float32) / 255.0, planes[1][j].astype(np.float32)
        return (image, mask, planes[2][j].astype(np.float32)) if self.sigma else (image, mask)


class SynthSource:
    """Synthetic scenes rendered on the fly; each epoch draws new scenes (``SynthDataset.set_epoch``); with
    ``synth.sigma`` their σ maps too."""

    def __init__(self, synth: SynthData):
        from ..synth import SynthDataset

        self.ds = SynthDataset(synth.length, size=synth.size, seed=synth.seed, split="train",
                               realism=synth.realism())
        self.sigma = synth.sigma

    def __len__(self) -> int:
        return len(self.ds)

    def get(self, index: int, epoch: int) -> tuple[np.ndarray, ...]:
        self.ds.set_epoch(epoch)
        s = self.ds.sample(index)
        return (s.image, s.blur_mask, s.sigma) if self.sigma else (s.image, s.blur_mask)


class RealSource:
    """A labelled real folder (:func:`defocus.data.open_dataset`), each photo resized to the working size first,
    as the model sees photos at inference."""

    def __init__(self, real: RealData, working_size: int):
        from ..data import open_dataset

        self.ds = open_dataset(real.kind, real.root, **real.options)
        self.size = working_size
        unlabelled = [s.name for s in self.ds if s.target_path is None]
        if unlabelled:
            from ..errors import DatasetError

            raise DatasetError(f"{real.root}: {len(unlabelled)} image(s) without a mask, e.g. {unlabelled[0]}")

    def __len__(self) -> int:
        return len(self.ds)

    def get(self, index: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        sample = self.ds[index]
        image, mask = sample.image(), sample.blur_mask()
        if mask.shape != image.shape[:2]:
            mask = cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
        size = (self.size, self.size)
        return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
                cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR))


class TrainSet(Dataset):
    """The union of sources (each repeated ``repeat`` times per epoch), augmented.

    Indexed by ``(flat index, epoch, augmentation seed)`` tuples from :class:`StepBatchSampler`; items are dicts with
    ``image`` (3, crop, crop) and ``mask`` (1, crop, crop) float32 tensors, and ``sigma`` (1, crop, crop, σ px of the
    crop) from sources that carry σ maps.
    """

    def __init__(self, sources: list[tuple[object, int]], aug: Augment, crop: int, seed: int):
        self.table = [(si, i) for si, (src, rep) in enumerate(sources) for _ in range(rep) for i in range(len(src))]
        self.sources = [s for s, _ in sources]
        self.aug, self.crop, self.seed = aug, crop, seed

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key) -> dict:
        flat, epoch, aug_seed = key
        si, i = self.table[flat]
        planes = self.sources[si].get(i, epoch)
        rng = np.random.default_rng([self.seed, aug_seed])
        planes = augment_pair(*planes[:2], rng, self.aug, self.crop, *planes[2:])
        item = {"image": torch.from_numpy(np.ascontiguousarray(planes[0].transpose(2, 0, 1))),
                "mask": torch.from_numpy(planes[1][None])}
        if len(planes) > 2:
            item["sigma"] = torch.from_numpy(np.ascontiguousarray(planes[2])[None])
        return item


class StepBatchSampler(Sampler):
    """Batches of ``(flat index, epoch, augmentation seed)`` for steps ``start_step … steps − 1``.

    Sample g of the run (g = (step·world + rank)·batch + i) is entry g mod n of the permutation of epoch g // n
    (seeded by (seed, epoch)), augmented with seed g; so the stream depends only on (seed, step), never on when the
    run was interrupted, and DDP ranks see disjoint samples.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int, steps: int, rank: int = 0,
                 world: int = 1):
        if n <= 0:
            raise ValueError("no training samples")
        self.n, self.batch, self.seed = n, batch_size, seed
        self.start, self.steps, self.rank, self.world = start_step, steps, rank, world
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, 7919, epoch]).permutation(self.n))
        return self._perm[1]

    def __iter__(self):
        for step in range(self.start, self.steps):
            batch = []
            for i in range(self.batch):
                g = (step * self.world + self.rank) * self.batch + i
                epoch, pos = divmod(g, self.n)
                batch.append((int(self._permutation(epoch)[pos]), epoch, g))
            yield batch


# ----------------------------------------------------------------------------------------------------------------------
# Unlabelled real photos (the defocus-map task's second domain)


def unlabelled_photos(shared: str | os.PathLike | None = None) -> list[Path]:
    """Real photos without labels for domain adaptation: every ``data/photos/*/B_shallow_dof`` photo and every masked
    photo of :func:`defocus.synth.sources.find_sources` assigned to the ``train`` split (:func:`split_of`), so the
    val/test photos stay out."""
    from ..synth.sources import IMAGE_SUFFIXES, find_sources, shared_root, split_of

    data = shared_root(shared).resolve() / "data"
    paths = [p for folder in sorted((data / "photos").glob("*/B_shallow_dof")) for p in sorted(folder.iterdir())
             if p.suffix.lower() in IMAGE_SUFFIXES and split_of(folder.parent.name, p.name) == "train"]
    return paths + [m.image for m in find_sources("train", shared).masked]


class PairedRealSet(Dataset):
    """A :class:`TrainSet` whose every item also carries ``real``: an augmented crop (3, crop, crop) of an unlabelled
    real photo, drawn from the item's augmentation seed, the photo first resized so its long side is the working
    size (as the network sees photos at inference). A batch of B items is thus B per domain."""

    def __init__(self, train: TrainSet, photos: list[Path], working_size: int):
        if not photos:
            from ..errors import DatasetError

            raise DatasetError("no unlabelled real photos (data/photos/*/B_shallow_dof or masked photos) found")
        self.train, self.photos, self.size = train, photos, working_size
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.train)

    def _photo(self, k: int) -> np.ndarray:
        if k not in self._cache:
            from ..synth.sources import load_rgb

            img = load_rgb(self.photos[k])
            s = self.size / max(img.shape[:2])
            if s < 1:
                img = cv2.resize(img, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
                                 interpolation=cv2.INTER_AREA)
            self._cache[k] = img
        return self._cache[k]

    def __getitem__(self, key) -> dict:
        item = self.train[key]
        rng = np.random.default_rng([self.train.seed, 104729, key[2]])
        photo = self._photo(int(rng.integers(len(self.photos))))
        real, _ = augment_pair(photo, np.zeros(photo.shape[:2], np.float32), rng, self.train.aug, self.train.crop)
        item["real"] = torch.from_numpy(np.ascontiguousarray(real.transpose(2, 0, 1)))
        return item
