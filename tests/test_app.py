"""The page's logic without a browser (app/jobs.py, app/preview.py, cli/app.py): a request is the command line it
stands for, its results are the command line's, its errors the command line's lines, Cancel leaves nothing, and the
app listens on the loopback address unless told otherwise. tests/test_app_browser.py drives the page itself."""

import logging
import socket
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from images import texture
from test_video import clip, info

from softmax_splatting import frames
from softmax_splatting.app import jobs, preview
from softmax_splatting.cli import app as app_cli
from softmax_splatting.cli import interpolate
from softmax_splatting.errors import UsageError
from softmax_splatting.interpolator import DEFAULT_CHECKPOINT


@pytest.fixture
def board(tmp_path):
    board = jobs.JobBoard(tmp_path / 'work')
    yield board
    board.close()


def finish(job, timeout=240):
    assert job.wait(timeout), job.status()
    return job


def moving_pair(tmp_path, shift=4):
    scene = texture(80, 120, seed=3)
    one, two = tmp_path / 'a.png', tmp_path / 'b.png'
    frames.write_image(one, scene[8:72, 8:104])
    frames.write_image(two, scene[8:72, 8 + shift:104 + shift])
    return one, two


# ------------------------------------------------------------------------------------------ requests -----------

def test_dropped_files_are_a_video_or_two_images_in_name_order(tmp_path):
    assert jobs.classify(['x/clip.mkv']) == ('video', [Path('x/clip.mkv')])
    assert jobs.classify(['f10.png', 'f9.png'])[1] == [Path('f9.png'), Path('f10.png')]
    for paths, words in ((['a.png'], 'one image'), (['a.mp4', 'b.png'], '2 files dropped'), ([], 'drop a video'),
                         (['a.png', 'b.png', 'c.png'], '3 files')):
        with pytest.raises(UsageError, match=words):
            jobs.classify(paths)


def test_settings_become_the_command_line_and_the_tool_parses_them():
    settings = jobs.Settings(model='classical', rate='fps', fps='59.94', scene_threshold=0.5)
    arguments = jobs.video_arguments(Path('in.mov'), Path('out.mp4'), settings)
    args = interpolate.build_parser().parse_args(arguments)
    interpolate.check_options(args)
    assert (args.video, args.out, args.fps, args.factor, args.scene_threshold) == (['in.mov'], 'out.mp4', '59.94',
                                                                                  None, 0.5)
    slow = interpolate.build_parser().parse_args(jobs.video_arguments(
        Path('in.mov'), Path('o.mp4'), jobs.Settings(rate='slow motion', slow_motion=8, device='cpu')))
    assert (slow.slow_motion, slow.device) == (8, 'cpu')
    pair = interpolate.build_parser().parse_args(jobs.pair_arguments(Path('a.png'), Path('b.png'), Path('o.png'),
                                                                     jobs.Settings(factor=4)))
    assert pair.time == [0.25, 0.5, 0.75] and (pair.one, pair.two) == ('a.png', 'b.png')
    with pytest.raises(UsageError, match='two images take the factor'):
        jobs.pair_arguments(Path('a.png'), Path('b.png'), Path('o.png'), jobs.Settings(rate='fps'))
    shown = jobs.shown_command(arguments, {'in.mov': 'holiday clip.mov'})
    assert shown.startswith("softsplat-interpolate --video 'holiday clip.mov' --out out.mp4 --fps 59.94")


def test_a_request_refused_on_its_face_starts_nothing_and_makes_no_folder(tmp_path, board):
    one, two = moving_pair(tmp_path)
    for paths, settings in (([one, two], jobs.Settings(rate='slow motion')), ([one, two], jobs.Settings(factor=1)),
                            ([one], jobs.Settings()), ([tmp_path / 'c.mp4'], jobs.Settings(rate='speed'))):
        with pytest.raises(UsageError):
            board.start('s', [str(p) for p in paths], settings)
    assert board.job('s') is None and not (tmp_path / 'work' / 'jobs').exists()


def test_models_offered_are_the_classical_one_and_the_checkpoints_found(tmp_path, monkeypatch):
    weights = tmp_path / 'weights'
    weights.mkdir()
    for name in ('softsplat.pt', 'network-lf.pytorch', 'notes.txt', '.hidden.pt', 'run10.pt', 'run9.pt'):
        (weights / name).write_bytes(b'x')
    monkeypatch.setattr(jobs, 'published_candidates', lambda name: [weights / f'network-{name}.pytorch',
                                                                    tmp_path / 'hub' / f'softsplat-{name}'])
    (tmp_path / 'hub').mkdir()
    (tmp_path / 'hub' / 'softsplat-l1').write_bytes(b'x')
    choices = jobs.model_choices(weights, extra=str(tmp_path / 'mine.pt'))
    values = [value for _, value in choices]
    assert values[:2] == ['classical', str(tmp_path / 'mine.pt')]
    assert [Path(v).name for v in values[2:]] == ['network-lf.pytorch', 'run9.pt', 'run10.pt', 'softsplat.pt',
                                                  'softsplat-l1']
    labels = dict((value, label) for label, value in choices)
    assert 'published' in labels[str(weights / 'network-lf.pytorch')]
    assert 'published' in labels[str(tmp_path / 'hub' / 'softsplat-l1')]
    (tmp_path / 'hub' / 'softsplat-l1').unlink()
    assert jobs.model_choices(tmp_path / 'absent') == [('classical (training-free)', 'classical')]


# ------------------------------------------------------------------------------------------ jobs ---------------

def test_a_video_job_writes_what_the_command_line_writes_with_its_audio(tmp_path, board):
    source = clip(tmp_path / 'clip.mp4', seconds=1, rate=12, size='96x64', audio='stereo')
    job = finish(board.start('s', [str(source)], jobs.Settings(factor=3), {str(source): 'clip.mp4'}))
    assert job.state == 'done', job.message
    assert job.message == 'wrote clip-x3.mp4: 12 frames in, 34 out at 36 fps'
    assert job.outputs == [job.folder / 'clip-x3.mp4'] and job.total == 12 and job.done == 12
    interpolate.main(['--video', str(source), '--out', str(tmp_path / 'cli.mp4'), '--factor', '3', '--model',
                      'classical'])
    page, cli = info(job.outputs[0]), info(tmp_path / 'cli.mp4')
    assert page['frames'] == cli['frames'] == 34 and page['audio'] == cli['audio'] == [('aac', 2, 44100)]
    assert job.command() == ('softsplat-interpolate --video clip.mp4 --out clip-x3.mp4 --factor 3 --model classical '
                             '--scene-threshold 0.36')


def test_the_tools_notices_follow_the_outcome(tmp_path, board):
    source = clip(tmp_path / 'clip.mp4', seconds=1, rate=12, size='96x64', audio='stereo')
    job = finish(board.start('s', [str(source)], jobs.Settings(rate='slow motion', slow_motion=2)))
    assert job.state == 'done' and info(job.outputs[0])['audio'] == []
    assert job.status().splitlines() == ['wrote clip-slowmo2.mp4: 12 frames in, 23 out at 12 fps, 2x slow motion',
                                         'audio: not carried over; in slow motion (2x) it would end 2x before the '
                                         'picture']


def test_a_pair_job_gives_the_frames_a_cross_fade_a_loop_and_one_download(tmp_path, board):
    one, two = moving_pair(tmp_path)
    job = finish(board.start('s', [str(two), str(one)], jobs.Settings(factor=4)))
    assert job.state == 'done', job.message
    assert [p.name for p in job.outputs] == [f'a-interpolated-t{t}.png' for t in (0.25, 0.5, 0.75)]
    assert job.message.startswith('wrote 3 frames between the two images, a-interpolated-t0.25.png')
    assert job.extras['middle'] == job.outputs[1] and job.middle_time == 0.5
    with zipfile.ZipFile(job.extras['download']) as bundle:
        assert sorted(bundle.namelist()) == sorted(p.name for p in job.outputs)
    loop = info(job.extras['loop'])
    assert loop['frames'] == 8 and loop['codec'] == 'h264'  # a, 3 frames, b, and the 3 back
    fade = frames.read_image(job.extras['cross_fade']).astype(int)
    mean = (frames.read_image(one).astype(int) + frames.read_image(two)) / 2
    assert np.abs(fade - mean).max() <= 1
    single = finish(board.start('s', [str(one), str(two)], jobs.Settings(factor=2)))
    assert single.extras['download'] == single.outputs[0] and single.message == 'wrote a-interpolated.png'
    assert not job.folder.exists()  # the session's new job replaced the last one, files and all


@pytest.mark.parametrize('case', ['unreadable video', 'sizes differ', 'bad fps', 'missing model'])
def test_a_refused_request_gives_the_command_lines_line_and_leaves_nothing(tmp_path, board, capsys, case):
    one, two = moving_pair(tmp_path)
    settings = jobs.Settings()
    if case == 'unreadable video':
        (tmp_path / 'clip.mp4').write_text('not a video')
        paths, cli = [tmp_path / 'clip.mp4'], ['--video', tmp_path / 'clip.mp4', '--out', tmp_path / 'o.mp4']
    elif case == 'sizes differ':
        frames.write_image(two, texture(40, 40))
        paths, cli = [one, two], ['--one', one, '--two', two, '--out', tmp_path / 'o.png']
    elif case == 'bad fps':
        source = clip(tmp_path / 'clip.mp4')
        settings = jobs.Settings(rate='fps', fps='fast')
        paths, cli = [source], ['--video', source, '--out', tmp_path / 'o.mp4', '--fps', 'fast']
    else:
        settings = jobs.Settings(model=str(tmp_path / 'gone.pt'))
        paths, cli = [one, two], ['--one', one, '--two', two, '--out', tmp_path / 'o.png', '--model',
                                  tmp_path / 'gone.pt']
    job = finish(board.start('s', [str(p) for p in paths], settings))
    assert job.state == 'failed' and not job.folder.exists() and job.outputs == []
    assert interpolate.main([str(a) for a in cli]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    # uploads are named as the user knows them; a model file is the user's own path on this machine
    expected = line if case == 'missing model' else line.replace(f'{tmp_path}/', '')
    assert job.message == expected, (job.message, line)


def test_cancel_stops_a_conversion_between_steps_and_removes_its_folder(tmp_path, board):
    source = clip(tmp_path / 'long.mp4', seconds=20, rate=25, size='320x240')
    job = board.start('s', [str(source)], jobs.Settings(factor=8))
    deadline = time.monotonic() + 120
    while job.done < 3 and time.monotonic() < deadline and not job.finished:
        time.sleep(0.05)
    assert job.total == 500 and 'of 500 frames' in job.status() and 'left' in job.status()
    assert board.cancel('s') is True
    finish(job, 60)
    assert job.state == 'cancelled' and job.message == 'cancelled; nothing was kept'
    assert job.done < 500 and not job.folder.exists()
    assert not any((tmp_path / 'work' / 'jobs').iterdir())
    assert board.cancel('s') is False  # nothing runs any more


def test_closing_the_board_cancels_every_job_and_removes_the_work_folder(tmp_path):
    board = jobs.JobBoard(tmp_path / 'work')
    source = clip(tmp_path / 'long.mp4', seconds=20, rate=25, size='320x240')
    running = [board.start(session, [str(source)], jobs.Settings(factor=8)) for session in ('a', 'b')]
    while not all(job.done for job in running):
        time.sleep(0.05)
    assert board.running() == 2
    assert board.close() == 2
    assert all(job.state == 'cancelled' for job in running) and not (tmp_path / 'work').exists()


def test_a_model_is_loaded_once_for_jobs_that_share_it(tmp_path, board, monkeypatch):
    one, two = moving_pair(tmp_path)
    loads = []
    real = interpolate.load_model
    monkeypatch.setattr(interpolate, 'load_model', lambda args, device: loads.append(args.model) or
                        real(args, device))
    mainnet = str(DEFAULT_CHECKPOINT)  # the shipped MainNet, as the page offers it
    for model in ('classical', 'classical', mainnet, mainnet, 'classical'):
        job = finish(board.start('s', [str(one), str(two)], jobs.Settings(model=model)))
        assert job.state == 'done', job.message
        assert frames.read_image(job.outputs[0]).shape == (64, 96, 3)
    assert loads == ['classical', mainnet, 'classical']


def test_time_left_is_estimated_from_the_frames_done(tmp_path, monkeypatch):
    job = jobs.Job('video', [tmp_path / 'clip.mp4'], jobs.Settings(), tmp_path / 'job', jobs.ModelCache(),
                   {str(tmp_path / 'clip.mp4'): 'clip.mp4'})
    clock = iter([100.0, 130.0])
    monkeypatch.setattr(jobs.time, 'monotonic', lambda: next(clock))
    job.total = 100
    assert job.status() == 'loading the model and the first frames'
    job.update(1)  # the clock starts at the first frame: 100 s
    job.update(24)
    assert job.status() == 'converting clip.mp4: 25 of 100 frames, 1:30 left'  # 30 s for 25, 75 to go


# ------------------------------------------------------------------------------------------ previews -----------

def test_browser_copy_of_a_matroska_input_plays_in_browsers_frame_for_frame(tmp_path):
    mkv = clip(tmp_path / 'in.mkv', seconds=1, rate=10, extra=('-c:v', 'mpeg4'))
    assert not preview.browser_playable(mkv) and preview.browser_playable(clip(tmp_path / 'ok.mp4'))
    copy = preview.browser_copy(mkv, tmp_path / 'copy.mp4')
    assert preview.browser_playable(copy)
    assert info(copy)['frames'] == info(mkv)['frames'] == 10 and info(copy)['audio'] == []
    (tmp_path / 'bad.mkv').write_text('no')
    assert preview.browser_copy(tmp_path / 'bad.mkv', tmp_path / 'x.mp4') is None
    assert not (tmp_path / 'x.mp4').exists()


# ------------------------------------------------------------------------------------------ the app's command ---

def test_the_port_in_use_and_bad_addresses_are_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f'--port {port}: 127.0.0.1:{port} is in use'):
            app_cli.check_address('127.0.0.1', port)
    assert app_cli.check_address('127.0.0.1', 0) > 0
    with pytest.raises(UsageError, match='not an IP address'):
        app_cli.check_address('my-laptop', 7860)
    with pytest.raises(UsageError, match='cannot listen on 192.0.2.1'):
        app_cli.check_address('192.0.2.1', 0)  # TEST-NET-1: no interface of this machine has it
    with pytest.raises(UsageError, match='from 0 to 65535'):
        app_cli.check_address('127.0.0.1', 70000)


def test_the_app_listens_on_loopback_unless_told():
    parser = app_cli.build_parser()
    assert parser.parse_args([]).listen is None
    assert parser.parse_args(['--listen']).listen == '0.0.0.0'
    assert parser.parse_args(['--listen', '10.1.2.3']).listen == '10.1.2.3'


def test_missing_gradio_and_a_missing_model_are_one_line_before_anything_starts(tmp_path, monkeypatch, capsys):
    assert app_cli.main(['--model', str(tmp_path / 'none.pt'), '--port', '0']) == 2
    assert capsys.readouterr().err.strip() == f'error: --model {tmp_path / "none.pt"}: no such model file'
    real = app_cli.importlib.util.find_spec
    monkeypatch.setattr(app_cli.importlib.util, 'find_spec', lambda name: None if name == 'gradio' else real(name))
    monkeypatch.setenv('TMPDIR', str(tmp_path))
    assert app_cli.main(['--port', '0']) == 2
    assert 'the page needs Gradio: pip install -r requirements-app.txt' in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_page_builds_with_every_control(tmp_path):
    from softmax_splatting.app import page
    built = page.build(jobs.JobBoard(tmp_path / 'w'), jobs.model_choices(), 'classical', 'cpu')
    ids = {block.elem_id for block in built.blocks.values() if getattr(block, 'elem_id', None)}
    assert {'input-files', 'model', 'rate', 'factor', 'fps', 'slow-motion', 'scene-threshold', 'convert', 'cancel',
            'status', 'source', 'result', 'slider', 'loop', 'download'} <= ids
    assert 'document.addEventListener' in page.SYNC_SCRIPT



def test_only_requests_for_removed_results_are_kept_out_of_the_servers_log(tmp_path):
    removed = app_cli._RemovedFiles(tmp_path)

    def record(error):
        try:
            raise error
        except Exception:  # noqa: BLE001 - any error, as the server logs it
            return logging.LogRecord('uvicorn.error', logging.ERROR, __file__, 1, 'Exception in ASGI application',
                                     None, sys.exc_info())

    assert not removed.filter(record(RuntimeError(f'File at path {tmp_path}/jobs/0001/a.mp4 does not exist.')))
    assert removed.filter(record(RuntimeError('File at path /elsewhere/a.mp4 does not exist.')))
    assert removed.filter(record(RuntimeError('something else broke')))
    assert not removed.filter(record(FileNotFoundError(2, 'No such file', f'{tmp_path}/jobs/0001/a.mp4')))
    assert removed.filter(record(FileNotFoundError(2, 'No such file', '/elsewhere/a.mp4')))
