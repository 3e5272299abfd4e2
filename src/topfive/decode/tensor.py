"""The batched tensor decoder: sources -> one preprocessed batch on a device, decoded by torchvision.

For GPU inference, where Pillow decoding photo by photo cannot keep up with the model. Files are
read in threads; JPEGs are decoded by `torchvision.io.decode_jpeg` (one batched nvjpeg call on
CUDA, libjpeg-turbo in the reader threads on CPU), turned upright by their EXIF orientation, then
resized and cropped all at once by decode/resample.py, which gives the Pillow decoder's geometry
bit for bit. What can differ is the JPEG decoder itself: on CPU libjpeg-turbo gave Pillow's pixels
on all 569 eval photos, nvjpeg on CUDA need not.

Anything else goes to the Pillow decoder, input by input: PNG and other formats, PIL images, CMYK
JPEGs, JPEGs that do not end in an EOI marker (Pillow then decides whether they are truncated),
JPEGs decode_jpeg rejects, and specs with nearest interpolation. Unreadable inputs get the same
typed ImageErrors as `images.load_image`, so a batch goes on without them; so do JPEGs cut short
and re-terminated, which decode_jpeg fills with grey (the checks of decode/jpeg.py, as Pillow's).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass

import torch
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from topfive.decode.base import DeviceDecoder, default_workers
from topfive.decode.images import (
    CorruptImage,
    ImageError,
    ImageSource,
    ImageUnreadable,
    NotAnImage,
    check_file,
    check_size,
    describe,
)
from topfive.decode.jpeg import BLANK, BLANK_LUMA, LUMA, JpegHeader, cut_short, ends_with_eoi, read_header
from topfive.decode.pillow import PillowDecoder
from topfive.decode.resample import FILTERS, resize_crop
from topfive.transforms import PreprocessSpec, pixels, to_layout

# torchvision 0.29 warns on every decode that TorchCodec supersedes it; nothing to act on here.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision", category=DeprecationWarning)

# Pillow's ImageOps.exif_transpose for EXIF orientations 2..8, on (..., H, W) tensors. decode_jpeg's
# own apply_exif_orientation works on CPU only, so it is done here, the same way on every device.
ORIENTATIONS = {
    2: lambda x: x.flip(-1),
    3: lambda x: x.flip(-2, -1),
    4: lambda x: x.flip(-2),
    5: lambda x: x.transpose(-2, -1),
    6: lambda x: x.rot90(-1, (-2, -1)),
    7: lambda x: x.transpose(-2, -1).flip(-2, -1),
    8: lambda x: x.rot90(1, (-2, -1)),
}


@dataclass(frozen=True)
class ReadSource:
    """One source after its reader thread: its bytes, and the JPEG header when decode_jpeg is to
    take it (None: the Pillow decoder takes it), and its pixels when the reader decoded them."""

    data: bytes | torch.Tensor | None
    header: JpegHeader | None = None
    decoded: torch.Tensor | None = None


def read_source(source: ImageSource) -> bytes | torch.Tensor | None:
    """The contents of a path (a uint8 tensor: read_file reads it in one call that releases the
    GIL, where Python's file reads take it back after each system call, which in a busy process
    can mean waiting on other threads' Python) or of a bytes source; typed errors for missing,
    directory, empty; None for a PIL image, which goes to the Pillow decoder."""
    if isinstance(source, bytes):
        return source
    if not isinstance(source, (str, os.PathLike)):
        return None
    check_file(source, describe(source))  # before reading: a FIFO or a device is never opened
    try:
        data = read_file(os.fspath(source))
    except RuntimeError:  # e.g. a name that is not UTF-8, which read_file cannot pass on: Python's open can
        try:
            with open(source, "rb") as f:
                data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
        except OSError as e:
            raise ImageUnreadable.from_os_error(describe(source), e) from None
    if not data.numel():
        raise NotAnImage(describe(source), "empty file (0 bytes)")
    return data


def as_tensor(data: bytes | torch.Tensor) -> torch.Tensor:
    return data if isinstance(data, torch.Tensor) else torch.frombuffer(bytearray(data), dtype=torch.uint8)


def decodable(source: ImageSource, data: bytes | torch.Tensor | None) -> JpegHeader | None:
    """The header of a JPEG that decode_jpeg should take; None sends the input to Pillow."""
    if data is None:
        return None
    if isinstance(data, torch.Tensor):
        data = data.numpy()
    header = read_header(data)
    if header is None or header.components not in (1, 3) or not ends_with_eoi(data):
        return None
    check_size(describe(source), header.width, header.height)
    if header.progressive and (reason := cut_short(data, True)):  # the scans it lacks show before decoding
        raise CorruptImage(describe(source), reason)
    return header


def decode_one(data: bytes | torch.Tensor, device) -> torch.Tensor:
    return decode_jpeg(as_tensor(data), mode=ImageReadMode.RGB, device=device)


def decode_many(blobs: list[bytes | torch.Tensor], device) -> list[torch.Tensor]:
    return decode_jpeg([as_tensor(b) for b in blobs], mode=ImageReadMode.RGB, device=device)


def read_one(source: ImageSource, decode_on_cpu: bool, jpegs: bool = True) -> ReadSource | ImageError:
    """What a reader thread does for one source; `jpegs=False` sends every input to Pillow."""
    try:
        data = read_source(source)
        header = decodable(source, data) if jpegs else None
        if header is not None and decode_on_cpu:
            try:
                return ReadSource(data, header, decode_one(data, "cpu"))
            except RuntimeError:
                return ReadSource(data)  # Pillow decides: it may read it, or name the error
        return ReadSource(data, header)
    except ImageError as e:
        return e


def indexed(device: str | torch.device) -> torch.device:
    """The device with its CUDA index spelled out ("cuda" -> "cuda:0"): torchvision re-creates its
    nvjpeg decoder whenever it is called with a device that compares different, and "cuda" and
    "cuda:0" do, so every call must name the device the same way (re-creating it costs ~0.2 s)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


class TensorDecoder(DeviceDecoder):
    """The batched decoder (see the module docstring). `pool` reads (and on CPU decodes) the
    files as `workers` tasks. `batched`: decode all JPEGs in one decode_jpeg call on the device
    (default: on CUDA) rather than one by one in the reader threads (CPU); tests run the CUDA
    branch on the CPU this way. On CUDA the work runs on a side stream (base.DeviceDecoder)."""

    def __init__(self, spec: PreprocessSpec, device: str | torch.device = "cpu", pool: Executor | None = None,
                 workers: int | None = None, batched: bool | None = None):
        self.spec = spec
        self.device = indexed(device)
        self.pool = pool
        self.workers = workers or default_workers()
        self.batched = self.device.type != "cpu" if batched is None else batched
        self.pillow = PillowDecoder(spec)

    def read(self, sources: list[ImageSource]) -> list[ReadSource | ImageError]:
        on_cpu, jpegs = not self.batched, self.spec.interpolation in FILTERS
        return self.read_each(lambda s: read_one(s, on_cpu, jpegs), sources, threaded=on_cpu)

    def decode_on_device(self, blobs: list[bytes | torch.Tensor]) -> list[torch.Tensor | None]:
        """One batched decode_jpeg call (nvjpeg on CUDA); None for each blob it cannot decode."""
        if not blobs:
            return []
        try:
            return decode_many(blobs, self.device)
        except RuntimeError:  # one bad file fails the batched call: find it
            out = []
            for blob in blobs:
                try:
                    out.append(decode_one(blob, self.device))
                except RuntimeError:
                    out.append(None)
            return out

    def decode(self, sources: list[ImageSource]) -> tuple[torch.Tensor | None, list[ImageError | None]]:
        spec, device = self.spec, self.device
        results = self.read(sources)
        errors: list[ImageError | None] = [r if isinstance(r, ImageError) else None for r in results]
        jpegs = [i for i, r in enumerate(results) if errors[i] is None and r.header is not None]
        if self.batched:
            decoded = dict(zip(jpegs, self.decode_on_device([results[i].data for i in jpegs])))
        else:
            decoded = {i: results[i].decoded for i in jpegs}
        upright = {}
        for i, t in decoded.items():
            if t is not None:
                turn = ORIENTATIONS.get(results[i].header.orientation)
                upright[i] = turn(t) if turn else t
        blank = blank_corners([decoded[i] for i in upright]) if upright else None
        ready: dict[int, torch.Tensor] = {}
        for i in range(len(sources)):  # the Pillow decoder for everything decode_jpeg did not take
            if errors[i] is None and i not in upright:
                try:
                    ready[i] = self.pillow.prepare(sources[i])
                except ImageError as e:
                    errors[i] = e
        good = [i for i in range(len(sources)) if errors[i] is None]
        batch = assemble(good, upright, ready, spec, device) if good else None
        if blank is None:
            return batch, errors
        blank = dict(zip(upright, blank.tolist()))
        return self.without_cut_short(sources, results, decoded, blank, good, batch, errors)

    def without_cut_short(self, sources, results, decoded, blank: dict[int, bool], good: list[int], batch,
                          errors: list[ImageError | None]) -> tuple[torch.Tensor | None, list[ImageError | None]]:
        """The batch and errors once the JPEGs cut short are out: those whose last pixel is the grey of
        no data (`blank`, per source index; read back after the batch was queued, so that on CUDA the
        check waits for no more than the batch itself) are checked on their bytes (jpeg.cut_short)."""
        cut = []
        for i in (i for i, grey in blank.items() if grey):
            data = results[i].data
            data = data.numpy() if isinstance(data, torch.Tensor) else data
            reason = cut_short(data, results[i].header.progressive, tuple(decoded[i][:, -1, -1].tolist()))
            if reason:
                errors[i] = CorruptImage(describe(sources[i]), reason)
                cut.append(i)
        if not cut:
            return batch, errors
        rows = [r for r, i in enumerate(good) if i not in cut]
        return (batch[torch.tensor(rows, device=batch.device)] if rows else None), errors


def blank_corners(images: list[torch.Tensor]) -> torch.Tensor:
    """Per decoded JPEG (3, H, W, as stored): whether its last pixel is the grey of a block without
    data (jpeg.blank), as one bool tensor on their device, read back once per batch."""
    corners = torch.stack([t[:, -1, -1] for t in images]).to(torch.float32)
    luma = corners @ torch.tensor(LUMA, device=corners.device)
    return (luma - BLANK).abs() <= BLANK_LUMA


def assemble(good: list[int], upright: dict[int, torch.Tensor], ready: dict[int, torch.Tensor],
             spec: PreprocessSpec, device: torch.device) -> torch.Tensor:
    """The batch, rows in source order: the JPEGs decoded here (`upright`, resized together) and
    the Pillow decoder's tensors (`ready`), keyed by source index; `good` lists both keys."""
    decoded_rows = pixels(resize_crop(list(upright.values()), spec), spec) if upright else None
    if len(upright) == len(good):  # the usual case: all decoded here, already in order
        return to_layout(decoded_rows, spec)
    row = {i: r for r, i in enumerate(good)}
    sample = decoded_rows if decoded_rows is not None else next(iter(ready.values()))[None]
    batch = torch.empty((len(good), *sample.shape[1:]), dtype=sample.dtype, device=device)
    if decoded_rows is not None:
        batch[torch.tensor([row[i] for i in upright], device=device)] = decoded_rows
    for i, t in ready.items():
        batch[row[i]] = t.to(device)
    return to_layout(batch, spec)
