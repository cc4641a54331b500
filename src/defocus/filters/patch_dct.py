"""Orthonormal 2-D DCT-II of square patches around chosen pixels, batched.

:func:`patch_dct` gathers the ``size``×``size`` patches of one or more images around N pixels (reflected borders) and
returns their 2-D DCT-II coefficients (``norm="ortho"``, so Σ coefficient² = Σ pixel² per patch) as one (…, N, size,
size) array, computed by ``scipy.fft.dctn`` over the two patch axes at once. Pixels are processed in chunks so that
the temporaries stay bounded whatever N is.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import fft

__all__ = ["patch_dct"]

_CHUNK_VALUES = 4_000_000  # patch samples per chunk (16 MB of float32)


def patch_dct(images: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int,
              reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """DCT-II coefficients of the ``size``×``size`` patch of each image around each pixel.

    Parameters
    ----------
    images : ndarray (H, W) or (K, H, W), float
        One image, or K images of the same shape (e.g. a photo and its re-blurred copy).
    ys, xs : ndarray (N,), int
        Pixel rows and columns. Pixel (y, x) owns rows y − size//2 … y + (size − 1)//2 (likewise columns); the image
        is mirrored (without repeating the edge pixel) where the patch passes the border.
    size : int
        Patch side in px, at least 1.
    reduce : callable, optional
        Applied to the coefficients of each chunk of pixels, (K, n, size, size) float32 → (K, n, …); the results
        are joined along the pixel axis. With it only the reduced values of all N pixels are ever held (e.g. band
        energies of a few bytes per pixel instead of size² coefficients), which bounds memory on large photos.

    Returns
    -------
    ndarray (N, size, size) for one image, (K, N, size, size) for K images; float32
        Orthonormal DCT-II coefficients: [..., 0, 0] is size × the patch mean; [..., u, v] has vertical frequency
        index u and horizontal index v (cycles per patch: u/2). With ``reduce``: its results, (N, …) or (K, N, …).
    """
    stack = np.asarray(images, np.float32)
    single = stack.ndim == 2
    if single:
        stack = stack[None]
    if stack.ndim != 3 or size < 1:
        raise ValueError(f"need (H, W) or (K, H, W) images and size >= 1, got shape {stack.shape}, size {size}")
    ys = np.asarray(ys, np.intp)
    xs = np.asarray(xs, np.intp)
    before = size // 2
    after = size - 1 - before
    k, h, w = stack.shape
    # np.pad "reflect" mirrors repeatedly when the pad exceeds the image, so tiny images still work.
    pad = np.pad(stack, ((0, 0), (before, after), (before, after)), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(pad, (size, size), axis=(1, 2))  # (K, H, W, size, size)
    step = max(1, _CHUNK_VALUES // (k * size * size))
    parts = []
    for i in range(0, max(len(ys), 1), step):
        patches = windows[:, ys[i : i + step], xs[i : i + step]]  # a copy: (K, n, size, size)
        coeffs = fft.dctn(patches, type=2, axes=(2, 3), norm="ortho", workers=1) if patches.size else patches
        parts.append(coeffs if reduce is None else reduce(coeffs))
    out = np.concatenate(parts, axis=1)
    return out[0] if single else out
