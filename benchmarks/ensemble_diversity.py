"""How diverse an ensemble network's members are (EFENet): each member's own map against the fused one.

On the fixed synthetic test set (60 scenes of 320², seed 777, split "test", as ``benchmarks/accuracy.py``), at the
working size, without refinement: the MAE of the fused map, of each member's own map and of the members' mean map;
the mean spread of the members (std across members, per pixel); and the mean pairwise correlation of the members'
errors (p_i − y), the quantity negative-correlation learning lowers.

    python benchmarks/ensemble_diversity.py                       # the bundled efenet
    python benchmarks/ensemble_diversity.py --model runs/efenet/model.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from defocus.data.synth import BENCHMARK_SCENES, BENCHMARK_SEED, BENCHMARK_SIZE
from defocus.nets.modelfile import load_model, resolve_model_path
from defocus.nets.models import working_size_input
from defocus.synth import SynthDataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bundled:efenet_mobilenetv2_synth.safetensors")
    ap.add_argument("--n", type=int, default=BENCHMARK_SCENES, help="synthetic test scenes")
    args = ap.parse_args(argv)
    model, _ = load_model(resolve_model_path(args.model))
    ds = SynthDataset(args.n, size=BENCHMARK_SIZE, seed=BENCHMARK_SEED, split="test")
    fused_err, member_err, mean_err, spread, corr = [], [], [], [], []
    with torch.inference_mode():
        for i in range(args.n):
            s = ds.sample(i)
            fused, sides = model(torch.from_numpy(working_size_input(s.image, BENCHMARK_SIZE)), return_sides=True)
            y = torch.from_numpy(np.asarray(s.blur_mask, np.float32)).flatten()
            p = torch.sigmoid(torch.stack(sides)).flatten(1)  # (M, pixels)
            fused_err.append(float((torch.sigmoid(fused).flatten() - y).abs().mean()))
            member_err.append((p - y).abs().mean(1).numpy())
            mean_err.append(float((p.mean(0) - y).abs().mean()))
            spread.append(float(p.std(0).mean()))
            e = p - y
            c = torch.corrcoef(e)
            m = len(sides)
            corr.append(float((c.sum() - c.diagonal().sum()) / (m * (m - 1))))
    members = np.mean(member_err, 0)
    print(f"scenes {args.n}, members {len(members)}")
    print(f"fused map MAE {np.mean(fused_err):.4f}")
    print(f"member maps MAE {', '.join(f'{v:.4f}' for v in members)} (mean {members.mean():.4f})")
    print(f"mean of the member maps MAE {np.mean(mean_err):.4f}")
    print(f"member spread (std across members, per pixel) {np.mean(spread):.4f}")
    print(f"mean pairwise correlation of the members' errors {np.nanmean(corr):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
