"""How the command-line tools fail: one line on stderr and a meaningful exit status, never a traceback.

A problem with the user's input raises :class:`UsageError` anywhere below the tools; :func:`report_errors` turns it
into ``error: ...`` and exit status 2, Ctrl-C into 130 and a clean stop on a signal (:class:`Interrupted`) into
128 + the signal number. Training that diverges (``training.Diverged``, a UsageError: its options, usually --lr,
did not fit the data) also ends with status 2.
"""

from __future__ import annotations

import sys
from typing import Callable

__all__ = ['UsageError', 'Interrupted', 'report_errors', 'first_line']


class UsageError(Exception):
    """A problem with the user's input (missing file, wrong sizes, bad option): reported as one line, exit 2."""


class Interrupted(Exception):
    """A tool stopped on a signal after cleaning up: its message is printed as one line, ``status`` is the exit
    status (128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str, status: int = 130):
        super().__init__(message)
        self.status = status


def report_errors(run: Callable[[], int]) -> int:
    """Run a command-line tool's body: a UsageError becomes one ``error: ...`` line on stderr and exit status 2;
    Ctrl-C one ``interrupted`` line and 130 (an :class:`Interrupted` its own line and status)."""
    try:
        return run()
    except UsageError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(str(stop), file=sys.stderr)
        return stop.status
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when empty), cut to ``limit`` characters."""
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[:limit - 3] + '...'
