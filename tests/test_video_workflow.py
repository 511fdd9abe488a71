"""What video people do daily: slow motion, trims (--start/--duration), repeated frames replaced along the motion.

The timeline's arithmetic is tested on its own (fake sources), the conversion's handling of repeats with a
recording interpolator (which pairs it is asked for, with which neighbours), and every option end to end through
the command line on real encoded clips and frame folders; --resume after kill -9 against an uninterrupted run.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
from images import texture
from test_conversion import Recorder, convert, helper_threads, write_frames
from test_video import clip, info, leftovers, run

from softmax_splatting import frames, video
from softmax_splatting.video.duplicates import MAX_REPEATS, REPEAT_LEVEL, is_repeat, repeat_score


def fake_source(rate=24):
    return SimpleNamespace(time_base=Fraction(1, rate), rate=Fraction(rate))


def at(pts, rate=24):
    return video.Frame(image=None, time=Fraction(pts, rate), pts=pts, index=pts)


# ------------------------------------------------------------------------------------------------ timeline --

def test_skipped_frames_keep_their_output_times_and_move_the_fraction():
    timeline = video.Timeline(fake_source(), factor=2)
    assert timeline.between(at(0), at(1)) == [(0, 0.0), (1, 0.5)]
    # frame 1 repeats frame 0: one interval from 0 to 2, its outputs where they were, at t of the whole interval
    assert timeline.between(at(0), at(2), skipped=[1]) == [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75)]
    assert timeline.between(at(2), at(5), skipped=[3, 4]) == [(4 + m, m / 6) for m in range(6)]


@pytest.mark.parametrize('options, rate, time_base, times', [
    ({'slow_motion': 4}, 24, Fraction(1, 24), [0, 0.25, 0.5, 0.75]),               # 4x the frames at 24 fps
    ({'slow_motion': 2, 'factor': 2}, 48, Fraction(1, 48), [0, 0.25, 0.5, 0.75]),  # at 48 fps, twice as long
    ({'slow_motion': 2, 'fps': Fraction(30)}, 30, Fraction(1, 30), [0, 0.4, 0.8]),  # 60 per input second
])
def test_slow_motion_plays_more_frames_at_the_output_rate(options, rate, time_base, times):
    timeline = video.Timeline(fake_source(), **options)
    assert timeline.rate == rate and timeline.time_base == time_base
    plan = timeline.between(at(0), at(1))
    assert [t for _, t in plan] == pytest.approx(times)
    # every output frame is shown at slow_motion times the input time it was made for
    for pts, t in timeline.between(at(1), at(2)):
        assert pts * time_base == pytest.approx(options['slow_motion'] * (1 + t) / 24)


def test_slow_motion_holds_the_last_frame_k_times_as_long():
    timeline = video.Timeline(fake_source(), slow_motion=3)
    pts, duration = timeline.tail(at(10), Fraction(11, 24))
    assert pts == [30] and duration * timeline.time_base == Fraction(3, 24)


# --------------------------------------------------------------------------------------------- repeat test --

def test_repeat_score_tells_coding_noise_from_the_smallest_real_change():
    rng = np.random.default_rng(0)
    image = texture(480, 854, seed=3)
    noisy = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    assert repeat_score(image, image) == 0.0
    assert repeat_score(image, noisy) < REPEAT_LEVEL and is_repeat(image, noisy)
    assert not is_repeat(image, np.ascontiguousarray(np.roll(image, 2, axis=1)))  # a pan of 2 of 854 pixels
    flat = np.full((480, 854, 3), 90, np.uint8)
    cursor = flat.copy()
    cursor[200:216, 400:416] = 250  # a 16-pixel pointer appears on a still screen
    assert not is_repeat(flat, cursor)


# ------------------------------------------------------------------------------------- repeats, conversion --

def pan(count, step=3, h=48, w=64, seed=1):
    wide = texture(h, w + step * count, seed=seed)
    return [np.ascontiguousarray(wide[:, step * k:step * k + w]) for k in range(count)]


def test_runs_of_repeats_become_one_interval_with_the_same_output_times(tmp_path):
    truth = pan(9)
    shown = [truth[k - k % 2] for k in range(9)]  # on twos: 0 0 2 2 4 4 6 6 8
    folder = write_frames(tmp_path / 'in', shown)
    model = Recorder()
    (count_in, count_out, cuts, repeats), sink = convert(folder, model)
    assert (count_in, count_out, cuts, repeats) == (9, 17, 0, 4)
    assert len(model.flow_pairs) == 4  # 0-2, 2-4, 4-6, 6-8
    assert [pts for pts, _ in sink.written] == list(range(17))
    assert sorted(t for call in model.calls for t in call['times']) == sorted([0.25, 0.5, 0.75] * 4)
    # the output at the repeat's time shows the motion, not the repeat: input frame 1 is the pan at 3 px
    got = sink.written[2][1].astype(float)[:, 8:-8]
    errors = [np.abs(got - truth[k].astype(float)[:, 8:-8]).mean() for k in (0, 1, 2)]
    assert errors[1] < 0.6 * min(errors[0], errors[2]), errors
    # neighbours of equal intervals give quadratic motion, as without repeats
    assert [(c['before'], c['after']) for c in model.calls] == [(False, True), (True, True), (True, True),
                                                               (True, False)]
    assert not helper_threads()


def test_repeats_off_keeps_every_frame(tmp_path):
    shown = [pan(5)[k - k % 2] for k in range(5)]
    (_, count_out, _, repeats), sink = convert(write_frames(tmp_path / 'in', shown), Recorder(), duplicates=False)
    assert repeats == 0 and count_out == 9
    assert np.array_equal(sink.written[2][1], shown[0])  # input frame 1, as it is


def test_a_still_picture_stays_still(tmp_path):
    still = pan(3)
    shown = [still[0]] * (MAX_REPEATS + 3) + still[1:]  # a run longer than placeholders, then motion
    model = Recorder()
    (count_in, count_out, _, repeats), sink = convert(write_frames(tmp_path / 'in', shown), model)
    assert repeats == 0 and len(model.flow_pairs) == count_in - 1
    # every output of the still is the picture (the last interval before the motion eases in along its
    # quadratic path, as any such interval does)
    held = [image for pts, image in sink.written if pts < 2 * (MAX_REPEATS + 1)]
    assert len(held) == 10 and all(np.array_equal(image, still[0]) for image in held)


def test_unequal_intervals_give_no_quadratic_neighbours(tmp_path):
    images = pan(6)
    shown = images[:3] + [images[2]] + images[3:]  # frame 3 repeats frame 2: the pair 2-3 spans two intervals
    model = Recorder()
    (_, _, _, repeats), _ = convert(write_frames(tmp_path / 'in', shown), model)
    assert repeats == 1
    assert [(c['before'], c['after']) for c in model.calls] == [(False, True), (True, False), (False, False),
                                                               (False, True), (True, False)]


def test_a_run_before_a_scene_cut_is_kept_as_it_is(tmp_path):
    one = pan(3, seed=2)
    other = [np.ascontiguousarray(image[..., ::-1] // 2) for image in pan(3, seed=9)]
    shown = one + [one[-1]] + other
    (_, _, cuts, repeats), sink = convert(write_frames(tmp_path / 'in', shown), Recorder())
    assert cuts == 1 and repeats == 0
    assert np.array_equal(sink.written[6][1], one[-1])  # merged across the cut, the other shot would show here


def test_fps_output_replaces_repeats_too(tmp_path):
    shown = [pan(5)[k - k % 2] for k in range(5)]
    (_, count_out, _, repeats), sink = convert(write_frames(tmp_path / 'in', shown), Recorder(), fps=Fraction(48))
    assert repeats == 2 and count_out == 10
    assert not np.array_equal(sink.written[2][1], shown[0])


# ------------------------------------------------------------------------------------------ command line --

def test_slow_motion_end_to_end_drops_the_audio_and_says_so(tmp_path, capsys):
    source = clip(tmp_path / 'in.mp4', seconds=1, rate=24, size='64x48', audio='stereo')
    out = tmp_path / 'slow.mp4'
    assert run('--video', source, '--out', out, '--slow-motion', '4') == 0
    captured = capsys.readouterr()
    assert 'slow motion (4x)' in captured.err and '4x slow motion' in captured.out
    result, original = info(out), info(source)
    assert result['frames'] == (original['frames'] - 1) * 4 + 1
    assert result['times'][1] == pytest.approx(1 / 24, abs=1e-4)  # at the input's rate
    assert result['duration'] == pytest.approx(4 * original['duration'], abs=0.02)
    assert result['audio'] == []
    assert not leftovers(tmp_path)


def test_slow_motion_default_name_and_bounds(tmp_path, capsys, monkeypatch):
    source = clip(tmp_path / 'in.mp4', seconds=0.3, rate=10, size='32x32')
    monkeypatch.chdir(tmp_path)
    assert run('--video', source, '--slow-motion', '2', '--factor', '3') == 0
    assert (tmp_path / 'in-x3-slowmo2.mp4').is_file()
    assert info(tmp_path / 'in-x3-slowmo2.mp4')['times'][1] == pytest.approx(1 / 30, abs=1e-4)
    capsys.readouterr()
    assert run('--video', source, '--slow-motion', '64', '--factor', '8') == 2
    assert 'asks for 512 output frames per input frame' in capsys.readouterr().err
    assert run('--video', source, '--slow-motion', '1') == 2
    assert '--slow-motion must be from 2' in capsys.readouterr().err
    assert run('--slow-motion', '2') == 2
    assert '--slow-motion applies to --video' in capsys.readouterr().err


def test_start_and_duration_trim_picture_and_sound(tmp_path):
    source = clip(tmp_path / 'in.mp4', seconds=2, rate=25, size='96x64', audio='stereo')  # no repeats at 96x64
    out = tmp_path / 'part.mkv'
    assert run('--video', source, '--out', out, '--start', '0.4', '--duration', '1', '--scene-threshold', '0') == 0
    result = info(out)
    assert result['frames'] == 49 and result['times'][0] == 0  # frames 10..34 of the input, doubled
    assert result['duration'] == pytest.approx(1.0, abs=0.05)
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        packets = [p for p in container.demux(audio) if p.size]
        first, last = packets[0].pts * audio.time_base, (packets[-1].pts + packets[-1].duration) * audio.time_base
    assert float(first) == pytest.approx(0, abs=0.03) and float(last) == pytest.approx(1.0, abs=0.05)
    # the first output frame is the input's frame at 0.4 s (testsrc2 draws a moving clock)
    with av.open(str(source)) as container:
        decoded = [f.to_ndarray(format='rgb24') for f in container.decode(video=0)]
    with av.open(str(out)) as container:
        head = next(container.decode(video=0)).to_ndarray(format='rgb24').astype(float)
    errors = [np.abs(head - decoded[k]).mean() for k in (9, 10, 11)]
    assert errors[1] < min(errors[0], errors[2])


def test_start_on_a_frame_folder_reads_only_its_frames(tmp_path):
    images = pan(10)
    folder = write_frames(tmp_path / 'in', images)
    assert run('--video', folder, '--input-fps', '10', '--start', '0.3', '--duration', '0.5', '--out',
               str(tmp_path / 'out') + '/') == 0
    written = sorted((tmp_path / 'out').iterdir())
    assert len(written) == 9  # frames 3..7, doubled
    assert np.array_equal(frames.read_image(written[0]), images[3])
    assert np.array_equal(frames.read_image(written[-1]), images[7])


@pytest.mark.parametrize('options, message', [
    (['--start', '5'], 'lasts 0.400 s'),
    (['--start', '1:75'], 'not a time'),
    (['--duration', '0'], 'must be longer than 0'),
    (['--start', '-1'], 'not a time'),
])
def test_trim_errors(tmp_path, capsys, options, message):
    source = clip(tmp_path / 'in.mp4', seconds=0.4, rate=10, size='32x32')
    assert run('--video', source, '--out', tmp_path / 'o.mp4', *options) == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1
    assert not (tmp_path / 'o.mp4').exists() and not leftovers(tmp_path)


def test_duplicates_end_to_end_and_the_flag_that_keeps_them(tmp_path, capsys):
    truth = pan(9)
    folder = write_frames(tmp_path / 'in', [truth[k - k % 2] for k in range(9)])
    assert run('--video', folder, '--input-fps', '24', '--out', str(tmp_path / 'smooth') + '/') == 0
    assert '4 repeated frame(s) replaced' in capsys.readouterr().out
    smooth = sorted((tmp_path / 'smooth').iterdir())
    assert not np.array_equal(frames.read_image(smooth[2]), truth[0])
    assert run('--video', folder, '--input-fps', '24', '--out', str(tmp_path / 'kept') + '/',
               '--keep-duplicates') == 0
    assert 'repeated' not in capsys.readouterr().out
    kept = sorted((tmp_path / 'kept').iterdir())
    assert len(kept) == len(smooth) and np.array_equal(frames.read_image(kept[2]), truth[0])


# ---------------------------------------------------------------------------------------------- --resume --

REPO = Path(__file__).resolve().parents[1]


def command(source, out, *extra):
    return [sys.executable, str(REPO / 'run_a_pair.py'), '--video', str(source), '--out', str(out), '--model',
            'classical', '--threads', '1', *extra]


def segments_listed(state):
    try:
        return len(json.loads(state.read_text())['segments'])
    except (OSError, ValueError, KeyError):
        return 0


def kill_after_segments(args, state, count, cwd):
    """Start the conversion, kill -9 it once ``state`` lists ``count`` finished segments; its stderr."""
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, cwd=cwd)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and segments_listed(state) < count and process.poll() is None:
        time.sleep(0.01)
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, 'the run ended before it could be killed'


def video_content(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(bytes(p), p.pts, p.duration) for p in container.demux(stream) if p.size]
        audio = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size] \
            if container.streams.audio else []
    return packets, audio


@pytest.mark.parametrize('into', ['video', 'folder'])
def test_kill_9_then_resume_gives_the_uninterrupted_result(tmp_path, into):
    source = clip(tmp_path / 'in.mp4', seconds=8, rate=25, size='64x48', audio='stereo' if into == 'video' else None)
    name = 'out.mp4' if into == 'video' else 'frames/'
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    whole.mkdir(), part.mkdir()
    out = f'{part}/{name}'  # a folder's trailing slash kept
    assert subprocess.run(command(source, f'{whole}/{name}', '--factor', '2'), capture_output=True).returncode == 0
    state = part / f'.{name.rstrip("/")}.partial' / 'state.json'
    # after two segments (about 120 pairs), so that the resumption rebuilds a chain of flow hints from pair 64
    kill_after_segments(command(source, out, '--factor', '2'), state, 2, part)
    assert not (part / name).exists() and segments_listed(state) >= 2
    # a rerun without --resume keeps the work and says how to continue
    rerun = subprocess.run(command(source, out, '--factor', '2'), capture_output=True, text=True)
    assert rerun.returncode == 2 and 'add --resume to continue it' in rerun.stderr
    # other settings cannot continue it
    other = subprocess.run(command(source, out, '--factor', '3', '--resume'), capture_output=True, text=True)
    assert other.returncode == 2 and 'made from other settings (factor changed)' in other.stderr
    resumed = subprocess.run(command(source, out, '--factor', '2', '--resume'), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert 'resuming:' in resumed.stderr and 'wrote' in resumed.stdout
    assert sorted(p.name for p in part.iterdir()) == [name.rstrip('/')]  # the work folder is gone
    if into == 'video':
        assert video_content(part / name) == video_content(whole / name)  # the same packets, audio included
        assert info(part / name)['frames'] == 399
    else:
        names = sorted(p.name for p in (whole / name).iterdir())
        assert sorted(p.name for p in (part / name).iterdir()) == names and len(names) == 399
        assert all((whole / name / n).read_bytes() == (part / name / n).read_bytes() for n in names)


def test_resume_without_work_starts_and_overwrite_starts_over(tmp_path, capsys):
    source = clip(tmp_path / 'in.mp4', seconds=0.4, rate=25, size='64x48')
    out = tmp_path / 'o.mp4'
    assert run('--video', source, '--out', out, '--resume') == 0  # nothing to resume: an ordinary run
    work = tmp_path / '.o2.mp4.partial'
    work.mkdir()
    (work / 'state.json').write_text('{not json')
    assert run('--video', source, '--out', tmp_path / 'o2.mp4') == 2
    assert 'add --resume to continue it, or --overwrite to start over' in capsys.readouterr().err
    assert run('--video', source, '--out', tmp_path / 'o2.mp4', '--resume') == 2
    assert 'holds no readable state' in capsys.readouterr().err
    assert run('--video', source, '--out', tmp_path / 'o2.mp4', '--overwrite') == 0
    assert (tmp_path / 'o2.mp4').is_file() and not work.exists()


def test_a_stop_while_joining_resumes_to_the_same_file(tmp_path, monkeypatch, capsys):
    """Every frame written, the run stops while joining the segments: --resume only joins."""
    source = clip(tmp_path / 'in.mp4', seconds=2, rate=25, size='64x48', audio='stereo')
    whole, out = tmp_path / 'whole.mp4', tmp_path / 'o.mp4'
    assert run('--video', source, '--out', whole) == 0
    original, calls = video.VideoSink.mux, []

    def stopped_mux(self, packet):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return original(self, packet)

    monkeypatch.setattr(video.VideoSink, 'mux', stopped_mux)
    assert run('--video', source, '--out', out) == 130
    assert 'finished frame(s) are kept in' in capsys.readouterr().err.splitlines()[-1]
    assert not out.exists() and leftovers(tmp_path) == ['.o.mp4.partial']
    monkeypatch.setattr(video.VideoSink, 'mux', original)
    assert run('--video', source, '--out', out, '--resume') == 0
    assert 'resuming: 99 frame(s)' in capsys.readouterr().err
    assert video_content(out) == video_content(whole) and not leftovers(tmp_path)


def test_two_conversions_into_one_output_one_wins_whole_and_the_other_says_so(tmp_path):
    source = clip(tmp_path / 'in.mp4', seconds=12, rate=25, size='64x48')
    out = f'{tmp_path}/frames/'
    first = subprocess.Popen(command(source, out, '--factor', '2'), stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (tmp_path / '.frames.partial' / 'lock').exists():
        time.sleep(0.01)
    second = subprocess.run(command(source, out, '--factor', '2'), capture_output=True, text=True)
    assert first.wait(timeout=120) == 0
    assert second.returncode == 2 and 'another conversion is writing it now' in second.stderr
    assert len(list((tmp_path / 'frames').iterdir())) == 599 and not leftovers(tmp_path)


def test_a_run_killed_before_its_first_segment_leaves_nothing_in_the_way(tmp_path):
    source = clip(tmp_path / 'in.mp4', seconds=0.4, rate=25, size='64x48')
    work = tmp_path / '.o.mp4.partial'
    work.mkdir()
    (work / 'state.json').write_text(json.dumps({'format': 'softsplat-conversion-1', 'fingerprint': {},
                                                 'segments': []}))
    (work / '.segment-00000.nut.tmp').write_bytes(b'half')
    assert run('--video', source, '--out', tmp_path / 'o.mp4') == 0
    assert (tmp_path / 'o.mp4').is_file() and not leftovers(tmp_path)


# ---------------------------------------------------------------------------------------------- batches --

def test_a_batch_converts_each_input_whole_reports_failures_and_exits_2(tmp_path, capsys):
    (tmp_path / 'in').mkdir()
    one = clip(tmp_path / 'in' / 'one.mp4', seconds=0.4, rate=25, size='64x48')
    two = clip(tmp_path / 'in' / 'two.mkv', seconds=0.2, rate=25, size='64x48')
    bad = tmp_path / 'in' / 'bad.mp4'
    bad.write_bytes(b'not a video')
    out = tmp_path / 'out'
    assert run('--video', one, bad, two, '--out', f'{out}/') == 2
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ['one-x2.mp4', 'two-x2.mp4']
    assert info(out / 'one-x2.mp4')['frames'] == 19 and info(out / 'two-x2.mp4')['frames'] == 9
    assert f'error: {bad}: ' in captured.err and 'not a readable video' in captured.err
    assert captured.err.strip().splitlines()[-1] == f'error: 2 of 3 videos converted; failed: {bad}'
    assert '15/15' in captured.err  # one progress bar over the frames of the readable inputs (10 + 5)
    assert not leftovers(out)


def test_a_folder_of_videos_is_a_batch_and_names_are_checked_first(tmp_path, capsys, monkeypatch):
    folder = tmp_path / 'clips'
    folder.mkdir()
    (tmp_path / 'other').mkdir()
    for name in ('b.mp4', 'a.mov'):
        clip(folder / name, seconds=0.2, rate=25, size='32x32')
    monkeypatch.chdir(tmp_path)
    assert run('--video', folder, '--factor', '3') == 0
    assert sorted(p.name for p in tmp_path.glob('*-x3.mp4')) == ['a-x3.mp4', 'b-x3.mp4']
    assert '2 of 2 videos converted' in capsys.readouterr().out
    clip(tmp_path / 'other' / 'a.mp4', seconds=0.2, rate=25, size='32x32')
    assert run('--video', folder, tmp_path / 'other' / 'a.mp4', '--out', f'{tmp_path}/o/') == 2
    assert 'would both be written to' in capsys.readouterr().err and not (tmp_path / 'o').exists()
    assert run('--video', folder, '--out', tmp_path / 'one.mp4') == 2
    assert 'several inputs (2) need a folder' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ fast motion --

def test_dis_starts_from_a_hint_and_finds_motion_it_misses_from_zero():
    """A pan of 48 pixels in a 160-pixel-wide frame: DIS from zero motion fails, from the right guess it is exact."""
    from softmax_splatting.classical import CLASSICAL_DIS, dis_flows
    shift = 48
    wide = texture(96, 160 + shift, seed=5)
    one = frames.to_tensor(np.ascontiguousarray(wide[:, shift:shift + 160]))  # one(x) = two(x + 48)
    two = frames.to_tensor(np.ascontiguousarray(wide[:, :160]))
    inside = (slice(None), 0, slice(8, -8), slice(8, -8 - shift))
    plain, _ = dis_flows(one, two, CLASSICAL_DIS)
    guess_there, guess_back = torch.zeros_like(plain), torch.zeros_like(plain)
    guess_there[:, 0], guess_back[:, 0] = shift - 5.0, 5.0 - shift  # a rough guess, 5 px off
    hinted, back = dis_flows(one, two, CLASSICAL_DIS, hint=(guess_there, guess_back))
    assert (plain[inside] - shift).abs().mean() > 5
    assert (hinted[inside] - shift).abs().mean() < 0.1
    assert (back[:, 0, 8:-8, shift + 8:-8] + shift).abs().mean() < 0.1


class HintRecorder(Recorder):
    takes_flow_hint = True

    def __init__(self):
        super().__init__()
        self.hints, self.returned = [], []

    def estimate_flows(self, one, two, hint=None):
        self.hints.append(hint)
        flows = super().estimate_flows(one, two)
        self.returned.append(flows)
        return flows


def test_each_pair_starts_from_the_motion_of_the_pair_before():
    images = pan(5, step=4)
    shown = images[:3] + [images[2]] + images[3:]  # frame 3 repeats frame 2: the third pair spans two intervals
    model = HintRecorder()
    (_, _, _, repeats), _ = convert_images(shown, model)
    assert repeats == 1 and len(model.hints) == 4
    assert model.hints[0] is None  # the first pair has nothing before it
    for k in (1, 2, 3):
        ratio = 2.0 if k == 2 else (0.5 if k == 3 else 1.0)
        backward = model.returned[k - 1][1] * ratio
        there, back = model.hints[k]
        assert torch.equal(there, -backward) and torch.equal(back, backward)


def test_no_hint_across_a_scene_cut():
    one = pan(3, seed=2)
    other = [np.ascontiguousarray(image[..., ::-1] // 2) for image in pan(3, seed=9)]
    model = HintRecorder()
    (_, _, cuts, _), _ = convert_images(one + other, model)
    assert cuts == 1 and len(model.hints) == 4  # the pair across the cut gets no flow
    assert model.hints[0] is None and model.hints[1] is not None
    assert model.hints[2] is None and model.hints[3] is not None  # the first pair after the cut starts afresh


def convert_images(images, model):
    folder = Path(tempfile.mkdtemp())
    try:
        return convert(write_frames(folder / 'in', images), model)
    finally:
        shutil.rmtree(folder)


def test_a_cut_is_a_jump_above_the_shot_so_far(monkeypatch):
    """Scripted scores: a fast shot creeping over the threshold stays one shot; a jump is a cut; a cut starts a new
    shot, with no history. Each pair's residual starts from the motion of the pair before, except after a cut."""
    from softmax_splatting.video import scenes
    scores = iter([0.30, 0.32, 0.38, 0.62, 0.20, 0.50, 0.30])
    hints = []

    def scripted_residual(a, b, hint):
        hints.append(None if hint is None else float(hint[0, 0, 0]))
        return 2 * next(scores), np.full(a.shape + (2,), float(len(hints)), np.float32)

    monkeypatch.setattr(scenes, 'colour_distance', lambda one, two: 0.0)
    monkeypatch.setattr(scenes, '_residual', scripted_residual)
    detector = scenes.SceneCuts(0.36)
    images = [np.full((32, 48, 3), k, np.uint8) for k in range(8)]
    cuts = [detector.is_cut(a, b) for a, b in zip(images, images[1:])]
    assert cuts == [False, False, False, True, False, True, False]
    assert hints == [None, 1.0, 2.0, 3.0, None, 5.0, None]
    assert not scenes.SceneCuts(0).is_cut(images[0], images[1])
