"""torch vs onnxruntime for every bundled blur-detection network, same run, printed as a Markdown table.

For each network: seconds per 640×427 photo of the whole detect path (``method.predict``: resize to the working
size, network, guided-filter upsampling) and of the network alone (the working-size input → probability), median of
``--runs`` runs after one warm-up; and the largest difference between their blur maps. Both runtimes get
``--threads`` threads (torch.set_num_threads; the onnxruntime session takes torch's count). The ONNX files are
exported into a temporary cache folder first (export time is not counted).

    nice python benchmarks/onnx_runtime.py                  # every bundled network, 2 threads
    nice python benchmarks/onnx_runtime.py --only light-dffnet --runs 20
    nice python benchmarks/onnx_runtime.py --only r2mrf --karaali          # and karaali-2022's defocus map
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from timing import median_seconds

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def photo(width: int = 640, height: int = 427) -> np.ndarray:
    """The first example photo resized to width × height (float32 RGB in [0, 1])."""
    from defocus.io import read_image

    image = read_image(sorted(EXAMPLES.glob("*.jpg"))[0])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these networks only")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--network-only", action="store_true", help="time the network alone (a shorter run)")
    parser.add_argument("--karaali", action="store_true", help="also karaali-2022's defocus map (dense B-Net + E-Net)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DEFOCUS_CACHE", tempfile.mkdtemp(prefix="defocus-onnx-bench-"))
    import torch

    import defocus
    from defocus.nets.models import working_size_input
    from defocus.registry import all_pretrained

    torch.set_num_threads(args.threads)
    image = photo()
    names = args.only or [p.name for p in all_pretrained() if p.task == "dbd"]
    print(f"{image.shape[1]}×{image.shape[0]} photo, {args.threads} threads, median of {args.runs} runs; "
          f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}\n")
    print("| network | detect, torch (s) | detect, onnxruntime (s) | network alone, torch (s) | "
          "network alone, onnxruntime (s) | onnxruntime speed-up (detect / network) | max abs difference of the maps |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        methods = [defocus.load(name, runtime=runtime) for runtime in ("torch", "onnx")]
        x = working_size_input(image, methods[0].working_size)
        network = [median_seconds(lambda m=m: m.network(x), args.runs) for m in methods]
        if args.network_only:
            print(f"| {name} | – | – | {network[0]:.3f} | {network[1]:.3f} | – / {network[0] / network[1]:.2f}× | – |",
                  flush=True)
            continue
        detect = [median_seconds(lambda m=m: m.predict(image), args.runs) for m in methods]
        diff = float(np.abs(methods[0].predict(image) - methods[1].predict(image)).max())
        print(f"| {name} | {detect[0]:.3f} | {detect[1]:.3f} | {network[0]:.3f} | {network[1]:.3f} | "
              f"{detect[0] / detect[1]:.2f}× / {network[0] / network[1]:.2f}× | {diff:.1e} |", flush=True)
    if args.karaali:  # the defocus map of karaali-2022: dense B-Net + E-Net, Canny and propagation around them
        methods = [defocus.load("karaali-2022", runtime=runtime) for runtime in ("torch", "onnx")]
        seconds = [median_seconds(lambda m=m: m.predict(image), args.runs) for m in methods]
        diff = float(np.abs(methods[0].predict(image) - methods[1].predict(image)).max())
        print(f"| karaali-2022 (estimate) | {seconds[0]:.3f} | {seconds[1]:.3f} | – | – | "
              f"{seconds[0] / seconds[1]:.2f}× / – | {diff:.1e} px σ |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
