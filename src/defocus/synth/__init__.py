"""Synthetic defocus: real photos re-rendered through a thin lens, with exact blur ground truth.

The engine behind every bundled model (the real DBD training sets cannot be redistributed). Main entry points:

* :func:`render_sample` — one random sample (image, blur mask, CoC radius map, σ map, scene kind);
* :func:`render_scaled` — one scene rendered with its blur scaled (×0: the sharp photo; ×K: K times the blur);
* :class:`SynthDataset` — the same as a PyTorch dataset, deterministic per (seed, index);
* :func:`write_dataset` — a folder of PNG/npy files (also ``defocus synth --out DIR --n N --seed S``).

Building blocks: :mod:`.psf` (disk and Gaussian PSFs), :mod:`.render` (sRGB ↔ linear, thin lens, layered
occlusion-aware compositing), :mod:`.scenes` (scene layouts), :mod:`.camera` (noise, JPEG, ...), :mod:`.sources`
(the shared photos and masks, split into train/val/test). See docs/synth.md.
"""

from .dataset import (SHARP_RADIUS, SynthDataset, SynthSample, render_sample, render_scaled, sample_rng,
                      write_dataset)
from .render import Layer, ThinLens, linear_to_srgb, render, srgb_to_linear
from .scenes import KINDS

__all__ = [
    "KINDS",
    "SHARP_RADIUS",
    "Layer",
    "SynthDataset",
    "SynthSample",
    "ThinLens",
    "linear_to_srgb",
    "render",
    "render_sample",
    "render_scaled",
    "sample_rng",
    "srgb_to_linear",
    "write_dataset",
]
