from pathlib import Path

import pytest

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
