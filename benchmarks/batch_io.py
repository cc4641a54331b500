"""Images per second of ``defocus detect`` on a folder of 640×427 JPEGs: the sequential loop (``--prefetch 0``:
read, compute, write each photo in turn) beside background decoding and writing (``--prefetch N``), and with
``--ray`` the Ray engine with 1 and 2 actors, in one run, printed as a Markdown table.

Each configuration runs ``--repeats`` times, alternating, each in a fresh process: one warm-up batch of 2 photos
(imports, JIT, weights), then the timed batch through ``defocus.cli.main``. Images/s is the median over the
repeats; peak RSS is the process's maximum resident set size (for Ray, the driver's only: the actors are other
processes). The Ray instance is started before the timed batch (as a cluster would be), so the Ray figures include
starting the actors and loading the method once in each, which every Ray job pays. Torch runs with ``--threads``
threads everywhere (``OMP_NUM_THREADS``; a Ray actor gets as many CPUs), so the configurations differ only in how
the photos flow.

    nice python benchmarks/batch_io.py                       # light-dffnet, 24 photos, prefetch 0 vs 2
    nice python benchmarks/batch_io.py --ray -n 24 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
from defocus.cli import main
folder, method, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if "ray" in extra:
    import ray
    ray.init(num_cpus=int(sys.argv[4]), include_dashboard=False, log_to_driver=False,
             object_store_memory=300 * 2**20)
scratch = Path(tempfile.mkdtemp())
warm = sorted(Path(folder).iterdir())[:2]
assert main(["detect", *map(str, warm), "-o", str(scratch / "warm"), "-m", method, *extra]) == 0
t = time.perf_counter()
assert main(["detect", folder, "-o", str(scratch / "out"), "-m", method, *extra]) == 0
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_photos(folder: Path, n: int, size: tuple[int, int] = (640, 427)) -> list[Path]:
    """``n`` JPEGs of ``size`` (w, h): the example photos resized (cropped to the aspect first), in turn."""
    sources = sorted((ROOT / "examples").glob("*.jpg"))
    paths = []
    for i in range(n):
        with Image.open(sources[i % len(sources)]) as img:
            img = img.convert("RGB")
            w, h = img.size
            aspect = size[0] / size[1]
            cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
            img = img.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
            path = folder / f"photo{i:03d}.jpg"
            img.resize(size, Image.BICUBIC).save(path, quality=92)
            paths.append(path)
    return paths


def run_child(folder: Path, n: int, method: str, extra: list[str], ray_cpus: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # torch's threads, read when it is imported
    res = subprocess.run([sys.executable, "-c", _CHILD, str(folder), method, json.dumps(extra), str(ray_cpus)],
                         capture_output=True, text=True, timeout=1800, env=env)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(extra)}: failed\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return {"ips": n / out["seconds"], "peak_mb": out["peak_mb"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--method", default="light-dffnet")
    ap.add_argument("-n", "--photos", type=int, default=24)
    ap.add_argument("--prefetch", type=int, default=2, help="the depth compared with 0")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads in every configuration (a Ray actor gets as many CPUs); default 1")
    ap.add_argument("--ray", action="store_true", help="also the Ray engine with 1 and 2 actors")
    ap.add_argument("--ray-cpus", type=int, default=2, help="logical CPUs of the local Ray instance")
    args = ap.parse_args()

    configs = {"local, sequential (--prefetch 0)": ["--prefetch", "0"],
               f"local, background I/O (--prefetch {args.prefetch})": ["--prefetch", str(args.prefetch)]}
    if args.ray:
        per_actor = ["--num-cpus", str(args.threads)]
        configs["ray, 1 actor"] = ["--engine", "ray", "--num-actors", "1", *per_actor]
        configs["ray, 2 actors"] = ["--engine", "ray", "--num-actors", "2", *per_actor]
    results: dict[str, list[dict]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_photos(folder, args.photos)
        for _ in range(args.repeats):
            for name, extra in configs.items():
                results[name].append(run_child(folder, args.photos, args.method, extra, args.ray_cpus,
                                               args.threads))
    base = statistics.median(r["ips"] for r in results[next(iter(configs))])
    print(f"`defocus detect -m {args.method}` on {args.photos} JPEGs of 640x427, torch with {args.threads} "
          f"thread(s), median of {args.repeats} runs each\n")
    print("| engine | images/s | vs sequential | peak RSS (MB) |")
    print("|---|---:|---:|---:|")
    for name, runs in results.items():
        ips = statistics.median(r["ips"] for r in runs)
        rss = statistics.median(r["peak_mb"] for r in runs)
        rss_text = f"{rss:.0f}" + (" (driver)" if name.startswith("ray") else "")
        print(f"| {name} | {ips:.2f} | {ips / base:.2f}x | {rss_text} |")
    spread = {name: [round(r["ips"], 2) for r in runs] for name, runs in results.items()}
    print(f"\nimages/s of each run: {spread}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
