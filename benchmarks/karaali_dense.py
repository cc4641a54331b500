"""Seconds of `karaali-2022` with B-Net/E-Net patch by patch (``dense=False``) and densely (the default), side by
side, and where the dense run spends its time (Canny edges, the networks, the domain-transform propagation).

Images: the RTF sample (360×360, if ``../shared`` has it) and ``examples/flower.jpg`` resized to 640×427. Each time
is the median of ``--runs`` calls of ``predict`` after one warm-up call (patch-wise: ``--patch-runs`` calls, it is
slow); the stage times are medians over ``--runs`` more dense calls made stage by stage. The last column compares
the two σ maps. ``--megapixels`` adds one dense run on the photo resized to that size in a fresh process (seconds
and the peak RSS of ``predict`` itself).

    python benchmarks/karaali_dense.py --threads 2 --runs 5 --megapixels 24
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from timing import run_child

ROOT = Path(__file__).resolve().parents[1]
RTF_IMAGE = ROOT.parent / "shared" / "data" / "real" / "rtf_sample" / "images" / "image_01.png"
PHOTO = ROOT / "examples" / "flower.jpg"

# One dense predict on a large photo in a fresh process. The peak RSS is reset (Linux /proc/self/clear_refs) after
# the photo is made, so it is the peak of predict itself, not of the resizing.
_LARGE = r"""
import json, sys, time
import torch
import defocus
from timing import reset_peak_rss, rss_mb, upscaled_photo
photo, mp, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
method = defocus.load("karaali-2022")
image = upscaled_photo(photo, mp)
h, w = image.shape[:2]
base = rss_mb("VmRSS:")
reset_peak_rss()
t = time.perf_counter()
out = method.predict(image)
seconds = time.perf_counter() - t
assert out.shape == image.shape[:2], out.shape
edges = int(method.edge_map(image).sum())
print(json.dumps({"base_mb": base, "peak_mb": rss_mb("VmHWM:"), "seconds": seconds, "h": h, "w": w, "edges": edges}))
"""


def seconds(f, runs: int) -> tuple[float, object]:
    """Median seconds of ``f()`` over ``runs`` calls and the last result."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def stage_seconds(method, image: np.ndarray) -> dict[str, float]:
    """One dense ``predict_radius`` split into its stages (same calls as the method makes)."""
    from defocus.methods import karaali_2022 as k22

    t0 = time.perf_counter()
    edges = method.edge_map(image)
    t1 = time.perf_counter()
    ys, xs, radius, depth = k22.classify_edges(image, edges, method.bnet, method.enet, method.batch, method.device,
                                               dense=method.dense, tile=method.tile)
    t2 = time.perf_counter()
    sparse = np.zeros(edges.shape, np.float32)
    pattern = np.zeros(edges.shape, bool)
    dmask = np.zeros(edges.shape, bool)
    sparse[ys[~depth], xs[~depth]] = radius[~depth]
    pattern[ys[~depth], xs[~depth]] = True
    dmask[ys[depth], xs[depth]] = True
    k22.propagate(image, sparse, pattern, dmask, method.psi, method.sigma_r, method.iterations)
    t3 = time.perf_counter()
    return {"edges": t1 - t0, "networks": t2 - t1, "propagation": t3 - t2, "n_edges": int(edges.sum())}


def main(argv: list[str] | None = None) -> int:
    import torch

    import defocus

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--runs", type=int, default=3, help="dense calls per image (median)")
    parser.add_argument("--patch-runs", type=int, default=1, help="patch-wise calls per image (median)")
    parser.add_argument("--megapixels", type=float, default=0.0, help="size of the large-photo run (0 = skip)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    images = []
    if RTF_IMAGE.is_file():
        images.append(("RTF image_01 360×360", defocus.read_image(RTF_IMAGE)))
    else:
        print(f"(no RTF sample at {RTF_IMAGE})", file=sys.stderr)
    images.append(("flower.jpg 640×427",
                   cv2.resize(defocus.read_image(PHOTO), (640, 427), interpolation=cv2.INTER_AREA)))
    dense = defocus.load("karaali-2022")
    patch = defocus.load("karaali-2022", dense=False)

    rows = [f"| image | edges | patch-wise s | dense s | speed-up | dense: Canny s | networks s | propagation s "
            f"(share) | σ maps: max abs diff |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, image in images:
        image = np.ascontiguousarray(image, dtype=np.float32)
        dense.predict(image)  # warm-up
        t_dense, map_dense = seconds(lambda: dense.predict(image), args.runs)
        t_patch, map_patch = seconds(lambda: patch.predict(image), args.patch_runs)
        runs = [stage_seconds(dense, image) for _ in range(args.runs)]
        st = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        total = st["edges"] + st["networks"] + st["propagation"]
        diff = float(np.abs(map_dense - map_patch).max())
        rows.append(f"| {name} | {st['n_edges']} | {t_patch:.1f} | {t_dense:.2f} | {t_patch / t_dense:.0f}× | "
                    f"{st['edges']:.2f} | {st['networks']:.2f} | {st['propagation']:.2f} "
                    f"({100 * st['propagation'] / total:.0f} %) | {diff:.2g} |")
        print(rows[-1], file=sys.stderr, flush=True)
    print(f"torch {torch.__version__}, {args.threads} threads")
    print("\n".join(rows))
    if args.megapixels > 0:
        r = run_child(_LARGE, PHOTO, args.megapixels, args.threads, timeout=3600)
        if "error" in r:
            print(f"\n{args.megapixels:g} MP: failed: {r['error']}")
        else:
            print(f"\n{args.megapixels:g} MP ({r['w']}×{r['h']} flower.jpg resized up, {r['edges']} edges), dense: "
                  f"{r['seconds']:.0f} s, peak RSS during predict {r['peak_mb']:.0f} MB (RSS before it {r['base_mb']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
