"""Timing and memory measurement shared by the benchmark scripts (imported by them; run nothing by itself).

Memory is measured in a fresh process, so that one method's allocations do not inflate another's: a benchmark
passes a small script to :func:`run_child`, which finds this module on its path and builds its large photo with
:func:`upscaled_photo`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def median_seconds(fn, runs: int) -> float:
    """Median seconds of ``runs`` calls of ``fn()``, after one warm-up call (JIT compilation, weight loading,
    caches). A benchmark that compares two runtimes times each one's calls in one block: alternating call by call,
    one runtime's idle worker threads (which spin a while after a call) would slow the other's."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def upscaled_photo(path, megapixels: float):
    """The photo at ``path`` resized up (bicubic) to about ``megapixels`` MP with its aspect ratio: float32 RGB
    (H, W, 3) in [0, 1], C-contiguous. A real photo resized up keeps real texture at any size."""
    import cv2
    import numpy as np

    import defocus

    small = defocus.read_image(path)
    h = int(round((megapixels * 1e6 * small.shape[0] / small.shape[1]) ** 0.5))
    w = int(round(megapixels * 1e6 / h))
    return np.ascontiguousarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1), np.float32)


def rss_mb(field: str = "VmRSS:") -> float:
    """This process's resident set size in MB (``"VmRSS:"``), or its peak so far (``"VmHWM:"``); Linux only."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> None:
    """Restart the peak (``VmHWM``) from the current RSS, so that a later peak is that of the code after this call."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def run_child(code: str, *args, timeout: float | None = None) -> dict:
    """Run ``code`` in a fresh Python (``sys.argv[1:]`` = ``args``) that can import this module; its last line of
    output is a JSON object, returned as a dict, or ``{"error": <its last line of stderr>}`` if it failed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, env=env)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])
