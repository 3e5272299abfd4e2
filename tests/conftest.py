import os
from pathlib import Path

import pytest

# auto would time the runtimes at first use; in tests the timings mean nothing and would make answers
# depend on the machine's load, so auto is pinned to onnxruntime, which the expected answers were
# recorded on (set here, so CLI subprocesses inherit it). test_tune.py measures for real, briefly.
os.environ["TOPFIVE_AUTO_RUNTIME"] = "onnxruntime"

# ../shared beside the checkout: the labelled photos and external models (always there in CI).
SHARED = Path(__file__).resolve().parents[2] / "shared"
EVAL = SHARED / "eval"


def pytest_configure(config):
    if not (EVAL / "manifest.csv").is_file():
        raise pytest.UsageError(f"{EVAL} is missing: the tests need ../shared beside the checkout")


@pytest.fixture(scope="session")
def lite0():
    from topfive import Classifier

    return Classifier("efficientnet_lite0")
