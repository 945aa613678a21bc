import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MODELS = sorted((ROOT / "models").glob("*.net"))


@pytest.fixture
def seed_operations() -> list[str]:
    """The seed's "operations" listing, one entry per line, without list punctuation."""
    lines = (DATA / "seed_operations.txt").read_text().splitlines()
    return [line.strip(" ,[]") for line in lines if line.strip()]


@pytest.fixture
def seed_network() -> str:
    return (DATA / "seed_network.txt").read_text().strip()


def need_dot():
    """Skip where graphviz's dot is missing, except in CI, which installs it."""
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have graphviz's dot (see .ci/run)")
        pytest.skip("graphviz's dot is not installed")
