"""What the two trainers share: the step loop, saving on a schedule, and stopping cleanly on a signal.

Training the interpolation networks (``trainer.py``, paper Sec. 4.3) and PWC-Net (``cli/train_flow.py``) run the
same outer loop: take a batch, take an optimizer step, report, save when due. Between two steps (never inside one)
the loop looks for Ctrl-C or SIGTERM (held by ``signals.StopSignals``); the trainer then saves and stops with one
line and exit status 128 + the signal, so an interrupted run resumes from the step it stopped at. Data-loading
workers ignore those signals (the main process ends them after saving) and are started with the signals blocked, so
a signal sent to the whole process group, as ``pkill -f`` or a service manager does, cannot kill a worker while it
starts. Because they ignore SIGTERM, the workers must be shut down by their loader before the process exits (the
interpreter's exit terminates and then joins them, which would wait forever): :func:`loader_batches` does that
however the iteration ends, and passes a bad input met in a worker (an unreadable image) on as the same one-line
UsageError that it is without workers. Before and after the loop (setting up, resuming) SIGTERM acts as Ctrl-C does
there (``signals.terminate_as_interrupt``): the tool unwinds, an atomic write in progress deletes its temporary, and
it exits with one line and 143.

A step whose loss (or any value it reports) is NaN or infinite ends the run at once, before anything is saved:
the optimizer has already applied that step's gradients, so the weights in memory are no longer worth keeping, and
the last checkpoint on disk stays the last good one. The trainer reports it as :class:`Diverged`, one ``error:``
line naming the step and that checkpoint, with exit status 2 (the status of a bad option, as --lr is the usual cause).
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Mapping, Optional, TypeVar

import cv2
import torch
from tqdm import tqdm

from .errors import Interrupted, UsageError
from .files import non_finite
from .signals import STOP_SIGNALS

__all__ = ['Diverged', 'SaveSchedule', 'check_finite', 'loader_batches', 'quiet_worker', 'run_steps', 'start_quietly',
           'stopped']

T = TypeVar('T')


class Diverged(UsageError):
    """Training produced NaN or infinite values at ``step`` (``what`` says which) and stopped without saving.

    The trainer, which knows its files, sets ``kept`` (the last good checkpoint, or None when none was saved) and
    ``advice`` (how to go on from there); the one-line message names both.
    """

    def __init__(self, step: int, what: str, kept: Optional[str] = None, advice: str = 'try a lower --lr'):
        super().__init__(step, what)
        self.step, self.what, self.kept, self.advice = step, what, kept, advice

    def __str__(self) -> str:
        kept = f': {self.kept} is the last good checkpoint' if self.kept else ' (no checkpoint was saved)'
        return f'training diverged at step {self.step} ({self.what}); stopped without saving{kept}; {self.advice}'


def check_finite(step: int, *states: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`Diverged` if a floating-point tensor of the state dicts ``states`` holds NaN or infinity.

    Trainers call it before every save: a step whose loss was still finite can break the weights (an infinite
    gradient), and no checkpoint may hold such weights.
    """
    broken = [name for state in states for name in non_finite(state)]
    if broken:
        raise Diverged(step, f'weight {broken[0]} is not finite')


def stopped(number: int, step: int, checkpoint: Path) -> Interrupted:
    """The one line (and exit status) of a run that saved ``checkpoint`` at ``step`` after signal ``number``."""
    return Interrupted(f'{signal.Signals(number).name}: stopped at step {step}, saved {checkpoint}; continue with '
                       f'the same command plus --resume', 128 + number)


def quiet_worker(_: int) -> None:
    """``worker_init_fn`` of the data loaders: one thread per worker process, and the stop signals ignored."""
    cv2.setNumThreads(0)  # the loader's processes are the parallelism; more threads would oversubscribe
    torch.set_num_threads(1)
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def start_quietly(start: Callable[[], T]) -> T:
    """Call ``start`` (which starts worker processes) with the stop signals blocked; the workers inherit the mask
    until :func:`quiet_worker` has made them ignore the signals."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def loader_batches(start: Callable[[], Iterable[T]]) -> Iterator[T]:
    """The batches of the DataLoader iterator that ``start()`` makes (started through :func:`start_quietly`).

    A UsageError raised in a worker reaches the main process as a UsageError whose message is the worker's whole
    traceback; it is raised again with the worker's own message, so that it reads as one line. The worker processes
    are shut down when the iteration ends, however it ends (the last batch, an error, ``close()``): left to the
    iterator's finalizer, they could outlive a reference cycle until the interpreter exits, and then hang it.
    """
    iterator = start_quietly(lambda: iter(start()))
    try:
        yield from iterator
    except UsageError as error:
        raise UsageError(_worker_message(str(error))) from None
    finally:
        shutdown = getattr(iterator, '_shutdown_workers', None)  # what the iterator's own finalizer calls
        if shutdown is not None:
            shutdown()


def _worker_message(text: str) -> str:
    """The message of a UsageError re-raised by a DataLoader: the text after the last line's exception name."""
    marker = f'{UsageError.__module__}.{UsageError.__qualname__}: '
    position = text.rfind(marker)
    return text[position + len(marker):].strip() if text.startswith('Caught ') and position >= 0 else text


class SaveSchedule:
    """Save every ``every_steps`` steps and whenever ``every_minutes`` have passed since the last save (0: never)."""

    def __init__(self, every_steps: int, every_minutes: float):
        self.every_steps, self.every_minutes = every_steps, every_minutes
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        by_steps = bool(self.every_steps) and step % self.every_steps == 0
        by_time = bool(self.every_minutes) and time.monotonic() - self.last >= 60 * self.every_minutes
        return by_steps or by_time

    def saved(self) -> None:
        self.last = time.monotonic()


def run_steps(step: int, steps: int, batches: Iterable, train_step: Callable[[object], Dict[str, float]],
              after_step: Callable[[int, Dict[str, float]], None], stop: Callable[[], bool],
              show: bool = True, description: Optional[str] = None) -> int:
    """Train from ``step`` to ``steps``; returns the step reached (fewer when ``stop()`` turned True).

    ``train_step(batch)`` takes one optimizer step and returns the values to show (loss, ...); ``after_step(step,
    values)`` then logs, validates and saves. A progress bar shows the values and the steps per second. Raises
    :class:`Diverged` (``kept`` unset) as soon as a step returns a NaN or infinite value, before ``after_step``.
    ``batches`` is closed on return or error (a generator's workers are shut down then).
    """
    if step >= steps or stop():
        _close(batches)
        return step
    bar = tqdm(total=steps, initial=step, disable=not show, unit='it', desc=description, dynamic_ncols=True)
    began, done = time.perf_counter(), 0
    try:
        for batch in batches:
            if stop():  # arrived while the batch was loading
                break
            values = train_step(batch)
            broken = [f'{name} {value}' for name, value in values.items() if not math.isfinite(value)]
            if broken:
                raise Diverged(step + 1, ', '.join(broken))
            step, done = step + 1, done + 1
            bar.update(1)
            bar.set_postfix({**{k: f'{v:.4f}' for k, v in values.items()},
                             'it_s': f'{done / (time.perf_counter() - began):.2f}'})
            after_step(step, values)
            if step >= steps or stop():  # before asking for another batch (a new epoch would start workers)
                break
    finally:
        bar.close()
        _close(batches)
    return step


def _close(batches: Iterable) -> None:
    """End a generator of batches (:func:`loader_batches`) now, which shuts its worker processes down."""
    close = getattr(batches, 'close', None)
    if close is not None:
        close()
