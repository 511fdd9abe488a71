"""softsplat-train with the released architecture: from scratch or from a published file, out as a published file."""

from __future__ import annotations

import json

import pytest
import torch
from test_train_and_test import make_dataset, train

from softmax_splatting import load_interpolator
from softmax_splatting.published import PublishedNet, is_published_layout


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp('vimeo'), h=40, w=48)


@pytest.fixture(scope='module')
def published_file(tmp_path_factory):
    """A file as the release stores it (``module`` keys), standing in for network-l1.pytorch."""
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp('release') / 'softsplat-l1'
    torch.save({k.replace('net', 'module'): v for k, v in PublishedNet().state_dict().items()}, path)
    return path


def small(*extra):
    return ['--crop', '32x32', '--steps', '2', '--lr', '1e-3', *extra]


def test_fine_tuning_a_published_file_writes_one_the_release_reads(dataset, published_file, tmp_path, capsys):
    out = tmp_path / 'run'
    assert train(dataset, out, *small('--init', published_file)) == 0
    final = torch.load(out / 'final.pt', weights_only=True)
    assert is_published_layout(final) and all(k.startswith(('netFlow.', 'netSynthesis.')) for k in final)
    start = PublishedNet.from_file(published_file).state_dict()
    assert set(final) == set(start)
    assert any(not torch.equal(final[k], start[k]) for k in start)  # it trained
    assert isinstance(load_interpolator(str(out / 'final.pt'), torch.device('cpu')), PublishedNet)
    assert isinstance(load_interpolator(str(out / 'last.pt'), torch.device('cpu')), PublishedNet)
    state = torch.load(out / 'last.pt', weights_only=True)
    assert state['config'] == {'architecture': 'published'}
    # the flow network started trained, so it was frozen for the first 10% of the steps (none of 2)
    assert 'random weights' not in capsys.readouterr().err


def test_a_new_published_network_trains_and_resumes(dataset, tmp_path, capsys):
    out = tmp_path / 'run'
    assert train(dataset, out, *small('--architecture', 'published', '--save-every', '1')) == 0
    assert 'starts from random weights' in capsys.readouterr().err
    records = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
    assert [r['step'] for r in records if 'loss' in r] == [1, 2]
    args = ['--architecture', 'published', '--resume', '--crop', '32x32', '--steps', '3', '--lr', '1e-3']
    assert train(dataset, out, *args) == 0
    records = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
    assert [r['step'] for r in records if 'loss' in r] == [1, 2, 3]
    assert is_published_layout(torch.load(out / 'final.pt', weights_only=True))


def test_resuming_without_the_architecture_says_to_repeat_it(dataset, tmp_path, capsys):
    out = tmp_path / 'run'
    assert train(dataset, out, *small('--architecture', 'published')) == 0
    capsys.readouterr()
    assert train(dataset, out, '--resume', '--crop', '32x32', '--steps', '3') == 2
    assert '--architecture published' in capsys.readouterr().err


def test_resuming_from_a_published_final_file_points_to_last_pt(dataset, tmp_path, capsys):
    out = tmp_path / 'run'
    assert train(dataset, out, *small('--architecture', 'published')) == 0
    capsys.readouterr()
    assert train(dataset, tmp_path / 'other', '--architecture', 'published', '--resume', out / 'final.pt',
                 '--crop', '32x32', '--steps', '3') == 2
    err = capsys.readouterr().err
    assert 'last.pt' in err and '--init' in err


@pytest.mark.parametrize('extra, message', [
    (['--architecture', 'published', '--flow', 'dis'], '--flow'),
    (['--architecture', 'published', '--residual'], '--residual'),
    (['--architecture', 'published', '--metric', 'brightness'], '--metric'),
    (['--architecture', 'mainnet', '--init', 'PUBLISHED'], 'published'),
])
def test_options_of_the_other_architecture_are_refused(dataset, published_file, tmp_path, capsys, extra, message):
    extra = [str(published_file) if value == 'PUBLISHED' else value for value in extra]
    assert train(dataset, tmp_path / 'run', *small(*extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith('error:') and message in err and err.count('\n') == 1
    assert not (tmp_path / 'run' / 'last.pt').exists()


def test_testing_a_published_file(dataset, published_file, capsys):
    from softmax_splatting.cli import train as cli
    assert cli.main(['--data', str(dataset), '--test', '--model', str(published_file), '--device', 'cpu']) == 0
    assert 'softsplat-l1' in capsys.readouterr().out
