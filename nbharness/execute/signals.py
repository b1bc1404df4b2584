"""Signals, in one place: Ctrl-C and SIGTERM (a cancelled CI job) stop a run and unwind,
so kernels and servers are cleaned up instead of left behind by a process killed outright.

Three moments need it: while an executor or a remote session is open
(``InterruptOnTerm``), while nbclient runs a notebook (``cancel_on_interrupt``, once the
kernel is up), and after nbclient's clean-up, which resets SIGTERM to the default
(``sigterm_kept``). Nothing here is installed at import.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


class InterruptOnTerm:
    """While entered, SIGTERM unwinds like Ctrl-C (a ``KeyboardInterrupt``)."""

    def __init__(self) -> None:
        self.previous: Any = None

    def __enter__(self) -> InterruptOnTerm:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            self.previous = signal.signal(signal.SIGTERM, _interrupt)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self.previous)
            self.previous = None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_kept() -> Iterator[None]:
    """Put SIGTERM's Python handler back on the way out if something replaced it (nbclient's
    clean-up resets it to the default, die at once, rather than to what it was)."""
    handler = _python_handler(signal.SIGTERM)
    try:
        yield
    finally:
        if handler is not None and signal.getsignal(signal.SIGTERM) is not handler:
            signal.signal(signal.SIGTERM, handler)


def _python_handler(signum: int) -> Any:
    """The signal's Python-level handler, or ``None`` outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.getsignal(signum)


def cancel_on_interrupt(interrupted: Callable[[], None]) -> None:
    """From now on, Ctrl-C or SIGTERM calls ``interrupted`` and cancels the running task.

    nbclient answers SIGINT and SIGTERM by killing the kernel and carrying on, so the
    notebook would fail oddly and pytest would start the next one. Called once the kernel
    is up, this takes both back: the run is cancelled, and the session turns that into
    KeyboardInterrupt after stopping the kernel. Outside the main thread: nothing.
    """
    import asyncio  # 50 ms to import: a session that only collects never needs it

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def interrupt() -> None:
        interrupted()
        if task is not None:
            task.cancel()

    with contextlib.suppress(RuntimeError, ValueError):  # not in the main thread
        loop.add_signal_handler(signal.SIGINT, interrupt)
        loop.add_signal_handler(signal.SIGTERM, interrupt)
