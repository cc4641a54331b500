"""Fit the regression tree of ``liu-2020`` on synthetic training scenes; choose its depth and smoothing on validation.

Every scene comes from :mod:`defocus.synth` (exact σ maps; train and val splits use disjoint source photos; the test
split, which ``benchmarks/accuracy.py`` scores, is never read). Per training scene a fixed number of random pixels
gives (features, basis, σ) rows; the tree is grown greedily on binned features, each split chosen to minimise the
summed least-squares error of the two children's linear models over the basis ``[1, b₁, b₂, b₃]`` (exact, from
cumulative per-bin sufficient statistics). Depth and the smoothing σs are chosen by whole-image MAE on the
validation scenes. Seeded and single-threaded: the same command writes the same file.

    nice python benchmarks/train_liu_2020.py          # writes src/defocus/weights/liu_2020_tree.safetensors
    nice python benchmarks/train_liu_2020.py --train 20 --val 4 --out /tmp/tree.safetensors   # a quick check
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one thread, set before numpy and numba start theirs (not when a test imports this)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RIDGE = 1e-3  # per sample, on the leaf normal equations: keeps small or collinear leaves solvable


def scene_rows(scenes, methods, per_scene: int, rng: np.random.Generator):
    """(features, basis, target) rows of ``per_scene`` random pixels of each scene (all pixels if 0)."""
    from defocus.methods import liu_2020 as liu

    feats, bases, targets, full = [], [], [], []
    for sample in scenes:
        basis = liu.basis_maps(sample.image, methods)
        f = np.concatenate([x for _, _, x, _ in liu.tree_inputs(sample.image, basis)])
        b = np.moveaxis(basis, 0, -1).reshape(-1, basis.shape[0])
        y = sample.sigma.reshape(-1).astype(np.float32)
        take = rng.choice(len(y), size=min(per_scene, len(y)), replace=False) if per_scene else np.arange(len(y))
        feats.append(f[take])
        bases.append(b[take])
        targets.append(y[take])
        full.append((sample, basis, f, b))
    return np.concatenate(feats), np.concatenate(bases), np.concatenate(targets), full


def _design(basis: np.ndarray) -> np.ndarray:
    return np.concatenate([np.ones((len(basis), 1), np.float64), basis.astype(np.float64)], axis=1)


def _stats(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row sufficient statistics of least squares: z zᵀ (flattened), z·y, y²."""
    zz = (z[:, :, None] * z[:, None, :]).reshape(len(z), -1)
    return np.concatenate([zz, z * y[:, None], (y * y)[:, None]], axis=1)


def _sse_and_weights(stats: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares error and weights of the linear model from summed statistics (..., p² + p + 1)."""
    zz = stats[..., : p * p].reshape(*stats.shape[:-1], p, p)
    zy = stats[..., p * p : p * p + p]
    yy = stats[..., -1]
    n = zz[..., 0, 0]
    a = zz + (RIDGE * np.maximum(n, 1.0))[..., None, None] * np.eye(p)
    w = np.linalg.solve(a, zy[..., None])[..., 0]
    sse = yy - 2 * np.einsum("...i,...i->...", w, zy) + np.einsum("...i,...ij,...j->...", w, zz, w)
    return np.maximum(sse, 0.0), w


def fit_tree(x: np.ndarray, basis: np.ndarray, y: np.ndarray, depth: int, min_leaf: int, bins: int = 32):
    """Grow a model tree (see the module docstring); returns :class:`defocus.methods.liu_2020.ModelTree`."""
    from defocus.methods.liu_2020 import ModelTree

    z = _design(basis)
    p = z.shape[1]
    s = _stats(z, y.astype(np.float64))
    edges = [np.unique(np.quantile(x[:, f], np.linspace(0, 1, bins + 1)[1:-1])) for f in range(x.shape[1])]
    binned = np.stack([np.searchsorted(edges[f], x[:, f], side="left") for f in range(x.shape[1])], axis=1)
    nodes = []  # [feature, threshold, left, right, weights, precision]

    def grow(idx: np.ndarray, level: int) -> int:
        total = s[idx].sum(axis=0)
        sse, w = _sse_and_weights(total, p)
        me = len(nodes)
        nodes.append([-1, 0.0, -1, -1, w, len(idx) / max(float(sse), 1e-6)])
        if level >= depth or len(idx) < 2 * min_leaf:
            return me
        best = (0.0, None, None)
        for f in range(x.shape[1]):
            nb = len(edges[f]) + 1
            if nb < 2:
                continue
            hist = np.stack([np.bincount(binned[idx, f], weights=s[idx, c], minlength=nb) for c in range(s.shape[1])],
                            axis=1)
            left = np.cumsum(hist, axis=0)[:-1]
            right = total[None, :] - left
            ok = (left[:, 0] >= min_leaf) & (right[:, 0] >= min_leaf)
            if not ok.any():
                continue
            sse_l, _ = _sse_and_weights(left[ok], p)
            sse_r, _ = _sse_and_weights(right[ok], p)
            gain = float(sse) - (sse_l + sse_r)
            k = int(np.argmax(gain))
            if gain[k] > best[0]:
                best = (float(gain[k]), f, int(np.nonzero(ok)[0][k]))
        if best[1] is None:
            return me
        f, b = best[1], best[2]
        go_left = binned[idx, f] <= b
        nodes[me][0], nodes[me][1] = f, float(edges[f][b])
        nodes[me][2] = grow(idx[go_left], level + 1)
        nodes[me][3] = grow(idx[~go_left], level + 1)
        return me

    grow(np.arange(len(y)), 0)
    return ModelTree(feature=[n[0] for n in nodes], threshold=[n[1] for n in nodes], left=[n[2] for n in nodes],
                     right=[n[3] for n in nodes], weights=np.stack([n[4] for n in nodes]),
                     precision=[n[5] for n in nodes])


def predict_scene(tree, sample, basis, feats, b, smooth_sigma_s: float, smooth_sigma_r: float = 0.5) -> np.ndarray:
    """What :meth:`Liu2020.predict` returns for a scene whose basis and features are already computed."""
    from defocus.filters.domain_transform import interpolate, recursive_filter
    from defocus.methods.liu_2020 import MAX_SIGMA

    h, w = sample.sigma.shape
    s, prec = tree.predict(feats, b)
    mean = np.clip(s.reshape(h, w), 0.0, MAX_SIGMA)
    if smooth_sigma_s > 0:
        guide = recursive_filter(sample.image, sample.image, 7.0, 0.5, 3)
        mean = interpolate(mean, prec.reshape(h, w), guide, smooth_sigma_s, smooth_sigma_r, 3)
    return np.clip(mean, 0.0, MAX_SIGMA)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=120, help="training scenes (split train)")
    ap.add_argument("--val", type=int, default=24, help="validation scenes (split val)")
    ap.add_argument("--size", type=int, default=320, help="scene side, px")
    ap.add_argument("--pixels", type=int, default=4000, help="random pixels per training scene")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--depths", type=int, nargs="+", default=[3, 5, 7, 9, 11])
    ap.add_argument("--min-leaf", type=int, default=1000)
    ap.add_argument("--smooth", type=float, nargs="+", default=[0.0, 8.0, 16.0, 32.0],
                    help="candidate σs (px) of the smoothing step")
    ap.add_argument("--out", default=str(ROOT / "src" / "defocus" / "weights" / "liu_2020_tree.safetensors"))
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    from safetensors.numpy import save_file

    from defocus.methods import liu_2020 as liu
    from defocus.synth import SynthDataset

    t0 = time.time()
    methods = liu.load_basis()
    rng = np.random.default_rng(args.seed)
    train = SynthDataset(args.train, size=args.size, seed=args.seed, split="train")
    val = SynthDataset(args.val, size=args.size, seed=args.seed, split="val")
    x, b, y, _ = scene_rows([train.sample(i) for i in range(len(train))], methods, args.pixels, rng)
    print(f"train rows {len(y)} from {args.train} scenes ({time.time() - t0:.0f} s)", file=sys.stderr)
    _, _, _, val_full = scene_rows([val.sample(i) for i in range(len(val))], methods, 0, rng)
    print(f"val scenes {args.val} ({time.time() - t0:.0f} s)", file=sys.stderr)

    def val_mae(predict) -> float:
        return float(np.mean([np.abs(predict(v) - v[0].sigma).mean() for v in val_full]))

    for k, name in enumerate(liu.BASIS):
        print(f"val MAE {name}: {val_mae(lambda v, k=k: v[1][k]):.4f}", file=sys.stderr)
    results = {}
    trees = {}
    for depth in [0, *args.depths]:
        tree = fit_tree(x, b, y, depth, args.min_leaf)
        trees[depth] = tree
        for sm in args.smooth:
            results[(depth, sm)] = val_mae(lambda v: predict_scene(tree, *v, smooth_sigma_s=sm))
            print(f"val MAE depth {depth} ({int((tree.feature < 0).sum())} leaves), smoothing σs {sm}: "
                  f"{results[(depth, sm)]:.4f} ({time.time() - t0:.0f} s)", file=sys.stderr)
    (depth, sm), best = min(results.items(), key=lambda kv: kv[1])
    tree = trees[depth]
    meta = {"smooth_sigma_s": repr(sm), "depth": str(depth), "min_leaf": str(args.min_leaf),
            "basis": ",".join(liu.BASIS), "train_scenes": str(args.train), "val_scenes": str(args.val),
            "size": str(args.size), "pixels": str(args.pixels), "seed": str(args.seed), "val_mae": f"{best:.4f}",
            "command": "python benchmarks/train_liu_2020.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tree.arrays(), str(out), metadata=meta)
    print(f"chose depth {depth}, smoothing σs {sm}: val MAE {best:.4f}; wrote {out} "
          f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
