"""Micro-batching: the requests that reach a model within a few milliseconds of each other go
through one `Classifier.predict`, run off the event loop.

All models share one thread (the lane) for their forward passes: each runtime already uses every
core for one pass, so two passes side by side would only fight over the cores. While the lane is
busy, requests queue up and the next batch takes them all at once (up to the batch size), so under
load the batches fill themselves and the window only matters when the server is quiet.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, replace

from PIL import Image

from topfive.predict import Classifier, Failure, Prediction


class Busy(Exception):
    """A Gate is full or the server is stopping: the request is refused (503), not queued."""


@dataclass(frozen=True)
class Answer:
    result: Prediction | Failure
    seconds: float  # from the request reaching this model's queue to its answer: what the user waits
    batch: int  # how many requests shared the forward pass


@dataclass
class BatchStats:
    batches: int = 0
    images: int = 0
    largest: int = 0

    def add(self, size: int) -> None:
        self.batches += 1
        self.images += size
        self.largest = max(self.largest, size)


class Gate:
    """At most `capacity` requests at once in a stage, the next one is Busy. `doing` says what they
    do, for the refusal. Used on the event loop only, so a plain counter is enough."""

    def __init__(self, capacity: int, doing: str):
        self.capacity = capacity
        self.doing = doing
        self.pending = 0

    def check(self) -> None:
        """Busy when the next request would be refused."""
        if self.pending >= self.capacity:
            raise Busy(f"{self.pending} {self.doing}, the most this server takes at once")

    @contextmanager
    def admit(self):
        self.check()
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1


@dataclass
class Job:
    image: Image.Image
    top_k: int
    arrived: float
    future: asyncio.Future


class MicroBatcher:
    """One model's queue and worker. `classify(image, top_k)` waits for the batch it lands in. The
    queue needs no bound of its own: the app's Gate caps the requests that reach it."""

    def __init__(self, classifier: Classifier, lane: Executor, window_s: float):
        self.classifier = classifier
        self.name = classifier.name
        self.max_batch = max(1, classifier.batch_size)
        self.stats = BatchStats()
        self._lane = lane
        self._window = window_s
        self._queue: asyncio.Queue[Job] | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Make the queue and the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._work(), name=f"batcher {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(Busy("the server is shutting down"))

    async def classify(self, image: Image.Image, top_k: int) -> Answer:
        if self._queue is None:
            raise RuntimeError(f"the worker of {self.name} is not running (start() was not called)")
        job = Job(image, top_k, time.perf_counter(), asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def _collect(self) -> list[Job]:
        """The first job, then whatever arrives within the window, up to the batch size."""
        loop = asyncio.get_running_loop()
        jobs = [await self._queue.get()]
        deadline = loop.time() + self._window
        while len(jobs) < self.max_batch:
            if not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self._queue.get(), left))
            except asyncio.TimeoutError:
                break
        return jobs

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [job for job in await self._collect() if not job.future.done()]  # skip requests given up
            if not jobs:
                continue
            try:
                results = await loop.run_in_executor(self._lane, self._predict, jobs)
            except Exception as e:  # a model that fails on a batch fails each of its requests, not the worker
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(e)
                continue
            self.stats.add(len(jobs))
            done = time.perf_counter()
            for job, result in zip(jobs, results):
                if not job.future.done():
                    job.future.set_result(Answer(result, done - job.arrived, len(jobs)))

    def _predict(self, jobs: list[Job]) -> list[Prediction | Failure]:
        """One forward pass for the whole batch, at the largest top_k asked for, cut per request."""
        top_k = max(job.top_k for job in jobs)
        results = self.classifier.predict([job.image for job in jobs], top_k=top_k, errors="collect")
        return [r if isinstance(r, Failure) else replace(r, top=r.top[: job.top_k]) for r, job in zip(results, jobs)]


def warm_up(classifier: Classifier) -> None:
    """One pass on a blank image, so that the first visitor does not wait for the runtime's first
    run (ONNX Runtime and LiteRT plan their kernels then)."""
    classifier.predict(Image.new("RGB", (320, 240), (128, 128, 128)), top_k=1)
