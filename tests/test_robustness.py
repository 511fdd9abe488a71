"""What a second probe of the tools as a new user found (issue 30): each case ends in one ``error:`` line and exit
status 2, or in the correct result. Streams that fail, signals at start-up and in quick succession, special files,
headers that declare huge images, damaged videos, wrong configuration values, bad training triplets."""

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from test_train_and_test import make_dataset, train
from test_video import clip, ffmpeg, run

import softmax_splatting.cli
from softmax_splatting import classical, errors, files, frames, resources, video
from softmax_splatting.cli import interpolate, triplets
from softmax_splatting.errors import UsageError
from softmax_splatting.main_net import CHECKPOINT_FORMAT, MainNet, MainNetConfig

REPO = Path(__file__).resolve().parents[1]
PAIR = [sys.executable, str(REPO / 'run_a_pair.py'), '--model', 'classical', '--threads', '1']


def png_declaring(width: int, height: int) -> bytes:
    """A PNG file whose header declares ``width`` x ``height`` and whose data is a few bytes (and ends)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return frames.PNG_SIGNATURE + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b'\0' * 64)) + \
        chunk(b'IEND', b'')


# ------------------------------------------------------------------------------------ standard streams -----

def test_a_guarded_stream_records_the_first_failure_and_drops_later_writes():
    class Full:
        encoding = 'ascii'
        calls = 0

        def write(self, text):
            self.calls += 1
            raise OSError(28, 'No space left on device')

        def flush(self):
            pass

    inner = Full()
    guarded = errors.GuardedStream(inner)
    assert guarded.write('one') == 3 and guarded.write('two') == 3
    assert isinstance(guarded.failure, OSError) and inner.calls == 1
    assert not guarded.isatty()
    assert errors.GuardedStream(None).write('x') == 1  # a closed stream: nothing to write to, no failure


def test_a_guarded_stream_escapes_what_the_encoding_cannot_hold():
    import io
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding='ascii')
    guarded = errors.GuardedStream(stream)
    guarded.write('caf\u00e9 \udcff\n')
    guarded.flush()
    assert raw.getvalue() == b'caf\\xe9 \\udcff\n' and guarded.failure is None


def test_report_errors_turns_a_failed_stdout_into_status_2_with_one_line(capsys, monkeypatch):
    def body():
        print('wrote something')
        return 0

    class Broken:
        def write(self, text):
            raise BrokenPipeError(32, 'Broken pipe')

        def flush(self):
            pass

    monkeypatch.setattr(sys, 'stdout', Broken())
    assert errors.report_errors(body) == 2
    assert capsys.readouterr().err == ('error: cannot write to standard output (Broken pipe); the work itself '
                                       'finished\n')


@pytest.mark.parametrize('case', ['stdout-full', 'stdout-closed', 'stderr-full', 'stderr-closed', 'broken-pipe',
                                  'unencodable'])
def test_failing_standard_streams_after_the_output_is_written(tmp_path, case):
    """The output is written in every case; a stream that fails gives status 2 (with a line when stderr works),
    a closed one is the user's choice (status 0), and a name the terminal cannot encode is escaped."""
    out = tmp_path / ('caf\u00e9.png' if case == 'unencodable' else 'mid.png')
    command = PAIR + ['--out', str(out)]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    kwargs = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if case == 'stdout-full':
        kwargs['stdout'] = open('/dev/full', 'w')
    elif case == 'stderr-full':
        kwargs['stderr'] = open('/dev/full', 'w')
        command.remove('--model')  # the default model, the same, says so on stderr: a write that fails
        command.remove('classical')
    elif case == 'unencodable':
        env['PYTHONIOENCODING'] = 'ascii'
    if case.endswith('closed'):  # the shell's >&- and 2>&-
        descriptor = 1 if case == 'stdout-closed' else 2
        command = ['sh', '-c', f'exec "$@" {descriptor}>&-', 'sh'] + command
    if case == 'broken-pipe':
        process = subprocess.Popen(command, env=env, **kwargs)
        process.stdout.close()  # the reader went away (| head)
        err = process.stderr.read().decode()
        status = process.wait()
    else:
        done = subprocess.run(command, env=env, timeout=300, **kwargs)
        status, err = done.returncode, (done.stderr or b'').decode()
    assert out.is_file(), err
    assert 'Traceback' not in err, err
    expected = {'stdout-full': 2, 'stdout-closed': 0, 'stderr-full': 2, 'stderr-closed': 0, 'broken-pipe': 2,
                'unencodable': 0}[case]
    assert status == expected, err
    if case in ('stdout-full', 'broken-pipe'):
        assert err.splitlines()[-1].startswith('error: cannot write to standard output (')
    if case == 'unencodable':
        assert done.stdout.decode() == f'wrote {str(out).replace(chr(0xe9), chr(92) + "xe9")}\n'


def test_a_closed_descriptor_gets_the_null_device_so_no_output_file_takes_its_number():
    """With stderr closed, the next file opened would be descriptor 2, and whatever a library prints to stderr
    would go into it."""
    script = ('import os, sys; from softmax_splatting import errors; errors.report_errors(lambda: 0); '
              'handle = open(sys.argv[1], "w"); print(handle.fileno(), file=sys.stdout)')
    done = subprocess.run(['sh', '-c', 'exec "$@" 2>&-', 'sh', sys.executable, '-c', script, os.devnull],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0 and int(done.stdout) > 2, done


# ------------------------------------------------------------------------------------------------ signals -----

def test_ctrl_c_while_a_tool_imports_ends_in_one_line(monkeypatch, capsys):
    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(softmax_splatting.cli.importlib, 'import_module', interrupted)
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert softmax_splatting.cli.launch('interpolate', []) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert capsys.readouterr().err == 'interrupted while starting; nothing was done\n'


def test_the_package_and_the_launchers_import_without_pytorch():
    """What makes a signal during start-up land in the launcher's hands: PyTorch is imported by the tool."""
    done = subprocess.run([sys.executable, '-c', 'import sys, softmax_splatting.cli, run_a_pair; '
                           'print("torch" in sys.modules)'], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.strip() == 'False', done


@pytest.mark.parametrize('stop, status, line', [(signal.SIGINT, 130, 'interrupted while starting; nothing was done'),
                                                (signal.SIGTERM, 143,
                                                 'terminated (SIGTERM) while starting; nothing was done')])
def test_a_signal_during_start_up_of_the_real_command(tmp_path, stop, status, line):
    process = subprocess.Popen(PAIR + ['--out', str(tmp_path / 'mid.png')], stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, OMP_NUM_THREADS='1'))
    time.sleep(0.6)  # inside `import torch` (about 2 s here)
    process.send_signal(stop)
    err = process.communicate(timeout=120)[1]
    if (tmp_path / 'mid.png').exists():
        pytest.skip('the machine ran the whole pair within 0.6 s; nothing to interrupt')
    assert process.returncode == status and err.strip().splitlines() == [line], err


def test_sigterm_while_a_pair_writes_several_times_says_they_are_all_written(tmp_path, monkeypatch, capsys):
    written = []
    write = frames.write_image

    def write_and_signal(path, image):
        write(path, image)
        written.append(Path(path))
        if len(written) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(interpolate.frames, 'write_image', write_and_signal)
    out = tmp_path / 'mid.png'
    assert run('--out', out, '--time', '0.25', '0.75') == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == ('SIGTERM received while the outputs were written; '
                                                                'all 2 are complete')
    assert [p.name for p in written] == ['mid-t0.25.png', 'mid-t0.75.png'] and all(p.is_file() for p in written)


def test_five_quick_ctrl_c_during_a_resumed_training_stop_it_once(tmp_path):
    """The first Ctrl-C saves and stops; the next four, arriving while it does, must not cut the exit short."""
    data = make_dataset(tmp_path / 'data', train=4, test=1, h=64, w=64)
    out = tmp_path / 'run'
    command = [sys.executable, str(REPO / 'train_and_test.py'), '--data', str(data), '--out', str(out), '--steps',
               '100000', '--batch-size', '2', '--crop', '64x64', '--workers', '0', '--val-every', '0', '--metric',
               'brightness', '--flow', 'dis', '--device', 'cpu', '--threads', '1']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    for resume in ([], ['--resume']):
        process = subprocess.Popen(command + resume, stderr=subprocess.PIPE, text=True, env=env)
        log = out / 'log.jsonl'
        before = len(log.read_text().splitlines()) if log.exists() else 0
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) <= before):
            time.sleep(0.1)  # a step of this run is logged: it trains
        for _ in range(5):
            process.send_signal(signal.SIGINT)
            time.sleep(0.02)
        err = process.communicate(timeout=120)[1]
        lines = [line for line in err.replace('\r', '\n').splitlines() if line.strip() and '%|' not in line]
        assert process.returncode == 130 and 'Traceback' not in err, err
        assert lines[-1].startswith('SIGINT: stopped at step') and 'saved' in lines[-1], err
        assert files.load_checkpoint(out / 'last.pt')['step'] > 0


# ------------------------------------------------------------------------------------------- special files -----

def test_not_a_file_names_what_the_path_is(tmp_path):
    fifo = tmp_path / 'pipe.png'
    os.mkfifo(fifo)
    assert files.not_a_file(tmp_path / 'absent.png', 'image file') == 'no such image file'
    assert files.not_a_file(tmp_path, 'image file') == 'is a folder, not an image file'
    assert files.not_a_file(fifo) == 'is a named pipe (FIFO), not a regular file'
    assert files.not_a_file('/dev/zero') == 'is a character device, not a regular file'
    assert files.not_a_file(REPO / 'README.md') is None


@pytest.mark.parametrize('where', ['fifo', '/dev/zero', '/dev/null'])
def test_special_files_are_refused_by_every_reader(tmp_path, capsys, where):
    path = tmp_path / 'pipe.mp4' if where == 'fifo' else Path(where)
    if where == 'fifo':
        os.mkfifo(path)
    kind = 'named pipe (FIFO)' if where == 'fifo' else 'character device'
    assert run('--one', path, '--out', tmp_path / 'o.png') == 2
    assert f'{path}: is a {kind}, not a regular image file' in capsys.readouterr().err
    assert run('--video', path, '--out', tmp_path / 'o.mp4') == 2
    assert f'{path}: is a {kind}, not a regular file or folder' in capsys.readouterr().err
    assert interpolate.main(['--model', str(path), '--out', str(tmp_path / 'o.png')]) == 2
    assert f'{path}: is a {kind}, not a regular checkpoint file' in capsys.readouterr().err
    assert triplets.main([str(path), '--out', str(tmp_path / 'trip')]) == 2
    assert f'error: {path}: is a {kind}, not a regular file or folder' in capsys.readouterr().err
    assert not (tmp_path / 'o.png').exists() and not (tmp_path / 'trip').exists()


def test_hidden_files_in_a_frame_folder_are_not_frames(tmp_path):
    folder = tmp_path / 'frames'
    image = np.full((16, 16, 3), 90, np.uint8)
    for name in ('a.png', 'b.png', '.a.ab12cd34.png', '._b.png'):
        frames.write_image(folder / name, image)
    source = video.open_source(str(folder))
    assert [p.name for p in source.files] == ['a.png', 'b.png']
    assert not frames.is_image_file(folder / '._b.png') and frames.is_image_file(folder / 'a.png')


# ------------------------------------------------------------------------------------------------ sizes -----

@pytest.mark.parametrize('width, height', [(100000, 100000), (9000, 9000)])
def test_an_image_declaring_a_huge_size_is_refused_from_its_header(tmp_path, monkeypatch, width, height):
    path = tmp_path / 'huge.png'
    path.write_bytes(png_declaring(width, height))

    def no_decoding(*args, **kwargs):
        raise AssertionError('decoded')

    monkeypatch.setattr(frames.cv2, 'imdecode', no_decoding)
    with pytest.raises(UsageError, match='larger than this tool handles') as raised:
        frames.read_image(path)
    if width * height < 2 * 89478485:  # Pillow names sizes below its own refusal
        assert f'{width}x{height} frames' in str(raised.value)


def test_image_size_options_are_bounded(capsys):
    assert triplets.main(['x', '--out', 'y', '--size', '100000x100000']) == 2
    assert "'100000x100000' is larger than the tools handle" in capsys.readouterr().err


def test_the_input_rate_of_a_frame_folder_is_bounded(tmp_path, capsys):
    folder = tmp_path / 'frames'
    for k in range(2):
        frames.write_image(folder / f'{k}.png', np.full((16, 16, 3), 40 * k, np.uint8))
    assert run('--video', folder, '--input-fps', '1e9', '--out', tmp_path / 'o/') == 2
    assert 'error: --input-fps 1e9: the frame rate must lie from 1/1000 to 1000' in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_make_triplets_refuses_an_out_it_cannot_write(capsys):
    assert triplets.main([str(REPO / 'example_img'), '--out', '/proc/triplets']) == 2
    assert 'error: --out /proc/triplets: cannot write in /proc' in capsys.readouterr().err


def test_large_frames_do_not_keep_their_dis_objects(monkeypatch):
    monkeypatch.setattr(classical, 'DIS_MAX_PIXELS', 40 * 40)
    monkeypatch.setattr(classical, '_SOLVERS', classical._SolverPool())
    one, two = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 48, 64)
    classical.dis_flows(one, two, classical.CLASSICAL_DIS)
    assert all(not kept for kept in classical._SOLVERS._free.values())
    classical.dis_flows(one[..., :32, :32], two[..., :32, :32], classical.CLASSICAL_DIS)
    assert sum(len(kept) for kept in classical._SOLVERS._free.values()) >= 1


# ----------------------------------------------------------------------------------------------- videos -----

def test_a_video_whose_index_lists_frames_without_data(tmp_path, capsys):
    source = tmp_path / 'index.mp4'
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=25:duration=1', '-pix_fmt', 'yuv420p', '-movflags',
           '+faststart', source)
    data = source.read_bytes()
    source.write_bytes(data[:data.find(b'mdat') + 4])  # the index is whole, the frames' data is gone
    assert run('--video', source, '--out', tmp_path / 'o.mp4') == 2
    err = capsys.readouterr().err
    assert 'no frame could be decoded (its index lists 25 frames, but their data is missing)' in err, err
    assert 'Traceback' not in err and not (tmp_path / 'o.mp4').exists()


def test_damaged_data_mid_file_is_reported(tmp_path, capsys):
    source = tmp_path / 'good.mp4'
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=4', '-pix_fmt', 'yuv420p', '-c:v', 'libx264',
           '-g', '25', source)
    with av.open(str(source)) as container:
        keys = [p for p in container.demux(container.streams.video[0]) if p.is_keyframe and p.pos is not None]
        packet = keys[2]  # the key frame at 2 s
        position, size = packet.pos, packet.size
    data = bytearray(source.read_bytes())
    rng = np.random.default_rng(1)
    middle = position + size // 2
    data[middle:middle + 300] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    damaged = tmp_path / 'damaged.mp4'
    damaged.write_bytes(bytes(data))
    assert run('--video', damaged, '--out', tmp_path / 'o.mp4') == 0
    err = capsys.readouterr().err
    assert 'warning: ' in err and 'decoded from damaged data' in err and 'from 2.000 s' in err, err
    assert run('--video', source, '--out', tmp_path / 'clean.mp4') == 0
    assert 'damaged' not in capsys.readouterr().err


def test_an_audio_encoder_as_codec(tmp_path, capsys):
    source = clip(tmp_path / 'in.mp4', seconds=0.2, rate=25, size='64x48')
    assert run('--video', source, '--out', tmp_path / 'o.mp4', '--codec', 'aac') == 2
    err = capsys.readouterr().err
    assert 'error: --codec aac: an audio encoder; --codec chooses the video encoder' in err and 'Traceback' not in err


def test_mjpeg_into_mov_encodes_full_range_as_jpeg_needs(tmp_path):
    source = clip(tmp_path / 'in.mp4', seconds=0.4, rate=25, size='64x48')
    out = tmp_path / 'o.mov'
    assert run('--video', source, '--out', out, '--codec', 'mjpeg') == 0
    with av.open(str(out)) as container, av.open(str(source)) as original:
        stream = container.streams.video[0]
        assert stream.codec_context.name == 'mjpeg' and stream.codec_context.color_range == 2
        decoded = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
        first = next(original.decode(video=0)).to_ndarray(format='rgb24')
    assert len(decoded) == 19
    assert np.abs(decoded[0].astype(int) - first).mean() < 6  # the colours survive the full-range round trip


def test_settings_the_encoder_refuses_are_told_before_any_work(tmp_path, capsys):
    source = clip(tmp_path / 'in.mp4', seconds=0.4, rate=25, size='64x48')
    # an encoder that refuses at avcodec_open2: mpeg4 takes no time base beyond 16 bits
    assert run('--video', source, '--out', tmp_path / 'o.mkv', '--codec', 'mpeg4', '--fps', '65537/1000') == 2
    err = capsys.readouterr().err
    assert 'error: --codec mpeg4: the encoder refuses these settings (yuv420p at 64x48, 65.537 fps' in err, err
    assert not (tmp_path / 'o.mkv').exists() and not any(p.name.startswith('.o') for p in tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ configurations -----

@pytest.mark.parametrize('change, message', [
    ({'classical_alpha': -1.0}, 'classical_alpha must be >= 0'),
    ({'classical_coverage': 0}, 'classical_coverage must be > 0'),
    ({'alpha_init': 'x'}, 'alpha_init must be a finite number'),
    ({'residual': 1}, 'residual must be true or false'),
    ({'dis': {'patch_size': '8'}}, 'DIS setting patch_size must be a whole number >= 0'),
    ({'dis': {'patch_size': 4, 'patch_stride': 8}}, 'need 1 <= patch_stride <= patch_size'),
    ({'dis': {'variational_refinement_alpha': float('nan')}}, 'must be a finite number >= 0'),
    ({'dis': {'use_mean_normalization': 1}}, 'must be true or false'),
])
def test_checkpoint_configuration_values_are_validated(tmp_path, change, message):
    config = {**MainNetConfig(flow='dis', residual=True).__dict__, **change}
    payload = {'format': CHECKPOINT_FORMAT, 'config': config, 'state_dict': {}}
    with pytest.raises(ValueError, match='bad MainNet configuration: .*' + message.replace('(', r'\(')):
        MainNet.from_payload(payload, tmp_path / 'model.pt')


def test_a_negative_omp_num_threads_is_an_error(monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '-1')
    with pytest.raises(UsageError, match='OMP_NUM_THREADS=-1: not a thread count'):
        resources.configure_threads()
    monkeypatch.setenv('OMP_NUM_THREADS', '4,2')  # an OpenMP list: not ours to read, the default applies
    assert resources.configure_threads() == resources.available_cores()
    assert resources.configure_threads(1) == 1


# ------------------------------------------------------------------------------------------------ training -----

@pytest.mark.parametrize('workers', ['0', '2'])
def test_a_triplet_of_two_sizes_is_refused_and_leaves_no_run(tmp_path, capsys, workers):
    data = make_dataset(tmp_path / 'data', train=2, test=1)
    frames.write_image(data / 'sequences' / '00001' / '0002' / 'im2.png', np.zeros((70, 84, 3), np.uint8))
    out = tmp_path / 'run'
    assert train(data, out, '--steps', '2', '--workers', workers, '--flow', 'dis', '--metric', 'brightness') == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (f'error: {data / "sequences/00001/0002/im2.png"}: 84x70, but im1.png of '
                                            f'the triplet is 80x72; the three frames must have one size')
    assert not out.exists()  # not even tensorboard/: a rerun is not refused as another run's


def test_a_bad_triplet_met_after_some_steps_saves_them_first(tmp_path, capsys):
    data = make_dataset(tmp_path / 'data', train=4, test=1)
    frames.write_image(data / 'sequences' / '00002' / '0002' / 'im3.png', np.zeros((70, 84, 3), np.uint8))
    out = tmp_path / 'run'
    status = train(data, out, '--steps', '8', '--batch-size', '1', '--flow', 'dis', '--metric', 'brightness')
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2 and 'the three frames must have one size; stopped at step' in line, line
    step = files.load_checkpoint(out / 'last.pt')['step']
    assert 0 < step < 8 and f'stopped at step {step}, saved {out / "last.pt"}' in line


def test_a_missing_triplet_is_found_before_the_run_creates_anything(tmp_path, capsys):
    data = make_dataset(tmp_path / 'data', train=4, test=1)
    (data / 'sequences' / '00002' / '0002' / 'im3.png').unlink()
    out = tmp_path / 'run'
    assert train(data, out, '--steps', '1', '--val-every', '0') == 2
    assert 'im3.png (or .jpg) is missing' in capsys.readouterr().err
    assert not out.exists()
