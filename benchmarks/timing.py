"""Timing shared by the benchmark scripts (imported by them; run nothing by itself)."""

from __future__ import annotations

import statistics
import time


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
