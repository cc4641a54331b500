"""Harmonic (heat-diffusion) interpolation of sparse values: a 2-D discrete Poisson problem on the pixel grid.

The steady state of heat diffusion with the known pixels held at their values is the harmonic function of the
5-point Laplacian: every unknown pixel equals the mean of its 4 neighbours. With a finite data weight λ the known
pixels are pulled towards their values instead of pinned,

    minimise  Σ_(i~j) (u_i − u_j)² + λ Σ_(i known) (u_i − d_i)²,

i.e. (L + λK)·u = λK·d. Image borders are insulated (zero-flux Neumann: a border pixel has fewer neighbours).

Solved coarse to fine (a cascadic multigrid): the problem is restricted to a pyramid of half-size grids (a coarse
pixel is known where any of its four children is, with their mean value), the coarsest level is solved directly
(sparse LU), and each finer level starts from the bilinearly upsampled coarser solution and runs a capped number of
Jacobi-preconditioned conjugate-gradient iterations, matrix-free (a few float64 planes of the grid's size).
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

__all__ = ["harmonic_interpolate", "conjugate_gradients"]


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum's own loop, not BLAS: a threaded BLAS dot stalls for milliseconds on a loaded machine, and CG calls
    # it twice per iteration.
    return float(np.einsum("i,i->", a.ravel(), b.ravel()))


def conjugate_gradients(op, rhs: np.ndarray, precond: np.ndarray, x: np.ndarray, max_iter: int,
                        tol: float) -> tuple[np.ndarray, int, float]:
    """Jacobi-preconditioned conjugate gradients for a symmetric positive-definite operator.

    Parameters
    ----------
    op : callable
        ``op(v)`` = A·v, for arrays of the shape of ``rhs``.
    rhs : ndarray
        b.
    precond : ndarray
        The inverse of A's diagonal (same shape as ``rhs``).
    x : ndarray
        Start; updated in place.
    max_iter : int
    tol : float
        Stop once ‖b − A·x‖ / ‖b‖ ≤ tol.

    Returns
    -------
    x, iterations, relative_residual
    """
    r = rhs - op(x)
    z = precond * r
    p = z.copy()
    rz = _dot(r, z)
    norm_b = max(_dot(rhs, rhs) ** 0.5, 1e-30)
    rel = _dot(r, r) ** 0.5 / norm_b
    it = 0
    while it < max_iter and rel > tol:
        q = op(p)
        alpha = rz / max(_dot(p, q), 1e-300)
        x += alpha * p
        r -= alpha * q
        rel = _dot(r, r) ** 0.5 / norm_b
        z = precond * r
        rz_new = _dot(r, z)
        p = z + (rz_new / max(rz, 1e-300)) * p
        rz = rz_new
        it += 1
    return x, it, rel


def sparse_conjugate_gradients(a, b: np.ndarray, x0: np.ndarray, max_iter: int = 300,
                               tol: float = 1e-5) -> tuple[np.ndarray, int, float]:
    """:func:`conjugate_gradients` for a sparse symmetric positive-definite matrix ``a`` (Jacobi preconditioner from
    its diagonal); ``b`` and ``x0`` are vectors. Returns ``(x float64, iterations, relative residual)``."""
    a = a.tocsr()
    precond = 1.0 / np.maximum(a.diagonal(), 1e-12)
    x, it, rel = conjugate_gradients(a.dot, np.asarray(b, np.float64), precond, np.array(x0, dtype=np.float64),
                                     max_iter, tol)
    return x, it, float(rel)


def _neighbour_count(h: int, w: int) -> np.ndarray:
    deg = np.full((h, w), 4.0)
    deg[0] -= 1
    deg[-1] -= 1
    deg[:, 0] -= 1
    deg[:, -1] -= 1
    return deg


def _neighbour_sum(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    out[1:] += x[:-1]
    out[:-1] += x[1:]
    out[:, 1:] += x[:, :-1]
    out[:, :-1] += x[:, 1:]
    return out


class _System:
    """One level: unknowns, diagonal, matvec and right-hand side of the interpolation problem."""

    def __init__(self, values: np.ndarray, known: np.ndarray, data_weight: float | None) -> None:
        self.shape = known.shape
        self.known = known
        self.dirichlet = data_weight is None
        d = np.where(known, values, 0.0)
        deg = _neighbour_count(*known.shape)
        if self.dirichlet:
            # Known pixels are eliminated: the unknowns see them as a fixed source term.
            self.free = ~known
            self.diag = deg[self.free]
            self.rhs = _neighbour_sum(d)[self.free]
        else:
            self.free = np.ones(known.shape, bool)
            lam = float(data_weight) * known
            self.diag = (deg + lam).ravel()
            self.rhs = (lam * d).ravel()
        self.values = d

    def matvec(self, v: np.ndarray) -> np.ndarray:
        full = np.zeros(self.shape)
        full[self.free] = v
        return self.diag * v - _neighbour_sum(full)[self.free]

    def matrix(self) -> sp.csr_matrix:
        """The same operator assembled (used on the coarsest level only)."""
        h, w = self.shape
        index = np.full((h, w), -1, np.int64)
        index[self.free] = np.arange(int(self.free.sum()))
        rows, cols = [], []
        for a, b in ((index[:, :-1], index[:, 1:]), (index[:-1], index[1:])):
            ok = (a >= 0) & (b >= 0)
            rows += [a[ok], b[ok]]
            cols += [b[ok], a[ok]]
        r, c = np.concatenate(rows), np.concatenate(cols)
        n = len(self.diag)
        return (sp.diags(self.diag) - sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))).tocsr()

    def full(self, v: np.ndarray) -> np.ndarray:
        out = self.values.copy() if self.dirichlet else np.zeros(self.shape)
        out[self.free] = v
        return out


def _restrict(values: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half-size problem: a coarse pixel is known where any child is; its value is the mean of the known ones."""
    h, w = known.shape
    hp, wp = h + h % 2, w + w % 2
    k = np.zeros((hp, wp))
    v = np.zeros((hp, wp))
    k[:h, :w] = known
    v[:h, :w] = np.where(known, values, 0.0)
    count = k.reshape(hp // 2, 2, wp // 2, 2).sum(axis=(1, 3))
    total = v.reshape(hp // 2, 2, wp // 2, 2).sum(axis=(1, 3))
    coarse_known = count > 0
    return np.where(coarse_known, total / np.maximum(count, 1.0), 0.0), coarse_known


def harmonic_interpolate(
    values: np.ndarray,
    known: np.ndarray,
    data_weight: float | None = None,
    max_iter: int = 60,
    tol: float = 1e-5,
    coarse_pixels: int = 20_000,
    max_pixels: int | None = 4_000_000,
) -> np.ndarray:
    """Fill a grid from sparse values by heat diffusion (harmonic interpolation, 5-point Laplacian).

    Parameters
    ----------
    values : ndarray (H, W), float
        Values at the known pixels (any units; ignored elsewhere).
    known : ndarray (H, W), bool
        Where ``values`` hold.
    data_weight : float or None
        None: the known pixels are Dirichlet constraints (kept exactly). A positive λ: they are soft,
        weight λ against a unit weight per neighbour link (small λ smooths isolated outliers).
    max_iter : int
        Conjugate-gradient iterations per pyramid level above the coarsest (caps the time; the coarse start makes
        few necessary).
    tol : float
        Relative residual at which a level stops early.
    coarse_pixels : int
        The pyramid is halved until a level has at most this many pixels; that level is solved directly.
    max_pixels : int or None
        Finest level solved: on a larger grid the solution of the first level with at most this many pixels is
        upsampled bilinearly (bounds memory, ~10 float64 planes of that level; None solves at full size).

    Returns
    -------
    ndarray (H, W), float32
        The interpolated grid: harmonic off the known pixels; a linear function of (x, y) is reproduced exactly
        when it is known on the image's border. All zeros if nothing is known.
    """
    known = np.asarray(known, bool)
    values = np.asarray(values, np.float64)
    if known.shape != values.shape or known.ndim != 2:
        raise ValueError(f"values {values.shape} and known {known.shape} must be equal 2-D shapes")
    if data_weight is not None and not float(data_weight) > 0:
        raise ValueError(f"data_weight must be positive or None, not {data_weight!r}")
    if not known.any():
        return np.zeros(known.shape, np.float32)
    levels = [(values, known)]
    while levels[-1][1].size > coarse_pixels and min(levels[-1][1].shape) >= 8:
        levels.append(_restrict(*levels[-1]))
    finest = 0
    while max_pixels is not None and levels[finest][1].size > max_pixels and finest + 1 < len(levels):
        finest += 1
    x = None
    for depth in range(len(levels) - 1, finest - 1, -1):
        v, k = levels[depth]
        system = _System(v, k, data_weight)
        if x is None:
            solution = sla.spsolve(system.matrix().tocsc(), system.rhs) if len(system.diag) else system.rhs
        else:
            guess = cv2.resize(x, (k.shape[1], k.shape[0]), interpolation=cv2.INTER_LINEAR)[system.free]
            solution, _, _ = conjugate_gradients(system.matvec, system.rhs, 1.0 / system.diag, guess, max_iter, tol)
        x = system.full(solution)
    if finest:
        x = cv2.resize(x, (known.shape[1], known.shape[0]), interpolation=cv2.INTER_LINEAR)
    return x.astype(np.float32)

