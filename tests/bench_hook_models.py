"""Models for the bench tests, loaded in the worker process through `python:bench_hook_models:<name>`."""

import torch

from topfive.runtime.backends import Backend
from topfive.transforms import PreprocessSpec
from topfive.models.zoo import ModelEntry, ModelInfo

BUFFER_BYTES = 200_000_000  # what `big_buffer` holds, written to so that every page is resident


class BigBuffer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # torch.ones writes every page; torch.zeros may map untouched pages that never reach RSS.
        self.register_buffer("ballast", torch.ones(BUFFER_BYTES // 4, dtype=torch.float32))
        self.fc = torch.nn.Linear(3, 1000)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


def big_buffer():
    return BigBuffer()


def broken():
    raise RuntimeError("deliberately broken test model")


class MeanBackend(Backend):
    """A non-torch stand-in: numpy scores from uint8 NHWC input, as a TFLite card's backend would take."""

    name = "test"

    def probabilities(self, batch):
        scores = batch.numpy().astype("float32").mean(axis=(1, 2))  # N x 3
        return torch.from_numpy(scores).repeat(1, 334)[:, :1000].softmax(dim=-1)


class CardLikeEntry(ModelEntry):
    """An entry without a torch module: build() raises TypeError, as cards.py's model cards do."""

    def __init__(self):
        self.info = ModelInfo(
            name="card-like-test-model", family="tflite", architecture="test", params=None, gmacs=None,
            acc1=None, acc5=None, weights_file=None, weights_mb=None, weights_url=None,
            preprocess=PreprocessSpec(size=96, resize=110, dtype="uint8", layout="NHWC"),
        )

    def build(self, pretrained=True, weights_file=None):
        raise TypeError("card-like-test-model has no PyTorch module (use load_backend)")

    def weights_status(self):
        return "local"

    def load_backend(self, device="cpu", weights_file=None, pretrained=True):
        return MeanBackend()


def card_like():
    return CardLikeEntry()
