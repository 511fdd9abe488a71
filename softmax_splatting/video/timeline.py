"""Output timing of a frame-rate conversion: which output frames fall between two input frames, at which t.

``factor`` k: each interval split in k, (N - 1) k + 1 frames, the last one held as long as the input's last frame
(so the durations match). ``fps`` R: frames at the multiples of 1/R from the first input time to the input's end.
Both follow the input's timestamps, so a variable-rate clip lands right.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import List, Optional, Sequence, Tuple

from ..errors import UsageError
from .sources import Frame, Source

__all__ = ['Timeline', 'parse_rate', 'MAX_FRAMES_PER_INTERVAL', 'MAX_FPS']

MAX_FRAMES_PER_INTERVAL = 256  # --factor, or --fps over the input's rate: beyond this no user means it
MAX_FPS = Fraction(1000)
MIN_FPS = Fraction(1, 1000)  # a frame every 17 minutes: slower is a slide show, and its times would overflow


def parse_rate(text: str, option: str = '--fps') -> Fraction:
    """'60', '59.94', '24000/1001' -> a Fraction from MIN_FPS to MAX_FPS (59.94 and 29.97 mean the NTSC rates
    60000/1001, ...); UsageError naming ``option`` otherwise."""
    text = str(text).strip()
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f'{option} {text}: not a frame rate (use 60, 59.94 or 24000/1001)') from None
    if rate <= 0:
        raise UsageError(f'{option} {text}: the frame rate must be positive')
    if not MIN_FPS <= rate <= MAX_FPS:
        raise UsageError(f'{option} {text}: the frame rate must lie from {MIN_FPS} to {MAX_FPS} frames per second')
    for ntsc in (24, 30, 60, 120, 240):
        if '/' not in text and abs(float(rate) - ntsc * 1000 / 1001) < 0.006:
            return Fraction(ntsc * 1000, 1001)
    return rate


class Timeline:
    """Output times of a conversion, interval by interval, in the output time base ``time_base``.

    ``between(one, two, skipped)`` lists ``(pts, t)`` for the output frames from ``one.time`` (included) to
    ``two.time`` (excluded), t being the fraction of the interval (0: frame one itself); ``skipped``: the pts of
    input frames between the two that are not used (repeated frames), whose output times are kept. ``tail(last,
    end)``: the frames from the last input frame to the input's end, all showing the last frame, and the duration of
    the last one.

    ``factor`` k or ``fps`` R choose the output frames on the input's clock; ``slow_motion`` K then plays them K
    times slower: K times the frames per second of input, at k times the input's rate (or at R), so K times the
    duration. ``slow_motion`` alone is ``factor`` K at the input's rate.
    """

    def __init__(self, source: Source, factor: Optional[int] = None, fps: Optional[Fraction] = None,
                 slow_motion: int = 1):
        if factor is not None and fps is not None:
            raise ValueError('give at most one of factor and fps')
        if slow_motion < 1:
            raise ValueError('slow_motion must be at least 1')
        if factor is None and fps is None:
            factor = 1 if slow_motion > 1 else None
        if factor is None and fps is None:
            raise ValueError('give factor, fps or slow_motion')
        self.slow_motion = slow_motion
        if factor is not None:
            self.grid = factor * slow_motion        # output frames per input interval
            self._unit = source.time_base / self.grid  # input time per output pts
            self.rate = source.rate * factor
            self.fps = None
        else:
            self.grid = None
            self.fps = fps * slow_motion              # output frames per second of input
            self._unit = 1 / self.fps
            self.rate = fps
        self.time_base = self._unit * slow_motion
        self._next = None  # fps: the next output index j (input time j / self.fps)

    def between(self, one: Frame, two: Frame, skipped: Sequence[int] = ()) -> List[Tuple[int, float]]:
        if self.grid is not None:
            span = two.pts - one.pts
            bounds = [one.pts, *skipped, two.pts]
            return [(a * self.grid + m * (b - a), float(Fraction(a * self.grid + m * (b - a) - one.pts * self.grid,
                                                                 span * self.grid)))
                    for a, b in zip(bounds, bounds[1:]) for m in range(self.grid)]
        if self._next is None:
            self._next = math.ceil(one.time * self.fps)
        out = []
        while self._next / self.fps < two.time:
            t = (self._next / self.fps - one.time) / (two.time - one.time)
            out.append((self._next, float(t)))
            self._next += 1
        return out

    def tail(self, last: Frame, end: Fraction) -> Tuple[List[int], int]:
        """Output pts showing the last frame, and the duration (in ``time_base``) of the final one."""
        if self.grid is not None:
            return [last.pts * self.grid], max(1, int(round((end - last.time) / self._unit)))
        if self._next is None:
            self._next = math.ceil(last.time * self.fps)
        out = []
        while self._next / self.fps < end or not out:
            out.append(self._next)
            self._next += 1
        return out, 1
