"""How the command-line tools fail: one line on stderr and a meaningful exit status, never a traceback.

A problem with the user's input raises :class:`UsageError` anywhere below the tools; :func:`report_errors` turns it
into ``error: ...`` and exit status 2, Ctrl-C into 130 and a clean stop on a signal (:class:`Interrupted`) into
128 + the signal number. Training that diverges (``training.Diverged``, a UsageError: its options, usually --lr,
did not fit the data) also ends with status 2.

Standard output and error are the user's report, not the work: a full disk, a closed descriptor or a reader that
went away (``| head``) must neither stop a conversion half-way nor end in a traceback once the outputs are written.
While a tool runs, both streams are :class:`GuardedStream`: a failed write is recorded and later writes are dropped;
the tool then ends with one line on stderr (when stderr itself works) and status 2. Names that the terminal's
encoding cannot show are written with backslash escapes instead of failing.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
from typing import Callable, Dict, Optional, TextIO

__all__ = ['UsageError', 'Interrupted', 'GuardedStream', 'ignore_stop_signals', 'report_errors',
           'first_line']


class UsageError(Exception):
    """A problem with the user's input (missing file, wrong sizes, bad option): reported as one line, exit 2."""


class Interrupted(Exception):
    """A tool stopped on a signal after cleaning up: its message is printed as one line, ``status`` is the exit
    status (128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str, status: int = 130):
        super().__init__(message)
        self.status = status


class GuardedStream:
    """A text stream (``sys.stdout``, ``sys.stderr``; None: a closed descriptor) whose first failed write or flush
    is kept in ``failure`` instead of raised; after it, writes are dropped. Text the encoding cannot hold is
    written with backslash escapes."""

    def __init__(self, stream: Optional[TextIO]):
        self.stream = stream
        self.failure: Optional[BaseException] = None

    def write(self, text: str) -> int:
        if self.stream is not None and self.failure is None:
            try:
                try:
                    self.stream.write(text)
                except UnicodeEncodeError:
                    encoding = getattr(self.stream, 'encoding', None) or 'ascii'
                    self.stream.write(text.encode(encoding, 'backslashreplace').decode(encoding))
            except (OSError, ValueError) as error:  # ValueError: a closed file
                self._failed(error)
        return len(text)

    def flush(self) -> None:
        if self.stream is not None and self.failure is None:
            try:
                self.stream.flush()
            except (OSError, ValueError) as error:
                self._failed(error)

    def _failed(self, error: BaseException) -> None:
        self.failure = error
        try:  # what stays in the stream's buffer would fail again, with a traceback, when Python exits
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # no descriptor (a test's capture): nothing stays behind
            pass

    def isatty(self) -> bool:
        try:
            return self.stream is not None and self.failure is None and self.stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name: str):  # encoding, fileno, ... of the stream itself
        if self.stream is None:
            raise AttributeError(name)
        return getattr(self.stream, name)


def ignore_stop_signals() -> Dict[int, object]:
    """Ignore Ctrl-C and SIGTERM (in the main thread) and return the handlers they had: a tool that is stopping
    already must not have its last line cut short by a further signal (an impatient user presses Ctrl-C five
    times), killed by it or in a traceback. The launchers keep ignoring them to the end (``cli.program``)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}


def _fill_closed_descriptors() -> None:
    """Put the null device on standard output and error where they were closed (``2>&-``) or cannot be written:
    else the next file opened, an output under way, could get that number, and what FFmpeg or OpenCV print to
    stderr would land in it. (A launcher's script can be left open read-only there: pyenv's shims do.)"""
    for descriptor in (1, 2):
        try:
            writable = fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY
        except OSError:
            writable = False
        if not writable:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != descriptor:
                os.dup2(null, descriptor)
                os.close(null)


def report_errors(run: Callable[[], int]) -> int:
    """Run a command-line tool's body: a UsageError becomes one ``error: ...`` line on stderr and exit status 2;
    Ctrl-C one ``interrupted`` line and 130 (an :class:`Interrupted` its own line and status). Standard output and
    error are guarded meanwhile (:class:`GuardedStream`): when one of them failed, the status is 2, with a line on
    stderr saying so when stderr works."""
    _fill_closed_descriptors()
    handlers: Dict[int, object] = {}
    exiting: Optional[SystemExit] = None
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err = GuardedStream(stdout), GuardedStream(stderr)
    try:
        try:
            status = run()
        except UsageError as error:
            print(f'error: {error}', file=sys.stderr)
            status = 2
        except Interrupted as stop:
            handlers = ignore_stop_signals()
            print(str(stop), file=sys.stderr)
            status = stop.status
        except KeyboardInterrupt:
            handlers = ignore_stop_signals()
            print('interrupted', file=sys.stderr)
            status = 130
        except SystemExit as done:  # --help: raised on below, unless a stream failed
            exiting = done
            status = done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
        out.flush()
        if out.failure is not None:
            reason = getattr(out.failure, 'strerror', None) or first_line(out.failure)
            what = 'the work itself finished' if status == 0 else 'see the error above'
            print(f'error: cannot write to standard output ({reason}); {what}', file=sys.stderr)
            status = status or 2
        err.flush()
        if err.failure is not None:
            status = status or 2
        elif exiting is not None and out.failure is None:
            raise exiting
        return status
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        for number, handler in handlers.items():
            signal.signal(number, handler)


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when empty), cut to ``limit`` characters."""
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[:limit - 3] + '...'
