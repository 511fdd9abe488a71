"""pwc/train.py and pwc/benchmark.py: the network learns (overfitting one batch), the command line trains, saves,
resumes the same run and reports bad input in one line; the benchmark runs and writes its JSON."""

import json

import pytest
import torch
from torch.utils.data import default_collate

import pwc.benchmark as benchmark
import pwc.train as train
from pwc import PWCNet, endpoint_error
from pwc.synthetic import SyntheticFlow

FAST = ['--batch-size', '1', '--crop', '64', '--workers', '0', '--textures', 'none', '--lr', '3e-4']


def final_epe(net, batch):
    with torch.no_grad():
        flows = net(batch['one'].flip(1), batch['two'].flip(1), return_levels=True)
        return endpoint_error(train.flow_at_input_size(flows, (64, 64)), batch['flow']).item()


def test_overfitting_one_batch_halves_the_endpoint_error():
    torch.manual_seed(0)
    data = SyntheticFlow((64, 64), textures=None, seed=0)
    batch = default_collate([data[0]])
    net = PWCNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-4)
    before = final_epe(net, batch)
    assert before > 1.0  # the scene really moves
    after = before
    for step in range(300):  # usually done after a few dozen steps; stops once the goal is reached with margin
        train.train_step(net, optimizer, batch)
        if step % 10 == 9:
            after = final_epe(net, batch)
            if after < 0.4 * before:
                break
    assert after <= 0.5 * before, f'endpoint error {before:.3f} -> {after:.3f} after {step + 1} steps'


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        train.main(['--help'])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ('--data', '--textures', '--steps', '--batch-size', '--crop', '--lr', '--weight-decay', '--out',
                   '--resume', '--init', '--seed', '--workers', '--device', '--save-every'):
        assert option in text


def test_train_saves_loadable_weights_and_resume_continues_the_same_run(tmp_path):
    """Three steps in one go, or two and a resumed third, from the same --init weights, give the same network."""
    torch.manual_seed(1)
    start = PWCNet()
    start.save(tmp_path / 'start.pytorch')
    init = ['--init', str(tmp_path / 'start.pytorch')]
    straight, split = tmp_path / 'straight', tmp_path / 'split'
    assert train.main(FAST + init + ['--steps', '3', '--out', str(straight)]) == 0
    assert train.main(FAST + init + ['--steps', '2', '--out', str(split)]) == 0
    checkpoint = torch.load(split / train.CHECKPOINT, weights_only=True)
    assert checkpoint['step'] == 2 and 'optimizer' in checkpoint
    assert train.main(FAST + ['--steps', '3', '--out', str(split), '--resume']) == 0
    assert torch.load(split / train.CHECKPOINT, weights_only=True)['step'] == 3
    assert sorted(p.name for p in split.iterdir()) == [train.CHECKPOINT, train.FINAL_WEIGHTS]

    stored = torch.load(straight / train.FINAL_WEIGHTS, weights_only=True)
    assert all(key.startswith('module') for key in stored)  # the published layout
    one, two = PWCNet.from_file(straight / train.FINAL_WEIGHTS), PWCNet.from_file(split / train.FINAL_WEIGHTS)
    for (key, a), b in zip(one.state_dict().items(), two.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=key)
    assert not torch.equal(one.netRefiner.netMain[12].bias, start.netRefiner.netMain[12].bias)  # it trained


@pytest.mark.parametrize('args, words', [
    (['--data', 'chairs:/nonexistent/chairs'], 'no such FlyingChairs folder'),
    (['--data', 'kitti'], "--data must be 'synthetic' or 'chairs:DIR'"),
    (['--init', '/nonexistent/weights.pytorch'], 'no such PWC-Net weights file'),
    (['--resume', '/nonexistent/checkpoint.pt'], 'no such checkpoint'),
    (['--textures', '/nonexistent/photos'], 'no such folder'),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, words):
    assert train.main(FAST + ['--steps', '1', '--out', str(tmp_path / 'run')] + args) == 2
    err = capsys.readouterr().err
    assert words in err and 'Traceback' not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_crop_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as info:
        train.main(['--crop', '65x64'])
    assert info.value.code == 2
    assert 'multiples of 64' in capsys.readouterr().err


def test_benchmark_runs_and_writes_json(tmp_path, capsys):
    path = tmp_path / 'bench.json'
    assert benchmark.main(['--device', 'cpu', '--size', '70x60', '--repeats', '1', '--json', str(path)]) == 0
    out = capsys.readouterr().out
    assert '| cpu | torch | 70x60 | 1 |' in out
    rows = json.loads(path.read_text())['rows']
    assert rows[0]['backend'] == 'torch' and rows[0]['estimate_ms'] > 0
    assert benchmark.main(['--size', '70by60']) == 2


def test_draw_sampler_order_is_known_for_any_start():
    import itertools  # noqa: PLC0415
    first = list(itertools.islice(iter(train.DrawSampler(5, seed=0)), 12))
    assert sorted(index for index, _ in first[:5]) == list(range(5))  # every sample once per epoch
    assert sorted(index for index, _ in first[5:10]) == list(range(5))
    assert list(itertools.islice(iter(train.DrawSampler(5, seed=0, start=7)), 5)) == first[7:12]
    assert [draw for _, draw in first] == list(range(12))


def test_chairs_data_option(tmp_path):
    from test_pwc_data import make_chairs  # noqa: PLC0415
    root = make_chairs(tmp_path / 'release' / 'data', size=(64, 96))
    args = train.build_parser().parse_args(['--data', f'chairs:{root}', '--crop', '64'])
    dataset, length = train.build_dataset(args)
    assert length == 3 and dataset[(0, 0)]['one'].shape == (3, 64, 64)
    args = train.build_parser().parse_args(['--data', f'chairs:{root}', '--crop', '128'])
    with pytest.raises(train.UsageError, match='larger than the FlyingChairs image'):
        train.build_dataset(args)
