import contextlib
import io
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import configuration

# Hypothesis keeps its examples and caches in a temporary folder, not in the checkout.
configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="netdsl-hypothesis-"))

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MODELS = sorted((ROOT / "models").glob("*.net"))


def netdsl_cli(*args, cwd, process=False) -> subprocess.CompletedProcess:
    """`netdsl ARGS` as a user runs it, in `cwd`, which is also its data folder: its exit
    status and what it printed. It runs in this process (`netdsl.cli.main`), as a process
    would, which saves starting Python and importing torch for each command; `process=True`
    starts `python -m netdsl`, for what only a process shows (the entry point, its exit)."""
    if process:
        return subprocess.run([sys.executable, "-m", "netdsl", *args], capture_output=True,
                              text=True, cwd=cwd,
                              env={"NETDSL_DATA": str(cwd), "PATH": "/usr/bin:/bin"})
    from netdsl.cli import main

    out, err = io.StringIO(), io.StringIO()
    # The test's warning filters apply (pyproject's: a warning fails the test); catch_warnings
    # undoes those a command sets for itself.
    with in_folder(cwd), mock.patch.dict(os.environ, {"NETDSL_DATA": str(cwd)}), \
            warnings.catch_warnings(), logging_to(err), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(arg) for arg in args])
        except SystemExit as e:  # argparse: --help, --version, flags it refuses
            status = e.code
        except Exception:  # what the interpreter does with an exception nothing caught
            traceback.print_exc()
            status = 1
    return subprocess.CompletedProcess(["netdsl", *map(str, args)], status, out.getvalue(),
                                       err.getvalue())


@contextlib.contextmanager
def in_folder(path):
    """`path` the working folder meanwhile (contextlib.chdir is Python 3.11's)."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def logging_to(stream):
    """Optuna's log handler writes to `stream` meanwhile: it holds the stderr of the moment
    optuna was imported, which in this process is not the command's."""
    def handlers():
        return [h for h in logging.getLogger("optuna").handlers
                if isinstance(h, logging.StreamHandler)]

    previous = {handler: handler.setStream(stream) for handler in handlers()}
    try:
        yield
    finally:  # one made meanwhile (optuna imported by the command) writes to this stderr
        for handler in handlers():
            handler.setStream(previous.get(handler, sys.stderr))


def kill_search_in_its_first_trial(*args, cwd) -> None:
    """`netdsl search ARGS` (which should train for a while: many epochs) started in `cwd`,
    with the default storage there, killed with SIGKILL as a machine that dies would: once its
    first trial has stored the network it drew (its text), which it trains next. Its last
    heartbeat is then set an hour back, past any grace period: the next search sees the trial
    lost at once, as it would after waiting."""
    proc = subprocess.Popen([sys.executable, "-m", "netdsl", "search", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL,
                            env={"NETDSL_DATA": str(cwd), "PATH": "/usr/bin:/bin"})
    storage = Path(cwd) / "netdsl.db"
    while not stored(storage, "SELECT count(*) FROM trial_user_attributes WHERE key = 'dsl'"):
        assert proc.poll() is None, "the search ended before its first trial drew a network"
        time.sleep(0.05)  # polling: no fixed wait
    proc.kill()
    proc.wait()
    with contextlib.closing(sqlite3.connect(storage)) as db, db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, '-1 hour')")


def stored(database: Path, count: str) -> int:
    """The `count` query's answer in the search storage `database`; 0 while the search has
    not made its tables."""
    if not database.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        try:
            return db.execute(count).fetchone()[0]
        except sqlite3.OperationalError:  # no such table yet, or the database is locked
            return 0


def clear_error(run: subprocess.CompletedProcess, *words: str) -> None:
    """A refusal as a user should see it: exit 2, one message naming the problem (every one of
    `words` in it), no traceback."""
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    for word in words:
        assert word in run.stderr, run.stderr


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


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """Three classes of coloured 16x16 PNGs, 96 training and 24 test images."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("pics")
    rng = np.random.RandomState(0)
    for split, n in (("train", 32), ("test", 8)):
        for c, name in enumerate(("red", "green", "blue")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                image = rng.randint(0, 60, (16, 16, 3))
                image[:, :, c] += 180
                Image.fromarray(image.astype(np.uint8)).save(root / split / name / f"{i}.png")
    return root
