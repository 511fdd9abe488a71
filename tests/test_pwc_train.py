"""PWC-Net training (cli/train_flow.py) and its benchmark (cli/benchmark_flow.py): the network learns (overfitting one batch), the command line trains, saves,
resumes the same run and reports bad input in one line; the benchmark runs and writes its JSON."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from softmax_splatting.cli import benchmark_flow as benchmark, train_flow as train
from softmax_splatting.pwc import PWCNet, endpoint_error
from softmax_splatting.synthetic_flow import SyntheticFlow

FAST = ['--batch-size', '1', '--crop', '64x64', '--workers', '0', '--textures', 'none', '--lr', '3e-4']


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
                   '--resume', '--init', '--seed', '--workers', '--device', '--threads', '--save-every'):
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
    assert train.main(['--crop', '65x64']) == 2
    assert 'multiples of 64' in capsys.readouterr().err


def test_benchmark_runs_and_writes_json(tmp_path, capsys):
    path = tmp_path / 'bench.json'
    assert benchmark.main(['--device', 'cpu', '--sizes', '70x60', '--repeats', '1', '--json', str(path)]) == 0
    out = capsys.readouterr().out
    assert '| cpu | torch | 70x60 | 1 |' in out
    rows = json.loads(path.read_text())['rows']
    assert rows[0]['backend'] == 'torch' and rows[0]['estimate_ms'] > 0
    assert benchmark.main(['--sizes', '70by60']) == 2 and 'WIDTHxHEIGHT' in capsys.readouterr().err


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
    args = train.build_parser().parse_args(['--data', f'chairs:{root}', '--crop', '64x64'])
    dataset, length = train.build_dataset(args)
    assert length == 3 and dataset[(0, 0)]['one'].shape == (3, 64, 64)
    args = train.build_parser().parse_args(['--data', f'chairs:{root}', '--crop', '128x128'])
    with pytest.raises(train.UsageError, match='larger than the FlyingChairs image'):
        train.build_dataset(args)


@pytest.mark.parametrize('number, status', [('SIGINT', 130), ('SIGTERM', 143)])
def test_a_signal_saves_the_current_step_and_exits(tmp_path, number, status):
    """The loop PWC-Net training shares with MainNet's (training.py): a real signal saves the step reached, prints
    one line, exits 128 + the signal, and --resume continues from there."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / 'run'
    command = [sys.executable, '-m', 'softmax_splatting.cli.train_flow', '--out', str(out), '--steps', '100000',
               '--save-every', '1', '--device', 'cpu', '--threads', '1', *FAST[:FAST.index('--workers')],
               '--workers', '1', '--textures', 'none']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True, cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out / 'checkpoint.pt').is_file():
        time.sleep(0.2)
    if number == 'SIGTERM':
        os.killpg(process.pid, signal.SIGTERM)  # the data-loading worker gets it too and must not die first
    else:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == status, err[-2000:]
    last = [line for line in err.splitlines() if line.strip() and '\r' not in line and 'it_s' not in line][-1]
    assert last.startswith(f'{number}: stopped at step ') and '--resume' in last and 'Traceback' not in err
    step = torch.load(out / 'checkpoint.pt', weights_only=True)['step']
    assert f'step {step},' in last and not (out / 'network-final.pytorch').exists()
    resumed = command[:command.index('--steps') + 1] + [str(step + 1)] + command[command.index('--steps') + 2:]
    done = subprocess.run(resumed + ['--resume'], capture_output=True, text=True, env=env, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.load(out / 'checkpoint.pt', weights_only=True)['step'] == step + 1
    assert (out / 'network-final.pytorch').is_file() and not list(out.glob('.*'))


def test_resume_keeps_the_runs_rate_unless_lr_is_given(tmp_path, capsys):
    out = tmp_path / 'run'
    plain = FAST[:FAST.index('--lr')] + FAST[FAST.index('--lr') + 2:] + ['--out', str(out)]

    def rate():
        state = torch.load(out / train.CHECKPOINT, weights_only=True)
        return state['optimizer']['param_groups'][0]['lr'], state['args']['lr']

    assert train.main(plain + ['--steps', '1', '--lr', '3e-4']) == 0
    assert train.main(plain + ['--steps', '2', '--resume']) == 0
    assert rate() == (3e-4, 3e-4) and 'replaces' not in capsys.readouterr().err
    assert train.main(plain + ['--steps', '3', '--resume', '--lr', '5e-5']) == 0
    assert rate() == (5e-5, 5e-5)
    assert "note: --lr 5e-05 replaces the resumed run's 0.0003 from step 2 on" in capsys.readouterr().err
    fresh = tmp_path / 'fresh'
    assert train.main(plain[:-1] + [str(fresh), '--steps', '1']) == 0
    assert torch.load(fresh / train.CHECKPOINT, weights_only=True)['args']['lr'] == train.DEFAULT_LR


def test_divergence_stops_without_saving_non_finite_weights(tmp_path, capsys):
    out = tmp_path / 'run'
    assert train.main(FAST + ['--lr', '1e30', '--steps', '6', '--save-every', '1', '--out', str(out)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith('error: training diverged at step '), line
    assert not (out / train.FINAL_WEIGHTS).exists()
    if (out / train.CHECKPOINT).exists():  # a first step can still leave finite (if useless) weights
        state = torch.load(out / train.CHECKPOINT, weights_only=True)
        assert f'{out / train.CHECKPOINT} (step {state["step"]}) is the last good checkpoint' in line
        assert all(torch.isfinite(v).all() for v in state['model'].values() if v.is_floating_point())
    else:
        assert 'no checkpoint was saved' in line


def test_temporaries_of_a_killed_save_are_removed(tmp_path, capsys):
    out = tmp_path / 'run'
    out.mkdir()
    (out / '.checkpoint.a1b2c3d4.pt').write_bytes(b'partial')  # what atomic_path leaves when the save is killed
    assert train.main(FAST + ['--steps', '1', '--out', str(out)]) == 0
    assert 'the temporary file of a save that was killed' in capsys.readouterr().err
    assert not [p for p in out.iterdir() if p.name.startswith('.')]


@pytest.mark.parametrize('workers', ['0', '2'])
def test_an_unreadable_texture_photo_is_one_line_and_exit_2(tmp_path, capsys, workers):
    from images import texture

    from softmax_splatting import frames
    photos = tmp_path / 'photos'
    frames.write_image(photos / 'a.jpg', texture(96, 96, 1))
    (photos / 'b.jpg').write_bytes((photos / 'a.jpg').read_bytes()[:-50])  # truncated
    argv = [a for a in FAST if a not in ('--textures', 'none', '--workers', '0')]
    assert train.main(argv + ['--textures', str(photos), '--workers', workers, '--steps', '4', '--batch-size', '2',
                              '--out', str(tmp_path / 'run')]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f'error: {photos / "b.jpg"}: truncated JPEG file (it ends before its ' \
                                           f'end-of-image marker)' and 'Traceback' not in err, err[-2000:]
