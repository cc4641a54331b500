"""Validation during training: held-out synthetic scenes and the real CUHK samples in ``data/real`` of the shared folder.

Maps come from :func:`defocus.nets.predict.predict_blur`, the path ``defocus detect`` runs (working-size
network, guided-filter upsampling), so validation scores are the shipped detector's scores. Scores use
:func:`defocus.evaluate.evaluate_maps` with the ``ddffnet`` protocol (MAE of the continuous map; Fβ, β² = 0.3, at
threshold 0.5 with the blurred region positive; IoU). The real sets are read with the CUHK loader of
:mod:`defocus.data`, which converts their ground truth to our polarity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

#: name -> (folder of ``data/real``, loader options): CUHK-TE-1 at 320 px and the CUHK defocus samples.
REAL_SETS = {
    "cuhk_te1_320": ("cuhk_te1_320", {}),
    "cuhk_samples": ("cuhk_samples", {"subset": "defocus"}),
}


def shared_real_dir() -> Path:
    """``data/real`` of the shared folder (:func:`defocus.paths.shared_dir`; may not exist)."""
    from ..paths import shared_dir

    return shared_dir() / "data" / "real"


def load_real_sets(root: Path | None = None) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """The real validation sets present on this machine: name -> [(stem, image H×W×3, blur GT H×W in [0, 1])]."""
    from ..data import open_dataset

    root = root or shared_real_dir()
    sets = {}
    for name, (folder, options) in REAL_SETS.items():
        if (root / folder).is_dir():
            items = [(str(s.name), s.image(), s.blur_mask()) for s in open_dataset("cuhk", root / folder, **options)]
            if items:
                sets[name] = items
    return sets


def load_synth_set(n: int, size: int, seed: int = 20231) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``n`` held-out synthetic scenes (split "val": photos never used for training) at ``size`` px."""
    from ..synth import SynthDataset

    ds = SynthDataset(n, size=size, seed=seed, split="val")
    out = []
    for i in range(n):
        s = ds.sample(i)
        out.append((f"synth_{i:04d}", s.image, s.blur_mask))
    return out


def score(preds: list[np.ndarray], gts: list[np.ndarray], names: list[str]) -> dict:
    """MAE / Fβ / IoU of blur maps against blur GT, ``ddffnet`` protocol."""
    from ..evaluate import evaluate_maps

    res = evaluate_maps(list(zip(names, preds)), list(zip(names, gts)), protocol="ddffnet")
    out = {k: float(v) for k, v in res.summary.items() if isinstance(v, (int, float)) and k in ("mae", "fbeta", "iou")}
    out["metrics"] = "ddffnet"
    return out


def validate(model: torch.nn.Module, sets: dict[str, list], size: int, device: str = "cpu") -> dict[str, dict]:
    """Scores per validation set: name -> {"mae", "fbeta", "iou", "metrics", "n"}; ``size`` is the working size."""
    from ..nets.predict import predict_blur

    was_training = model.training
    model.eval()
    results = {}
    for name, items in sets.items():
        preds = [predict_blur(model, img, working_size=size, device=device) for _, img, _ in items]
        results[name] = {**score(preds, [g for _, _, g in items], [n for n, _, _ in items]), "n": len(items)}
    model.train(was_training)
    return results


def load_synth_sigma_set(n: int, size: int, seed: int = 20231) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``n`` held-out synthetic scenes (split "val") at ``size`` px with their σ maps: [(name, image, σ px)]."""
    from ..synth import SynthDataset

    ds = SynthDataset(n, size=size, seed=seed, split="val")
    return [(f"synth_{i:04d}", s.image, s.sigma) for i, s in ((i, ds.sample(i)) for i in range(n))]


def validate_defocus(model: torch.nn.Module, sets: dict[str, list], size: int, device: str = "cpu") -> dict[str, dict]:
    """MAE and RMSE in σ px per validation set of defocus maps (:func:`defocus.nets.predict.predict_defocus`, the
    path ``defocus estimate`` runs): name -> {"mae_sigma", "rmse_sigma", "n"}."""
    from ..nets.predict import predict_defocus

    was_training = model.training
    model.eval()
    results = {}
    for name, items in sets.items():
        err = [predict_defocus(model, img, working_size=size, device=device) - sigma for _, img, sigma in items]
        results[name] = {"mae_sigma": float(np.mean([np.abs(e).mean() for e in err])),
                         "rmse_sigma": float(np.sqrt(np.mean([(e ** 2).mean() for e in err]))), "n": len(items)}
    model.train(was_training)
    return results
