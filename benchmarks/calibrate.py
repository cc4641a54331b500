"""Fit, choose and check the calibration of every bundled blur-detection network (docs/calibration.md).

Data — synthetic scenes of the ``val`` photos only, at seeds that training validation does not use (it uses
20231), so the scenes are held out of training and of model selection:

* ``fit``: ``--fit`` scenes (seed 4101): temperature + bias (Platt) on the logits, and isotonic regression
  (:mod:`defocus.nets.calibration`), both fitted on the working-size probability against the blur mask;
* ``choose``: ``--choose`` scenes (seed 4102): of the two calibrations, those that lower both the MAE (protocol
  ``ddffnet``, on the full pipeline's maps) and the ECE (15 bins, working size) of the raw probability there, the
  one with the lower MAE is proposed; where neither does, none;
  ``sharp`` (temperature + bias fitted to the MAE on ``fit``, not a calibration) is shown for comparison, never
  chosen; ``decisive`` (the temperature alone fitted to the MAE on ``fit``, the threshold kept at 0.5) is proposed
  as the entry's ``decisive=`` map where it lowers the MAE of ``choose``;
* checks, never used to fit or choose: ``synth_test`` (60 scenes of the test photos, seed 777) and the shared real
  samples ``cuhk_samples`` (defocus images) and ``cuhk_te1_320``.

Prints one Markdown table (per network and set: ECE and MAE / Fβ / IoU raw, and with each candidate) and the chosen
``calibration=`` literal per network; draws reliability diagrams of the ``choose`` part into ``--plots``.

    nice python benchmarks/calibrate.py --plots docs/img                  # every bundled network
    nice python benchmarks/calibrate.py --networks light-dffnet --fit 16 --choose 16 --synth 8
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ("light-dffnet", "dffnet", "d-dffnet", "r2mrf", "br2net", "efenet", "defusionnet")
FIT_SEED, CHOOSE_SEED = 4101, 4102


def sets(shared: Path, n_fit: int, n_choose: int, n_test: int) -> list[tuple[str, list]]:
    """(label, [(name, image, blur mask)]) of the fit, choose and check sets, read once."""
    from defocus.data import open_dataset

    real = shared / "data" / "real"
    specs = [("val_fit", "synth", shared, {"n": n_fit, "split": "val", "seed": FIT_SEED}),
             ("val_choose", "synth", shared, {"n": n_choose, "split": "val", "seed": CHOOSE_SEED}),
             ("synth_test", "synth", shared, {"n": n_test}),
             ("cuhk_samples", "cuhk", real / "cuhk_samples", {"subset": "defocus"}),
             ("cuhk_te1_320", "cuhk", real / "cuhk_te1_320", {})]
    out = []
    for label, kind, root, options in specs:
        ds = open_dataset(kind, root, **options)
        out.append((label, [(s.name, s.image(), s.blur_mask()) for s in ds]))
        print(f"{label}: {len(ds)} samples ({ds.layout})", file=sys.stderr)
    return out


def final_map(prob: np.ndarray, image: np.ndarray, detector, calibration) -> np.ndarray:
    """What ``detector.predict`` returns for the working-size probability ``prob`` under ``calibration``."""
    from defocus.filters.guided import guided_upsample
    from defocus.nets.calibration import apply_calibration

    h, w = image.shape[:2]
    radius = int(round(detector.radius_scale * max(h, w) / detector.working_size)) if detector.refine else 0
    return guided_upsample(apply_calibration(prob, calibration), image, radius, detector.eps)


def working_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """The blur mask at the working size (area filter, then >= 0.5), to pair with working-size probabilities."""
    import cv2

    if mask.shape == (size, size):
        return mask >= 0.5
    return cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) >= 0.5


def scores(items, probs, detector, calibration) -> dict:
    """ECE (working size, 15 bins) and ddffnet MAE / Fβ / IoU of the full-resolution maps."""
    from defocus.evaluate import evaluate_maps
    from defocus.nets.calibration import apply_calibration, reliability

    size = detector.working_size
    p = np.concatenate([apply_calibration(q, calibration).ravel() for q in probs])
    y = np.concatenate([working_mask(m, size).ravel() for _, _, m in items])
    preds = {name: final_map(q, img, detector, calibration) for (name, img, _), q in zip(items, probs)}
    res = evaluate_maps(preds, {name: m for name, _, m in items}, "ddffnet")
    rel = reliability(p, y)
    return {"ece": rel["ece"], "mae": res.summary["mae"], "fbeta": res.summary["fbeta"], "iou": res.summary["iou"],
            "reliability": rel}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared/ folder")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--fit", type=int, default=100, help="val scenes to fit on (seed 4101)")
    parser.add_argument("--choose", type=int, default=100, help="val scenes to choose on (seed 4102)")
    parser.add_argument("--synth", type=int, default=60, help="synth_test scenes of the check")
    parser.add_argument("--knots", type=int, default=24, help="isotonic knots")
    parser.add_argument("--plots", type=Path, help="write reliability_<network>.png here")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import defocus
    from defocus.io import atomic_write
    from defocus.nets.calibration import fit_isotonic, fit_temperature, fit_temperature_mae, logit
    from defocus.nets.models import working_size_probability

    data = sets(args.shared, args.fit, args.choose, args.synth)
    kinds = ("raw", "temp", "iso", "sharp", "decisive")
    lines = ["| Network | Set | Images | " + " | ".join(f"{m} {k}" for m in ("ECE", "MAE", "Fβ", "IoU") for k in kinds)
             + " | chosen |",
             "|---|---|---:|" + "---:|" * 4 * len(kinds) + "---|"]
    chosen: dict[str, object] = {}
    decided: dict[str, object] = {}
    for name in args.networks:
        detector = defocus.load(name, calibrate=False)
        t0 = time.perf_counter()
        probs = {label: [working_size_probability(detector.network, img, detector.working_size)
                         for _, img, _ in items] for label, items in data}
        print(f"{name}: {time.perf_counter() - t0:.0f} s of inference", file=sys.stderr)
        fit_items, fit_probs = data[0][1], probs["val_fit"]
        y = np.concatenate([working_mask(m, detector.working_size).ravel() for _, _, m in fit_items])
        p = np.concatenate([q.ravel() for q in fit_probs])
        candidates = {"raw": None, "temp": fit_temperature(logit(p), y), "iso": fit_isotonic(p, y, knots=args.knots),
                      "sharp": fit_temperature_mae(logit(p), y),
                      "decisive": fit_temperature_mae(logit(p), y, bias=False)}
        choose = {k: scores(data[1][1], probs["val_choose"], detector, c) for k, c in candidates.items()}
        # a calibration is kept only where it lowers both the MAE and the ECE of the choose part; "sharp" (fitted to
        # the MAE, not a calibration) is shown, never chosen
        better = [k for k in ("temp", "iso") if choose[k]["mae"] < choose["raw"]["mae"]
                  and choose[k]["ece"] < choose["raw"]["ece"]]
        best = min(better, key=lambda k: choose[k]["mae"]) if better else "raw"
        chosen[name] = candidates[best]
        decided[name] = candidates["decisive"] if choose["decisive"]["mae"] < choose["raw"]["mae"] else None
        for label, items in data:
            s = choose if label == "val_choose" else {k: scores(items, probs[label], detector, c)
                                                       for k, c in candidates.items()}
            row = [name, label, str(len(items))]
            row += [f"{s[k]['ece']:.4f}" for k in candidates]
            row += [f"{s[k]['mae']:.4f}" for k in candidates]
            row += [f"{s[k]['fbeta']:.4f}" for k in candidates]
            row += [f"{s[k]['iou']:.4f}" for k in candidates]
            row.append(best if label == "val_choose" else "")
            lines.append("| " + " | ".join(row) + " |")
            print(lines[-1], file=sys.stderr)
        print(f"{name}: temp {candidates['temp']}", file=sys.stderr)
        print(f"{name}: iso {candidates['iso']}", file=sys.stderr)
        print(f"{name}: sharp {candidates['sharp']}", file=sys.stderr)
        if args.plots:
            from defocus.evaluate.lineplot import line_chart, png_bytes

            series = []
            for k in candidates:
                r = choose[k]["reliability"]
                series.append((f"{k} (ECE {r['ece']:.3f})", list(r["confidence"]), list(r["accuracy"])))
            img = line_chart(series, xlabel="predicted blur probability", ylabel="fraction out of focus",
                             title=f"{name}: reliability on {args.choose} held-out val scenes (15 bins)",
                             diagonal=True, legend="upper left")
            data_png = png_bytes(img, colours=32)
            path = atomic_write(args.plots / f"reliability_{name}.png", lambda f, d=data_png: f.write(d), force=True)
            print(f"wrote {path}", file=sys.stderr)
    table = "\n".join(lines)
    print(table)
    print()
    literals = [f"{n}: calibration={c!r}, decisive={decided[n]!r}" for n, c in chosen.items()]
    print("\n".join(literals))
    if args.out:
        text = table + "\n\n" + "\n".join(literals) + "\n"
        atomic_write(args.out, lambda f: f.write(text.encode("utf-8")), force=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
