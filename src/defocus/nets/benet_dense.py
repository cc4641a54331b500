"""Dense (fully convolutional) evaluation of B-Net and E-Net over a whole image, tile by tile.

Every edge patch is a window of the same padded image, so the feature streams are run once over the image instead
of once per patch; the class scores are then read at the edge pixels. The results are the patch-wise ones
(:class:`defocus.nets.benet.BNet` on 41×41 patches, the reference), up to float32 rounding: same weights, same
arithmetic per output, no new weight file.

How a patch's layers map onto the image (filter rarefaction, "à trous"):

* A 3×3 VALID convolution of a patch is the same convolution of the image, read at the patch's window.
* The 3/3 max-pool of a patch keeps one window in three; which ones depends on where the patch starts. Run with
  stride 1 it keeps every window, i.e. all nine pooling phases at once, so each pixel's patch finds its own phase;
  the layers after it then step 3 px per patch position: they run dilated by 3. (Shift-and-stitch over the nine
  phases computes the same numbers.)
* The three streams end on 7×7 grids of different steps — 3 px for the 41 and 27 streams, which pool, 1 px for the
  15 stream, which does not — and different origins (the 27 and 15 crops start 7 and 13 px into the 41 patch). The
  head's first 3×3 convolution is linear over its input channels, so it is split by stream: each part runs densely
  at its stream's step, and the 5×5 grid of one pixel sums the parts read at that stream's positions. The rest of
  the head (two 3×3 convolutions down to 1×1, the 1×1 convolution and the FC layers) works on that 5×5 grid and
  runs per edge pixel with the network's own modules.

Tiles: the image is cut into ``tile``×``tile`` blocks of output pixels; each block reads its window of the padded
image plus the receptive-field margin (40 px), and only the part of a block that holds edge pixels is evaluated,
so memory is bounded whatever the image size and edge-free regions cost nothing.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .benet import PATCH_SIZES, BNet, ENet

#: Receptive field of one edge pixel's scores (px): the 41×41 patch.
FIELD = PATCH_SIZES[0]
#: Side of the fused feature grid where the three streams meet.
FUSED = 7


def max_pool_stride1(x: torch.Tensor, k: int, dilation: int = 1) -> torch.Tensor:
    """``F.max_pool2d(x, k, stride=1, dilation=dilation)``, computed as maxima of shifted views along W then H
    (exact; faster than the pooling kernel on channels-last CPU tensors; differentiable when ``x`` needs grad)."""
    def along(t: torch.Tensor, dim: int) -> torch.Tensor:
        n = t.shape[dim] - dilation * (k - 1)
        out = t.narrow(dim, 0, n).clone()
        for i in range(1, k):
            if torch.jit.is_tracing() or out.requires_grad:  # ONNX and autograd have no in-place maximum
                out = torch.maximum(out, t.narrow(dim, i * dilation, n))
            else:
                torch.maximum(out, t.narrow(dim, i * dilation, n), out=out)
        return out

    return along(along(x, 3), 2)


def stream_map(stream: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A feature stream run densely over ``x`` (1, C, h, w).

    Returns the feature map and its step: element (i, j) of the stream's output for the window starting at (y, x)
    is the map at (y + step·i, x + step·j). Each max-pool runs with stride 1 and multiplies the step (and the
    dilation of everything after it) by its stride.
    """
    step = 1
    for layer in stream:
        if isinstance(layer, nn.Conv2d):
            x = F.conv2d(x, layer.weight, layer.bias, dilation=step)
        elif isinstance(layer, nn.MaxPool2d):
            x = max_pool_stride1(x, layer.kernel_size, step)
            step *= layer.stride
        elif isinstance(layer, nn.ReLU):
            x = F.relu(x) if x.requires_grad else F.relu_(x)
        else:
            raise TypeError(f"no dense form for {type(layer).__name__}")
    return x, step


def f1_maps(f1, x: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
    """Dense maps of the f1 streams over a centred padded block ``x`` (1, 3, h, w): each stream reads its centred
    crop of every 41×41 window, so its map is indexed by the window's top-left corner like the 41 stream's."""
    maps = []
    for size, stream in zip(f1.scales, f1.streams):
        inset = (FIELD - size) // 2
        maps.append(stream_map(stream, x[:, :, inset:x.shape[2] - inset, inset:x.shape[3] - inset]))
    return maps


def head_logits(head: nn.Sequential, maps: list[tuple[torch.Tensor, int]], ys: np.ndarray, xs: np.ndarray,
                batch: int = 4096) -> torch.Tensor:
    """Logits (N, classes) of ``head`` (b-net or e-net) for the windows with top-left corners (ys, xs) of the block.

    ``maps`` are the dense stream maps (:func:`stream_map`) in the order of the head's input channels; the per-pixel
    part of the head runs ``batch`` pixels at a time.
    """
    first = head[0]
    n = FUSED - first.kernel_size[0] + 1  # side of the grid after the first convolution (5)
    # The first convolution split by input stream, its parts summed per step (all maps are indexed by the window's
    # top-left corner, so a common crop keeps every window's positions).
    parts: dict[int, torch.Tensor] = {}
    c0 = 0
    for fmap, step in maps:
        c = fmap.shape[1]
        part = F.conv2d(fmap, first.weight[:, c0:c0 + c], None, dilation=step)[0]
        c0 += c
        if step in parts:
            h = min(part.shape[1], parts[step].shape[1])
            w = min(part.shape[2], parts[step].shape[2])
            part = parts[step][:, :h, :w].add_(part[:, :h, :w])
        parts[step] = part
    # (H·W, C) views: each grid cell of a pixel is one whole channel vector
    tables = {step: (part.permute(1, 2, 0).reshape(-1, part.shape[0]), part.shape[2]) for step, part in parts.items()}
    grid = torch.arange(n, device=first.weight.device)
    out = []
    for i in range(0, len(ys), batch):
        y = torch.as_tensor(ys[i:i + batch], device=grid.device)
        x = torch.as_tensor(xs[i:i + batch], device=grid.device)
        acc = None
        for step, (table, width) in tables.items():
            flat = ((y[:, None] + step * grid) * width)[:, :, None] + (x[:, None] + step * grid)[:, None, :]
            g = table.index_select(0, flat.reshape(-1))
            acc = g if acc is None else acc.add_(g)
        if first.bias is not None:
            acc = acc + first.bias
        # (N, C, n, n), channels-last in memory, through the rest of the head: ReLU, convs, FC layers
        out.append(head[1:](acc.reshape(-1, n, n, acc.shape[-1]).permute(0, 3, 1, 2)))
    return torch.cat(out)


def block_logits(bnet: BNet, enet: ENet | None, x: torch.Tensor, ys, xs,
                 batch: int = 4096) -> tuple[torch.Tensor, torch.Tensor | None]:
    """B-Net and E-Net logits of the 41×41 windows with top-left corners (ys, xs) of one block ``x`` (1, 3, h, w)
    of the padded image, centred (minus 0.5)."""
    maps = f1_maps(bnet.f1, x)
    blur = head_logits(bnet.b, maps, ys, xs, batch)
    if enet is None:
        return blur, None
    emaps = maps if enet.f1 is bnet.f1 else f1_maps(enet.f1, x)
    return blur, head_logits(enet.e, emaps + [stream_map(enet.f2, x)], ys, xs, batch)


class DenseBENet(nn.Module):
    """The dense evaluation of one block as a module (what ``defocus export -m karaali-2022`` exports):
    ``block`` (1, 3, h, w) RGB in [0, 1], ``ys``, ``xs`` (N,) int64 window corners → (N, 23) and (N, 2) logits."""

    def __init__(self, bnet: BNet, enet: ENet) -> None:
        super().__init__()
        self.bnet, self.enet = bnet, enet

    def forward(self, block: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # one batch for every pixel: a traced loop over batches would keep the example's count
        return block_logits(self.bnet, self.enet, block - 0.5, ys, xs, batch=1 << 62)


@torch.inference_mode()
def dense_logits(bnet: BNet, enet: ENet | None, padded: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                 tile: int = 512, batch: int = 4096, device: str = "cpu",
                 runtime=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """B-Net and E-Net logits of the 41×41 windows of ``padded`` with top-left corners (ys, xs).

    Parameters
    ----------
    padded : ndarray (H + 40, W + 40, 3), float32 in [0, 1]
        The reflect-padded image (:func:`defocus.methods.karaali_2022.pad_image`); window (y, x) is then the patch
        centred on pixel (y, x) of the image.
    ys, xs : ndarray (N,), int
        Pixels of the unpadded image.
    tile : int
        Side of a block of output pixels (px); memory ≈ 64 channels × (tile + 40)² × 4 bytes per activation,
        78 MB at 512, a few alive at once. Larger blocks repeat less of the 40-px margin.
    batch : int
        Edge pixels per call of the per-pixel part of the heads (≈ 6.4 kB each).
    runtime : callable, optional
        Computes one block instead of torch: ``runtime(block, ys, xs) -> (bnet_logits, enet_logits)`` with the
        block float32 (1, 3, h, w) in [0, 1] and arrays out (the exported :class:`DenseBENet`, run by
        :class:`defocus.nets.onnx.OnnxDense`; all of a block's edge pixels in one call).

    Returns
    -------
    bnet_logits : Tensor (N, 23), enet_logits : Tensor (N, 2) or None
        On the CPU, in the order of (ys, xs).
    """
    ys = np.asarray(ys, np.int64)
    xs = np.asarray(xs, np.int64)
    n = len(ys)
    tile, batch = max(1, int(tile)), max(1, int(batch))
    bout = torch.zeros(n, bnet.b[-1].out_features)
    eout = torch.zeros(n, enet.e[-1].out_features) if enet is not None else None
    if n == 0:
        return bout, eout
    width = padded.shape[1] - FIELD + 1
    block = (ys // tile) * ((width + tile - 1) // tile) + xs // tile
    order = np.argsort(block, kind="stable")
    starts = np.flatnonzero(np.r_[True, block[order][1:] != block[order][:-1]])
    for sel in np.split(order, starts[1:]):
        by, bx = ys[sel], xs[sel]
        y0, x0 = by.min(), bx.min()  # only the part of the tile that holds edge pixels
        y1, x1 = by.max() + FIELD, bx.max() + FIELD
        if runtime is not None:
            block = np.ascontiguousarray(padded[y0:y1, x0:x1].transpose(2, 0, 1))[None]
            blur, edge = (torch.from_numpy(np.asarray(t)) for t in runtime(block, by - y0, bx - x0))
        else:
            x = torch.from_numpy(padded[y0:y1, x0:x1]).to(device).permute(2, 0, 1)[None] - 0.5
            x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on the CPU
            blur, edge = block_logits(bnet, enet, x, by - y0, bx - x0, batch)
        bout[sel] = blur.float().cpu()
        if enet is not None:
            eout[sel] = edge.float().cpu()
    return bout, eout
