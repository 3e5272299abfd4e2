"""Pillow's antialiased resampling, batched: resize + centre crop for many images at once.

Each image's transforms.plan is turned into Pillow's own resampling coefficients (Resample.c's
precompute_coeffs: the same filters, edge handling, fixed-point weights and pass order), applied
as batched matrix products and rounded to uint8 after each pass as Pillow rounds. In float64 the
sums are exact, so the result equals `transforms.preprocess`'s geometry bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import PIL
import torch

from topfive.transforms import PreprocessSpec, plan_axes

PRECISION_BITS = 22  # Pillow's fixed-point resampling weights (Resample.c: 32 - 8 - 2)
PILLOW_VERTICAL_FIRST = int(PIL.__version__.split(".")[0]) >= 13  # see vertical_first()
DTYPE = torch.float64  # exact: pixel x fixed-point weight sums fit its 53 bits, so rounding matches Pillow's integers
GROUP_PIXELS = 2**25  # padded pixels resampled at once: 0.8 GB in float64, as much again for the gather's int64 index


def _bilinear(x: torch.Tensor) -> torch.Tensor:
    return (1 - x.abs()).clamp(min=0)


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    a, x = -0.5, x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


# (support, kernel), as Pillow's. "nearest" is not here: Pillow resizes with it by a fixed-point
# affine transform; the tensor decoder hands such specs to the Pillow decoder whole.
FILTERS = {"bilinear": (1.0, _bilinear), "bicubic": (2.0, _bicubic)}


def windows(axis: np.ndarray, size: int, interpolation: str) -> tuple[np.ndarray, np.ndarray]:
    """(first, end), each (N,): per image of plan_axes' `axis`, the source pixels [first, end)
    that its resampling filters can read. The filter reach of the first and last output pixel
    inside the resized image, in resample_taps' float64 steps, so it holds every tap with a
    weight (a pixel more at an edge whose weight rounds to 0 does no harm). Planned in numpy so
    that cutting the windows needs no device sync."""
    start, length, resized, offset = (a.astype(np.float64) for a in axis)
    support, _ = FILTERS[interpolation]
    scale = length / resized
    reach = support * np.maximum(scale, 1.0)
    first_j = np.maximum(offset, 0)
    last_j = np.minimum(offset + size, resized) - 1  # below first_j: the crop misses the image
    xmin = np.maximum(np.trunc((first_j + 0.5) * scale - reach + 0.5), 0)
    xmax = np.minimum(np.trunc((last_j + 0.5) * scale + reach + 0.5), length)
    first = (start + np.minimum(xmin, length - 1)).astype(np.int64)
    return first, np.maximum((start + xmax).astype(np.int64), first + 1)


def resample_taps(axis: np.ndarray, size: int, interpolation: str, device, window) -> tuple[torch.Tensor, torch.Tensor]:
    """(taps, weights), each (N, size, K), on `device`, for one axis of N images planned by
    plan_axes: output pixel j of image n is the sum over k of weights[n, j, k] * source pixel
    taps[n, j, k] along this axis. The weights are Pillow's (Resample.c's precompute_coeffs: the
    filter stretched by the downscale factor, cut at the image edge and renormalised, then
    quantised to its fixed point); unused taps have weight 0. Taps count from the first pixel of
    each image's `window` ((first, end) from windows()) and stay below its end."""
    plan = torch.as_tensor(np.concatenate([axis, window]), dtype=torch.float64).to(device, non_blocking=True)
    start, length, resized, offset, first, end = plan[..., None]
    j = torch.arange(size, dtype=torch.float64, device=device)[None, :] + offset  # index in the resized span
    scale = length / resized
    support, kernel = FILTERS[interpolation]
    filterscale = scale.clamp(min=1.0)
    reach = support * filterscale
    center = (j + 0.5) * scale
    xmin = torch.trunc(center - reach + 0.5).clamp(min=0)
    xmax = torch.minimum(torch.trunc(center + reach + 0.5), length.expand_as(center))
    widest = support * max(1.0, float((axis[1] / axis[2]).max()))  # reach.max(), without a device sync
    k = torch.arange(int(math.ceil(widest)) * 2 + 1, dtype=torch.float64, device=device)
    x = xmin[..., None] + k  # (N, size, K) source positions in the span
    w = kernel((x - center[..., None] + 0.5) / filterscale[..., None]) * (x < xmax[..., None])
    w = w / w.sum(-1, keepdim=True).clamp(min=1e-300)
    w = torch.sign(w) * torch.floor(w.abs() * 2**PRECISION_BITS + 0.5) / 2**PRECISION_BITS
    inside = ((j >= 0) & (j < resized))[..., None]  # a crop larger than the resized image pads zeros
    taps = torch.minimum((start - first)[..., None] + x, (end - first - 1)[..., None]).clamp(min=0).long()
    return taps, (w * inside).to(DTYPE)


def _round_u8(x: torch.Tensor) -> torch.Tensor:
    """Pillow's clip8 after each pass: round half up, clamp to 0..255 (kept as float)."""
    return torch.floor(x + 0.5).clamp_(0, 255)


def _matrix(taps: torch.Tensor, weights: torch.Tensor, full: int, device) -> torch.Tensor:
    """(N, full, size): the taps as dense matrices, zero beyond each image's window."""
    n, size, _ = taps.shape
    dense = torch.zeros(n, size, full, dtype=DTYPE, device=device)
    return dense.scatter_add_(2, taps, weights).transpose(1, 2)


def vertical_first(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per image of plan_axes' (x, y), Pillow's pass order. Since Pillow 13 (Resample.c), when the
    height shrinks by more than twice as many pixels as the width, the vertical pass runs first;
    before, never. The order matters: each pass rounds to uint8."""
    shrink_y, shrink_x = y[1] - y[2], x[1] - x[2]
    return (shrink_y > 0) & (shrink_y > 2 * shrink_x) & PILLOW_VERTICAL_FIRST


def _flat(img: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """A (3, H, W) image as a 1-D view of its memory and its (channel, row, column) strides. nvjpeg
    gives channel planes, torchvision's CPU decoder interleaved pixels (an HWC buffer seen as CHW);
    both are read in place, anything else is copied first."""
    if img.is_contiguous():
        return img.view(-1), img.stride()
    interleaved = img.permute(1, 2, 0)
    if interleaved.is_contiguous():
        return interleaved.view(-1), img.stride()
    img = img.contiguous()
    return img.view(-1), img.stride()


def _padded_windows(images: list[torch.Tensor], top, left, height, width) -> torch.Tensor:
    """(N, 3, max height, max width) uint8: each image's window [top, top + height) x [left, left +
    width) at the corner, gathered at once from the images laid end to end (a fixed number of
    device operations however many images). Past a window the gather repeats its last row and
    column: the resampling matrices give those pixels weight 0, so any finite value will do."""
    device = images[0].device
    parts, strides = zip(*map(_flat, images))
    sizes = np.array([part.numel() for part in parts], dtype=np.int64)
    tallest, widest = int(height.max()), int(width.max())
    per_image = np.column_stack([np.cumsum(sizes) - sizes, strides, top, left, height, width]).T
    starts, channel, row, column, top, left, height, width = torch.as_tensor(per_image).to(device, non_blocking=True)[..., None]
    rows = top + torch.minimum(torch.arange(tallest, device=device), height - 1)  # (N, H)
    cols = left + torch.minimum(torch.arange(widest, device=device), width - 1)  # (N, W)
    channels = torch.arange(3, device=device)[:, None] * channel[:, None]  # (N, 3, 1)
    row_starts = (starts + rows * row)[:, None, :] + channels  # (N, 3, H)
    return torch.take(torch.cat(parts), row_starts[..., None] + (cols * column)[:, None, None, :])


def _resize_group(batch: torch.Tensor, xs, ys, size: int, vertical: bool) -> torch.Tensor:
    """Pillow's two passes over a padded batch of windows, as two batched matrix products,
    in Pillow's order; each pass is rounded to uint8 as Pillow rounds it."""
    n, _, height, width = batch.shape
    batch = batch.to(DTYPE)
    across, down = _matrix(*xs, width, batch.device), _matrix(*ys, height, batch.device).transpose(1, 2)[:, None]
    # batch (N, 3, H, W); across (N, W, size); down (N, 1, size, H)
    if vertical:
        cols = _round_u8(down @ batch)  # (N, 3, size, W)
        return _round_u8(torch.bmm(cols.view(n, 3 * size, width), across)).view(n, 3, size, size)
    rows = _round_u8(torch.bmm(batch.view(n, 3 * height, width), across)).view(n, 3, height, size)
    return _round_u8(down @ rows)


def resize_crop(images: list[torch.Tensor], spec: PreprocessSpec) -> torch.Tensor:
    """uint8 (3, H_i, W_i) images on one device -> uint8 (N, 3, size, size): the reference path's
    resize + crop (Pillow's antialiased resampling), for all of them at once.

    Each image is cut to the window its filters read, the windows are padded into batches of
    similar size and the same pass order, and each batch is resampled by two batched matrix
    products (dense: measured ~2x faster on CPU than gathering the K filter taps; on a GPU they
    are plain GEMMs). The cost is ~6 * window pixels * size multiply-adds per image. The work is
    planned in numpy and queued as device operations whose number grows with the size groups, not
    with the images, and nothing is read back: on a GPU each operation costs the calling thread a
    dispatch and a launch, whatever its size.
    """
    size, device = spec.size, images[0].device
    x, y = plan_axes([img.shape[-1] for img in images], [img.shape[-2] for img in images], spec)
    (x0, x1), (y0, y1) = windows(x, size, spec.interpolation), windows(y, size, spec.interpolation)
    n = len(images)
    taps, weights = resample_taps(np.concatenate([x, y], 1), size, spec.interpolation, device,
                                  (np.concatenate([x0, y0]), np.concatenate([x1, y1])))
    xt, yt, xw, yw = taps[:n], taps[n:], weights[:n], weights[n:]
    out = torch.empty((n, 3, size, size), dtype=torch.uint8, device=device)
    order = vertical_first(x, y)
    for vertical in (False, True):
        same = np.flatnonzero(order == vertical)
        for group in size_groups(list(zip((y1 - y0)[same].tolist(), (x1 - x0)[same].tolist()))):
            members = same[group]
            batch = _padded_windows([images[i] for i in members], y0[members], x0[members],
                                    (y1 - y0)[members], (x1 - x0)[members])
            g = torch.as_tensor(members).to(device, non_blocking=True)
            out[g] = _resize_group(batch, (xt[g], xw[g]), (yt[g], yw[g]), size, vertical).to(torch.uint8)
    return out


def size_groups(sizes: list[tuple[int, int]], waste: float = 1.5, most: int | None = None) -> list[list[int]]:
    """Indices grouped so that zero-padding each group to its largest height and width costs at
    most `waste` times the pixels its images hold (one 12 MP photo must not pad a whole batch),
    and at most `most` padded pixels (GROUP_PIXELS: memory) unless one image alone is larger."""
    most = GROUP_PIXELS if most is None else most
    order = sorted(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1], reverse=True)
    groups: list[list[int]] = []
    gh = gw = held = 0  # the last group's padded height, width and the pixels it holds
    for i in order:
        h, w = sizes[i]
        padded = (len(groups[-1]) + 1) * max(h, gh) * max(w, gw) if groups else 0
        if groups and padded <= waste * (held + h * w) and padded <= most:
            groups[-1].append(i)
            gh, gw, held = max(h, gh), max(w, gw), held + h * w
        else:
            groups.append([i])
            gh, gw, held = h, w, h * w
    return groups
