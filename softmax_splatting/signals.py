"""Stopping cleanly on Ctrl-C and SIGTERM: signals recorded and acted on where the program can stop safely.

Python raises the exception of a signal handler (Ctrl-C's KeyboardInterrupt, our SIGTERM's :class:`Interrupted`)
between any two bytecodes of the main thread. That is fine in single-threaded code, whose ``finally`` blocks clean
up, but not inside the ``queue`` and ``threading`` code that hands work between threads: an exception that lands
between a condition's wake-up of a waiting thread and its bookkeeping can lose a later wake-up, and the clean-up
then waits forever for a thread that sleeps (seen in our video conversion, about one run in forty stopped with
Ctrl-C). So long-running tools hold the stop signals (:class:`StopSignals`) while threads work and act on them at
points of their choosing; the trainers stop between steps, the video conversion between queue operations.
Outside such a block SIGTERM acts as Ctrl-C does (:func:`terminate_as_interrupt`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Dict, Iterator, Optional, Union

from .errors import Interrupted

__all__ = ['STOP_SIGNALS', 'StopSignals', 'terminate_as_interrupt']

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Union[Callable, int, None]


class StopSignals:
    """While active, SIGINT and SIGTERM only record themselves; ``stop()`` is True once one has arrived and
    :meth:`check` acts on it. Outside the main thread, where Python delivers no signals, it records nothing."""

    def __init__(self):
        self.received: Optional[int] = None
        self._pending: Optional[int] = None
        self._previous: Dict[int, Handler] = {}

    def __enter__(self) -> 'StopSignals':
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._record)
        return self

    def _record(self, number: int, _frame) -> None:
        self.received = self._pending = number

    def __exit__(self, *_) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def __call__(self) -> bool:
        return self.received is not None

    def check(self) -> None:
        """If a signal has arrived, act on it once as the handler it displaced would have: Ctrl-C's default raises
        KeyboardInterrupt, a tool's SIGTERM handler its :class:`Interrupted`; with the default action the signal
        raises :class:`Interrupted` (status 128 + the signal), and an ignored signal is ignored."""
        number, self._pending = self._pending, None
        if number is None:
            return
        previous = self._previous.get(number, signal.SIG_DFL)
        if callable(previous):
            previous(number, None)
        elif previous != signal.SIG_IGN:
            raise Interrupted(f'interrupted ({signal.Signals(number).name})', 128 + number)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Interrupted` (status 143) wherever the main thread is, as Ctrl-C raises
    KeyboardInterrupt, instead of ending the process on the spot; a :class:`StopSignals` inside takes over from it."""
    def interrupt(number: int, _frame) -> None:
        raise Interrupted(f'interrupted ({signal.Signals(number).name})', 128 + number)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
