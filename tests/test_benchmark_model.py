"""benchmark_model.py: a tiny configuration runs in its own process and reports time and memory."""

import json

import pytest
import torch

from softmax_splatting.cli import benchmark_model
from softmax_splatting.main_net import MainNet


def test_reports_time_and_peak_memory(tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = tmp_path / 'm.pt'
    MainNet(pwc_weights=None).save(checkpoint, half=True)
    out = tmp_path / 'rows.json'
    assert benchmark_model.main(['--device', 'cpu', '--sizes', '64x48', '--repeats', '1', '--model', str(checkpoint),
                                 '--json', str(out)]) == 0
    rows = json.loads(out.read_text())['rows']
    assert len(rows) == 1 and rows[0]['size'] == '64x48' and rows[0]['precision'] == 'float32'
    assert rows[0]['ms'] > 0 and rows[0]['peak_mib'] >= rows[0]['above_loaded_mib'] > 0
    assert '| 64x48 | float32 |' in capsys.readouterr().out


def test_times_the_published_network_with_random_weights(tmp_path, capsys):
    out = tmp_path / 'rows.json'
    assert benchmark_model.main(['--device', 'cpu', '--sizes', '65x47', '--repeats', '1', '--architecture',
                                 'published', '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    assert report['model'] == 'published (random weights)' and report['rows'][0]['size'] == '65x47'
    assert 'the published network (random weights)' in capsys.readouterr().out


@pytest.mark.parametrize('args, message', [
    (['--model', 'classical', '--architecture', 'published'], 'a --model file brings its own'),
    (['--sizes', '64by48'], 'not a size WIDTHxHEIGHT'),
    (['--precision', 'float16'], 'float16 is measured on CUDA only'),
    (['--model', '/nonexistent.pt'], 'no such checkpoint'),
])
def test_errors(capsys, args, message):
    assert benchmark_model.main(['--device', 'cpu', *args]) == 2
    assert message in capsys.readouterr().err
