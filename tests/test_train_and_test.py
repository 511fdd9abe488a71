"""train_and_test.py: data, augmentation, loss, checkpoints, exact resume, overfitting, torchrun, testing (CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import frames
from images import texture
import train_and_test as tat
from losses import laplacian_loss, laplacian_pyramid
from main_net import MainNet

REPO = Path(__file__).resolve().parents[1]


def make_dataset(root: Path, train=4, test=2, h=72, w=80, suffix='.png'):
    """A tiny Vimeo-layout dataset: each triplet is a texture moving 2 px per frame."""
    names = []
    for k in range(train + test):
        name = f'{k // 2 + 1:05d}/{k % 2 + 1:04d}'
        folder = root / 'sequences' / name
        image = texture(h, w + 8, seed=k)
        for i in range(3):
            frames.write_image(folder / f'im{i + 1}{suffix}', image[:, 2 * i:2 * i + w])
        names.append(name)
    (root / 'tri_trainlist.txt').write_text('\n'.join(names[:train]) + '\n')
    (root / 'tri_testlist.txt').write_text('\n'.join(names[train:]) + '\n')
    return root


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp('vimeo'))


def train(dataset, out, *extra):
    args = ['--data', dataset, '--out', out, '--batch-size', '2', '--crop', '64', '--workers', '0',
            '--val-every', '0', '--checkpoint-every', '0', '--device', 'cpu', '--deterministic', *extra]
    return tat.main([str(a) for a in args])


def losses(out):
    return {r['step']: r['loss'] for r in map(json.loads, (out / 'log.jsonl').read_text().splitlines())
            if 'loss' in r}


# ------------------------------------------------------------------------------------------------ loss --------

def test_laplacian_loss_is_zero_for_equal_images_and_positive_otherwise():
    a = torch.rand(2, 3, 64, 64)
    assert laplacian_loss(a, a.clone()).item() == 0
    assert laplacian_loss(a, a + 0.01).item() > 0
    assert laplacian_loss(a, torch.roll(a, 1, dims=3)).item() > laplacian_loss(a, a + 0.001).item()
    with pytest.raises(ValueError, match='same shape'):
        laplacian_loss(a, a[:, :, :32])


def test_laplacian_pyramid_reconstructs_the_image():
    a = torch.rand(1, 3, 64, 48)
    pyramid = laplacian_pyramid(a, levels=4)
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = torch.nn.functional.interpolate(image, size=band.shape[-2:], mode='bilinear',
                                                align_corners=False) + band
    torch.testing.assert_close(image, a, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------ data --------

def test_dataset_augmentation_is_a_function_of_seed_epoch_and_index(dataset):
    data = tat.TripletDataset(dataset, 'train', crop=64, augment=True, seed=3)
    a, b = data[(1, 0)], data[(1, 0)]
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert a[0].shape == (3, 64, 64)
    differs = any(not torch.equal(data[(1, 0)][0], data[(1, e)][0]) for e in range(1, 6))
    assert differs, 'augmentation never changes with the epoch'


def test_augmentation_includes_flips_and_temporal_reversal(dataset):
    plain = tat.TripletDataset(dataset, 'train', crop=None, augment=False)
    augmented = tat.TripletDataset(dataset, 'train', crop=None, augment=True)
    one, middle, two = plain[0]
    seen = set()
    for epoch in range(24):
        a, m, b = augmented[(0, epoch)]
        for name, view in (('id', lambda t: t), ('h', lambda t: t.flip(-1)), ('v', lambda t: t.flip(-2)),
                           ('hv', lambda t: t.flip(-1).flip(-2))):
            if torch.equal(m, view(middle)):
                seen.add((name, 'reversed' if torch.equal(a, view(two)) else 'forward'))
    assert {name for name, _ in seen} == {'id', 'h', 'v', 'hv'}
    assert {order for _, order in seen} == {'forward', 'reversed'}


def test_jpg_triplets_are_read(tmp_path):
    root = make_dataset(tmp_path / 'jpg', train=2, test=1, suffix='.jpg')
    one, middle, two = tat.TripletDataset(root, 'train', crop=None, augment=False)[0]
    assert one.shape == (3, 72, 80)


# -------------------------------------------------------------------------------------------- training --------

def test_few_steps_write_a_checkpoint_that_run_a_pair_loads(dataset, tmp_path):
    out = tmp_path / 'run'
    # the data-loading worker processes receive (index, epoch) pairs from the sampler
    assert train(dataset, out, '--steps', '2', '--val-every', '1', '--val-size', '1', '--workers', '2') == 0
    for name in ('final.pt', 'last.pt', 'best.pt'):
        assert (out / name).is_file()
    assert list((out / 'tensorboard').iterdir())
    records = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
    assert any('val_psnr' in r for r in records)
    import run_a_pair
    pair = dataset / 'sequences' / '00001' / '0001'
    assert run_a_pair.main(['--one', str(pair / 'im1.png'), '--two', str(pair / 'im3.png'), '--out',
                            str(tmp_path / 'mid.png'), '--model', str(out / 'final.pt')]) == 0
    assert frames.read_image(tmp_path / 'mid.png').shape == (72, 80, 3)


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(dataset, tmp_path):
    whole, split = tmp_path / 'whole', tmp_path / 'split'
    # 4 training triplets, batch 2: step 3 starts the second epoch, so resuming crosses an epoch boundary and the
    # end of the frozen-flow phase. The schedule is constant because a cosine one is planned over --steps.
    common = ('--freeze-flow-steps', '2', '--schedule', 'constant')
    assert train(dataset, whole, '--steps', '4', *common) == 0
    assert train(dataset, split, '--steps', '2', *common) == 0
    assert train(dataset, split, '--steps', '4', *common, '--resume') == 0
    expected, got = losses(whole), losses(split)
    assert set(got) == {1, 2, 3, 4}
    for step in (1, 2, 3, 4):
        assert got[step] == expected[step], (step, got[step], expected[step])
    for (key, a), b in zip(MainNet.from_file(whole / 'final.pt').state_dict().items(),
                           MainNet.from_file(split / 'final.pt').state_dict().values()):
        assert torch.equal(a, b), key


def test_overfitting_two_triplets_halves_the_loss(tmp_path):
    root = make_dataset(tmp_path / 'two', train=2, test=1, h=64, w=64)
    out = tmp_path / 'overfit'
    assert tat.main([str(a) for a in ('--data', root, '--out', out, '--batch-size', '2', '--crop', '64',
                                       '--workers', '0', '--val-every', '0', '--checkpoint-every', '0',
                                       '--device', 'cpu', '--steps', '30', '--lr', '1e-3', '--schedule',
                                       'constant', '--freeze-flow-steps', '30')]) == 0
    values = list(losses(out).values())
    first, last = values[0], np.mean(values[-5:])
    assert last < 0.5 * first, (first, last)


def test_init_from_a_pwc_file_and_a_mainnet_checkpoint(dataset, tmp_path):
    import pwc
    torch.manual_seed(5)
    flow = pwc.PWCNet()
    pwc_file = tmp_path / 'pwc.pytorch'
    torch.save({k.replace('net', 'module', 1): v for k, v in flow.state_dict().items()}, pwc_file)
    args = tat.build_parser().parse_args(['--data', str(dataset), '--init', str(pwc_file)])
    model = tat.build_model(args)
    assert torch.equal(next(iter(model.flow_net.state_dict().values())), next(iter(flow.state_dict().values())))
    MainNet(pwc_weights=None).save(tmp_path / 'main.pt')
    args = tat.build_parser().parse_args(['--data', str(dataset), '--init', str(tmp_path / 'main.pt')])
    assert isinstance(tat.build_model(args), MainNet)


def test_test_mode_prints_a_table(dataset, tmp_path, capsys):
    assert tat.main(['--data', str(dataset), '--test', '--weights', 'classical', '--json',
                     str(tmp_path / 'r.json')]) == 0
    result = json.loads((tmp_path / 'r.json').read_text())
    assert result['count'] == 2 and result['psnr'] > 25
    assert '| classical | 2 |' in capsys.readouterr().out


@pytest.mark.parametrize('extra, message', [
    (['--data', '/nonexistent'], 'no such folder'),
    (['--steps', '0'], '--steps must be at least 1'),
    (['--test'], '--test needs --weights'),
    (['--test', '--weights', '/nonexistent.pt'], 'no such checkpoint'),
    (['--init', '/nonexistent.pt'], '--init'),
    (['--resume', '/nonexistent.pt'], '--resume'),
    (['--crop', '512', '--batch-size', '2'], '--crop 512 is larger than the frames'),
    (['--batch-size', '64'], 'fewer than one batch'),
])
def test_errors(dataset, tmp_path, capsys, extra, message):
    args = ['--data', str(dataset), '--out', str(tmp_path / 'e'), '--workers', '0', '--steps', '1', '--crop', '64',
            '--device', 'cpu', '--val-every', '0', *extra]
    assert tat.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err, err


def test_refuses_to_overwrite_a_run(dataset, tmp_path, capsys):
    out = tmp_path / 'run'
    assert train(dataset, out, '--steps', '1') == 0
    assert train(dataset, out, '--steps', '2') == 2
    assert '--resume' in capsys.readouterr().err


def test_missing_triplet_file_is_reported(tmp_path, capsys):
    root = make_dataset(tmp_path / 'broken', train=2, test=1)
    (root / 'sequences' / '00001' / '0001' / 'im2.png').unlink()
    assert train(root, tmp_path / 'out', '--steps', '1') == 2
    assert 'im2.png (or .jpg) is missing' in capsys.readouterr().err


def test_torchrun_two_processes_on_cpu(dataset, tmp_path):
    out = tmp_path / 'ddp'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                             str(REPO / 'train_and_test.py'), '--data', str(dataset), '--out', str(out),
                             '--batch-size', '1', '--crop', '64', '--workers', '0', '--steps', '2',
                             '--val-every', '0', '--checkpoint-every', '1', '--device', 'cpu',
                             '--freeze-flow-steps', '1'],  # DDP is rebuilt when PWC-Net thaws
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir() if p.suffix == '.pt') == ['final.pt', 'last.pt']
    assert len(losses(out)) == 2  # one log line per step, from rank 0 only
    assert MainNet.from_file(out / 'final.pt')


@pytest.mark.parametrize('amp', [[], ['--amp']], ids=['float32', 'amp'])
def test_throughput_benchmark_runs_without_data(capsys, amp):
    assert tat.main(['--benchmark', '1', '--batch-size', '1', '--crop', '64', '--device', 'cpu', *amp]) == 0
    assert f"| {'on' if amp else 'off'} |" in capsys.readouterr().out
