"""Files -> one preprocessed batch tensor on a device, decoded by torchvision instead of Pillow.

For GPU inference, where Pillow decoding photo by photo cannot keep up with the model. File bytes
are read in threads; JPEGs are decoded by `torchvision.io.decode_jpeg` (one batched nvjpeg call on
CUDA, libjpeg-turbo in the reader threads on CPU); then the whole batch is resized and cropped at
once by batched matrix products whose weights are Pillow's own antialiased resampling
coefficients (same filters, edge handling, pass order, fixed-point weights and rounding to uint8
after each pass, exact in float64). So the geometry gives the reference path's pixels
(`preprocess.preprocess`, which calls Pillow) bit for bit; what can differ is the decoder: on CPU
torchvision's libjpeg-turbo gave Pillow's pixels on all 569 eval photos, nvjpeg on CUDA need not.
`benchmarks/tensor_pipeline.py` measures it, and compares `torchvision.ops.roi_align` variants.

Anything else goes through the reference path for that one input: PNG and other formats, PIL
images, CMYK JPEGs, JPEGs that do not end in an EOI marker (Pillow then decides whether they are
truncated), JPEGs decode_jpeg rejects, and specs with nearest interpolation. Unreadable inputs give
the same typed ImageErrors as `images.load_image`, so a batch goes on without them.
"""
from __future__ import annotations

import math
import os
import threading
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
import torch
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from topfive.decode.images import (
    MAX_IMAGE_PIXELS,
    ImageError,
    ImageNotFound,
    ImageSource,
    ImageTooLarge,
    NotAnImage,
    check_file,
    describe,
    load_image,
)
from topfive.transforms import PreprocessSpec, pixels, preprocess, to_layout

# torchvision 0.29 warns on every decode that TorchCodec supersedes it; nothing to act on here.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision", category=DeprecationWarning)

JPEG_SOI, JPEG_EOI = b"\xff\xd8\xff", b"\xff\xd9"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
PRECISION_BITS = 22  # Pillow's fixed-point resampling weights (Resample.c: 32 - 8 - 2)
PILLOW_VERTICAL_FIRST = int(PIL.__version__.split(".")[0]) >= 13  # see vertical_first()
DTYPE = torch.float64  # exact: pixel x fixed-point weight sums fit its 53 bits, so rounding matches Pillow's integers
GROUP_PIXELS = 2**25  # padded pixels resampled at once: 0.8 GB in float64, as much again for the gather's int64 index (256 photos of 12 MP would need 74 GB)

# Pillow's ImageOps.exif_transpose for EXIF orientations 2..8, on (..., H, W) tensors. decode_jpeg's
# own apply_exif_orientation works on CPU only, so it is done here, the same way on every device.
_ORIENTATIONS = {
    2: lambda x: x.flip(-1),
    3: lambda x: x.flip(-2, -1),
    4: lambda x: x.flip(-2),
    5: lambda x: x.transpose(-2, -1),
    6: lambda x: x.rot90(-1, (-2, -1)),
    7: lambda x: x.transpose(-2, -1).flip(-2, -1),
    8: lambda x: x.rot90(1, (-2, -1)),
}


@dataclass(frozen=True)
class JpegHeader:
    width: int
    height: int
    components: int
    orientation: int  # EXIF orientation, 1 = upright


def _exif_orientation(tiff: memoryview) -> int:
    order = {b"II": "little", b"MM": "big"}.get(bytes(tiff[:2]))
    if order is None or len(tiff) < 8:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return 1
    for k in range(int.from_bytes(tiff[ifd : ifd + 2], order)):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            break
        if int.from_bytes(tiff[entry : entry + 2], order) == 0x0112:
            value = int.from_bytes(tiff[entry + 8 : entry + 10], order)  # a SHORT, left-justified
            return value if 1 <= value <= 8 else 1
    return 1


def jpeg_header(data) -> JpegHeader | None:
    """Size, colour components and EXIF orientation read from a JPEG's markers (no decoding);
    None for anything that is not a JPEG these markers describe. `data`: bytes or any buffer
    (a uint8 array); segments are read in place, not copied (EXIF segments can be 64 kB)."""
    view = memoryview(data).cast("B")
    if view[:3] != JPEG_SOI:
        return None
    i, n, orientation, frame = 2, len(view), None, None
    while i + 4 <= n:
        if view[i] != 0xFF:
            return None
        marker = view[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan: the header is over
            break
        length = view[i + 2] << 8 | view[i + 3]
        segment = view[i + 4 : i + 2 + length]
        if marker == 0xE1 and orientation is None and segment[:6] == b"Exif\0\0":
            orientation = _exif_orientation(segment[6:])
        elif marker in _SOF and frame is None and len(segment) >= 6:
            frame = (segment[3] << 8 | segment[4], segment[1] << 8 | segment[2], segment[5])
        i += 2 + length
    if frame is None or min(frame[:2]) == 0:
        return None
    return JpegHeader(*frame, orientation or 1)


def _ends_with_eoi(data) -> bool:
    """Whether the JPEG ends in an EOI marker, ignoring zero padding after it."""
    view = memoryview(data).cast("B")
    end = len(view)
    while end and view[end - 1] == 0:
        end -= 1
    return view[end - 2 : end] == JPEG_EOI


# --- geometry: Pillow's resampling, batched ------------------------------------------------------


def _bilinear(x: torch.Tensor) -> torch.Tensor:
    return (1 - x.abs()).clamp(min=0)


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    a, x = -0.5, x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


# (support, kernel), as Pillow's. "nearest" is not here: Pillow resizes with it by a fixed-point
# affine transform; such specs go through the reference path whole.
FILTERS = {"bilinear": (1.0, _bilinear), "bicubic": (2.0, _bicubic)}


@dataclass(frozen=True)
class AxisPlan:
    """How one axis of one image maps to the model's `size` pixels: the span [start, start +
    length) of the source is resized to `resized` pixels (Pillow), of which `offset` .. `offset +
    size` are kept (a centre crop; a negative offset pads with zeros, as torchvision does)."""

    start: int
    length: int
    resized: int
    offset: int


def plan_axes(widths, heights, spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    """(x, y), each a (4, N) int64 array of AxisPlan fields (start, length, resized, offset), for
    upright images of these sizes: the reference path's geometry (torchvision's resize of the
    shorter side then center_crop, or TF-slim's central crop then resize), for a whole batch at
    once (image by image in Python it took ~3 ms of CPU per batch of 256 on the GPU machine,
    `benchmarks/gpu.py --profile`)."""
    w, h = np.asarray(widths, dtype=np.int64), np.asarray(heights, dtype=np.int64)
    size, zeros = spec.size, np.zeros_like(w)
    if spec.rule == "central_fraction":  # preprocess.central_box, elementwise in the same float64 steps
        left = ((w - w * spec.fraction) / 2).astype(np.int64)
        top = ((h - h * spec.fraction) / 2).astype(np.int64)
        full = np.full_like(w, size)
        return np.stack([left, w - 2 * left, full, zeros]), np.stack([top, h - 2 * top, full, zeros])
    short, long = np.minimum(w, h), np.maximum(w, h)
    new_long = (spec.resize * long / short).astype(np.int64)  # torchvision's int(resize * long / short)
    new_w = np.where(w <= h, spec.resize, new_long)
    new_h = np.where(w <= h, new_long, spec.resize)

    def crop_offset(n: np.ndarray) -> np.ndarray:  # torchvision's center_crop; np.round rounds half to even, as round()
        return np.where(size > n, -((size - n) // 2), np.round((n - size) / 2.0).astype(np.int64))

    return np.stack([zeros, w, new_w, crop_offset(new_w)]), np.stack([zeros, h, new_h, crop_offset(new_h)])


def plan(width: int, height: int, spec: PreprocessSpec) -> tuple[AxisPlan, AxisPlan]:
    """plan_axes for one image, as (x, y) AxisPlans."""
    x, y = plan_axes([width], [height], spec)
    return AxisPlan(*map(int, x[:, 0])), AxisPlan(*map(int, y[:, 0]))


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
    dispatch and a launch, whatever its size (`benchmarks/host_overhead.py`).
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


# --- the pipeline --------------------------------------------------------------------------------


def read_source(source: ImageSource) -> bytes | torch.Tensor | None:
    """The contents of a path (a uint8 tensor: read_file reads it in one call that releases the
    GIL, where Python's file reads take it back after each system call, which in a busy process
    can mean waiting on other threads' Python) or of a bytes source; typed errors for missing,
    directory, empty; None for a PIL image, which goes through the reference path."""
    if isinstance(source, bytes):
        return source
    if not isinstance(source, (str, os.PathLike)):
        return None
    try:
        data = read_file(os.fspath(source))
    except RuntimeError:
        check_file(Path(source), describe(source))  # missing, a directory: the typed error
        raise ImageNotFound(describe(source), "permission denied or unreadable") from None
    if not data.numel():
        raise NotAnImage(describe(source), "empty file (0 bytes)")
    return data


def _as_tensor(data: bytes | torch.Tensor) -> torch.Tensor:
    return data if isinstance(data, torch.Tensor) else torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _decodable(source: ImageSource, data: bytes | torch.Tensor | None) -> JpegHeader | None:
    """The header of a JPEG that decode_jpeg should take; None sends the input to Pillow."""
    if data is None:
        return None
    if isinstance(data, torch.Tensor):
        data = data.numpy()
    header = jpeg_header(data)
    if header is None or header.components not in (1, 3) or not _ends_with_eoi(data):
        return None
    if header.width * header.height > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(
            describe(source),
            f"{header.width}x{header.height} pixels exceeds the limit of {MAX_IMAGE_PIXELS:,}",
        )
    return header


def _decode_one(data: bytes | torch.Tensor, device) -> torch.Tensor:
    return decode_jpeg(_as_tensor(data), mode=ImageReadMode.RGB, device=device)


def _read(source: ImageSource, decode_on_cpu: bool, reference: bool = False):
    """(bytes, header, decoded CPU tensor or None) or an ImageError, in a reader thread. A None
    header sends the input to the reference path (always, with `reference`)."""
    try:
        data = read_source(source)
        header = None if reference else _decodable(source, data)
        decoded = None
        if header is not None and decode_on_cpu:
            try:
                decoded = _decode_one(data, "cpu")
            except RuntimeError:
                header = None  # Pillow decides: it may read it, or name the error
        return data, header, decoded
    except ImageError as e:
        return e


def prepare_batch(
    sources: list[ImageSource],
    spec: PreprocessSpec,
    device: str | torch.device = "cpu",
    pool: Executor | None = None,
) -> tuple[torch.Tensor | None, list[ImageError | None]]:
    """Preprocess `sources` into one batch on `device`, in the spec's dtype and layout.

    Returns (batch of the inputs that worked, in order, or None if none did; per input its
    ImageError or None). `pool` reads (and on CPU decodes) the files in threads.

    On CUDA the work is queued on a side stream of the calling thread, so that a batch prepared in
    a worker thread overlaps with the model running on the default stream; the call returns once
    the batch is ready.
    """
    device = indexed(device)
    if device.type != "cuda":
        return _prepare_batch(sources, spec, device, pool)
    if getattr(_local, "stream", None) is None or _local.stream.device != device:
        _local.stream = torch.cuda.Stream(device)
    with torch.cuda.stream(_local.stream):
        batch, errors = _prepare_batch(sources, spec, device, pool)
    _local.stream.synchronize()
    if batch is not None:  # its memory must not be reused while the model's stream still reads it
        batch.record_stream(torch.cuda.default_stream(device))
    return batch, errors


_local = threading.local()


def indexed(device: str | torch.device) -> torch.device:
    """The device with its CUDA index spelled out ("cuda" -> "cuda:0"): torchvision re-creates its
    nvjpeg decoder whenever it is called with a device that compares different, and "cuda" and
    "cuda:0" do, so every caller must name the device the same way (in the first GPU run a stage
    timed with the other spelling took 0.2 s instead of 15 ms: docs/gpu-runs)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _prepare_batch(sources, spec: PreprocessSpec, device: torch.device, pool: Executor | None, batched=None):
    """`batched`: decode all JPEGs in one decode_jpeg call (default: on CUDA) rather than one by
    one in the reader threads (CPU); tests run the CUDA branch on the CPU this way."""
    on_cpu = device.type == "cpu" if batched is None else not batched
    if spec.interpolation not in FILTERS:
        read = lambda s: _read(s, on_cpu, reference=True)  # noqa: E731
    else:
        read = lambda s: _read(s, on_cpu)  # noqa: E731
    files = any(isinstance(s, (str, os.PathLike)) for s in sources)
    if pool is None or not (files or on_cpu):  # bytes in memory: parsing headers is Python, threads only contend
        results = [read(s) for s in sources]
    else:  # a few tasks, not one per file: per-task overhead would cost more than reading
        step = -(-len(sources) // getattr(pool, "_max_workers", 4))
        parts = pool.map(lambda k: [read(s) for s in sources[k : k + step]], range(0, len(sources), step))
        results = [r for part in parts for r in part]
    errors: list[ImageError | None] = [r if isinstance(r, ImageError) else None for r in results]
    jpegs = [i for i, r in enumerate(results) if errors[i] is None and r[1] is not None]
    decoded = {i: results[i][2] for i in jpegs}
    if jpegs and not on_cpu:  # one batched call (nvjpeg on CUDA)
        try:
            decoded = dict(zip(jpegs, _decode_many([results[i][0] for i in jpegs], device)))
        except RuntimeError:  # one bad file fails the batched call: find it
            decoded = {}
            for i in jpegs:
                try:
                    decoded[i] = _decode_one(results[i][0], device)
                except RuntimeError:
                    pass
    decoded = {i: t for i, t in decoded.items() if t is not None}
    ready: dict[int, torch.Tensor] = {}
    for i in range(len(sources)):  # the reference path for everything decode_jpeg did not take
        if errors[i] is None and i not in decoded:
            try:
                ready[i] = preprocess(load_image(sources[i]), spec)
            except ImageError as e:
                errors[i] = e
    upright = {}
    for i, t in decoded.items():
        turn = _ORIENTATIONS.get(results[i][1].orientation)
        upright[i] = turn(t) if turn else t
    good = [i for i in range(len(sources)) if errors[i] is None]
    if not good:
        return None, errors
    decoded_rows = pixels(resize_crop(list(upright.values()), spec), spec) if upright else None
    if len(upright) == len(good):  # the usual case: all decoded here, already in order
        return to_layout(decoded_rows, spec), errors
    row = {i: r for r, i in enumerate(good)}
    sample = decoded_rows if decoded_rows is not None else next(iter(ready.values()))[None]
    batch = torch.empty((len(good), *sample.shape[1:]), dtype=sample.dtype, device=device)
    if decoded_rows is not None:
        batch[torch.tensor([row[i] for i in upright], device=device)] = decoded_rows
    for i, t in ready.items():  # the reference path's tensors
        batch[row[i]] = t.to(device)
    return to_layout(batch, spec), errors


def _decode_many(blobs: list[bytes | torch.Tensor], device) -> list[torch.Tensor]:
    return decode_jpeg([_as_tensor(b) for b in blobs], mode=ImageReadMode.RGB, device=device)
