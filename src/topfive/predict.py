"""Classifier: load a model once, then predict the top-k ImageNet classes for images or batches."""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Sequence

import torch

from topfive.decode.images import ImageError, ImageSource, describe, load_image
from topfive.imagenet import classes
from topfive.transforms import preprocess, stack
from topfive.models.zoo import resolve


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


def check_decode(decode: str, draft: bool) -> None:
    if decode not in ("pillow", "tensor"):
        raise ValueError(f"decode must be 'pillow' or 'tensor', not {decode!r}")
    if decode == "tensor" and draft:
        raise ValueError("draft decoding is Pillow's; it does not combine with decode='tensor'")


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Classifier:
    """`Classifier("resnet50").predict("cat.jpg")` -> Prediction with the top 5 classes.

    `model` is any name `topfive models` lists (`resnet50`, `resnet50:IMAGENET1K_V1`,
    `ResNet50_Weights.IMAGENET1K_V1`, `efficientnet_lite0`) or a model card's path.
    """

    def __init__(
        self,
        model: str = "efficientnet_lite0",
        device: str = "cpu",
        weights_file: str | None = None,
        batch_size: int = 16,
        workers: int | None = None,
        draft: bool = False,
        backend=None,
        calibration=None,
        threads: int | None = None,
        decode: str = "pillow",
        prefetch: int | None = None,
    ):
        """`backend`: None (the model's own runtime: eager PyTorch for zoo models, the card's
        runtime for model cards), one of backends.BACKENDS for zoo models, or a ready Backend
        object (benchmarks pass one built from a random-weight architecture). `calibration`: photos
        for the int8 backend. `draft`: decode large JPEGs at a reduced DCT scale (see prepare).
        `decode="tensor"`: iter_predict decodes each batch with torchvision on the backend's device
        (nvjpeg on CUDA) and resizes it there in one batched step (tensor_pipeline.py; Pillow's
        pixels, measured in docs/performance.md); the default "pillow" decodes image by image.
        `prefetch`: how many batches are prepared ahead of the one the model runs; default 1, and
        2 with decode="tensor", where one batch's GPU decoding can overlap another's resizing (+4 to
        +17 % end to end on an H200, docs/performance.md; each holds a batch in memory)."""
        check_decode(decode, draft)
        entry = resolve(model)
        if backend is None:
            backend = entry.load_backend(device=device, weights_file=weights_file)
        elif isinstance(backend, str):
            from topfive.runtime.backends import make_backend

            backend = make_backend(
                entry, backend, device=device, weights_file=weights_file, threads=threads, calibration=calibration
            )
        self._attach(backend, entry.info.name, entry.info.preprocess, entry, batch_size, workers, draft, decode, prefetch)

    @classmethod
    def around(cls, backend, name: str, spec, entry=None, batch_size: int = 16, workers: int | None = None,
               draft: bool = False, decode: str = "pillow", prefetch: int | None = None) -> "Classifier":
        """A Classifier around a backend that is already loaded, e.g. by `topfive bench`, which
        must not load a second copy of the model (it would disturb the memory figures). `entry`
        may be None for a model that no name resolves to (`python:` hooks)."""
        check_decode(decode, draft)
        clf = cls.__new__(cls)
        clf._attach(backend, name, spec, entry, batch_size, workers, draft, decode, prefetch)
        return clf

    def _attach(self, backend, name, spec, entry, batch_size, workers, draft, decode, prefetch) -> None:
        prefetch = (2 if decode == "tensor" else 1) if prefetch is None else prefetch
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, not {prefetch}")
        self.backend, self.name, self.spec, self.entry = backend, name, spec, entry
        self.info = entry.info if entry is not None else None
        self.decode = decode
        self.batch_size = batch_size
        self.workers = workers or default_workers()
        self.draft = draft
        self.prefetch = prefetch

    def draft_size(self) -> int:
        """The least shorter side a draft decode keeps: twice the side the crop is taken from.

        Measured on 12 MP versions of 100 eval photos: decoding down to 1x that side kept top-1 on
        97-98 %, 2x on 99 % (Lite0 and Lite2), still ~4x less decode+preprocess time than full.
        """
        return 2 * math.ceil(self.spec.size / self.spec.crop_pct)

    def prepare(self, source: ImageSource) -> torch.Tensor:
        """Decode and preprocess one image to the tensor the model takes."""
        draft_size = self.draft_size() if self.draft else None
        return preprocess(load_image(source, draft_size=draft_size), self.spec)

    def _prepare_or_error(self, source: ImageSource):
        try:
            return self.prepare(source)
        except ImageError as e:
            return e

    def _top(self, probs: torch.Tensor, top_k: int) -> list[tuple[ClassScore, ...]]:
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

    def _tensor_batch(self, chunk: list, readers: ThreadPoolExecutor):
        from topfive.decode.tensor import prepare_batch

        device = getattr(self.backend, "device", None)  # decode where a torch backend runs
        device = device if isinstance(device, torch.device) and device.type == "cuda" else "cpu"
        return prepare_batch(chunk, self.spec, device=device, pool=readers)

    def _submit(self, pool: ThreadPoolExecutor, readers, chunk: list) -> list:
        if self.decode == "tensor":
            return [pool.submit(self._tensor_batch, chunk, readers)]
        return [pool.submit(self._prepare_or_error, s) for s in chunk]

    def _collect(self, futures: list):
        """(batch of the good inputs or None, per input its ImageError or None)."""
        if self.decode == "tensor":
            return futures[0].result()
        prepared = [f.result() for f in futures]
        good = [t for t in prepared if isinstance(t, torch.Tensor)]
        return (stack(good, self.spec) if good else None), [t if isinstance(t, ImageError) else None for t in prepared]

    def _prepared_ahead(self, pool: ThreadPoolExecutor, chunks: list[list], readers=None) -> Iterator[tuple]:
        """(chunk, its batch, its errors), with the next `prefetch` chunks submitted to the pool
        before chunk k is handed out."""
        queued: deque[list] = deque([self._submit(pool, readers, chunks[0])] if chunks else [])
        submitted = len(queued)
        try:
            for chunk in chunks:
                batch, errors = self._collect(queued.popleft())
                while submitted < len(chunks) and len(queued) < self.prefetch:
                    queued.append(self._submit(pool, readers, chunks[submitted]))
                    submitted += 1
                yield chunk, batch, errors
        finally:
            for futures in queued:  # the caller stopped early: drop the batches decoded ahead
                for f in futures:
                    f.cancel()

    def iter_predict(
        self, sources: Iterable[ImageSource], top_k: int = 5, progress: bool = False
    ) -> Iterator[Prediction | Failure]:
        """Yield one Prediction or Failure per source, in order.

        Decoding runs in worker threads ahead of the model: while it runs on batch k, the workers
        decode and preprocess batches k+1 .. k+prefetch (at most prefetch + 1 batches are held).
        """
        sources = list(sources)
        chunks = [sources[start : start + self.batch_size] for start in range(0, len(sources), self.batch_size)]
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(sources), desc=self.name, unit="img", delay=1.0, leave=False)
        # decode="tensor": `pool` prepares whole batches, `readers` read their files (threads start lazily)
        with ThreadPoolExecutor(self.workers) as pool, ThreadPoolExecutor(self.workers) as readers:
            for chunk, batch, errors in self._prepared_ahead(pool, chunks, readers):
                tops = iter(self._top(self.backend.probabilities(batch), top_k) if batch is not None else [])
                for source, error in zip(chunk, errors):
                    if error is not None:
                        yield Failure(describe(source), self.name, type(error).__name__, error.reason)
                    else:
                        yield Prediction(describe(source), self.name, next(tops))
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()

    def predict(
        self, inputs: ImageSource | Sequence[ImageSource], top_k: int = 5, errors: str = "raise"
    ) -> Prediction | list[Prediction | Failure]:
        """One input -> a Prediction; a list -> a list in the same order.

        errors="raise" raises the first ImageError; errors="collect" puts a Failure in its place.
        """
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        results = list(self.iter_predict(items, top_k=top_k))
        if errors == "raise":
            for item, result in zip(items, results):
                if isinstance(result, Failure):
                    self.prepare(item)  # re-raises the typed error
        return results[0] if single else results

    def __call__(self, inputs, top_k: int = 5):
        """Hugging Face pipeline shape: [{"label": name, "score": p}, ...] per image."""
        result = self.predict(inputs, top_k=top_k)
        as_hf = lambda p: [{"label": c.name, "score": c.probability} for c in p.top]  # noqa: E731
        return as_hf(result) if isinstance(result, Prediction) else [as_hf(p) for p in result]
