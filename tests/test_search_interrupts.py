"""Ctrl-C anywhere in a table search: the interrupted line, exit 130, nothing lost, no thread
left behind, and the same command goes on. Each Ctrl-C is raised at a chosen point through a
seam (SIGINT sent to this process there), not by a clock."""
import signal
import threading
import weakref

import optuna
import pytest

from netdsl.language import Family
from netdsl.search import storage
from test_search_budget import distinct_networks, stored, table_search

INTERRUPTED = "netdsl: interrupted; run the same command again to continue 'nb201'"


@pytest.fixture
def python_handles_ctrl_c():
    """SIGINT turned into KeyboardInterrupt by Python's handler, as in a terminal (a shell
    that starts the tests in the background ignores it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def ctrl_c_on_call(monkeypatch, owner, name: str, call: int, inside_finaliser=False):
    """Press Ctrl-C as `owner.name` is called the `call`th time (1 is the first), before it
    runs; `inside_finaliser`: from inside a callback whose exceptions Python ignores, as a
    garbage-collected SQLAlchemy connection's is."""
    real, calls = getattr(owner, name), []

    def press():
        if inside_finaliser:
            doomed = type("Doomed", (), {})()
            weakref.finalize(doomed, signal.raise_signal, signal.SIGINT)
            del doomed
        else:
            signal.raise_signal(signal.SIGINT)

    def pressed(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            press()
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, pressed)


SEAMS = {
    # Optuna telling a trial's result: Ctrl-C there left UnboundLocalError: updated_state.
    "tell": (optuna.study._optimize, "_tell_with_warning", 3, False),
    # A trial's heartbeat thread starting: Ctrl-C there left it beating, the exit hanging.
    "heartbeat": (optuna.storages._heartbeat.HeartbeatThread, "start", 2, False),
    # The space surveyed before any trial, Ctrl-C inside an ignored callback: swallowed.
    "survey": (Family, "space", 1, True),
    # Asking for a trial; storing one of its records.
    "ask": (optuna.Study, "ask", 4, False),
    "record": (optuna.trial.Trial, "set_user_attr", 7, False),
}


@pytest.mark.parametrize("seam", SEAMS)
def test_ctrl_c_anywhere_stops_the_search_cleanly_and_it_goes_on(
        tmp_path, monkeypatch, python_handles_ctrl_c, seam):
    owner, name, call, inside_finaliser = SEAMS[seam]
    before = set(threading.enumerate())
    with monkeypatch.context() as patched:
        ctrl_c_on_call(patched, owner, name, call, inside_finaliser)
        stopped = table_search(tmp_path, "--trials", "6")
    assert stopped.returncode == 130, (stopped.stdout, stopped.stderr)
    assert INTERRUPTED in stopped.stderr or "netdsl: interrupted" in stopped.stderr
    assert "Traceback" not in stopped.stderr and "Exception ignored" not in stopped.stderr
    assert set(threading.enumerate()) <= before  # no heartbeat thread left beating
    if "nb201" in optuna.get_all_study_names(f"sqlite:///{tmp_path}/netdsl.db"):
        assert not any(t.state == optuna.trial.TrialState.RUNNING
                       for t in stored(tmp_path).trials)
    again = table_search(tmp_path, "--trials", "6")
    assert again.returncode == 0, again.stderr
    study = stored(tmp_path)
    assert storage.counted(study) == 6 and distinct_networks(study) == 6
