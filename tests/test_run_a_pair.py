"""run_a_pair.py end to end: pairs and videos, the classical model and a MainNet checkpoint, every error case."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from images import texture

from softmax_splatting import frames
from softmax_splatting.cli import interpolate as run_a_pair
from softmax_splatting.main_net import MainNet

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def frame_pair(tmp_path):
    image = texture(48, 64)
    one, two = tmp_path / 'one.png', tmp_path / 'two.png'
    frames.write_image(one, image)
    frames.write_image(two, np.roll(image, 2, axis=1))
    return one, two


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('ckpt') / 'random.pt'
    MainNet(pwc_weights=None).save(path, half=True)
    return path


def run(*args):
    return run_a_pair.main([str(a) for a in args])


def test_pair_with_classical_model(tmp_path, frame_pair, capsys):
    one, two = frame_pair
    out = tmp_path / 'mid.png'
    assert run('--one', one, '--two', two, '--out', out, '--model', 'classical') == 0
    result = frames.read_image(out)
    assert result.shape == (48, 64, 3)
    # the middle of a 2-pixel shift is a 1-pixel shift: closer to it than to either input
    target = np.roll(texture(48, 64), 1, axis=1).astype(float)
    error = np.abs(result.astype(float) - target)[:, 4:-4].mean()
    assert error < np.abs(frames.read_image(one).astype(float) - target)[:, 4:-4].mean()


def test_several_times_give_several_outputs(tmp_path, frame_pair):
    one, two = frame_pair
    out = tmp_path / 'mid.png'
    assert run('--one', one, '--two', two, '--out', out, '--model', 'classical', '--time', '0', '0.5', '1') == 0
    names = sorted(p.name for p in tmp_path.glob('mid-t*.png'))
    assert names == ['mid-t0.5.png', 'mid-t0.png', 'mid-t1.png']
    assert np.array_equal(frames.read_image(tmp_path / 'mid-t0.png'), frames.read_image(one))


def test_pair_with_a_mainnet_checkpoint(tmp_path, frame_pair, checkpoint):
    one, two = frame_pair
    out = tmp_path / 'net.png'
    assert run('--one', one, '--two', two, '--out', out, '--model', checkpoint) == 0
    assert frames.read_image(out).shape == (48, 64, 3)


def test_default_model_without_weights_falls_back_with_a_notice(tmp_path, frame_pair, monkeypatch, capsys):
    from softmax_splatting import interpolator
    monkeypatch.setattr(interpolator, 'DEFAULT_CHECKPOINT', tmp_path / 'weights' / 'softsplat.pt')
    one, two = frame_pair
    assert run('--one', one, '--two', two, '--out', tmp_path / 'o.png') == 0
    assert 'classical' in capsys.readouterr().err


@pytest.mark.parametrize('case, message', [
    ('missing', 'no such image file'),
    ('unreadable', 'not a readable image'),
    ('sizes', 'differ in size'),
    ('time', r'--time values must lie in \[0, 1\]'),
    ('duplicate-time', r'--time 0.5 and 0.5 would both be written to .*never-t0.5.png; give each time once'),
    ('same-name-time', r'--time 0.1234567 and 0.12345671 would both be written'),
    ('checkpoint', 'cannot be read as a PyTorch checkpoint'),
    ('missing-checkpoint', 'no such checkpoint file'),
    ('suffix', 'use an image suffix'),
    ('fp16', '--fp16 applies to a trained model on CUDA'),
    ('before-size', r'--before .*small.png is 32x32; the pair is 64x48'),
    ('before-linear', '--before gives quadratic motion; --motion linear would not use it'),
    ('quadratic-baseline', '--motion quadratic needs an interpolator that computes flow'),
    ('after-baseline', '--before/--after give quadratic motion, which --model average does not have'),
    ('before-video', '--before applies to a pair'),
    ('out-is-folder', 'is a folder; give an image file name'),
    ('parent-is-file', 'is not a folder'),
    ('unwritable', 'cannot write in /proc'),
    ('one-is-folder', 'is a folder, not an image file'),
    ('checkpoint-text', r'cannot be read as a PyTorch checkpoint \(not a checkpoint file at all\)'),
])
def test_pair_errors(tmp_path, frame_pair, capsys, case, message):
    one, two = frame_pair
    out = tmp_path / 'never.png'
    args = ['--one', one, '--two', two, '--out', out, '--model', 'classical']
    if case == 'missing':
        args[1] = tmp_path / 'absent.png'
    elif case == 'unreadable':
        (tmp_path / 'bad.png').write_text('not an image')
        args[1] = tmp_path / 'bad.png'
    elif case == 'sizes':
        frames.write_image(tmp_path / 'small.png', texture(32, 32))
        args[3] = tmp_path / 'small.png'
    elif case == 'time':
        args += ['--time', '1.5']
    elif case == 'duplicate-time':
        args += ['--time', '0.25', '0.5', '0.5']
    elif case == 'same-name-time':
        args += ['--time', '0.1234567', '0.12345671']
    elif case == 'checkpoint':
        (tmp_path / 'broken.pt').write_bytes(b'garbage')
        args[7] = tmp_path / 'broken.pt'
    elif case == 'missing-checkpoint':
        args[7] = tmp_path / 'absent.pt'
    elif case == 'suffix':
        out = tmp_path / 'never.txt'
        args[5] = out
    elif case == 'fp16':
        args += ['--fp16', '--device', 'cpu']
    elif case == 'before-size':
        frames.write_image(tmp_path / 'small.png', texture(32, 32))
        args += ['--before', tmp_path / 'small.png']
    elif case == 'before-linear':
        args += ['--before', one, '--motion', 'linear']
    elif case == 'quadratic-baseline':
        args[7] = 'dis-blend'
        args += ['--motion', 'quadratic']
    elif case == 'after-baseline':
        args[7] = 'average'
        args += ['--after', two]
    elif case == 'before-video':
        args += ['--video', tmp_path / 'clip.mp4', '--before', one]
    elif case == 'out-is-folder':
        (tmp_path / 'folder.png').mkdir()
        args[5] = tmp_path / 'folder.png'
    elif case == 'parent-is-file':
        (tmp_path / 'file').write_text('x')
        args[5] = tmp_path / 'file' / 'mid.png'
    elif case == 'unwritable':
        args[5] = '/proc/mid.png'
    elif case == 'one-is-folder':
        (tmp_path / 'folder').mkdir()
        args[1] = tmp_path / 'folder'
    elif case == 'checkpoint-text':
        (tmp_path / 'notes.pt').write_text('some notes, not weights')
        args[7] = tmp_path / 'notes.pt'
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and len(err.strip().splitlines()) == 1
    assert __import__('re').search(message, err), err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


@pytest.mark.parametrize('target', ['one', 'two', 'same-through-dot', 'time-list'])
def test_an_input_is_never_overwritten(tmp_path, frame_pair, capsys, monkeypatch, target):
    one, two = frame_pair
    before = {p: p.read_bytes() for p in (one, two)}
    args = ['--one', one, '--two', two, '--model', 'classical']
    if target == 'one':
        args += ['--out', one]
    elif target == 'two':
        args += ['--out', two]
    elif target == 'same-through-dot':
        monkeypatch.chdir(tmp_path)
        args += ['--out', './one.png']
    else:  # with several times the outputs are x-t0.25.png and x-t0.5.png, and the second is an input
        frames.write_image(tmp_path / 'x-t0.5.png', texture(48, 64))
        args = ['--one', tmp_path / 'x-t0.5.png', '--two', two, '--model', 'classical', '--out', tmp_path / 'x.png',
                '--time', '0.25', '0.5']
        before[tmp_path / 'x-t0.5.png'] = (tmp_path / 'x-t0.5.png').read_bytes()
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert 'is an input frame' in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / 'x-t0.25.png').exists()


def test_errors_come_before_the_interpolator_notice_and_any_work(tmp_path, frame_pair, capsys):
    one, two = frame_pair
    (tmp_path / 'taken').mkdir()
    assert run('--one', one, '--two', two, '--out', tmp_path / 'taken') == 2  # default model: the classical notice
    err = capsys.readouterr().err
    assert err.startswith('error: ') and len(err.strip().splitlines()) == 1, err


def test_a_full_disk_is_reported_as_such(tmp_path, frame_pair, capsys, monkeypatch):
    one, two = frame_pair

    def full(self, data):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(Path, 'write_bytes', full)
    assert run('--one', one, '--two', two, '--model', 'classical', '--out', tmp_path / 'mid.png') == 2
    err = capsys.readouterr().err
    assert 'mid.png: cannot write (No space left on device)' in err and 'suffix' not in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.') or p.name == 'mid.png']


def test_pair_with_neighbours_moves_along_the_quadratic_path(tmp_path):
    """An accelerating pan, x(t) = 3 t^2 / 4 pixels rounded at t = -2, 0, 1, 2, 4 (3, 0, 1, 3, 12): the pair is
    t = 0 and 2, the truth t = 1. With --before/--after the middle frame lands where the motion puts it, closer
    than the straight-line guess (1.5 pixels)."""
    wide = texture(96, 160, seed=4)
    offsets = {'before': 3, 'one': 0, 'truth': 1, 'two': 3, 'after': 12}
    paths = {}
    for name, x in offsets.items():
        paths[name] = tmp_path / f'{name}.png'
        frames.write_image(paths[name], np.ascontiguousarray(wide[:, 16 + x:16 + x + 128]))
    common = ['--one', paths['one'], '--two', paths['two'], '--model', 'classical']
    assert run(*common, '--out', tmp_path / 'linear.png') == 0
    assert run(*common, '--before', paths['before'], '--after', paths['after'], '--out', tmp_path / 'quad.png') == 0
    truth = frames.read_image(paths['truth']).astype(float)[8:-8, 16:-16]
    error = {name: np.abs(frames.read_image(tmp_path / f'{name}.png').astype(float)[8:-8, 16:-16] - truth).mean()
             for name in ('linear', 'quad')}
    assert error['quad'] < 0.6 * error['linear'], error


def test_command_line_has_no_traceback_and_documents_options(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / 'run_a_pair.py'), '--one', str(tmp_path / 'nope.png'),
                             '--model', 'classical'], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr and 'no such image file' in result.stderr
    help_text = subprocess.run([sys.executable, str(REPO / 'run_a_pair.py'), '--help'], capture_output=True,
                               text=True).stdout
    for option in ('--one', '--two', '--out', '--time', '--model', '--device', '--fp16', '--video', '--factor',
                   '--fps', '--input-fps', '--scene-threshold', '--codec', '--crf', '--pix-fmt', '--threads',
                   '--motion', '--before', '--after'):
        assert option in help_text
