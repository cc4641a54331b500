"""The synthetic test set of the benchmarks as a dataset: scenes of :mod:`defocus.synth` rendered on demand.

``open_dataset("synth", None)`` is the set every synthetic figure of ``docs/benchmarks.md`` was measured on
("synth_test"): 60 scenes of 320×320 px, seed 777, built only from the photos of the ``test`` split (held out of
training and validation). Scene ``i`` depends on (seed, split, i) alone, so the first ``n`` scenes of a larger set
are the scenes of a smaller one. Nothing is written to disk; a scene is rendered when its image or ground truth is
first asked for, and the last two rendered are kept (an evaluation reads a scene's ground truth, then its image).

On the command line: ``defocus evaluate --method lbp --dataset synth`` (``--root`` names another shared data
folder; ``--dataset-option n=16`` etc. set the options below).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from .core import Dataset, as_choice

#: The benchmarks' synthetic test set.
BENCHMARK_SCENES, BENCHMARK_SIZE, BENCHMARK_SEED = 60, 320, 777

#: Synthetic σ ground truth covers the whole frame and is σ already: the ``rtf`` protocol drops no columns (RTF's
#: 20 columns belong to that dataset's borders) and compares σ with σ.
_DME_SCORING = {"drop_right": 0, "gt_units": "sigma", "lookup": "linear"}


@lru_cache(maxsize=2)
def _render(index: int, size: int, seed: int, split: str, shared: str | None, realism=None):
    from ..synth import SynthDataset
    from ..synth.dataset import Realism

    return SynthDataset(index + 1, size=size, seed=seed, split=split, shared=shared,
                        realism=realism or Realism()).sample(index)


@dataclass(frozen=True)
class SynthSceneSample:
    """One synthetic scene; the same interface as :class:`defocus.data.Sample` (no files behind it)."""

    name: str
    index: int
    size: int
    seed: int
    split: str
    shared: str | None = None
    task: str = "dbd"
    target_path: None = None
    realism: Any = None

    def _scene(self):
        return _render(self.index, self.size, self.seed, self.split, self.shared, self.realism)

    def image(self) -> np.ndarray:
        """The rendered photo, float32 RGB (size, size, 3) in [0, 1]."""
        return self._scene().image

    def blur_mask(self) -> np.ndarray:
        """float32 (size, size) in {0, 1}, 1 = out of focus (CoC radius above :data:`defocus.synth.SHARP_RADIUS`)."""
        return self._scene().blur_mask

    def sigma(self) -> np.ndarray:
        """Gaussian σ in px, float32 (size, size)."""
        return self._scene().sigma

    def radius(self) -> np.ndarray:
        """CoC disk radius in px, float32 (size, size)."""
        return self._scene().coc_radius


def _as_int(value: Any, option: str, lowest: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number != float(value) or number < lowest:
        raise DatasetError(f"option {option}={value!r}: expected a whole number >= {lowest}")
    return number


def open_synth(root=None, n: int = BENCHMARK_SCENES, size: int = BENCHMARK_SIZE, seed: int = BENCHMARK_SEED,
               split: str = "test", task: str = "dbd", lens_psfs: float = 0.0, demosaic: float = 0.0,
               chromatic: float = 0.0, cats_eye: float = 0.0) -> Dataset:
    """The benchmarks' synthetic test set (or another split, seed or size of the same engine).

    Parameters
    ----------
    root : str or Path, optional
        The shared data folder whose photos and masks the scenes are built from (default: the one
        :mod:`defocus.synth` finds, ``$DEFOCUS_SHARED`` or ``shared/`` beside the checkout).
    n : int
        Number of scenes (default 60).
    size : int
        Side of the square scenes in px (default 320).
    seed : int
        Default 777, the benchmarks' seed.
    split : {"test", "val", "train"}
        Which source photos; ``"test"`` photos are held out of training and validation.
    task : {"dbd", "dme"}
        Score blur masks (DBD) or σ maps (DME); ``defocus evaluate --method`` picks the method's task.
    lens_psfs, demosaic, chromatic, cats_eye : float
        The engine's optional realism (:class:`defocus.synth.dataset.Realism`), probabilities in [0, 1]; default 0.

    Returns
    -------
    Dataset
        Named ``synth_<split>`` (``"synth_test"``; ``synth_<split>_realism`` with realism options), samples ``synth_0000`` …; for DME its ``protocol_defaults``
        make the ``rtf`` protocol compare σ over the whole frame.
    """
    n = _as_int(n, "n", 1)
    size = _as_int(size, "size", 16)
    seed = _as_int(seed, "seed", 0)
    split = as_choice(split, "split", ("test", "val", "train"))
    task = as_choice(task, "task", ("dbd", "dme"))
    shared = None if root is None or str(root) == "" else str(Path(root).expanduser())
    from ..synth import SynthDataset
    from ..synth.dataset import REALISM_FIELDS, Realism

    try:
        realism = Realism(lens_psfs=float(lens_psfs), demosaic=float(demosaic), chromatic=float(chromatic),
                          cats_eye=float(cats_eye))
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"synth options: {exc}") from None
    SynthDataset(1, size=size, seed=seed, split=split, shared=shared)  # a missing data folder fails here, once
    samples = [SynthSceneSample(f"synth_{i:04d}", i, size, seed, split, shared, task, realism=realism)
               for i in range(n)]
    extra = realism != Realism()
    return Dataset(samples, name=f"synth_{split}" + ("_realism" if extra else ""), task=task,
                   root=Path(shared or "."), kind="synth",
                   layout=f"{n} scenes of {size} px rendered from the {split} photos, seed {seed}"
                          + "".join(f", {k} {getattr(realism, k)}" for k in REALISM_FIELDS if getattr(realism, k)),
                   protocol_defaults=_DME_SCORING if task == "dme" else {})
