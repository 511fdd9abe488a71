"""What the two trainers share: the step loop, saving on a schedule, and stopping cleanly on a signal.

Training MainNet (``cli/train.py``, paper Sec. 4.3) and PWC-Net (``cli/train_flow.py``) run the same outer loop:
take a batch, take an optimizer step, report, save when due. Between two steps (never inside one) the loop looks
for Ctrl-C or SIGTERM; the trainer then saves and stops with one line and exit status 128 + the signal, so an
interrupted run resumes from the step it stopped at. Data-loading workers ignore those signals (the main process
ends them after saving) and are started with the signals blocked, so a signal sent to the whole process group, as
``pkill -f`` or a service manager does, cannot kill a worker while it starts.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional, TypeVar

import cv2
import torch
from tqdm import tqdm

from .errors import Interrupted

__all__ = ['STOP_SIGNALS', 'SaveSchedule', 'StopSignals', 'quiet_worker', 'run_steps', 'start_quietly', 'stopped']

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
T = TypeVar('T')


class StopSignals:
    """While active, SIGINT and SIGTERM only record themselves; ``stop()`` is True once one has arrived."""

    def __init__(self):
        self.received: Optional[int] = None
        self._previous = {}

    def __enter__(self) -> 'StopSignals':
        for number in STOP_SIGNALS:
            self._previous[number] = signal.signal(number, self._record)
        return self

    def _record(self, number: int, _frame) -> None:
        self.received = number

    def __exit__(self, *_) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def __call__(self) -> bool:
        return self.received is not None


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
    values)`` then logs, validates and saves. A progress bar shows the values and the steps per second.
    """
    if step >= steps or stop():
        return step
    bar = tqdm(total=steps, initial=step, disable=not show, unit='it', desc=description, dynamic_ncols=True)
    began, done = time.perf_counter(), 0
    try:
        for batch in batches:
            if stop():  # arrived while the batch was loading
                break
            values = train_step(batch)
            step, done = step + 1, done + 1
            bar.update(1)
            bar.set_postfix({**{k: f'{v:.4f}' for k, v in values.items()},
                             'it_s': f'{done / (time.perf_counter() - began):.2f}'})
            after_step(step, values)
            if step >= steps or stop():  # before asking for another batch (a new epoch would start workers)
                break
    finally:
        bar.close()
    return step
