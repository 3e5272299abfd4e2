"""The pipelined Classifier.iter_predict: order kept, failures in place, decoding batches ahead."""

import itertools
import threading

import torch

from conftest import EVAL
from topfive.runtime.base import Runtime
from topfive.predict import Classifier, Failure, Prediction

PHOTOS = [str(p) for p in sorted(EVAL.glob("images/*/*.jpg"))[::60][:7]]


class RecordingRuntime(Runtime):
    """Answers class = batch position of the image in the whole stream, and checks that the next
    batch's decoding had started before it was asked to run the current one."""

    name = "recording"

    def __init__(self, started: threading.Event | None = None, batches: int = 0):
        self.started = started
        self.batches = batches
        self.calls = 0
        self.overlapped = []

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        if self.started is not None and self.calls < self.batches - 1:  # the last batch has no successor
            self.overlapped.append(self.started.wait(timeout=20))
            self.started.clear()
        self.calls += 1
        probs = torch.zeros(len(batch), 1000)
        probs[:, self.calls] = 1.0  # class index = batch number: shows which batch an image went in
        return probs


def test_results_in_input_order_with_failures_in_place(tmp_path, lite0):
    missing = str(tmp_path / "missing.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    sources = [PHOTOS[0], missing, PHOTOS[1], PHOTOS[2], str(text), PHOTOS[3], PHOTOS[4]]
    clf = Classifier("efficientnet_lite0", batch_size=2, runtime=lite0.runtime)
    results = list(clf.iter_predict(sources))
    assert [r.source for r in results] == sources
    kinds = [type(r) for r in results]
    assert kinds == [Prediction, Failure, Prediction, Prediction, Failure, Prediction, Prediction]
    assert results[1].error == "ImageNotFound" and results[4].error == "NotAnImage"
    # each prediction is the one the image gets in a plain batch of the good photos
    good = [s for s, r in zip(sources, results) if isinstance(r, Prediction)]
    plain = dict(zip(good, lite0.predict(good)))
    for source, result in zip(sources, results):
        if isinstance(result, Prediction):
            assert [c.index for c in result.top] == [c.index for c in plain[source].top]
            assert abs(result.top[0].probability - plain[source].top[0].probability) < 1e-4


def test_next_batch_decodes_while_the_model_runs():
    started = threading.Event()
    runtime = RecordingRuntime(started, batches=3)
    clf = Classifier("efficientnet_lite0", batch_size=2, workers=2, runtime=runtime)
    plain_decoder = clf.decoder
    batch_of = {}

    def decoder(pool=None):
        decode = plain_decoder(pool)

        def recording(chunk):
            if batch_of[chunk[0]] == runtime.calls + 1:  # the batch after the one running next
                started.set()
            return decode(chunk)

        return recording

    clf.decoder = decoder
    sources = PHOTOS[:6]
    batch_of.update({s: i // 2 for i, s in enumerate(sources)})
    results = list(clf.iter_predict(sources))
    # batches 0 and 1 each found the following batch already being decoded
    assert runtime.overlapped == [True, True]
    assert [r.top[0].index for r in results] == [1, 1, 2, 2, 3, 3]


def test_stopping_early_does_not_hang_or_run_everything():
    runtime = RecordingRuntime()
    clf = Classifier("efficientnet_lite0", batch_size=2, runtime=runtime)
    first = list(itertools.islice(clf.iter_predict(PHOTOS * 3), 3))
    assert [r.source for r in first] == PHOTOS[:3]
    assert runtime.calls == 2


def test_prefetch_prepares_several_batches_ahead_and_keeps_order():
    runtime = RecordingRuntime()
    clf = Classifier("efficientnet_lite0", batch_size=2, workers=2, runtime=runtime, prefetch=3)
    submitted = []
    plain_submit = clf._submit

    def submit(pool, decoder, chunk):
        submitted.append((runtime.calls, chunk[0]))  # how many batches the model had run by then
        return plain_submit(pool, decoder, chunk)

    clf._submit = submit
    sources = PHOTOS[:7]
    results = list(clf.iter_predict(sources))
    assert [r.source for r in results] == sources
    assert [r.top[0].index for r in results] == [1, 1, 2, 2, 3, 3, 4]
    # chunk 0 alone, then chunks 1-3 before the model ran chunk 0: three batches ahead
    assert [calls for calls, _ in submitted] == [0, 0, 0, 0]
    assert [first for _, first in submitted] == sources[::2]


def test_prefetch_must_be_positive():
    import pytest

    with pytest.raises(ValueError, match="prefetch"):
        Classifier("efficientnet_lite0", runtime=RecordingRuntime(), prefetch=0)
