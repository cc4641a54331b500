"""Validation during training: held-out synthetic scenes and the real CUHK samples in ``shared/data/real``.

Scores use :func:`defocus.evaluate.evaluate_maps` with the ``ddffnet`` protocol (MAE of the continuous map; Fβ,
β² = 0.3, at threshold 0.5 with the blurred region positive; IoU). If that module cannot be imported, MAE and
F@0.5 are computed here with the same definitions (``"metrics": "inline"`` in the log).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

REAL_SETS = {
    # name: (folder, image glob, GT folder, GT suffix, GT polarity)
    "cuhk_te1_320": ("cuhk_te1_320", "*.bmp", "gt", ".bmp", "focus"),
    "cuhk_samples": ("cuhk_samples", "out_of_focus*.jpg", "gt", ".png", "blur"),
}


def shared_real_dir() -> Path:
    """``shared/data/real`` beside the checkout (may not exist)."""
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "real"


def load_real_sets(root: Path | None = None) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """The real validation sets present on this machine: name -> [(stem, image H×W×3, blur GT H×W in [0, 1])]."""
    from ..io import read_image, read_map

    root = root or shared_real_dir()
    sets = {}
    for name, (folder, pattern, gt_dir, gt_ext, polarity) in REAL_SETS.items():
        d = root / folder
        items = []
        for img_path in sorted((d / "images").glob(pattern)):
            gt_path = d / gt_dir / f"{img_path.stem}{gt_ext}"
            if gt_path.exists():
                gt = read_map(gt_path)
                items.append((img_path.stem, read_image(img_path), 1.0 - gt if polarity == "focus" else gt))
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


@torch.no_grad()
def predict_working_size(model: torch.nn.Module, image: np.ndarray, size: int, device: str = "cpu") -> np.ndarray:
    """Blur probability at the image's size: the model runs on a ``size``×``size`` resize, bilinearly upsampled."""
    h, w = image.shape[:2]
    x = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) if (h, w) != (size, size) else image
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(device)
    p = torch.sigmoid(model(t))[0, 0].float().cpu().numpy()
    return cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) if (h, w) != (size, size) else p


def _inline_scores(preds: list[np.ndarray], gts: list[np.ndarray]) -> dict:
    maes, fs = [], []
    for p, g in zip(preds, gts):
        maes.append(float(np.abs(p - (g > 0.5)).mean()))
        pb, gb = p >= 0.5, g > 0.5
        tp = float((pb & gb).sum())
        prec = tp / max(pb.sum(), 1)
        rec = tp / max(gb.sum(), 1)
        fs.append(1.3 * prec * rec / max(0.3 * prec + rec, 1e-12))
    return {"mae": float(np.mean(maes)), "fbeta": float(np.mean(fs)), "metrics": "inline"}


def score(preds: list[np.ndarray], gts: list[np.ndarray], names: list[str]) -> dict:
    """MAE / Fβ (and IoU) of blur maps against blur GT, ``ddffnet`` protocol."""
    try:
        from ..evaluate import evaluate_maps
    except ImportError:
        return _inline_scores(preds, gts)
    res = evaluate_maps(list(zip(names, preds)), list(zip(names, gts)), protocol="ddffnet")
    out = {k: float(v) for k, v in res.summary.items() if isinstance(v, (int, float)) and k in ("mae", "fbeta", "iou")}
    out["metrics"] = "ddffnet"
    return out


def validate(model: torch.nn.Module, sets: dict[str, list], size: int, device: str = "cpu") -> dict[str, dict]:
    """Scores per validation set: name -> {"mae", "fbeta", "iou", "n"}."""
    was_training = model.training
    model.eval()
    results = {}
    for name, items in sets.items():
        preds = [predict_working_size(model, img, size, device) for _, img, _ in items]
        results[name] = {**score(preds, [g for _, _, g in items], [n for n, _, _ in items]), "n": len(items)}
    model.train(was_training)
    return results
