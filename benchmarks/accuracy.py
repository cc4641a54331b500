"""Accuracy of registered methods on the real labelled samples in ``shared/data/real``, as one Markdown table.

* DBD: ``cuhk_samples`` (its defocus images only; GT 255 = blurred) and ``cuhk_te1_320`` (CUHK-TE-1 as distributed
  at 320×320; GT 255 = in focus) under ``--protocol`` (default ``ddffnet``).
* DME: ``rtf_sample`` (disk-radius GT) under ``rtf`` (last 20 columns dropped, DMENet's nearest table lookup).
* ``synth_test`` (``--synth N``, default 60): a fixed synthetic test set, ``SynthDataset(N, 320, seed=777,
  split="test")`` — scenes built only from photos held out of training and validation. DBD under ``--protocol``;
  DME under ``rtf`` with nothing dropped and σ ground truth (MAE in σ px).

Ground truth comes from the :mod:`defocus.data` loaders, which convert each set's polarity to ours (the loader used
is printed on stderr). s/img is the mean wall time of ``predict`` alone.

    python benchmarks/accuracy.py                                 # every registered method
    python benchmarks/accuracy.py --methods gradient-energy lbp --protocol zhao --out docs/accuracy.md
    python benchmarks/accuracy.py --task dme --synth 0               # RTF sample only
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=2)
def _render_test_scene(index: int, size: int, seed: int):
    # A scorer reads a sample's image and then its ground truth: render the scene once for both.
    from defocus.synth import SynthDataset

    return SynthDataset(index + 1, size=size, seed=seed, split="test").sample(index)


@dataclass(frozen=True)
class RenderedSample:
    """A synthetic test scene (rendered on demand from its index, so the set costs no disk and no memory)."""

    name: str
    index: int
    size: int
    seed: int

    def _render(self):
        return _render_test_scene(self.index, self.size, self.seed)

    def image(self) -> np.ndarray:
        return self._render().image

    def blur_mask(self) -> np.ndarray:
        return self._render().blur_mask

    def sigma(self) -> np.ndarray:
        return self._render().sigma

    def radius(self) -> np.ndarray:
        return self._render().coc_radius


def synth_test(n: int, task: str, size: int = 320, seed: int = 777) -> "NamedSamples":
    """The fixed synthetic test set (test-split photos only) as a dataset of ``task``."""
    return NamedSamples("synth_test", task, [RenderedSample(f"synth_{i:04d}", i, size, seed) for i in range(n)])


class NamedSamples(list):
    """Samples under the name of the table's dataset column (the folder's name for the real sets)."""

    def __init__(self, name: str, task: str, samples: list) -> None:
        super().__init__(samples)
        self.name, self.task = name, task


def _open(kind: str, root: Path, keep=lambda name: True, **options) -> tuple[NamedSamples, str]:
    """The samples of ``root`` read by the :mod:`defocus.data` loader ``kind``; returns (dataset, source text)."""
    from defocus.data import open_dataset

    ds = open_dataset(kind, root, **options)
    samples = [s for s in ds if keep(str(s.name))]
    if not samples:
        raise SystemExit(f"{root}: the '{kind}' loader found no samples")
    return NamedSamples(root.name, ds.task, samples), f"defocus.data '{kind}' loader ({ds.name})"


def datasets(shared: Path, task: str, synth: int = 0) -> list[tuple[NamedSamples, str]]:
    real = shared / "data" / "real"
    out = []
    if task in ("dbd", "all"):
        out.append(_open("cuhk", real / "cuhk_samples", keep=lambda n: n.startswith("out_of_focus"), subset="defocus"))
        out.append(_open("cuhk", real / "cuhk_te1_320"))  # recognised as the 320 px CUHK-TE-1
        if synth > 0:
            out.append((synth_test(synth, "dbd"), "defocus.synth test split, seed 777"))
    if task in ("dme", "all"):
        out.append(_open("rtf", real / "rtf_sample"))
        if synth > 0:
            out.append((synth_test(synth, "dme"), "defocus.synth test split, seed 777"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared/ folder")
    parser.add_argument("--task", choices=("dbd", "dme", "all"), default="all")
    parser.add_argument("--methods", nargs="+", help="method names (default: every registered one of the task)")
    parser.add_argument("--protocol", default="ddffnet", help="DBD protocol (default ddffnet)")
    parser.add_argument("--synth", type=int, default=60, help="synthetic test scenes per task (0 = none)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)

    import defocus
    from defocus.evaluate import PROTOCOLS, evaluate_method

    if args.protocol not in PROTOCOLS or PROTOCOLS[args.protocol].task != "dbd":
        parser.error(f"--protocol must be a DBD protocol: {', '.join(n for n, p in PROTOCOLS.items() if p.task == 'dbd')}")
    if not (args.shared / "data" / "real").is_dir():
        parser.error(f"{args.shared}/data/real not found (use --shared)")

    lines = ["| Method | Task | Dataset | Protocol | Images | MAE ↓ | Fβ ↑ | IoU ↑ | s/img |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    failed = 0
    for ds, source in datasets(args.shared, args.task, args.synth):
        print(f"{ds.name}: {len(ds)} samples via {source}", file=sys.stderr)
        protocol = args.protocol if ds.task == "dbd" else "rtf"
        # Synthetic DME ground truth is σ over the whole frame: nothing to drop, no table lookup.
        options = {"drop_right": 0, "gt_units": "sigma", "lookup": "linear"} if (
            ds.task == "dme" and ds.name == "synth_test") else {}
        names = args.methods or defocus.available(ds.task)
        for name in names:
            try:
                cls = defocus.describe(name)
                if cls.task != ds.task:
                    continue
                method = defocus.load(name, device=args.device)
            except Exception as exc:  # e.g. missing weights: report and go on with the others
                print(f"{name}: cannot load ({type(exc).__name__}: {exc})", file=sys.stderr)
                failed += 1
                continue
            res = evaluate_method(method, ds, protocol, **options,
                                  on_error=lambda m: print(f"error: {m}", file=sys.stderr))
            failed += len(res.failures)
            s = res.summary

            def f(key):
                v = s.get(key)
                return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"

            spi = f"{res.seconds_per_image:.3g}" if res.seconds_per_image is not None else "–"
            if ds.task == "dbd":
                lines.append(f"| {name} | dbd | {ds.name} | {protocol} | {res.n_images} | {f('mae')} | "
                             f"{f('fbeta')} | {f('iou')} | {spi} |")
            else:
                lines.append(f"| {name} | dme | {ds.name} | {protocol} | {res.n_images} | {f('mae')} σ px "
                             f"(rel {f('mae_rel')}) | – | – | {spi} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        from defocus.io import atomic_write

        text = table + "\n"
        atomic_write(args.out, lambda fobj: fobj.write(text.encode("utf-8")), force=True)
        print(f"wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
