"""Defocus-map (DME) scores on the RTF sample and on a synthetic DME test set, plus timing; prints a table.

Scoring goes through :func:`defocus.evaluate.evaluate_method`:

* RTF (D'Andrès et al. 2016): protocol ``rtf`` as the authors scored it — the last 20 columns dropped, ground-truth
  disk radius ↔ Gaussian σ through the RTF table (:mod:`defocus.units`); MAE in disk-radius px (the paper's unit:
  Karaali 2022 reports 0.169 over all 22 images) and in σ px.
* Synthetic: the first N scenes of the benchmarks' synthetic test set (dataset kind ``synth`` of
  :mod:`defocus.data`: test-split photos, seed 777, 320 px) with its σ ground truth; protocol ``rtf`` with the
  dataset's ``drop_right=0, gt_units="sigma"``; MAE in σ px.

* RTF under protocol ``rtf-dmenet`` too (DMENet's evaluation script: no column dropped), σ and disk-radius px.

Rows: ``karaali-2022`` (ψ = 100), its ablations ψ = 0 (no E-Net) and the expected-value readout of B-Net's softmax,
optionally other B-Net/E-Net files (``--weights``) and a single-scale B-Net (``--single-scale-bnet``), ``zhuo-sim``
and ``karaali-jung-2018``; with ``--all``, every registered DME method and the combinations built on
``karaali-2022`` as well (docs/benchmarks.md's one DME table). Timing: median seconds of ``--runs`` calls per
360×360 RTF image and per 640×427 photo (the RTF image resized; the method's cost depends on its edge count).
Memory (``--megapixels``): peak RSS of one ``predict`` on ``examples/flower.jpg`` upscaled, in a fresh process per
row (``speed.peak_memory``), beside that process's RSS before ``predict``.

Usage::

    python benchmarks/rtf.py                       # defaults: ../shared/data/real/rtf_sample, 16 synthetic images
    python benchmarks/rtf.py --device cuda --synth-n 60
    python benchmarks/rtf.py --all --synth-n 60 --runs 3 --megapixels 24 --out dme-table.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

import defocus
from defocus.data import open_dataset
from defocus.evaluate import evaluate_method
from defocus.io import atomic_write, read_image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import DEFAULT_PHOTO, peak_memory  # noqa: E402
from timing import median_seconds  # noqa: E402

#: The ablations of karaali-2022 scored in every run.
ABLATION_ROWS = [("karaali-2022 psi=0 (no E-Net)", "karaali-2022", {"psi": 0.0}),
                 ("karaali-2022 expected-value readout", "karaali-2022", {"readout": "expected"})]
#: Rows of ``--all`` besides every registered DME method with its defaults and the ablations: combinations.
COMBINATION_ROWS = [("pyramid, base karaali-2022", "pyramid", {"base": "karaali-2022"}),
                    ("focus-guided, base karaali-2022", "focus-guided", {"base": "karaali-2022"}),
                    ("pyramid, base focus-guided", "pyramid", {"base": "focus-guided"})]


def weight_rows(bnet: str, enet: str, readout: bool) -> list[tuple[str, str, dict]]:
    """karaali-2022 with other B-Net / E-Net files (``bundled:<file>`` or paths): as is, ψ = 0, and the readout."""
    pair = {"bnet_weights": bnet, "enet_weights": enet}
    name = f"karaali-2022, B-Net {Path(bnet.split(':')[-1]).stem} + E-Net {Path(enet.split(':')[-1]).stem}"
    rows = [(name, "karaali-2022", pair), (f"{name}, psi=0", "karaali-2022", {"bnet_weights": bnet, "psi": 0.0})]
    if readout:
        rows.append((f"{name}, expected-value readout", "karaali-2022", {**pair, "readout": "expected"}))
    return rows


def rows_to_build(args) -> list[tuple[str, str, dict]]:
    if args.all:
        default = defocus.registry.DEFAULT_ESTIMATOR
        rows = [(f"{n} (default)" if n == default else n, n, {}) for n in defocus.available("dme")]
        rows = sorted(rows, key=lambda r: r[1] != default) + ABLATION_ROWS + COMBINATION_ROWS
        return rows + (weight_rows(*args.weights, readout=False) if args.weights else [])
    rows = [("karaali-2022", "karaali-2022", {}), *ABLATION_ROWS]
    if args.weights:
        rows += weight_rows(*args.weights, readout=True)
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
        d = evaluate_method(method, rtf, "rtf-dmenet")
        row.update(dmenet_mae_radius=d.summary["mae_radius"], dmenet_mae_sigma=d.summary["mae_sigma"])
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
                   help="also score these B-Net and E-Net files (defocus train output, or bundled:<file>, e.g. "
                        "the first pair bundled:benet_bnet_v1.safetensors bundled:enet_v1.safetensors)")
    p.add_argument("--skip-classic", action="store_true")
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--timing-only", action="store_true", help="only time karaali-2022 (no scoring)")
    p.add_argument("--dbd", type=Path, default=None,
                   help="also score karaali-2022-dbd on this CUHK copy (protocols ddffnet and br2net)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--all", action="store_true",
                   help="every registered DME method, plus the ablations and combinations of karaali-2022")
    p.add_argument("--runs", type=int, default=1, help="timed calls per size (median, after a warm-up call)")
    p.add_argument("--megapixels", type=float, default=0.0, help="size of the memory run per row (0 = skip)")
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds allowed for one memory run")
    p.add_argument("--out", type=Path, help="also write the table to this file")
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
            row.update(s360=median_seconds(lambda: method.predict(img360), args.runs),
                       s640=median_seconds(lambda: method.predict(img640), args.runs))
        del method  # the memory run below is another process; free this one's buffers first
        if args.megapixels > 0:
            mem = peak_memory(name, DEFAULT_PHOTO, args.megapixels, args.timeout, dict(opts, device=args.device))
            if "error" in mem:
                row.update(mem_error=mem["error"])
            else:
                row.update(peak_mb=mem["peak_mb"], base_mb=mem["base_mb"], big_s=mem["seconds"])
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

    mp = f"{args.megapixels:g} MP"
    cols = [("method", "method", "{}"), ("rtf_mae_radius", "RTF MAE radius px", "{:.3f}"),
            ("rtf_mae_sigma", "RTF MAE σ px", "{:.3f}"),
            ("dmenet_mae_radius", "rtf-dmenet MAE radius px", "{:.3f}"),
            ("dmenet_mae_sigma", "rtf-dmenet MAE σ px", "{:.3f}"),
            ("synth_mae_sigma", f"synth MAE σ px (n={args.synth_n})", "{:.3f}"),
            ("synth_mae_radius", "synth MAE radius px", "{:.3f}"),
            ("s360", "s / 360×360", "{:.2f}"), ("s640", "s / 640×427", "{:.2f}"),
            ("peak_mb", f"{mp} peak RSS MB", "{:.0f}"), ("base_mb", f"{mp} RSS before MB", "{:.0f}"),
            ("big_s", f"{mp} s", "{:.1f}"), ("mem_error", f"{mp} failed", "{}")]
    used = [c for c in cols if any(c[0] in row for row in table)]
    lines = [f"device: {args.device}", "| " + " | ".join(c[1] for c in used) + " |", "|" + "---|" * len(used)]
    for row in table:
        lines.append("| " + " | ".join(fmt.format(row[k]) if k in row and row[k] is not None else "–"
                                       for k, _, fmt in used) + " |")
    print("\n" + "\n".join(lines))
    if args.out:
        text = "\n".join(lines) + "\n"
        atomic_write(args.out, lambda f: f.write(text.encode("utf-8")), force=True)  # as calibrate.py's --out
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
