"""Classifier: load a model once, then predict the top-k ImageNet classes for images or batches."""

from __future__ import annotations

import numbers
import os
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import torch
from PIL import Image

from topfive.decode import check_decoder, make_decoder
from topfive.decode.base import Decoder, default_workers
from topfive.decode.images import ImageError, ImageSource, describe
from topfive.runtime.base import NonFiniteOutput
from topfive.decode.pillow import PillowDecoder, draft_size
from topfive.imagenet import classes
from topfive.models import resolve

ERRORS = ("raise", "collect")



FAILED = (ImageError, NonFiniteOutput)  # what makes one input a Failure while the others go on

@dataclass(frozen=True)
class ClassScore:
    rank: int
    index: int
    wnid: str
    name: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    source: str
    model: str
    top: tuple[ClassScore, ...]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Failure:
    """An input that could not be classified; the batch went on without it."""

    source: str
    model: str
    error: str  # the exception's class name, e.g. "CorruptImage"
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def is_one_source(inputs) -> bool:
    """Whether `inputs` is one image source rather than an iterable of them."""
    return isinstance(inputs, (str, bytes, os.PathLike, Image.Image)) or not isinstance(inputs, Iterable)


def check_top_k(top_k) -> None:
    """ValueError unless top_k is a whole number >= 1: torch's topk fails on it later, and less clearly."""
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k!r}")


def _chosen_runtime(runtime, backend):
    """The runtime asked for, given the deprecated `backend=` spelling too."""
    if backend is None:
        return runtime
    warnings.warn("Classifier(backend=...) is deprecated; use runtime=", DeprecationWarning, stacklevel=3)
    if not (isinstance(runtime, str) and runtime == "auto"):
        raise ValueError("pass the runtime once: runtime= (backend= is its deprecated spelling)")
    return backend


class Classifier:
    """`Classifier("resnet50").predict("cat.jpg")` -> Prediction with the top 5 classes.

    `model` is any name `topfive models` lists (`resnet50`, `resnet50:IMAGENET1K_V1`,
    `ResNet50_Weights.IMAGENET1K_V1`, `efficientnet_lite0`) or a model card's path.
    """

    def __init__(
        self,
        model: str = "efficientnet_lite0",
        runtime="auto",
        device: str = "cpu",
        weights_file: str | None = None,
        batch_size: int = 16,
        workers: int | None = None,
        draft: bool = False,
        calibration=None,
        threads: int | None = None,
        decode: str = "pillow",
        prefetch: int | None = None,
        backend=None,
    ):
        """`runtime`: a word of topfive.runtime.RUNTIMES ("auto": for a zoo model on the
        CPU the fastest fp32 runtime measured on this machine, cached (topfive.runtime.tune), else torch;
        a card's own format runtime), or a ready runtime object
        (anything with `probabilities(batch)`). `backend`: the deprecated spelling of `runtime`.
        `calibration`: photos for the int8 runtime. `threads`: the runtime's CPU threads.
        `draft`: decode large JPEGs at a reduced DCT scale (see decode.pillow.draft_size).
        `decode`: "pillow" decodes image by image (the reference); "tensor" decodes each batch with
        torchvision on the runtime's device (nvjpeg on CUDA) and resizes it there in one step, with
        Pillow's pixels (decode/tensor.py). `prefetch`: how many batches are prepared ahead of the
        one the model runs; default 1, and 2 with decode="tensor", where one batch's GPU decoding
        can overlap another's resizing (each holds a batch in memory)."""
        check_decoder(decode, draft)
        runtime = _chosen_runtime(runtime, backend)
        entry = resolve(model)
        if isinstance(runtime, str):
            from topfive.runtime import make_runtime

            runtime = make_runtime(entry, runtime, device=device, threads=threads, calibration=calibration,
                                   weights_file=weights_file)
        elif not callable(getattr(runtime, "probabilities", None)):
            raise TypeError(f"runtime must be a runtime name or have probabilities(batch), not {runtime!r}")
        self._attach(runtime, entry.info.name, entry.info.preprocess, entry, batch_size, workers, draft, decode, prefetch)

    @classmethod
    def around(cls, runtime, name: str, spec, entry=None, batch_size: int = 16, workers: int | None = None,
               draft: bool = False, decode: str = "pillow", prefetch: int | None = None) -> "Classifier":
        """A Classifier around a runtime that is already loaded, e.g. by `topfive bench`, which
        must not load a second copy of the model (it would disturb the memory figures). `entry`
        may be None for a model that no name resolves to (`python:` hooks)."""
        check_decoder(decode, draft)
        clf = cls.__new__(cls)
        clf._attach(runtime, name, spec, entry, batch_size, workers, draft, decode, prefetch)
        return clf

    def _attach(self, runtime, name, spec, entry, batch_size, workers, draft, decode, prefetch) -> None:
        prefetch = (2 if decode == "tensor" else 1) if prefetch is None else prefetch
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, not {prefetch}")
        self.runtime, self.name, self.spec, self.entry = runtime, name, spec, entry
        self.info = entry.info if entry is not None else None
        self.decode = decode
        self.batch_size = batch_size
        self.workers = workers or default_workers()
        self.draft = draft
        self.prefetch = prefetch

    @property
    def backend(self):
        """The runtime, under its former name."""
        return self.runtime

    def draft_size(self) -> int:
        return draft_size(self.spec)

    def decode_device(self) -> torch.device:
        """Where the batched decoders (tensor, dali) work: the runtime's CUDA device, else the CPU."""
        device = getattr(self.runtime, "torch_device", None)
        if device is None and isinstance(getattr(self.runtime, "device", None), torch.device):
            device = self.runtime.device
        return device if device is not None and device.type == "cuda" else torch.device("cpu")

    def decoder(self, pool: ThreadPoolExecutor | None = None) -> Decoder:
        """The decoder iter_predict uses, its per-file work in `pool`."""
        device = self.decode_device() if self.decode in ("tensor", "dali") else "cpu"
        return make_decoder(self.decode, self.spec, device=device, draft=self.draft, pool=pool, workers=self.workers)

    def prepare(self, source: ImageSource) -> torch.Tensor:
        """Decode and preprocess one image to the tensor the model takes (the Pillow decoder)."""
        return PillowDecoder(self.spec, draft=self.draft).prepare(source)

    def top_classes(self, probs: torch.Tensor, top_k: int) -> list[tuple[ClassScore, ...]]:
        """The top_k ClassScores of each row of a (batch, classes) probability tensor, best first."""
        table = classes()
        values, indices = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
        # Python numbers first: iterating tensors element by element cost ~40 us more per image
        return [
            tuple(
                ClassScore(rank + 1, i, table[i].wnid, table[i].name, v)
                for rank, (v, i) in enumerate(zip(vs, ix))
            )
            for vs, ix in zip(values.tolist(), indices.tolist())
        ]

    def _submit(self, pool: ThreadPoolExecutor, decoder: Decoder, chunk: list) -> Future:
        return pool.submit(decoder, chunk)

    def _prepared_ahead(self, pool: ThreadPoolExecutor, decoder: Decoder, chunks: list[list]) -> Iterator[tuple]:
        """(chunk, its batch, its errors), with the next `prefetch` chunks submitted to the pool
        before chunk k is handed out."""
        queued: deque[Future] = deque([self._submit(pool, decoder, chunks[0])] if chunks else [])
        submitted = len(queued)
        try:
            for chunk in chunks:
                batch, errors = queued.popleft().result()
                while submitted < len(chunks) and len(queued) < self.prefetch:
                    queued.append(self._submit(pool, decoder, chunks[submitted]))
                    submitted += 1
                yield chunk, batch, errors
        finally:
            for future in queued:  # the caller stopped early: drop the batches decoded ahead
                future.cancel()

    def _results(self, sources: list, top_k: int, progress: bool = False) -> Iterator[tuple]:
        """(source, Prediction or the ImageError it got), in order."""
        chunks = [sources[start : start + self.batch_size] for start in range(0, len(sources), self.batch_size)]
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(sources), desc=self.name, unit="img", delay=1.0, leave=False)
        # `batches` runs the decoder on whole chunks, ahead of the model; `readers` does its per-file work
        try:
            with ThreadPoolExecutor(self.prefetch) as batches, ThreadPoolExecutor(self.workers) as readers:
                for chunk, batch, errors in self._prepared_ahead(batches, self.decoder(readers), chunks):
                    tops, bad, non_finite = self.answers(batch, top_k)
                    row = 0
                    for source, error in zip(chunk, errors):
                        if error is None:
                            error = non_finite if row in bad else None
                            result = error if error is not None else Prediction(describe(source), self.name, tops[row])
                            row += 1
                        yield source, (error if error is not None else result)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()

    def answers(self, batch: torch.Tensor | None, top_k: int) -> tuple[list, set[int], NonFiniteOutput | None]:
        """The model on a decoded batch: (top-k ClassScores per row, rows without a finite answer,
        their NonFiniteOutput). A NaN row fails that image alone, the batch's other answers stand."""
        if batch is None:
            return [], set(), None
        try:
            return self.top_classes(self.runtime.probabilities(batch), top_k), set(), None
        except NonFiniteOutput as e:
            return self.top_classes(e.probabilities, top_k), set(e.rows), e

    def _failure(self, source: ImageSource, error: ImageError | NonFiniteOutput) -> Failure:
        return Failure(describe(source), self.name, type(error).__name__, error.reason)

    def iter_predict(
        self, sources: Iterable[ImageSource], top_k: int = 5, progress: bool = False
    ) -> Iterator[Prediction | Failure]:
        """Yield one Prediction or Failure per source, in order.

        Decoding runs in worker threads ahead of the model: while it runs on batch k, the workers
        decode and preprocess batches k+1 .. k+prefetch (at most prefetch + 1 batches are held).
        A bad top_k raises here, not at the first next().
        """
        check_top_k(top_k)
        return self._predictions(sources, top_k, progress)

    def _predictions(self, sources: Iterable[ImageSource], top_k: int, progress: bool) -> Iterator[Prediction | Failure]:
        with closing(self._results(list(sources), top_k, progress)) as results:
            for source, result in results:
                yield self._failure(source, result) if isinstance(result, FAILED) else result

    def predict(
        self, inputs: ImageSource | Iterable[ImageSource], top_k: int = 5, errors: str = "raise"
    ) -> Prediction | list[Prediction | Failure]:
        """One input -> a Prediction; several (a list, tuple, generator, ...) -> a list in order.

        errors="raise" raises the first input's ImageError, as the decoder gave it; errors="collect"
        puts a Failure in its place.
        """
        if errors not in ERRORS:
            raise ValueError(f"errors must be one of {', '.join(map(repr, ERRORS))}, not {errors!r}")
        check_top_k(top_k)
        single = is_one_source(inputs)
        items = [inputs] if single else list(inputs)
        out: list[Prediction | Failure] = []
        with closing(self._results(items, top_k)) as results:
            for source, result in results:
                if isinstance(result, FAILED):
                    if errors == "raise":
                        raise result
                    result = self._failure(source, result)
                out.append(result)
        return out[0] if single else out

    def __call__(self, inputs, top_k: int = 5):
        """Hugging Face pipeline shape: [{"label": name, "score": p}, ...] per image."""
        result = self.predict(inputs, top_k=top_k)
        as_hf = lambda p: [{"label": c.name, "score": c.probability} for c in p.top]  # noqa: E731
        return as_hf(result) if isinstance(result, Prediction) else [as_hf(p) for p in result]
