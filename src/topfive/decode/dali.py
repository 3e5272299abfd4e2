"""The DALI decoder: NVIDIA DALI decodes, resizes and crops each batch (`decode="dali"`).

On "cuda[:N]" JPEGs are decoded by `fn.decoders.image(device="mixed")` (the GPU's hardware JPEG
decoder and nvjpeg; chroma upsampled as libjpeg's CPU decoder does) and resized and cropped on that
GPU; on "cpu" DALI's CPU operators do the same (libjpeg-turbo: the decoded pixels were Pillow's on
the eval photos). The geometry is topfive.transforms' plan, per image: DALI resizes to the planned
size and slices the planned crop (zeros where it reaches outside, as torchvision pads). The
resampling is DALI's own (antialiased when shrinking, as Pillow), not Pillow's weights, so the
pixels differ a little from the reference; docs/gpu-dali.md has the measured top-1 agreement.
DALI gives uint8 RGB in the model's geometry; channel order, dtype and values are then
transforms.pixels', on the decoder's device, as for every other decoder.

DALI is given only the JPEGs the tensor decoder would give torchvision (tensor.read_one: header
read, size and aspect-ratio limits, an EOI at the end, grey or YCbCr, progressive scans complete).
Everything else goes to the Pillow decoder, input by input: PIL images, PNG, WebP and the other
formats (DALI decodes several, but not with Pillow's handling of alpha, palettes and 16 bits), CMYK
JPEGs, JPEGs without an EOI. A JPEG cut short and re-terminated is found as in the tensor decoder:
the pipeline also returns each image's last decoded pixel, and a grey one sends the bytes to
jpeg.cut_short. One bad file fails DALI's whole batch and leaves the pipeline unusable: the
pipeline is rebuilt, the batch rerun file by file, and a file DALI fails alone goes to the Pillow
decoder, which reads it or names its ImageError.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import torch

from topfive.decode.base import DeviceDecoder, default_workers
from topfive.decode.images import CorruptImage, ImageError, ImageSource, describe
from topfive.decode.jpeg import blank, cut_short
from topfive.decode.pillow import PillowDecoder
from topfive.decode.tensor import ReadSource, indexed, read_one
from topfive.transforms import PreprocessSpec, pixels, plan_axes, to_layout

# Where the bottom-right pixel of the stored JPEG (where a cut leaves its grey) lands once DALI has
# turned the image upright by its EXIF orientation: (x, y), 1 = the last column or row, 0 = the first.
INPUTS = ("data", "size", "offset", "start", "length", "corner")  # the pipeline's inputs: Jpeg fields
STORED_CORNER = {1: (1, 1), 2: (0, 1), 3: (0, 0), 4: (1, 0), 5: (1, 1), 6: (0, 1), 7: (0, 0), 8: (1, 0)}
PIPELINES_KEPT = 2  # pipelines cached per process (each holds its buffers: on CUDA, device memory)


class DecoderMissing(ImportError):
    """The optional package a decoder needs is not installed; the message says what to pip install."""


class DaliBatchError(RuntimeError):
    """DALI failed a batch (one of its files, most likely); its pipeline is rebuilt for the next run."""


def require_dali():
    """The `nvidia.dali` module, or DecoderMissing naming the extra that installs it."""
    try:
        return importlib.import_module("nvidia.dali")
    except ImportError as e:
        raise DecoderMissing(
            "decode='dali' needs NVIDIA DALI (the Python package `nvidia.dali`), which is not installed: "
            "pip install 'topfive[gpu]'"
        ) from e


@dataclass(frozen=True)
class Jpeg:
    """A JPEG DALI takes: its index among the sources, its bytes and the plan's numbers for it."""

    index: int
    data: np.ndarray
    progressive: bool
    size: np.ndarray  # (resized height, resized width): DALI's resize takes them in the tensor's order
    offset: np.ndarray  # (x, y) of the crop in the resized image
    start: np.ndarray  # (x, y): where the source span kept before resizing begins (central_fraction)
    length: np.ndarray  # (width, height) of that span
    corner: np.ndarray  # (x, y) of the stored image's last pixel, upright


def jpegs_of(read: list[ReadSource | ImageError], spec: PreprocessSpec) -> list[Jpeg]:
    """The sources DALI decodes, with their geometry planned on their upright size."""
    taken = [(i, r) for i, r in enumerate(read) if isinstance(r, ReadSource) and r.header is not None]
    if not taken:
        return []
    upright = [(r.header.height, r.header.width) if r.header.orientation >= 5 else (r.header.width, r.header.height)
               for _, r in taken]
    x, y = plan_axes([w for w, _ in upright], [h for _, h in upright], spec)
    out = []
    for k, (i, r) in enumerate(taken):
        data = r.data.numpy() if isinstance(r.data, torch.Tensor) else np.frombuffer(r.data, dtype=np.uint8)
        cx, cy = STORED_CORNER[r.header.orientation]
        out.append(Jpeg(i, data, r.header.progressive, np.array([y[2, k], x[2, k]], np.float32), np.array([x[3, k], y[3, k]], np.int32),
                        np.array([x[0, k], y[0, k]], np.int32), np.array([x[1, k], y[1, k]], np.int32),
                        np.array([cx * (upright[k][0] - 1), cy * (upright[k][1] - 1)], np.int32)))
    return out


def geometry_of(spec: PreprocessSpec) -> PreprocessSpec:
    """The spec with only what the pipeline does: its geometry, uint8 RGB NCHW out."""
    return dataclasses.replace(spec, scale=1 / 255, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channels="RGB",
                               dtype="uint8", layout="NCHW")


class DaliPipeline:
    """One DALI pipeline for (geometry, device, threads), built for up to `capacity` images a run
    and rebuilt when a run needs more or an error has left it unusable; one run at a time."""

    def __init__(self, spec: PreprocessSpec, device: torch.device, threads: int):
        self.spec, self.device, self.threads = geometry_of(spec), device, threads
        self.lock = threading.Lock()
        self.pipe, self.capacity, self.inputs = None, 0, ()

    def build(self, capacity: int) -> None:
        dali = require_dali()
        from nvidia.dali import fn, types

        spec, gpu = self.spec, self.device.type == "cuda"
        pipe = dali.Pipeline(batch_size=capacity, num_threads=self.threads, device_id=self.device.index if gpu else None,
                             prefetch_queue_depth=1)  # one batch per call: the Classifier prepares ahead
        with pipe:
            kinds = {"data": types.UINT8, "size": types.FLOAT}
            used = [n for n in INPUTS if spec.rule == "central_fraction" or n not in ("start", "length")]
            feed = {name: fn.external_source(name=name, dtype=kinds.get(name, types.INT32), ndim=1) for name in used}
            options = {"jpeg_fancy_upsampling": True} if gpu else {}
            image = fn.decoders.image(feed["data"], device="mixed" if gpu else "cpu", adjust_orientation=True,
                                      output_type=types.RGB, **options)
            corner = fn.slice(image, feed["corner"], np.array([1, 1], np.int32))
            if spec.rule == "central_fraction":
                image = fn.slice(image, feed["start"], feed["length"])
            interp = {"nearest": types.INTERP_NN, "bilinear": types.INTERP_LINEAR, "bicubic": types.INTERP_CUBIC}
            image = fn.resize(image, size=feed["size"], interp_type=interp[spec.interpolation],
                              antialias=spec.interpolation != "nearest")
            square = np.array([spec.size, spec.size], np.int32)
            image = fn.slice(image, feed["offset"], square, out_of_bounds_policy="pad", fill_values=0)
            pipe.set_outputs(fn.transpose(image, perm=[2, 0, 1]), corner)
        pipe.build()
        self.pipe, self.capacity, self.inputs = pipe, capacity, used

    def run(self, jpegs: list[Jpeg]) -> tuple[torch.Tensor, np.ndarray]:
        """The images (N, 3, size, size, uint8 RGB, on the device) and their stored last pixels (N, 3,
        RGB); DaliBatchError when DALI fails the batch. Building the pipeline raises what DALI raises."""
        from nvidia.dali.plugin.pytorch import feed_ndarray

        with self.lock:
            if self.pipe is None or len(jpegs) > self.capacity:
                self.build(max(len(jpegs), self.capacity))
            for name in self.inputs:
                self.pipe.feed_input(name, [getattr(j, name) for j in jpegs])
            stream = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None
            try:
                images, corners = self.pipe.run(stream)
            except RuntimeError as e:
                self.pipe = None  # "no longer valid": DALI's pipeline does not survive an operator's error
                raise DaliBatchError(str(e)) from e
            out = torch.empty((len(jpegs), 3, self.spec.size, self.spec.size), dtype=torch.uint8, device=self.device)
            feed_ndarray(images.as_tensor(), out, cuda_stream=stream)  # DALI reuses its buffers on the next run
            corners = corners.as_cpu() if self.device.type == "cuda" else corners
            return out, np.stack([np.array(corners[k]).reshape(3) for k in range(len(jpegs))])


_pipelines: OrderedDict[tuple, DaliPipeline] = OrderedDict()  # the last PIPELINES_KEPT settings used
_pipelines_lock = threading.Lock()


def pipeline_for(spec: PreprocessSpec, device: torch.device, threads: int) -> DaliPipeline:
    """The pipeline for these settings, shared by every decoder made for them while it is among the
    last PIPELINES_KEPT asked for (specs that differ only in their pixel values share one)."""
    with _pipelines_lock:
        key = (geometry_of(spec), str(device), threads)
        if key not in _pipelines:
            _pipelines[key] = DaliPipeline(spec, device, threads)
            while len(_pipelines) > PIPELINES_KEPT:
                _pipelines.popitem(last=False)  # a decoder still holding it keeps it alive
        _pipelines.move_to_end(key)
        return _pipelines[key]


class DaliDecoder(DeviceDecoder):
    """The DALI decoder (see the module docstring): `pool` reads the files as `workers` tasks, and
    DALI runs `workers` threads of its own. On CUDA the work runs on a side stream (base.DeviceDecoder)."""

    def __init__(self, spec: PreprocessSpec, device: str | torch.device = "cpu", pool: Executor | None = None,
                 workers: int | None = None):
        require_dali()
        self.spec = spec
        self.device = indexed(device)
        self.pool = pool
        self.workers = workers or default_workers()
        self.pillow = PillowDecoder(spec)
        self.pipeline = pipeline_for(spec, self.device, self.workers)

    def read(self, sources: list[ImageSource]) -> list[ReadSource | ImageError]:
        """Each source's bytes and JPEG header (or its ImageError)."""
        return self.read_each(lambda s: read_one(s, decode_on_cpu=False), sources)

    def run(self, jpegs: list[Jpeg]) -> tuple[torch.Tensor | None, dict[int, torch.Tensor | str | None]]:
        """(the batch, when DALI took every JPEG at once; per source index its image (a row of that
        batch), why a JPEG is cut short, or None where DALI failed it alone). Images are NCHW with the
        spec's channels, dtype and values (transforms.pixels)."""
        if not jpegs:
            return None, {}
        try:
            images, corners = self.pipeline.run(jpegs)
            images = pixels(images, self.spec)
            return images, dict(zip([j.index for j in jpegs], self.checked(jpegs, images, corners)))
        except DaliBatchError:
            if len(jpegs) == 1:
                return None, {jpegs[0].index: None}
        out: dict[int, torch.Tensor | str | None] = {}
        for j in jpegs:  # one failed the batch: find it
            out.update(self.run([j])[1])
        return None, out

    def checked(self, jpegs: list[Jpeg], images: torch.Tensor, corners: np.ndarray) -> list[torch.Tensor | str]:
        """Each image, or why its JPEG is cut short (its last pixel is grey, then its bytes say so)."""
        out: list[torch.Tensor | str] = list(images)
        for k, j in enumerate(jpegs):
            pixel = tuple(int(v) for v in corners[k])
            if blank(pixel) and (reason := cut_short(j.data, j.progressive, pixel)):
                out[k] = reason
        return out

    def decode(self, sources: list[ImageSource]) -> tuple[torch.Tensor | None, list[ImageError | None]]:
        read = self.read(sources)
        errors: list[ImageError | None] = [r if isinstance(r, ImageError) else None for r in read]
        batch, results = self.run(jpegs_of(read, self.spec))
        rows: dict[int, torch.Tensor] = {}
        for i, result in results.items():
            if isinstance(result, str):
                errors[i] = CorruptImage(describe(sources[i]), result)
            elif result is not None:
                rows[i] = result
        if batch is not None and len(rows) == len(sources):  # the usual case: DALI made the whole batch
            return to_layout(batch, self.spec), errors
        for i in range(len(sources)):  # the Pillow decoder for everything DALI did not take
            if errors[i] is None and i not in rows:
                try:
                    rows[i] = self.pillow.prepare(sources[i]).to(self.device)
                except ImageError as e:
                    errors[i] = e
        if not rows:
            return None, errors
        return to_layout(torch.stack([rows[i] for i in sorted(rows)]), self.spec), errors
