"""conversion.py: the video path computes each flow once, uses neighbours within a shot, streams large factors,
and passes errors from its threads back without hanging; quadratic motion beats linear on accelerating content."""

import os
import signal
import threading
from fractions import Fraction

import numpy as np
import pytest
import torch
from images import texture

from softmax_splatting import conversion, frames, metrics, signals, video
from softmax_splatting.baselines import FrameAverage
from softmax_splatting.classical import ClassicalInterpolator
from softmax_splatting.cli import interpolate as run_a_pair
from softmax_splatting.errors import Interrupted, UsageError


class Recorder:
    """The classical interpolator, recording what the video path asks of it; any neighbour flow computed outside
    the pairs' own flows is an error."""

    def __init__(self):
        self.inner = ClassicalInterpolator()
        self.inner.estimate_flow = self._no_extra_flow
        self.flow_pairs, self.calls = [], []

    @staticmethod
    def _no_extra_flow(*_):
        raise AssertionError('the video path computed a flow twice')

    def estimate_flows(self, one, two):
        self.flow_pairs.append((one.flatten()[:4].tolist(), two.flatten()[:4].tolist()))
        return self.inner.estimate_flows(one, two)

    def interpolate(self, one, two, times, **kwargs):
        outer = kwargs.get('outer') or (None, None)
        self.calls.append({'times': list(times), 'before': outer[0] is not None, 'after': outer[1] is not None,
                           'flows': kwargs.get('flows') is not None})
        return self.inner.interpolate(one, two, times, **kwargs)


def helper_threads():
    return [t.name for t in threading.enumerate() if t.name in ('decode', 'encode') or t.name.startswith('analyse')]


def shot(count, seed, step=3, h=48, w=64):
    wide = texture(h, w + step * count, seed=seed)
    return [np.ascontiguousarray(wide[:, step * k:step * k + w]) for k in range(count)]


def write_frames(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(images):
        frames.write_image(folder / f'{k:04d}.png', image)
    return folder


class ListSink:
    def __init__(self, fail_at=None):
        self.written, self.fail_at = [], fail_at

    def write(self, image, pts, duration=1):
        if self.fail_at is not None and len(self.written) == self.fail_at:
            raise OSError('disk full')
        self.written.append((pts, image))


def convert(folder, model, factor=2, motion='quadratic', threshold=video.SCENE_THRESHOLD, sink=None,
            check=conversion._nothing, duplicates=True, fps=None):
    source = video.open_source(str(folder), Fraction(24))
    sink = sink or ListSink()
    timeline = video.Timeline(source, factor=None if fps else factor, fps=fps)
    try:
        counts = conversion.convert(source, sink, timeline, model, torch.device('cpu'), threshold, motion,
                                    _Quiet(), check, duplicates)
    finally:
        source.close()
    return counts, sink


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def update(self, _):
        pass


def test_each_flow_once_and_both_neighbours_inside_the_clip(tmp_path):
    folder = write_frames(tmp_path / 'in', shot(6, seed=1))
    model = Recorder()
    (count_in, count_out, cuts, _), sink = convert(folder, model)
    assert (count_in, count_out, cuts) == (6, 11, 0)
    assert len(model.flow_pairs) == 5  # one estimate_flows per pair, none for neighbours
    assert [(c['before'], c['after']) for c in model.calls] == [(False, True)] + [(True, True)] * 3 + [(True, False)]
    assert all(c['flows'] for c in model.calls)
    assert [pts for pts, _ in sink.written] == list(range(11))
    assert not helper_threads()  # every helper thread has ended


def test_a_scene_cut_is_not_interpolated_and_no_neighbour_across_it(tmp_path):
    images = shot(3, seed=2) + [np.ascontiguousarray(image[..., ::-1] // 2) for image in shot(3, seed=9)]
    folder = write_frames(tmp_path / 'in', images)
    model = Recorder()
    (_, count_out, cuts, _), sink = convert(folder, model)
    assert cuts == 1 and count_out == 11
    assert len(model.flow_pairs) == 4  # the pair across the cut needs no flow
    assert [(c['before'], c['after']) for c in model.calls] == [(False, True), (True, False), (False, True),
                                                               (True, False)]
    # the two frames of the interval across the cut repeat the nearer side
    assert np.array_equal(sink.written[4][1], images[2]) and np.array_equal(sink.written[5][1], images[3])


def test_linear_motion_passes_no_neighbours(tmp_path):
    folder = write_frames(tmp_path / 'in', shot(4, seed=3))
    model = Recorder()
    convert(folder, model, motion='linear')
    assert not any(c['before'] or c['after'] for c in model.calls) and len(model.flow_pairs) == 3


def test_a_large_factor_is_synthesized_a_few_times_at_a_time(tmp_path):
    folder = write_frames(tmp_path / 'in', shot(3, seed=4))
    model = Recorder()
    (_, count_out, _, _), sink = convert(folder, model, factor=11)
    assert count_out == 23 and [pts for pts, _ in sink.written] == list(range(23))
    assert max(len(c['times']) for c in model.calls) == conversion.TIMES_PER_CALL
    assert sum(len(c['times']) for c in model.calls) == 20


def test_models_without_their_own_flow_still_convert(tmp_path):
    folder = write_frames(tmp_path / 'in', shot(3, seed=5))
    (count_in, count_out, _, _), sink = convert(folder, FrameAverage())
    assert (count_in, count_out) == (3, 5)
    assert not conversion.supports_motion(FrameAverage()) and conversion.supports_motion(ClassicalInterpolator())


def test_an_encoder_error_stops_the_conversion_without_hanging(tmp_path):
    folder = write_frames(tmp_path / 'in', shot(8, seed=6))
    with pytest.raises(OSError, match='disk full'):
        convert(folder, ClassicalInterpolator(), sink=ListSink(fail_at=3))
    assert not helper_threads()


def _terminated(number, _frame):
    raise Interrupted('terminated', 128 + number)


class _SignalAt:
    """Sends ``number`` to this process from inside one stage (the flows' thread, the converting thread's synthesis
    or the encoding thread) at its ``at``-th call."""

    def __init__(self, number, at):
        self.number, self.at, self.calls = number, at, 0

    def __call__(self):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.number)


@pytest.mark.parametrize('stage', ['flows', 'synthesis', 'encoding'])
@pytest.mark.parametrize('number, stop', [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Interrupted)])
def test_a_stop_signal_is_acted_on_between_steps_and_every_thread_ends(tmp_path, stage, number, stop):
    """The signal's exception must come from ``check`` in the converting thread, never from inside a queue or a
    wait (where it can lose a wake-up and hang the clean-up), and every helper thread must have ended."""
    folder = write_frames(tmp_path / 'in', shot(16, seed=12))
    model, sink = Recorder(), ListSink()
    send = _SignalAt(number, 3)
    if stage == 'flows':
        inner = model.estimate_flows
        model.estimate_flows = lambda one, two: send() or inner(one, two)
    elif stage == 'synthesis':
        inner_interpolate = model.interpolate
        model.interpolate = lambda *args, **kwargs: send() or inner_interpolate(*args, **kwargs)
    else:
        inner_write = sink.write
        sink.write = lambda *args, **kwargs: send() or inner_write(*args, **kwargs)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        with signals.StopSignals() as held:
            with pytest.raises(stop) as raised:
                convert(folder, model, sink=sink, check=held.check)
        assert signal.getsignal(signal.SIGTERM) is _terminated and signal.getsignal(signal.SIGINT) is \
            signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert held.received == number
    assert any(entry.name == 'check' for entry in raised.traceback), raised.traceback
    assert not helper_threads()
    assert len(sink.written) < 31  # stopped early: 16 frames at factor 2 make 31


def test_a_decoding_error_reaches_the_caller(tmp_path):
    images = shot(5, seed=7)
    folder = write_frames(tmp_path / 'in', images)
    frames.write_image(folder / '0003.png', images[0][:20])  # a frame of another size, met mid-way
    with pytest.raises(UsageError, match='differs from the first frame'):
        convert(folder, ClassicalInterpolator())
    assert not helper_threads()


def test_quadratic_motion_beats_linear_through_the_video_path(tmp_path):
    """An accelerating pan, x(k) = k^2 pixels at frame k, 9 frames; the even ones go in, the odd ones are the truth
    (linear motion misses each by a pixel). Through the command line, as a user runs it."""
    wide = texture(128, 192 + 64, seed=8)
    truth = [np.ascontiguousarray(wide[:, k * k:k * k + 192]) for k in range(9)]
    folder = write_frames(tmp_path / 'in', truth[::2])
    scores = {}
    for motion in ('linear', 'quadratic'):
        out = tmp_path / motion
        assert run_a_pair.main(['--video', str(folder), '--input-fps', '12', '--factor', '2', '--model', 'classical',
                                '--motion', motion, '--out', str(out) + '/']) == 0
        written = [frames.read_image(p) for p in sorted(out.iterdir())]
        assert len(written) == 9
        scores[motion] = np.mean([metrics.psnr(written[k][8:-8, 16:-16], truth[k][8:-8, 16:-16])
                                  for k in (3, 5)])  # inner odd frames: both neighbours exist
    assert scores['quadratic'] > scores['linear'] + 2, scores


def test_each_brightness_error_is_computed_once(tmp_path, monkeypatch):
    """A frame's error towards a neighbour serves the guard of one pair and the metric of the next: over 5 pairs,
    10 warps instead of 18 (2 per pair for the metric, 1 per side with a neighbour for the guard)."""
    from softmax_splatting import classical
    folder = write_frames(tmp_path / 'in', shot(6, seed=10))
    calls = []
    original = classical.backwarp
    monkeypatch.setattr(classical, 'backwarp', lambda *a, **k: calls.append(1) or original(*a, **k))
    convert(folder, ClassicalInterpolator())
    assert len(calls) == 10
    calls.clear()
    convert(folder, ClassicalInterpolator(), motion='linear')
    assert len(calls) == 10  # linear: the metric's 2 per pair


def test_a_mainnet_checkpoint_goes_through_the_video_path_with_its_own_flows(tmp_path):
    from softmax_splatting.main_net import MainNet
    torch.manual_seed(0)
    model = MainNet(pwc_weights=None).eval()
    calls = []
    original = model.estimate_flows
    model.estimate_flow = lambda *_: (_ for _ in ()).throw(AssertionError('a neighbour flow was computed'))
    model.estimate_flows = lambda one, two: calls.append(1) or original(one, two)
    folder = write_frames(tmp_path / 'in', shot(4, seed=11))
    (count_in, count_out, _, _), sink = convert(folder, model)
    assert (count_in, count_out, len(calls)) == (4, 7, 3)
    assert all(image.shape == (48, 64, 3) for _, image in sink.written)
