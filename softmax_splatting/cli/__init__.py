"""The command-line tools, one module each; ``pyproject.toml`` installs them as ``softsplat-*`` commands.

Every way in, the console scripts and the checkout's launchers alike, goes through :func:`launch`: importing a tool
imports PyTorch, which takes seconds, and a Ctrl-C or SIGTERM then would end in a traceback (or, for SIGTERM, in
silence). This package therefore imports nothing heavy itself.
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Optional, Sequence

__all__ = ['launch', 'program']


class _StartupStop(Exception):
    def __init__(self, number: int):
        super().__init__(signal.Signals(number).name)
        self.status = 128 + number


def _stop(number: int, _frame) -> None:
    raise _StartupStop(number)


def launch(tool: str, argv: Optional[Sequence[str]] = None) -> int:
    """Import the tool module ``tool`` (e.g. ``'interpolate'``) and return its ``main(argv)``; a Ctrl-C or SIGTERM
    during the import ends it with one line and status 130 or 143 (nothing has been read or written yet)."""
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        module = importlib.import_module(f'{__name__}.{tool}')
    except KeyboardInterrupt:
        _ignore_stop_signals()
        print('interrupted while starting; nothing was done', file=sys.stderr)
        return 130
    except _StartupStop as stop:
        _ignore_stop_signals()
        print(f'terminated ({stop}) while starting; nothing was done', file=sys.stderr)
        return stop.status
    signal.signal(signal.SIGTERM, previous)
    return module.main(argv)


def program(tool: str) -> int:
    """:func:`launch` as the process itself, on its own command line: once the tool has returned, further
    Ctrl-C and SIGTERM are ignored while Python exits, so that the status and last line stay the tool's."""
    status = launch(tool)
    _ignore_stop_signals()
    return status


def _ignore_stop_signals() -> None:  # as errors.ignore_stop_signals, which may not be importable yet
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
