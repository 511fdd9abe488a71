"""benchmark_middlebury.py on a tiny generated dataset: JSON layout, scores on easy translations, error handling."""

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from images import texture

from softmax_splatting.cli import benchmark_middlebury

REPO = Path(__file__).resolve().parents[1]


def write_sequence(folder: Path, dx: int, dy: int, seed: int, height: int = 48, width: int = 64) -> None:
    """frame10, frame11 = frame10 moved by (dx, dy), frame10i11 = moved by half (dx, dy even), as PNG."""
    margin = 8
    big = texture(height + 2 * margin, width + 2 * margin, seed)
    folder.mkdir(parents=True)
    for name, (ox, oy) in (('frame10.png', (0, 0)), ('frame11.png', (dx, dy)), ('frame10i11.png', (dx // 2, dy // 2))):
        crop = big[margin - oy:margin - oy + height, margin - ox:margin - ox + width]
        cv2.imwrite(str(folder / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / 'middlebury'
    write_sequence(root / 'Alpha', 4, 2, seed=1)
    write_sequence(root / 'Beta', -6, 0, seed=2)
    return root


def test_main_writes_scores(dataset, tmp_path, capsys):
    out = tmp_path / 'results' / 'scores.json'
    assert benchmark_middlebury.main(['--data', str(dataset), '--model', 'classical', '--device', 'cpu',
                                      '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {'sequences', 'mean'}
    assert set(result['sequences']) == {'Alpha', 'Beta'}
    for row in list(result['sequences'].values()) + [result['mean']]:
        assert set(row) == {'psnr', 'ssim', 'ie'}
    for key in ('psnr', 'ssim', 'ie'):
        values = [row[key] for row in result['sequences'].values()]
        assert result['mean'][key] == pytest.approx(sum(values) / 2)
    # easy translations: far better than a blend of the inputs would score (~20 dB here)
    assert result['mean']['psnr'] > 30.0 and result['mean']['ssim'] > 0.9 and result['mean']['ie'] < 10.0
    printed = capsys.readouterr().out
    assert '| Alpha |' in printed and '| Beta |' in printed and 'mean' in printed and 's per pair' in printed
    assert [p.name for p in out.parent.iterdir()] == ['scores.json']  # no temporary left behind


def test_subprocess_run(dataset, tmp_path):
    out = tmp_path / 'scores.json'
    completed = subprocess.run([sys.executable, str(REPO / 'benchmark_middlebury.py'), '--data', str(dataset),
                                '--model', 'classical', '--json', str(out)],
                               capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert '| Alpha |' in completed.stdout
    assert math.isfinite(json.loads(out.read_text())['mean']['psnr'])


def run_failing(argv, capsys):
    code = benchmark_middlebury.main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err
    return err


def test_missing_data_folder(tmp_path, capsys):
    err = run_failing(['--data', str(tmp_path / 'absent'), '--model', 'classical'], capsys)
    assert 'absent' in err and 'vision.middlebury.edu/flow' in err and 'nothing is downloaded' in err


def test_empty_data_folder(tmp_path, capsys):
    err = run_failing(['--data', str(tmp_path), '--model', 'classical'], capsys)
    assert 'no sequence folders' in err


def test_missing_frame(dataset, capsys):
    (dataset / 'Beta' / 'frame10i11.png').unlink()
    err = run_failing(['--data', str(dataset), '--model', 'classical'], capsys)
    assert 'Beta' in err and 'frame10i11.png' in err


def test_frames_of_different_sizes(dataset, capsys):
    image = cv2.imread(str(dataset / 'Alpha' / 'frame11.png'))
    cv2.imwrite(str(dataset / 'Alpha' / 'frame11.png'), image[:-2])
    err = run_failing(['--data', str(dataset), '--model', 'classical'], capsys)
    assert 'Alpha' in err and 'differ in size' in err


def test_unusable_model(dataset, tmp_path, capsys):
    err = run_failing(['--data', str(dataset), '--model', str(tmp_path / 'missing.pt')], capsys)
    assert 'missing.pt' in err


def test_unreadable_frame(dataset, capsys):
    (dataset / 'Alpha' / 'frame10.png').write_bytes(b'not a png')
    err = run_failing(['--data', str(dataset), '--model', 'classical'], capsys)
    assert 'frame10.png' in err


def test_subprocess_error_has_no_traceback(tmp_path):
    completed = subprocess.run([sys.executable, str(REPO / 'benchmark_middlebury.py'), '--data',
                                str(tmp_path / 'absent'), '--model', 'classical'],
                               capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert completed.returncode == 2
    assert 'Traceback' not in completed.stderr and 'vision.middlebury.edu/flow' in completed.stderr


def test_help_documents_every_option():
    text = benchmark_middlebury.build_parser().format_help()
    for option in ('--data', '--model', '--device', '--json', '--fp16'):
        assert option in text
