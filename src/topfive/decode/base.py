"""What every decoder is: sources in, one preprocessed batch and a per-source error out."""

from __future__ import annotations

import os
import threading
from concurrent.futures import Executor
from typing import Callable, Protocol, Sequence, TypeVar

import torch

from topfive.decode.images import ImageError, ImageSource
from topfive.transforms import PreprocessSpec

T = TypeVar("T")
R = TypeVar("R")


class Decoder(Protocol):
    """`decoder(sources)` -> (batch, errors).

    batch: the sources that worked, in order, preprocessed to `spec` (its dtype, channel order and
    layout) and stacked on the decoder's device; None when none worked. errors: per source its
    ImageError, or None where it is in the batch."""

    spec: PreprocessSpec

    def __call__(self, sources: Sequence[ImageSource]) -> tuple[torch.Tensor | None, list[ImageError | None]]: ...


def default_workers() -> int:
    """Decoding threads when none are asked for: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def map_in_parts(fn: Callable[[T], R], items: Sequence[T], pool: Executor | None, workers: int) -> list[R]:
    """[fn(item) for item in items], in `pool` as at most `workers` tasks of consecutive items:
    for work of well under a millisecond per item a task each would cost more than the work."""
    if pool is None or workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    step = -(-len(items) // workers)
    parts = pool.map(lambda k: [fn(item) for item in items[k : k + step]], range(0, len(items), step))
    return [r for part in parts for r in part]


_local = threading.local()  # each thread's CUDA side stream, reused from batch to batch


class DeviceDecoder:
    """What the tensor and DALI decoders share: the call on a CUDA side stream and the reading.

    A subclass sets `spec`, `device` (a torch.device with its index), `pool` and `workers`, and
    defines `decode(sources: list)` -> (batch, errors). On CUDA that work is queued on a side stream
    of the calling thread, so that a batch prepared in a worker thread overlaps with the model
    running on the default stream; the call returns once the batch is ready."""

    spec: PreprocessSpec
    device: torch.device
    pool: Executor | None
    workers: int

    def decode(self, sources: list[ImageSource]) -> tuple[torch.Tensor | None, list[ImageError | None]]:
        raise NotImplementedError

    def __call__(self, sources: Sequence[ImageSource]) -> tuple[torch.Tensor | None, list[ImageError | None]]:
        if self.device.type != "cuda":
            return self.decode(list(sources))
        if getattr(_local, "stream", None) is None or _local.stream.device != self.device:
            _local.stream = torch.cuda.Stream(self.device)
        with torch.cuda.stream(_local.stream):
            batch, errors = self.decode(list(sources))
        _local.stream.synchronize()
        if batch is not None:  # its memory must not be reused while the model's stream still reads it
            batch.record_stream(torch.cuda.default_stream(self.device))
        return batch, errors

    def read_each(self, read: Callable[[ImageSource], R], sources: list[ImageSource], threaded: bool = False) -> list[R]:
        """[read(s) for s in sources]: in the pool when a source is a file or `threaded` (the read
        decodes too), else here (bytes in memory: parsing headers is Python, threads only contend)."""
        if threaded or any(isinstance(s, (str, os.PathLike)) for s in sources):
            return map_in_parts(read, sources, self.pool, self.workers)
        return [read(s) for s in sources]
