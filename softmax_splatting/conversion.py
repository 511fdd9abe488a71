"""Frame-rate conversion of a decoded stream: each flow computed once, quadratic motion, scene cuts, stages overlapped.

``run_a_pair.py --video`` interpolates between every two consecutive input frames i and i + 1. A video offers more
than that pair, and this module uses it without computing any flow twice:

* Motion (``motion.py``): frame i's quadratic path needs its flow to frame i - 1, which is the backward flow of the
  previous pair, and frame i + 1's needs its flow to frame i + 2, the forward flow of the next pair. So every pair's
  two flows are computed once, when the pair is analysed, and the pair is synthesized one pair later, when its
  successor's flows exist. At the clip's ends and next to a scene cut that side's motion is linear.
* Scene cuts (``video.SceneCuts``): decided per pair as frames are decoded; a pair across a cut gets no flow,
  is not interpolated (the nearer side repeats) and is no neighbour to the pairs around it.
* Repeated frames (``video/duplicates.py``): a run of up to ``MAX_REPEATS`` frames that repeat the one before
  them is held back, and the pair is formed between the distinct frames around it; the timeline keeps every output
  time, so the run's frames come out along the motion. A longer run, a run before a cut and the end of the input
  are kept as they are. A neighbour pair much longer or shorter than the pair (``SPAN_RATIO``) gives no quadratic
  motion, as the paths assume equal intervals.
* Motion seen (``_motion_hint``): a pair's flows start from the previous pair's motion where the model takes a
  hint (the classical interpolator's DIS does: ``classical.dis_flows``), which helps on fast motion at low rates.
  The chain starts afresh every ``HINT_CHAIN`` pairs, so that a resumed run can rebuild it.
* Stages: decoding (with the scene score and conversion to tensors) runs in one thread, analysis (the flows;
  DIS releases the GIL) in another, up to two pairs ahead, synthesis in the calling thread, and conversion to
  8-bit and encoding in a fourth. Every hand-over is a bounded queue, so at most a few frames and three pairs'
  flows are held whatever the length of the video. The two heavy stages, analysis and synthesis, share the
  ``--threads`` budget (half each, at least one): on 2 cores, flows and synthesis of the 23 pairs of a 854 x 480
  clip side by side took 142 ms per pair with one thread each, 171 ms with two each (they wait on each other),
  and 183 ms one after the other (a throwaway timing script, 2026-12-04, 2-core Intel Xeon VM).

An interval's output frames are synthesized a few times at a time (``TIMES_PER_CALL``), so a large ``--factor``
streams instead of holding all of an interval's frames at once. A stop signal must not land inside the hand-overs
(``signals.py`` says why): the caller holds the signals, and the converting thread acts on them through ``check``
between steps; every wait polls, so a stop is seen within ``_POLL`` seconds of the current step.
"""

from __future__ import annotations

import math
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import torch

from . import frames, video
from .video.duplicates import MAX_REPEATS, is_repeat
from .errors import UsageError

__all__ = ['convert', 'supports_motion', 'Result', 'TIMES_PER_CALL', 'SPAN_RATIO']

TIMES_PER_CALL = 4  # output frames of one interval synthesized per call (bounds memory at a large --factor)
_POLL = 0.1  # seconds between checks of a stop flag while waiting on a queue
SPAN_RATIO = 1.25  # a neighbour pair whose interval is longer or shorter than this (x) gives no quadratic motion
HINT_CHAIN = 64  # every 64th pair's flows start afresh, so that a resumption recomputes at most 64 pairs' flows


class Result(NamedTuple):
    frames_in: int   # decoded
    frames_out: int  # written
    cuts: int        # scene cuts not blended across
    repeats: int     # repeated input frames replaced by frames along the motion


def supports_motion(model) -> bool:
    """Whether ``model`` computes its own flows and takes precomputed ones (quadratic motion, no flow twice)."""
    return hasattr(model, 'estimate_flows')


@dataclass
class _Input:
    frame: video.Frame
    tensor: torch.Tensor  # [1, 3, H, W] float32 on the model's device
    cut_before: bool      # a scene cut lies between the previous frame and this one
    repeat: bool = False  # the frame repeats the last distinct one (duplicates.py)


@dataclass
class _Analysis:
    cut: bool
    flows: Optional[Tuple[torch.Tensor, torch.Tensor]]  # (F first->second, F second->first), None when not needed


@dataclass
class _Pair:
    first: _Input
    second: _Input
    plan: List[Tuple[int, float]]  # (output pts, t) of the interval, from the timeline
    analysis: Future
    ordinal: int = 0               # the pair's number in the video (resumption skips those already written)

    @property
    def span(self) -> float:
        return float(self.second.frame.time - self.first.frame.time)


class _Stop(Exception):
    """Raised inside a helper thread when the conversion is being abandoned."""


def _nothing() -> None:
    pass


def _put(target: queue.Queue, item, stop: threading.Event, check: Callable[[], None] = _nothing) -> None:
    while True:
        check()
        if stop.is_set():
            raise _Stop
        try:
            target.put(item, timeout=_POLL)
            return
        except queue.Full:
            continue


def _get(source: queue.Queue, check: Callable[[], None]):
    while True:
        check()
        try:
            return source.get(timeout=_POLL)
        except queue.Empty:
            continue


def _result(future: Future, check: Callable[[], None]):
    while True:
        check()
        try:
            return future.result(timeout=_POLL)
        except FutureTimeout:
            continue


class _Prefetch:
    """Iterates ``produce()`` in a thread, ``depth`` items ahead; its exceptions are raised in the consumer."""

    _END = object()

    def __init__(self, produce: Callable[[], Iterable], depth: int, check: Callable[[], None]):
        self.items: queue.Queue = queue.Queue(depth)
        self.stop = threading.Event()
        self.check = check
        self.thread = threading.Thread(target=self._run, args=(produce,), name='decode', daemon=True)
        self.thread.start()

    def _run(self, produce) -> None:
        try:
            for item in produce():
                _put(self.items, (item, None), self.stop)
            _put(self.items, (self._END, None), self.stop)
        except _Stop:
            return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            try:
                _put(self.items, (self._END, error), self.stop)
            except _Stop:
                return

    def __iter__(self) -> Iterator:
        while True:
            item, error = _get(self.items, self.check)
            if error is not None:
                raise error
            if item is self._END:
                return
            yield item

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


class _Writer:
    """Converts frames to 8-bit and hands them to ``sink.write`` in a thread, in order; errors come back on the next
    call. ``close`` waits for everything to be written; ``cancel`` drops what is queued. ``check`` runs while the
    converting thread waits on it."""

    _END = object()
    _MARK = object()

    def __init__(self, sink, check: Callable[[], None], depth: int = 4):
        self.sink = sink
        self.check = check
        self.items: queue.Queue = queue.Queue(depth)
        self.stop = threading.Event()
        self.error: Optional[BaseException] = None
        self.count = 0
        self.thread = threading.Thread(target=self._run, name='encode', daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    item = self.items.get(timeout=_POLL)
                except queue.Empty:
                    continue
                if item is self._END or self.stop.is_set():
                    return
                image, pts, duration = item
                if image is self._MARK:
                    self.sink.mark(pts)
                    continue
                if isinstance(image, torch.Tensor):
                    image = frames.to_uint8(image)
                self.sink.write(image, pts, duration)
        except BaseException as error:  # noqa: BLE001 - raised in the converting thread
            self.error = error
            self.stop.set()

    def write(self, image, pts: int, duration: int = 1) -> None:
        self._raise()
        try:
            _put(self.items, (image, pts, duration), self.stop, self.check)
        except _Stop:
            self._raise()
            raise
        self.count += 1

    def mark(self, pair: int) -> None:
        """Tell a resumable sink, in order with the frames, that pair number ``pair`` begins."""
        if hasattr(self.sink, 'mark'):
            self._raise()
            try:
                _put(self.items, (self._MARK, pair, 0), self.stop, self.check)
            except _Stop:
                self._raise()
                raise

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        while self.thread.is_alive():
            self.check()
            try:
                self.items.put(self._END, timeout=_POLL)
                break
            except queue.Full:
                continue
        self.thread.join()
        self._raise()

    def cancel(self) -> None:
        self.stop.set()
        self.thread.join()  # it sees ``stop`` within _POLL seconds, or once the frame it writes is written


def convert(source: video.Source, sink, timeline: video.Timeline, model, device: torch.device, threshold: float,
            motion: str, progress, check: Callable[[], None] = _nothing, duplicates: bool = True) -> Result:
    """Stream ``source`` through ``model`` into ``sink``; returns the counts of :class:`Result`.

    ``motion``: 'quadratic' (each frame along its path through its neighbours, where they are in the same shot) or
    'linear'. ``threshold``: the scene-cut threshold of ``video.SceneCuts`` (0: no detection). ``duplicates``:
    replace runs of up to ``MAX_REPEATS`` repeated frames by frames along the motion between the distinct frames
    around them (``video/duplicates.py``); False keeps every frame as it is. Raises UsageError, before anything is
    finished, for a video of fewer than two frames or one that decodes to fewer frames than its container declares.
    ``check`` is called often in the converting thread and may raise to stop the conversion
    (``signals.StopSignals.check``); the helper threads have ended when the exception leaves.
    """
    flows_here = supports_motion(model)
    quadratic = motion == 'quadratic' and flows_here

    def decoded() -> Iterator[_Input]:
        # the scene test and the repeat test are decided here, beside decoding, the lightest stage
        previous = distinct = None
        scenes = video.SceneCuts(threshold)
        for frame in source.frames():
            repeat = duplicates and distinct is not None and is_repeat(distinct, frame.image)
            cut = not repeat and previous is not None and scenes.is_cut(previous, frame.image)
            previous = frame.image
            if not repeat:
                distinct = frame.image
            yield _Input(frame, frames.to_tensor(frame.image, device), cut, repeat)

    complete = getattr(sink, 'complete', False)  # a resumed conversion that had written every frame
    skip = math.inf if complete else getattr(sink, 'pairs_done', 0)  # pairs whose frames are written already
    written_before = getattr(sink, 'frames_done', 0)

    hints = getattr(model, 'takes_flow_hint', False)
    # The flows of a written pair are needed again on resumption: the last one as the quadratic neighbour, and with
    # hints every one since the chain of hints last began (each pair's flows start from its predecessor's), so that
    # the flows, and the frames, are the uninterrupted run's.
    needed_from = max(skip - 1, 0)
    if hints:
        needed_from = needed_from // HINT_CHAIN * HINT_CHAIN

    def analyse(first: _Input, second: _Input, interpolate: bool, needed: bool, ordinal: int,
                previous: Optional[Tuple[_Pair, Future]]) -> _Analysis:
        flows = None
        if flows_here and not second.cut_before and (interpolate or (needed and (quadratic or hints))):
            # the previous pair's analysis has ended: the pool runs one analysis at a time, in order
            hint = _motion_hint(previous[0], previous[1].result(), first, second) \
                if hints and previous is not None and ordinal % HINT_CHAIN else None
            with torch.no_grad():
                flows = model.estimate_flows(first.tensor, second.tensor) if hint is None else \
                    model.estimate_flows(first.tensor, second.tensor, hint=hint)
        return _Analysis(second.cut_before, flows)

    threads = torch.get_num_threads(), cv2.getNumThreads()
    per_stage = max(1, threads[0] // 2)
    torch.set_num_threads(per_stage)
    cv2.setNumThreads(per_stage)
    reader = _Prefetch(decoded, 2, check)
    writer = _Writer(sink, check)
    pool = ThreadPoolExecutor(1, thread_name_prefix='analyse')
    pending: List[_Pair] = []
    state = {'done': None, 'cuts': 0, 'repeats': 0, 'pairs': 0, 'skip': skip}
    finished = False

    def add_pair(first: _Input, second: _Input, skipped: Sequence[_Input] = ()) -> None:
        plan = timeline.between(first.frame, second.frame, [repeat.frame.pts for repeat in skipped])
        ordinal = state['pairs']
        state['pairs'] += 1
        interpolate = ordinal >= skip and any(t > 0 for _, t in plan)
        state['repeats'] += len(skipped)
        # a written pair needs flows only as the quadratic neighbour of the first pair to make
        previous = state.get('last')
        analysis = pool.submit(analyse, first, second, interpolate, ordinal >= needed_from, ordinal, previous)
        pair = _Pair(first, second, plan, analysis, ordinal)
        state['last'] = (pair, analysis)
        pending.append(pair)
        while len(pending) >= 3:  # the oldest pair's successor has been analysed (or nearly)
            _emit(pending, state, model, quadratic, writer, check)

    try:
        previous, held, still = None, [], False  # held: repeats waiting for the next distinct frame
        with progress:
            for current in reader:
                progress.update(1)
                if previous is None:
                    previous = current
                    continue
                if current.repeat and not still and len(held) < MAX_REPEATS:
                    held.append(current)
                    continue
                if (current.repeat and not still) or current.cut_before:
                    # a run too long to be placeholders is a still picture; across a cut the run stays as it was
                    still = current.repeat
                    for repeat in held:
                        add_pair(previous, repeat)
                        previous = repeat
                    held = []
                still = still and current.repeat
                add_pair(previous, current, held)
                previous, held = current, []
            for repeat in held:  # the input ends on a held picture
                add_pair(previous, repeat)
                previous = repeat
            while pending:
                _emit(pending, state, model, quadratic, writer, check)
        decoded_count = source.decoded
        if previous is None:
            raise UsageError(f'{source.path}: no frame could be decoded')
        if decoded_count < 2:
            raise UsageError(f'{source.path}: has only one frame; there is nothing to interpolate between')
        source.check_complete()
        pts_list, last_duration = timeline.tail(previous.frame, source.end)
        if not complete:
            writer.mark(state['pairs'])
            for k, pts in enumerate(pts_list):
                writer.write(previous.frame.image, pts, last_duration if k == len(pts_list) - 1 else 1)
        writer.close()
        finished = True
        return Result(decoded_count, written_before + writer.count, state['cuts'], state['repeats'])
    finally:
        if not finished:
            writer.cancel()
        reader.close()
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])


def _similar(one: float, two: float) -> bool:
    return max(one, two) <= SPAN_RATIO * min(one, two)


def _motion_hint(previous: _Pair, analysis: _Analysis, first: _Input, second: _Input
                 ) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """Guesses of a pair's flows from the pair before it, at constant velocity: F(i -> i+1) ~ -F(i -> i-1) and
    F(i+1 -> i) ~ F(i -> i-1), scaled by the ratio of the two intervals; None across a cut or without flows."""
    if analysis.cut or analysis.flows is None or previous.second is not first:
        return None
    ratio = float(second.frame.time - first.frame.time) / previous.span
    backward = analysis.flows[1] * ratio  # F(i -> i-1), at frame i's pixels
    return -backward, backward


def _emit(pending: List[_Pair], state: dict, model, quadratic: bool, writer: _Writer,
          check: Callable[[], None]) -> None:
    """Synthesize and write the oldest pending pair, with its neighbours' flows where they are in its shot."""
    pair = pending.pop(0)
    analysis: _Analysis = _result(pair.analysis, check)
    before: Optional[Tuple[_Pair, _Analysis]] = state['done']
    state['done'] = (pair, analysis)
    state['cuts'] += analysis.cut
    if pair.ordinal < state['skip']:  # written by the run this one resumes
        return
    writer.mark(pair.ordinal)
    times = sorted({t for _, t in pair.plan if t > 0})
    results = {}
    if times and not analysis.cut:
        kwargs = {}
        if analysis.flows is not None:
            kwargs['flows'] = analysis.flows
        if quadratic:
            flow_0p = flow_1n = image_0p = image_1n = None
            if before is not None and not before[1].cut and before[1].flows is not None and \
                    _similar(before[0].span, pair.span):
                flow_0p, image_0p = before[1].flows[1], before[0].first.tensor
            if pending:
                after = _result(pending[0].analysis, check)
                if not after.cut and after.flows is not None and _similar(pending[0].span, pair.span):
                    flow_1n, image_1n = after.flows[0], pending[0].second.tensor
            kwargs.update(before=image_0p, after=image_1n, outer=(flow_0p, flow_1n))
        with torch.no_grad():
            for start in range(0, len(times), TIMES_PER_CALL):
                chunk = times[start:start + TIMES_PER_CALL]
                results.update(zip(chunk, model.interpolate(pair.first.tensor, pair.second.tensor, chunk,
                                                            **kwargs)))
                _write_ready(pair, results, writer, analysis.cut)
    _write_ready(pair, results, writer, analysis.cut, last=True)


def _write_ready(pair: _Pair, results: dict, writer: _Writer, cut: bool, last: bool = False) -> None:
    """Write the interval's frames, in order, as far as they are ready (all of them with ``last``)."""
    while pair.plan:
        pts, t = pair.plan[0]
        if t == 0:
            image = pair.first.frame.image
        elif cut:  # never blend two shots: the nearer side repeats
            image = pair.first.frame.image if t < 0.5 else pair.second.frame.image
        elif t in results:
            image = results.pop(t)  # an interval's times are distinct
        elif last:
            raise RuntimeError(f'no frame was synthesized for t = {t}')
        else:
            return
        writer.write(image, pts)
        pair.plan.pop(0)
