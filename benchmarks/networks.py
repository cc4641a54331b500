"""Size and cost of the trainable networks, printed as a Markdown table.

For each network configuration: parameters (millions, everything in the state dict that trains), GFLOPs of one
320×320 forward pass counted by ``torch.utils.flop_counter`` (convolutions and matrix products; one multiply-add = 2
FLOPs, so GMACs are half), and the median CPU milliseconds of that forward pass (inference mode, batch 1, after one
warm-up, ``--threads`` threads). Randomly initialised networks: cost does not depend on the weights.

    python benchmarks/networks.py                 # every configuration below
    python benchmarks/networks.py --only bundled  # the bundled ones
    python benchmarks/networks.py --device cuda   # GPU milliseconds (synchronised)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from defocus.nets.models import build_model
from defocus.registry import all_pretrained

#: The papers' own configurations (not bundled; their backbones are files the user supplies).
PUBLISHED: list[tuple[str, dict]] = [
    ("DFFNet / D-DFFNet as published (ResNeSt-101)", {"arch": "dffnet", "backbone": "resnest101"}),
    ("R-DFFNet as published (ResNeSt-101, depth heads)",
     {"arch": "dffnet", "backbone": "resnest101", "depth_heads": True}),
    ("R²MRF as published (ResNeXt-101 32×4d)",
     {"arch": "r2mrf", "backbone": "resnext101_32x4d", "width": 64, "steps": 6}),
    ("BR²Net as published (ResNeXt-101 32×4d)", {"arch": "br2net", "backbone": "resnext101_32x4d"}),
    ("DeFusionNet as published (VGG16)", {"arch": "defusionnet", "backbone": "vgg16", "width": 64, "steps": 3}),
    ("EFENet on VGG16 with the release's widths (the release: VGG16-BN)",
     {"arch": "efenet", "backbone": "vgg16", "members": 8, "widths": [256, 128, 64, 32]}),
]


def configs() -> list[tuple[str, dict, bool]]:
    """(label, arch, bundled?): each bundled architecture once (weight variants share it), then the papers' own."""
    bundled: dict[str, tuple[dict, list[str]]] = {}
    for p in all_pretrained():
        if p.task not in ("dbd", "dme"):  # patch classifiers (B-Net, E-Net) take 41×41 patches, not photos
            continue
        bundled.setdefault(repr(p.model), (p.model, []))[1].append(p.name)
    rows = [(f"{' / '.join(names)} ({arch.get('backbone', arch['arch'])})", arch, True)
            for arch, names in bundled.values()]
    return rows + [(label, arch, False) for label, arch in PUBLISHED]


def measure(arch: dict, size: int, runs: int, device: str) -> dict:
    net = build_model(arch).to(device).eval()
    params = sum(p.numel() for p in net.parameters())
    x = torch.rand(1, 3, size, size, device=device)
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            net(x)
        flops = counter.get_total_flops()
        times = []
        for _ in range(runs + 1):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            net(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    return {"params_m": params / 1e6, "gflops": flops / 1e9, "ms": 1000 * statistics.median(times[1:])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=320, help="square input side in px (default 320)")
    ap.add_argument("--runs", type=int, default=5, help="timed forward passes (median)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", choices=["bundled", "published"], help="one group of configurations")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"| network | params (M) | GFLOPs at {args.size}² | {args.device} ms at {args.size}² |")
    print("|---|---:|---:|---:|")
    for label, arch, bundled in configs():
        if args.only == "bundled" and not bundled or args.only == "published" and bundled:
            continue
        r = measure(arch, args.size, args.runs, args.device)
        print(f"| {label} | {r['params_m']:.2f} | {r['gflops']:.1f} | {r['ms']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
