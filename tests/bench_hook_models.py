"""Models for the bench tests, loaded in the worker process through `python:bench_hook_models:<name>`."""

import os

import torch

from topfive.models import ModelEntry, ModelInfo
from topfive.transforms import PreprocessSpec

BUFFER_BYTES = 200_000_000  # what `big_buffer` holds, written to so that every page is resident
LAYOUT_LOG = "TOPFIVE_TEST_LAYOUT_LOG"  # where `layout_recorder` writes the memory format of each input


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


class LayoutRecorder(torch.nn.Module):
    """Appends one line per forward to $TOPFIVE_TEST_LAYOUT_LOG: the batch size and the input's
    memory format, so a test can see what every pass (timed and end to end) was given."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.fc = torch.nn.Linear(8, 1000)

    def forward(self, x):
        layout = "channels_last" if x.is_contiguous(memory_format=torch.channels_last) else "contiguous"
        with open(os.environ[LAYOUT_LOG], "a") as f:
            f.write(f"{x.shape[0]} {layout}\n")
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def layout_recorder():
    return LayoutRecorder()


class MeanRuntime:
    """A non-torch stand-in: scores from uint8 NHWC input, as a TFLite card's runtime would take."""

    name = "test"

    def probabilities(self, batch):
        scores = batch.numpy().astype("float32").mean(axis=(1, 2))  # N x 3
        return torch.from_numpy(scores).repeat(1, 334)[:, :1000].softmax(dim=-1)


class BuggyBuildEntry(ModelEntry):
    """A PyTorch entry whose build() has a bug (a TypeError). It must be reported as the row's
    error, not mistaken for a model card and timed through a card's runtime."""

    has_module = True

    def __init__(self):
        self.info = ModelInfo(
            name="buggy-build-test-model", family="torchvision", architecture="test", params=None, gmacs=None,
            acc1=None, acc5=None, weights_file=None, weights_mb=None, weights_url=None,
            preprocess=PreprocessSpec(size=96, resize=110, dtype="uint8", layout="NHWC"),
        )

    def build(self, pretrained=True, weights_file=None):
        return torch.nn.Linear(3, 1000, no_such_argument=1)  # the bug: a TypeError

    def weights_status(self):
        return "local"


def buggy_build():
    return BuggyBuildEntry()
