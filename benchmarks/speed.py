"""Seconds per photo and peak memory of registered methods, printed as a Markdown table.

Time: median over ``--runs`` calls of ``predict`` on a real 640×427 photo (after one warm-up call), in this process.
Memory: peak resident set size of a fresh subprocess that reads nothing but a synthetic ``--megapixels`` photo
(a real photo resized up, so it has real texture) and runs ``predict`` once; the baseline RSS of the same subprocess
before ``predict`` (Python, NumPy, torch imports and the image) is reported beside it.

    python benchmarks/speed.py                      # every registered method
    python benchmarks/speed.py -m lbp hifst --megapixels 24 --out docs/speed.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
from timing import median_seconds, run_child

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = ROOT / "examples" / "flower.jpg"

_CHILD = r"""
import json, sys, time
import defocus
from timing import rss_mb, upscaled_photo
name, photo, mp = sys.argv[1], sys.argv[2], float(sys.argv[3])
method = defocus.load(name, **(json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}))
image = upscaled_photo(photo, mp)
h, w = image.shape[:2]
base = rss_mb("VmHWM:")
t = time.perf_counter()
out = method.predict(image)
seconds = time.perf_counter() - t
assert out.shape == image.shape[:2], out.shape
print(json.dumps({"base_mb": base, "peak_mb": rss_mb("VmHWM:"), "seconds": seconds, "h": h, "w": w}))
"""


def peak_memory(name: str, photo: Path, megapixels: float, timeout: float, options: dict | None = None) -> dict:
    """Peak and baseline RSS (MB) and seconds of one ``predict`` of method ``name`` (built with ``options``) on the
    photo upscaled to ``megapixels``, in a fresh process; ``{"error": ...}`` if it failed."""
    return run_child(_CHILD, name, photo, megapixels, json.dumps(options or {}), timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    import defocus

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--methods", nargs="*", help="method names (default: all registered)")
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="photo resized to 640×427 for timing")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--megapixels", type=float, default=24.0, help="size of the memory test (0 = skip)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed for one memory run")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    image = cv2.resize(defocus.read_image(args.photo), (640, 427), interpolation=cv2.INTER_AREA)
    names = args.methods or defocus.available()
    mp = f"{args.megapixels:g} MP"
    rows = [f"| method | task | s / 640×427 photo (median of {args.runs}) | {mp}: peak RSS (MB) | {mp}: baseline RSS (MB) | {mp}: s |",
            "|---|---|---|---|---|---|"]
    for name in names:
        method = defocus.load(name)
        seconds = median_seconds(lambda: method.predict(image), args.runs)
        mem = peak_memory(name, args.photo, args.megapixels, args.timeout) if args.megapixels > 0 else {}
        if "error" in mem:
            cells = [f"failed: {mem['error']}", "", ""]
        elif mem:
            cells = [f"{mem['peak_mb']:.0f}", f"{mem['base_mb']:.0f}", f"{mem['seconds']:.1f}"]
        else:
            cells = ["", "", ""]
        rows.append(f"| {name} | {defocus.describe(name).task} | {seconds:.3f} | " + " | ".join(cells) + " |")
        print(rows[-1], file=sys.stderr, flush=True)
    table = "\n".join(rows)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
