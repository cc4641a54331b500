"""Where `svd`'s time goes: µs per pixel of each compiled step, one thread, printed as a Markdown table.

The Gram matrices of ``--rows`` image rows of a photo (resized to 640×427, grey) are built once; then each step of the
kernel is timed alone on all of them, chunk by chunk as the kernel runs it (best of ``--runs``), beside batched
LAPACK on the same matrices (``numpy.linalg.eigvalsh``) for comparison. Run it with ``NUMBA_NUM_THREADS=1`` and
``OMP_NUM_THREADS=1`` to compare per core.

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/svd_kernel.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from numba import njit

import defocus
from defocus.methods import svd

ROOT = Path(__file__).resolve().parents[1]
CHUNK = svd.CHUNK


@njit(cache=False)
def _gram_chunks(pad, y0, rows, w, b):
    """Gram matrices of every block of rows y0 … y0 + rows − 1 as (chunks, b, b, CHUNK), lower triangles; the idle
    lanes of a row's last, partial chunk get a copy of lane 0, as the kernel's work arrays would hold some matrix."""
    per_row = (w + CHUNK - 1) // CHUNK
    out = np.zeros((rows * per_row, b, b, CHUNK))
    for y in range(rows):
        dots = svd._column_dots(pad[y0 + y : y0 + y + b], b)
        for i in range(per_row):
            chunk = out[y * per_row + i]
            lanes = min(CHUNK, w - i * CHUNK)
            svd._fill_gram(dots, chunk, i * CHUNK, lanes)
            for q in range(lanes, CHUNK):
                chunk[:, :, q] = chunk[:, :, 0]
    return out


@njit(cache=False)
def _time_fill(pad, y0, rows, w, b):
    a = np.empty((b, b, CHUNK))
    for y in range(rows):
        dots = svd._column_dots(pad[y0 + y : y0 + y + b], b)
        for x0 in range(0, w, CHUNK):
            svd._fill_gram(dots, a, x0, min(CHUNK, w - x0))


@njit(cache=False)
def _time_tridiagonalize(grams, d_all, e_all):
    b = grams.shape[1]
    a = np.empty((b, b, CHUNK))
    v = np.empty((b, CHUNK))
    p = np.empty((b, CHUNK))
    work = np.empty((b + 7, CHUNK))
    for t in range(grams.shape[0]):
        a[:] = grams[t]
        svd._tridiagonalize(a, d_all[t], e_all[t], v, p, work, CHUNK)


@njit(cache=False)
def _time_eigenvalues(d_all, e_all):
    b = d_all.shape[1]
    work = np.empty((b + 7, CHUNK))
    copies = np.empty((2, b, CHUNK))
    for t in range(d_all.shape[0]):
        svd._tridiagonal_eigenvalues(d_all[t], e_all[t], work, copies, CHUNK)


@njit(cache=False)
def _time_ratio(lam_all, k):
    b = lam_all.shape[1]
    top = np.empty((k, CHUNK))
    total = np.empty(CHUNK)
    beta = np.empty((1, CHUNK))
    ks = np.array([k], np.int64)
    for t in range(lam_all.shape[0]):
        svd._ratios_from_eigenvalues(lam_all[t], top, total, beta, CHUNK, ks, 0.0)


def best_of(runs: int, fn, *make_args) -> float:
    times = []
    for _ in range(runs):
        args = [m() for m in make_args]
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, default=ROOT / "examples" / "flower.jpg")
    parser.add_argument("--rows", type=int, default=20, help="image rows whose blocks are timed")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    rgb = cv2.resize(defocus.read_image(args.photo), (640, 427), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2GRAY).astype(np.float64)
    b, k, w = svd.BLOCK, svd.TOP_K, gray.shape[1]
    pad = np.pad(gray, ((b // 2, (b - 1) // 2), (b // 2, (b - 1) // 2)), mode="reflect")
    y0 = (gray.shape[0] - args.rows) // 2
    grams = _gram_chunks(pad, y0, args.rows, w, b)
    d = np.empty((grams.shape[0], b, CHUNK))
    e = np.empty_like(d)
    _time_tridiagonalize(grams, d, e)
    tri_d, tri_e = d.copy(), e.copy()
    _time_eigenvalues(d, e)
    lam = d.copy()
    _time_ratio(lam, k)
    _time_fill(pad, y0, 1, w, b)

    pixels = args.rows * w
    matrices = grams.shape[0] * CHUNK  # includes the idle lanes of partial chunks, which the kernel also solves
    lower = np.tril(np.ones((b, b), bool))
    stacked = grams.transpose(0, 3, 1, 2).reshape(-1, b, b)
    stacked = np.where(lower, stacked, stacked.transpose(0, 2, 1))  # symmetric, for LAPACK
    rows = [
        ("Gram matrices (column dot products + look-up)", best_of(args.runs, _time_fill, lambda: pad, lambda: y0,
                                                                  lambda: args.rows, lambda: w, lambda: b) / pixels),
        ("Householder tridiagonalisation", best_of(args.runs, _time_tridiagonalize, lambda: grams, lambda: d,
                                                   lambda: e) / matrices),
        ("root-free QL eigenvalues", best_of(args.runs, _time_eigenvalues, lambda: tri_d.copy(),
                                             lambda: tri_e.copy()) / matrices),
        ("σ, top-k and ratio", best_of(args.runs, _time_ratio, lambda: lam, lambda: k) / matrices),
        ("numpy.linalg.eigvalsh, batched (LAPACK)", best_of(args.runs, np.linalg.eigvalsh, lambda: stacked)
         / stacked.shape[0]),
    ]
    print(f"| step ({args.rows} rows of {args.photo.name} at 640×427, one thread) | µs per pixel |")
    print("|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e6:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
