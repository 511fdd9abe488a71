"""run_a_pair.py --video and video.py on clips made here with ffmpeg (the binary imageio-ffmpeg ships) and PyAV:
frame counts and durations, timestamps of variable-rate input, scene cuts, rotation, sample aspect ratio, audio
copied unchanged, odd sizes, image sequences in and out, and every bad input (one line, exit 2, nothing left)."""

import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from images import texture

from softmax_splatting import frames, video
from softmax_splatting.cli import interpolate as run_a_pair
from softmax_splatting.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def ffmpeg(*args):
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-hide_banner', '-loglevel', 'error', '-y', *map(str, args)],
                   check=True)


def run(*args):
    return run_a_pair.main([str(a) for a in args] + ['--model', 'classical'])


def clip(path, seconds=1, rate='30000/1001', size='96x64', source='testsrc2', audio=None, extra=()):
    """A test clip; ``audio`` None, 'stereo' or '5.1' (AAC)."""
    inputs = ['-f', 'lavfi', '-i', f'{source}=size={size}:rate={rate}:duration={seconds}']
    maps = ['-map', '0:v']
    if audio:
        inputs += ['-f', 'lavfi', '-i', f'sine=frequency=440:sample_rate=44100:duration={seconds}']
        layout = '5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0' if audio == '5.1' else 'stereo|c0=c0|c1=c0'
        inputs += ['-filter_complex', f'[1:a]pan={layout}[a]']
        maps += ['-map', '[a]', '-c:a', 'aac']
    ffmpeg(*inputs, *maps, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', *extra, path)
    return path


def info(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [frame.time for frame in container.decode(stream)]
        audio = [(a.codec_context.name, a.codec_context.channels, a.rate) for a in container.streams.audio]
        duration = stream.duration * stream.time_base if stream.duration else container.duration / 1e6
        return {'frames': len(times), 'times': times, 'duration': float(duration),
                'width': stream.codec_context.width, 'height': stream.codec_context.height,
                'sar': stream.sample_aspect_ratio, 'pix_fmt': stream.codec_context.pix_fmt, 'audio': audio,
                'codec': stream.codec_context.name}


def leftovers(folder):
    return [p.name for p in Path(folder).iterdir() if p.name.startswith('.')]


# ------------------------------------------------------------------------------------------ counts, timing -----

def test_factor_keeps_every_frame_and_the_duration_at_29_97(tmp_path):
    """120 frames at 30000/1001: all decoded (moviepy lost the last), (N - 1) k + 1 out, same duration."""
    source = clip(tmp_path / 'ntsc.mp4', seconds='4.004', size='32x32')
    assert info(source)['frames'] == 120
    out = tmp_path / 'x2.mp4'
    assert run('--video', source, '--out', out, '--factor', '2') == 0
    result = info(out)
    assert result['frames'] == 239
    assert result['duration'] == pytest.approx(info(source)['duration'], abs=1e-3)
    assert result['times'][1] == pytest.approx(1001 / 60000, abs=1e-4)
    assert not leftovers(tmp_path)


def test_target_fps_follows_the_input_timestamps_of_a_variable_rate_clip(tmp_path):
    """Frames at irregular times (0, 40, 80, 200, 240, 400 ms): --fps 50 puts one output every 20 ms, each made at
    its own fraction of its interval, and --factor 2 puts one exactly midway in every interval."""
    source = tmp_path / 'vfr.mkv'
    stamps = [0, 40, 80, 200, 240, 400]
    with av.open(str(source), 'w') as container:
        stream = container.add_stream('libx264', rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, 'yuv444p'
        stream.time_base = Fraction(1, 1000)
        stream.options = {'qp': '0'}
        image = texture(48, 80)
        for k, stamp in enumerate(stamps):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:, stamp // 20:stamp // 20 + 64]), 'rgb24')
            frame.pts, frame.time_base = stamp, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    assert [round(t * 1000) for t in info(source)['times']] == stamps
    folder = tmp_path / 'fps50/'
    assert run('--video', source, '--out', str(folder) + '/', '--fps', '50', '--scene-threshold', '0') == 0
    outputs = sorted(folder.iterdir())
    probe = video.open_source(str(source))
    for _ in probe.frames():
        pass
    probe.close()
    assert len(outputs) == int(np.ceil(probe.end * 50))  # every 20 ms up to the end of the last frame
    # output k shows time 20 k ms, i.e. the texture shifted by k px; a wrong fraction t would shift it otherwise
    texture_ = texture(48, 80)
    for k in (3, 5, 7, 13):
        got = frames.read_image(outputs[k])[:, 8:-8].astype(float)
        errors = {s: np.abs(got - texture_[:, s:s + 64][:, 8:-8].astype(float)).mean() for s in (k - 2, k, k + 2)}
        assert errors[k] < 0.6 * min(errors[k - 2], errors[k + 2]), (k, errors)
    doubled = tmp_path / 'x2.mkv'
    assert run('--video', source, '--out', doubled, '--factor', '2') == 0
    assert [round(t * 1000) for t in info(doubled)['times']] == [0, 20, 40, 60, 80, 140, 200, 220, 240, 320, 400]


def test_a_fast_pan_through_changing_colours_is_not_a_cut():
    """The colours of a fast pan across a scene that turns from red to blue change as much as a cut's (above 0.19,
    the colour-only threshold used before); the motion explains the frame, so the scene score stays low."""
    ramp = np.clip(np.linspace(-0.5, 1.5, 640, dtype=np.float32), 0, 1)[None, :, None]
    tint = np.concatenate([ramp, np.full_like(ramp, 0.2), 1 - ramp], 2)
    scene = np.clip(texture(120, 640, seed=3).astype(np.float32) * (0.2 + 1.2 * tint), 0, 255).astype(np.uint8)
    one, two = scene[:, 200:360], scene[:, 248:408]  # 48 pixels in one frame, 30% of the width
    assert video.colour_distance(one, two) > 0.19
    assert video.motion_residual(one, two) < 0.15
    assert video.scene_score(one, two) < video.SCENE_THRESHOLD / 1.5
    other = np.ascontiguousarray(255 - two[::-1])  # another shot: nothing moved explains it
    assert video.motion_residual(one, other) > 0.5 and video.scene_score(one, other) > video.SCENE_THRESHOLD


def test_scene_cut_is_never_blended(tmp_path):
    """Two unrelated shots: the frames between the last of one and the first of the other repeat the nearer side
    exactly; within a shot, interpolation still happens."""
    a = clip(tmp_path / 'a.mp4', seconds=0.2, rate=25, size='64x48', source='testsrc')
    b = clip(tmp_path / 'b.mp4', seconds=0.2, rate=25, size='64x48', source='gradients')
    cut = tmp_path / 'cut.mp4'
    ffmpeg('-i', a, '-i', b, '-filter_complex', '[0:v][1:v]concat=n=2:v=1[v]', '-map', '[v]', '-c:v', 'libx264',
           '-crf', '0', cut)
    source = video.open_source(str(cut))
    decoded = [f.image for f in source.frames()]
    source.close()
    assert len(decoded) == 10
    scores = [video.scene_score(x, y) for x, y in zip(decoded, decoded[1:])]
    assert max(scores[:4] + scores[5:]) < video.SCENE_THRESHOLD < scores[4]
    out = tmp_path / 'frames/'
    assert run('--video', cut, '--out', str(out) + '/', '--factor', '4') == 0
    written = [frames.read_image(p) for p in sorted(out.iterdir())]
    assert len(written) == 37
    # outputs 16..19 cover the interval from input 4 (last of shot one) to input 5 (first of shot two)
    assert np.array_equal(written[16], decoded[4]) and np.array_equal(written[17], decoded[4])
    assert np.array_equal(written[18], decoded[5]) and np.array_equal(written[19], decoded[5])
    assert not np.array_equal(decoded[0], decoded[1])
    assert not np.array_equal(written[2], decoded[0]) and not np.array_equal(written[2], decoded[1])
    # with detection off, the cut is blended
    blended = tmp_path / 'blended/'
    assert run('--video', cut, '--out', str(blended) + '/', '--factor', '4', '--scene-threshold', '0') == 0
    assert not np.array_equal(frames.read_image(sorted(blended.iterdir())[18]), decoded[5])


# ------------------------------------------------------------------------------------------- streams kept -----

def test_audio_is_copied_unchanged_into_mp4_mkv_and_mov(tmp_path):
    source = clip(tmp_path / 'surround.mp4', seconds=1, audio='5.1')
    with av.open(str(source)) as container:
        original = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size][:20]
    for suffix in ('.mp4', '.mkv', '.mov'):
        out = tmp_path / f'out{suffix}'
        assert run('--video', source, '--out', out) == 0
        assert info(out)['audio'] == [('aac', 6, 44100)]
        with av.open(str(out)) as container:
            copied = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size][:20]
        assert copied == original  # the same packets: copied, not re-encoded


def test_webm_reencodes_audio_and_says_so(tmp_path, capsys):
    source = clip(tmp_path / 'stereo.mp4', seconds=0.5, audio='stereo')
    out = tmp_path / 'out.webm'
    assert run('--video', source, '--out', out) == 0
    assert 're-encoded to libopus' in capsys.readouterr().err
    result = info(out)
    assert result['codec'] == 'vp9' and result['audio'] == [('opus', 2, 48000)]


def test_rotation_is_honoured(tmp_path):
    """A clip whose display matrix rotates it by 90 degrees comes out upright, as ffmpeg itself displays it."""
    plain = clip(tmp_path / 'plain.mp4', seconds=0.2, rate=25, size='96x64')
    rotated = tmp_path / 'rotated.mp4'
    ffmpeg('-display_rotation', '90', '-i', plain, '-c', 'copy', rotated)
    shown = tmp_path / 'shown.png'
    ffmpeg('-i', rotated, '-frames:v', '1', shown)  # ffmpeg applies the rotation when decoding
    expected = frames.read_image(shown)
    assert expected.shape == (96, 64, 3)
    out = tmp_path / 'up.mp4'
    assert run('--video', rotated, '--out', out) == 0
    assert (info(out)['width'], info(out)['height']) == (64, 96)
    folder = tmp_path / 'up/'
    assert run('--video', rotated, '--out', str(folder) + '/') == 0
    first = frames.read_image(sorted(folder.iterdir())[0]).astype(float)
    right = np.abs(first - expected).mean()
    wrong = np.abs(first - np.rot90(expected, 2)).mean()
    assert right < 4 and wrong > 4 * right


def test_sample_aspect_ratio_is_kept(tmp_path):
    source = clip(tmp_path / 'anamorphic.mp4', seconds=0.2, rate=25, extra=('-vf', 'setsar=4/3'))
    assert info(source)['sar'] == Fraction(4, 3)
    out = tmp_path / 'out.mp4'
    assert run('--video', source, '--out', out) == 0
    assert info(out)['sar'] == Fraction(4, 3)


def test_odd_size_is_padded_not_stretched_and_stays_yuv420p(tmp_path, capsys):
    source = tmp_path / 'odd.mkv'
    with av.open(str(source), 'w') as container:
        stream = container.add_stream('libx264', rate=25)
        stream.width, stream.height, stream.pix_fmt = 65, 49, 'yuv444p'
        image = texture(49, 80)
        for k in range(5):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:, k:k + 65]), 'rgb24')
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    assert (info(source)['width'], info(source)['height']) == (65, 49)
    out = tmp_path / 'out.mp4'
    assert run('--video', source, '--out', out) == 0
    assert 'padded to 66x50' in capsys.readouterr().err
    result = info(out)
    assert (result['width'], result['height'], result['pix_fmt']) == (66, 50, 'yuv420p')
    exact = tmp_path / 'exact.mkv'
    assert run('--video', source, '--out', exact, '--pix-fmt', 'yuv444p') == 0
    assert (info(exact)['width'], info(exact)['height'], info(exact)['pix_fmt']) == (65, 49, 'yuv444p')


# -------------------------------------------------------------------------------------- image sequences -------

def test_frame_folder_and_printf_pattern_in_and_out(tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    image = texture(48, 80)
    for k in range(1, 6):
        frames.write_image(folder / f'{k:04d}.png', image[:, 2 * k:2 * k + 64])
    out = tmp_path / 'out.mp4'
    assert run('--video', folder, '--out', out, '--input-fps', '24', '--factor', '3') == 0
    result = info(out)
    assert result['frames'] == 13 and result['duration'] == pytest.approx(5 / 24, abs=1e-3)
    pattern_out = tmp_path / 'numbered'
    pattern_out.mkdir()  # an existing folder receives numbered frames
    assert run('--video', folder / '%04d.png', '--out', pattern_out, '--factor', '2') == 0
    names = sorted(p.name for p in pattern_out.iterdir())
    assert names == [f'{k:06d}.png' for k in range(1, 10)]
    assert np.array_equal(frames.read_image(pattern_out / '000003.png'), image[:, 4:68])
    assert not leftovers(tmp_path)


# --------------------------------------------------------------------------------------------- bad input ------

def test_truncated_video_is_an_error_and_leaves_nothing(tmp_path, capsys):
    """Cut at a packet boundary, the file decodes cleanly to fewer frames than its index lists; cut anywhere, a
    packet is damaged; without its index (moov atom at the end) it cannot be opened. All three: one line, exit 2."""
    whole = clip(tmp_path / 'whole.mp4', seconds=2, rate=25, size='64x48', extra=('-movflags', '+faststart'))
    with av.open(str(whole)) as container:
        positions = sorted(p.pos for p in container.demux(container.streams.video[0]) if p.pos is not None)
    data = whole.read_bytes()
    out = tmp_path / 'out.mp4'
    for name, size, message in (('clean.mp4', positions[30], 'decoded 30 of the 50 frames the file declares'),
                                ('ragged.mp4', positions[30] + 7, 'truncated or damaged')):
        (tmp_path / name).write_bytes(data[:size])
        assert run('--video', tmp_path / name, '--out', out) == 2
        err = capsys.readouterr().err
        assert err.splitlines()[-1].startswith('error: ') and message in err and 'Traceback' not in err, err
        assert not out.exists() and not leftovers(tmp_path)
    tail_index = clip(tmp_path / 'moov_at_end.mp4', seconds=1, rate=25, size='64x48')
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(tail_index.read_bytes()[:-200])
    assert run('--video', broken, '--out', out) == 2
    assert 'not a readable video' in capsys.readouterr().err
    assert not out.exists() and not leftovers(tmp_path)


@pytest.mark.parametrize('case, message', [
    ('one-frame', 'has only one frame; there is nothing to interpolate between'),
    ('same-file', 'is the input; choose another output'),
    ('directory', 'is a folder; give a video file name'),
    ('suffix', 'unknown video suffix .avi'),
    ('unwritable', 'cannot write in'),
    ('factor', '--factor must be from 2 to 256'),
    ('fps', 'not a frame rate'),
    ('both', 'not allowed with argument'),
    ('codec', '--codec nonesuch: not an encoder'),
    ('pix-fmt', '--pix-fmt nonesuch: not a pixel format'),
    ('missing', 'no such file or folder'),
    ('empty-folder', 'holds neither frames'),
    ('threshold', '--scene-threshold must lie in [0, 1]'),
    ('pair-only', '--fps applies to --video'),
    ('time', '--time applies to a pair'),
    ('huge-factor', '--factor must be from 2 to 256, got 1000'),
    ('huge-fps', '--fps 1e9: the frame rate must lie from 1/1000 to 1000 frames per second'),
    ('fps-per-interval', 'asks for 300 output frames per input frame'),
    ('crf', '--crf 99: libx264 takes 0 (lossless or best) to 51'),
    ('unsupported-pix-fmt', '--pix-fmt rgb24: libx264 cannot encode it'),
    ('too-large', 'frames are larger than this tool handles'),
    ('codec-container', "--codec libx264: cannot go into .webm"),
])
def test_video_errors(tmp_path, capsys, monkeypatch, case, message):
    source = clip(tmp_path / 'in.mp4', seconds=0.2, rate=25, size='64x48')
    out = tmp_path / 'out.mp4'
    args = ['--video', source, '--out', out]
    if case == 'one-frame':
        ffmpeg('-i', source, '-frames:v', '1', tmp_path / 'single.mp4')
        args[1] = tmp_path / 'single.mp4'
    elif case == 'same-file':
        args[3] = source
    elif case == 'directory':
        (tmp_path / 'dir.mp4').mkdir()
        args[3] = tmp_path / 'dir.mp4'
    elif case == 'suffix':
        args[3] = tmp_path / 'out.avi'
    elif case == 'unwritable':
        args[3] = '/proc/out.mp4'
    elif case == 'factor':
        args += ['--factor', '1']
    elif case == 'fps':
        args += ['--fps', 'fast']
    elif case == 'both':
        args += ['--fps', '60', '--factor', '2']
    elif case == 'codec':
        args += ['--codec', 'nonesuch']
    elif case == 'pix-fmt':
        args += ['--pix-fmt', 'nonesuch']
    elif case == 'missing':
        args[1] = tmp_path / 'absent.mp4'
    elif case == 'empty-folder':
        (tmp_path / 'empty').mkdir()
        args[1] = tmp_path / 'empty'
    elif case == 'threshold':
        args += ['--scene-threshold', '2']
    elif case == 'pair-only':
        args = ['--fps', '60', '--out', tmp_path / 'o.png']
    elif case == 'time':
        args += ['--time', '0.3']
    elif case == 'huge-factor':
        args += ['--factor', '1000']
    elif case == 'huge-fps':
        args += ['--fps', '1e9']
    elif case == 'fps-per-interval':
        args[1] = clip(tmp_path / 'slow.mp4', seconds=2, rate=2, size='64x48')
        args += ['--fps', '600']
    elif case == 'crf':
        args += ['--crf', '99']
    elif case == 'unsupported-pix-fmt':
        args += ['--pix-fmt', 'rgb24']
    elif case == 'too-large':
        monkeypatch.setattr(frames, 'MAX_PIXELS', 64 * 47)
    elif case == 'codec-container':
        out = tmp_path / 'out.webm'
        args[3] = out
        args += ['--codec', 'libx264']
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err, err
    if case != 'both':  # one error line (a progress bar may come before it)
        lines = [line for line in err.replace('\r', '\n').splitlines() if line.strip()]
        assert lines[-1].startswith('error: ') and sum(line.startswith('error') for line in lines) == 1, err
    assert source.exists() and not out.exists() and not leftovers(tmp_path)


@pytest.mark.parametrize('stop, status, word', [(signal.SIGINT, 130, 'interrupted'),
                                                (signal.SIGTERM, 143, 'terminated (SIGTERM)')])
@pytest.mark.parametrize('into', ['video', 'folder'])
def test_a_stop_signal_exits_and_keeps_only_finished_segments(tmp_path, stop, status, word, into):
    """No partial output: the output does not exist, and all that is left is the work folder of finished segments
    (for --resume, test_video_workflow.py), which the last line names; with none finished, nothing at all."""
    source = clip(tmp_path / 'long.mp4', seconds=20, rate=25, size='64x48')
    out = tmp_path / ('out.mp4' if into == 'video' else 'frames')
    process = subprocess.Popen([sys.executable, str(REPO / 'run_a_pair.py'), '--video', str(source), '--out',
                                str(out) + ('/' if into == 'folder' else ''), '--model', 'classical', '--factor',
                                '4', '--threads', '1'], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not leftovers(tmp_path):
        time.sleep(0.1)  # the work folder exists: the conversion has begun
    time.sleep(1.0)
    process.send_signal(stop)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(word) and 'Traceback' not in err
    assert not out.exists()
    if 'kept in' in last:
        assert f'{out.name}' in last and 'is not written' in last and 'run the same command with --resume' in last
        assert leftovers(tmp_path) == [f'.{out.name}.partial']
    else:
        assert last in ('interrupted', 'terminated (SIGTERM); nothing was written') and not leftovers(tmp_path)


def test_output_folder_with_frames_is_refused_or_replaced_whole(tmp_path, capsys):
    source = clip(tmp_path / 'in.mp4', seconds=0.2, rate=25, size='64x48')
    out = tmp_path / 'frames'
    out.mkdir()
    for name in ('000001.png', '000020.png', 'notes.txt'):  # an older, longer run and a file of the user's
        (out / name).write_bytes(b'old')
    assert run('--video', source, '--out', str(out) + '/') == 2
    assert 'already holds 3 file(s)' in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ['000001.png', '000020.png', 'notes.txt']
    assert (out / '000001.png').read_bytes() == b'old'
    assert run('--video', source, '--out', str(out) + '/', '--overwrite') == 0
    assert sorted(p.name for p in out.iterdir()) == [f'{k:06d}.png' for k in range(1, 10)]  # nothing old is left
    assert not leftovers(tmp_path)
    assert run('--video', source, '--out', str(tmp_path / 'fresh') + '/', '--overwrite') == 0  # new folder: fine
    assert run('--one', 'a.png', '--two', 'b.png', '--overwrite') == 2  # a pair writes files, not folders


def test_frames_are_never_written_into_the_input_folder(tmp_path, capsys):
    folder = tmp_path / 'seq'
    folder.mkdir()
    for k in range(4):
        frames.write_image(folder / f'{k:06d}.png', texture(32, 48, seed=k))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for spec in (str(folder / '%06d.png'), str(folder)):
        for flags in ([], ['--overwrite']):
            assert run('--video', spec, '--input-fps', '24', '--out', str(folder) + '/', *flags) == 2
            err = capsys.readouterr().err
            assert 'is the folder of the input frames' in err or 'is the input; choose another' in err, err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_folder_that_holds_the_input_video_is_never_replaced(tmp_path, capsys):
    folder = tmp_path / 'work'
    folder.mkdir()
    source = clip(folder / 'in.mp4', seconds=0.2, rate=25, size='64x48')
    before = source.read_bytes()
    for flags in ([], ['--overwrite']):
        assert run('--video', source, '--out', str(folder) + '/', *flags) == 2
        err = capsys.readouterr().err
        assert 'holds the input' in err or 'already holds' in err, err
    assert source.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ['in.mp4']
    assert run('--video', source, '--out', str(tmp_path) + '/', '--overwrite') == 2  # an ancestor holds it too
    assert 'holds the input' in capsys.readouterr().err and source.read_bytes() == before


def test_a_gap_in_a_numbered_sequence_is_an_error(tmp_path, capsys):
    folder = tmp_path / 'seq'
    folder.mkdir()
    for k in (0, 1, 2, 3, 5, 6):
        frames.write_image(folder / f'{k:04d}.png', texture(32, 48, seed=k))
    assert run('--video', str(folder / '%04d.png'), '--out', str(tmp_path / 'o') + '/') == 2
    err = capsys.readouterr().err
    assert 'frame 4 is missing but 2 later frame(s) exist (from 5)' in err
    (folder / '0004.png').write_bytes((folder / '0003.png').read_bytes())
    assert run('--video', str(folder / '%04d.png'), '--input-fps', '24', '--out', str(tmp_path / 'o') + '/') == 0
    assert len(list((tmp_path / 'o').iterdir())) == 13


def test_outputs_have_ordinary_permissions(tmp_path):
    import os
    source = clip(tmp_path / 'in.mp4', seconds=0.2, rate=25, size='64x48')
    previous = os.umask(0o022)
    try:
        assert run('--video', source, '--out', tmp_path / 'o.mp4') == 0
        assert run('--video', source, '--out', str(tmp_path / 'f') + '/') == 0
    finally:
        os.umask(previous)
    assert (tmp_path / 'o.mp4').stat().st_mode & 0o777 == 0o644
    assert (tmp_path / 'f').stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / 'f').iterdir())


def test_a_failed_write_while_encoding_is_one_line(tmp_path):
    source = video.open_source(str(clip(tmp_path / 'in.mp4', seconds=0.2, rate=25, size='64x48')))
    try:
        timeline = video.Timeline(source, factor=2)
        sink = video.VideoSink(tmp_path / 'o.mp4', source, timeline, video.EncodeOptions())

        class FullDisk:
            def encode(self, _frame):
                raise OSError(28, 'No space left on device')

        sink.stream = FullDisk()
        with pytest.raises(UsageError, match=r'o.mp4: cannot write the video \(.*No space left on device'):
            sink.write(np.zeros((48, 64, 3), np.uint8), 0)
        sink.abort()
    finally:
        source.close()
    assert not leftovers(tmp_path) and not (tmp_path / 'o.mp4').exists()


def test_threads_option_sets_torch_threads(tmp_path):
    import torch
    source = clip(tmp_path / 'in.mp4', seconds=0.2, rate=25, size='64x48')
    before = torch.get_num_threads()
    try:
        assert run('--video', source, '--out', tmp_path / 'o.mp4', '--threads', '1') == 0
        assert torch.get_num_threads() == 1
        assert run('--video', source, '--out', tmp_path / 'p.mp4', '--threads', '0') == 2
    finally:
        torch.set_num_threads(before)
