"""Ctrl-C during a search, taken only where it cannot tear the search's books.

Python's own handler raises KeyboardInterrupt wherever the main thread is. In a search that was
often inside Optuna or SQLAlchemy: in Optuna's tell (an `UnboundLocalError: updated_state`
traceback), while a trial's heartbeat thread started (a thread nobody stopped: the process hung
at its exit), or in a callback whose exceptions Python ignores (SQLAlchemy's, during the
space's survey: "Exception ignored", and the search ran on). Held here, a Ctrl-C is raised at
the search's next `check`, between its steps, or at once inside `at_once` (a trial's training,
loading the data: our code, long, and stopped as before).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Interrupts:
    """Whether Ctrl-C was pressed (`pending`), and where it is raised."""

    def __init__(self) -> None:
        self.pending = False
        self._at_once = False

    def handler(self, signum, frame) -> None:
        self.pending = True  # kept even where raising below is swallowed: `check` raises again
        if self._at_once:
            raise KeyboardInterrupt

    def check(self) -> None:
        """Raise the Ctrl-C pressed since the last step, if one was."""
        if self.pending:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def at_once(self) -> Iterator[None]:
        """A stretch of the search's own work that a Ctrl-C stops where it is."""
        self.check()
        self._at_once = True
        try:
            yield
        finally:
            self._at_once = False


@contextlib.contextmanager
def held() -> Iterator[Interrupts]:
    """Ctrl-C held (`Interrupts`) meanwhile. Where SIGINT is not Python's to raise (ignored,
    as in a shell's background job; handled by whoever called; or not the main thread, which
    alone receives signals) it is left as it is and nothing is ever pending."""
    interrupts = Interrupts()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield interrupts
        return
    previous = signal.signal(signal.SIGINT, interrupts.handler)
    try:
        yield interrupts
    finally:
        signal.signal(signal.SIGINT, previous)
