"""Defocus-map (DME) scores on the RTF sample and on a synthetic DME test set, plus timing; prints a table.

Scoring goes through :func:`defocus.evaluate.evaluate_method`:

* RTF (D'Andrès et al. 2016): protocol ``rtf`` as the authors scored it — the last 20 columns dropped, ground-truth
  disk radius ↔ Gaussian σ through the RTF table (:mod:`defocus.units`); MAE in disk-radius px (the paper's unit:
  Karaali 2022 reports 0.169 over all 22 images) and in σ px.
* Synthetic: the first N scenes of the benchmarks' synthetic test set (dataset kind ``synth`` of
  :mod:`defocus.data`: test-split photos, seed 777, 320 px) with its σ ground truth; protocol ``rtf`` with the
  dataset's ``drop_right=0, gt_units="sigma"``; MAE in σ px.

Rows: ``karaali-2022`` (ψ = 100), its ablations ψ = 0 (no E-Net) and the expected-value readout of B-Net's softmax,
optionally other B-Net/E-Net files (``--weights``) and a single-scale B-Net (``--single-scale-bnet``), ``zhuo-sim``
and ``karaali-jung-2018``. Timing: seconds per 360×360 RTF image and per
640×427 photo (the RTF image resized; the method's cost depends on its edge count).

Usage::

    python benchmarks/rtf.py                       # defaults: ../shared/data/real/rtf_sample, 16 synthetic images
    python benchmarks/rtf.py --device cuda --synth-n 60
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

import defocus
from defocus.data import open_dataset
from defocus.evaluate import evaluate_method
from defocus.io import read_image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_seconds  # noqa: E402


def rows_to_build(args) -> list[tuple[str, str, dict]]:
    rows = [("karaali-2022", "karaali-2022", {}), ("karaali-2022 psi=0 (no E-Net)", "karaali-2022", {"psi": 0.0}),
            ("karaali-2022 expected-value readout", "karaali-2022", {"readout": "expected"})]
    if args.weights:
        new = {"bnet_weights": args.weights[0], "enet_weights": args.weights[1]}
        rows += [("karaali-2022 new weights", "karaali-2022", new),
                 ("karaali-2022 new weights psi=0", "karaali-2022", {"bnet_weights": args.weights[0], "psi": 0.0}),
                 ("karaali-2022 new weights, expected-value readout", "karaali-2022", {**new, "readout": "expected"})]
    if args.psi_code:
        rows.append(("karaali-2022 psi=20 (authors' code)", "karaali-2022", {"psi": 20.0}))
    if args.single_scale_bnet:
        rows.append(("karaali-2022 single-scale B-Net", "karaali-2022",
                     {"bnet_weights": args.single_scale_bnet, "psi": 0.0}))
    if not args.skip_classic:
        rows += [("zhuo-sim", "zhuo-sim", {}), ("karaali-jung-2018", "karaali-jung-2018", {})]
    return rows


def score(method, rtf, synth) -> dict:
    """RTF and synthetic DME scores of one method."""
    row = {}
    if rtf is not None:
        r = evaluate_method(method, rtf, "rtf")
        row.update(rtf_mae_radius=r.summary["mae_radius"], rtf_mae_sigma=r.summary["mae_sigma"],
                   rtf_n=r.summary["n_images"])
    s = evaluate_method(method, synth, "rtf")  # the synth dataset scores σ over the whole frame
    row.update(synth_mae_sigma=s.summary["mae_sigma"], synth_mae_radius=s.summary["mae_radius"],
               synth_n=s.summary["n_images"], synth_s=s.seconds_per_image)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rtf", type=Path, default=SHARED / "data" / "real" / "rtf_sample")
    p.add_argument("--synth-n", type=int, default=16, help="synthetic test scenes (the first N of synth_test)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--single-scale-bnet", default=None, help="B-Net weights with scales (41,) for the ablation")
    p.add_argument("--psi-code", action="store_true", help="also score psi = 20 (the authors' code)")
    p.add_argument("--weights", nargs=2, metavar=("BNET", "ENET"), default=None,
                   help="also score B-Net and E-Net files written by defocus train (e.g. the benet-dense recipe)")
    p.add_argument("--skip-classic", action="store_true")
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--timing-only", action="store_true", help="only time karaali-2022 (no scoring)")
    p.add_argument("--dbd", type=Path, default=None,
                   help="also score karaali-2022-dbd on this CUHK copy (protocols ddffnet and br2net)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    rtf = open_dataset("rtf", args.rtf) if args.rtf.is_dir() else None
    synth = open_dataset("synth", None, n=args.synth_n, task="dme")
    rtf_img = read_image(sorted((args.rtf / "images").glob("*.png"))[0]) if rtf is not None else synth[0].image()
    img360 = cv2.resize(rtf_img, (360, 360), interpolation=cv2.INTER_AREA) if rtf_img.shape[:2] != (360, 360) \
        else rtf_img
    img640 = cv2.resize(rtf_img, (640, 427), interpolation=cv2.INTER_CUBIC).clip(0, 1)

    table = []
    rows = rows_to_build(args)[:1] if args.timing_only else rows_to_build(args)
    for label, name, opts in rows:
        method = defocus.load(name, device=args.device, **opts)
        row = {"method": label}
        if not args.timing_only:
            row.update(score(method, rtf, synth))
        if not args.no_timing:
            row.update(s360=median_seconds(lambda: method.predict(img360), 1),
                       s640=median_seconds(lambda: method.predict(img640), 1))
        table.append(row)
        print(row, flush=True)

    if args.dbd is not None:
        ds = open_dataset("cuhk", args.dbd)
        det = defocus.load("karaali-2022-dbd", device=args.device)
        for proto in ("ddffnet", "br2net"):
            r = evaluate_method(det, ds, proto)
            print(f"karaali-2022-dbd on {args.dbd.name} (n={r.summary['n_images']}), {proto}: " +
                  ", ".join(f"{k} {r.summary[k]:.3f}" for k in ("mae", "fbeta", "iou", "accuracy")
                            if isinstance(r.summary.get(k), float)))

    cols = [("method", "method", "{}"), ("rtf_mae_radius", "RTF MAE radius px", "{:.3f}"),
            ("rtf_mae_sigma", "RTF MAE σ px", "{:.3f}"), ("synth_mae_sigma", f"synth MAE σ px (n={args.synth_n})",
                                                          "{:.3f}"),
            ("s360", "s / 360×360", "{:.2f}"), ("s640", "s / 640×427", "{:.2f}")]
    print(f"\ndevice: {args.device}")
    print("| " + " | ".join(c[1] for c in cols) + " |")
    print("|" + "---|" * len(cols))
    for row in table:
        print("| " + " | ".join(fmt.format(row[k]) if k in row and row[k] is not None else "–"
                                for k, _, fmt in cols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
