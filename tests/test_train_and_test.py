"""train_and_test.py: data, augmentation, loss, checkpoints, exact resume, overfitting, torchrun, testing (CPU)."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from images import texture

from softmax_splatting import files, frames
from softmax_splatting import trainer as trainer_module
from softmax_splatting.cli import train as tat
from softmax_splatting.losses import laplacian_loss, laplacian_pyramid
from softmax_splatting.main_net import MainNet
from softmax_splatting.triplet_data import TripletDataset

REPO = Path(__file__).resolve().parents[1]


def make_dataset(root: Path, train=4, test=2, h=72, w=80, suffix='.png', diagonal=False):
    """A tiny Vimeo-layout dataset: each triplet is a texture moving 2 px per frame (left, or up-left)."""
    names = []
    for k in range(train + test):
        name = f'{k // 2 + 1:05d}/{k % 2 + 1:04d}'
        folder = root / 'sequences' / name
        image = texture(h + 8, w + 8, seed=k)
        for i in range(3):
            top = 2 * i if diagonal else 0
            frames.write_image(folder / f'im{i + 1}{suffix}', image[top:top + h, 2 * i:2 * i + w])
        names.append(name)
    (root / 'tri_trainlist.txt').write_text('\n'.join(names[:train]) + '\n')
    (root / 'tri_testlist.txt').write_text('\n'.join(names[train:]) + '\n')
    return root


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp('vimeo'))


@pytest.fixture(scope='module')
def pwc_file(tmp_path_factory):
    """A PWC-Net file in the published layout, standing in for trained weights (freezing is allowed then)."""
    from softmax_splatting import pwc
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp('pwc') / 'pwc.pytorch'
    torch.save({k.replace('net', 'module', 1): v for k, v in pwc.PWCNet().state_dict().items()}, path)
    return path


def train(dataset, out, *extra):
    args = ['--data', dataset, '--out', out, '--batch-size', '2', '--crop', '64x64', '--workers', '0',
            '--val-every', '0', '--save-every', '0', '--device', 'cpu', '--deterministic', *extra]
    return tat.main([str(a) for a in args])


def parsed(argv):
    """softsplat-train's settings for ``argv``, as its command line hands them to the trainer."""
    args = tat.build_parser().parse_args(argv)
    tat.validate_args(args, argv)
    return args


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
    data = TripletDataset(dataset, 'train', crop=(64, 64), augment=True, seed=3)
    a, b = data[(1, 0)], data[(1, 0)]
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert a[0].shape == (3, 64, 64)
    differs = any(not torch.equal(data[(1, 0)][0], data[(1, e)][0]) for e in range(1, 6))
    assert differs, 'augmentation never changes with the epoch'


def test_augmentation_includes_flips_and_temporal_reversal(dataset):
    plain = TripletDataset(dataset, 'train', crop=None, augment=False)
    augmented = TripletDataset(dataset, 'train', crop=None, augment=True)
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


DIHEDRAL = {'id': lambda t: t, 'h': lambda t: t.flip(-1), 'v': lambda t: t.flip(-2),
            'hv': lambda t: t.flip(-1).flip(-2)}


def test_strong_augmentation_adds_transpositions_and_channel_orders(tmp_path):
    square = make_dataset(tmp_path / 'square', train=1, test=1, h=72, w=72)
    plain = TripletDataset(square, 'train', crop=None, augment=False)
    strong = TripletDataset(square, 'train', crop=None, augment='strong')
    one, middle, two = plain[0]
    orders = [list(p) for p in itertools.permutations(range(3))]
    seen = set()
    for epoch in range(48):
        a, m, b = strong[(0, epoch)]
        matches = [(name, transposed, tuple(order))
                   for name, view in DIHEDRAL.items() for transposed in (False, True) for order in orders
                   if torch.equal(m, (view(middle).transpose(-1, -2) if transposed else view(middle))[order])]
        assert matches, f'epoch {epoch}: the middle frame is not a flip, transposition and channel order of it'
        name, transposed, order = matches[0]
        same = (lambda t: (DIHEDRAL[name](t).transpose(-1, -2) if transposed else DIHEDRAL[name](t))[list(order)])
        first, last = (one, two) if torch.equal(a, same(one)) else (two, one)  # (reversed or not)
        assert torch.equal(a, same(first)) and torch.equal(b, same(last)), epoch  # all three frames alike
        seen.add((transposed, order))
    assert {transposed for transposed, _ in seen} == {False, True}
    assert len({order for _, order in seen}) == 6
    # 'basic' is what True always meant (a resumed run draws the same augmentations); non-square frames stay whole
    for epoch in range(4):
        for x, y in zip(TripletDataset(square, 'train', crop=None, augment=True)[(0, epoch)],
                        TripletDataset(square, 'train', crop=None, augment='basic')[(0, epoch)]):
            assert torch.equal(x, y)
    wide = TripletDataset(make_dataset(tmp_path / 'wide', train=1, test=1), 'train', crop=None, augment='strong')
    assert all(wide[(0, epoch)][1].shape == (3, 72, 80) for epoch in range(8))
    with pytest.raises(ValueError, match='augment'):
        TripletDataset(square, 'train', crop=None, augment='wild')


def test_augment_option_reaches_training(dataset, tmp_path, capsys):
    assert train(dataset, tmp_path / 'run', '--steps', '1', '--augment', 'strong', '--crop', '48x48') == 0
    assert torch.load(tmp_path / 'run' / 'last.pt', weights_only=True)['args']['augment'] == 'strong'
    assert train(dataset, tmp_path / 'other', '--steps', '1', '--augment', 'wild') == 2
    assert "--augment: invalid choice: 'wild'" in capsys.readouterr().err


def test_jpg_triplets_are_read(tmp_path):
    root = make_dataset(tmp_path / 'jpg', train=2, test=1, suffix='.jpg')
    one, middle, two = TripletDataset(root, 'train', crop=None, augment=False)[0]
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
    from softmax_splatting.cli import interpolate as run_a_pair
    pair = dataset / 'sequences' / '00001' / '0001'
    assert run_a_pair.main(['--one', str(pair / 'im1.png'), '--two', str(pair / 'im3.png'), '--out',
                            str(tmp_path / 'mid.png'), '--model', str(out / 'final.pt')]) == 0
    assert frames.read_image(tmp_path / 'mid.png').shape == (72, 80, 3)


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(dataset, pwc_file, tmp_path):
    whole, split = tmp_path / 'whole', tmp_path / 'split'
    # 4 training triplets, batch 2: step 3 starts the second epoch, so resuming crosses an epoch boundary and the
    # end of the frozen-flow phase. The schedule is constant because a cosine one is planned over --steps.
    common = ('--freeze-flow-steps', '2', '--schedule', 'constant', '--init', pwc_file, '--ema', '0.5')
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


def test_overfitting_two_triplets_halves_the_loss(tmp_path, pwc_file):
    root = make_dataset(tmp_path / 'two', train=2, test=1, h=64, w=64)
    out = tmp_path / 'overfit'
    assert tat.main([str(a) for a in ('--data', root, '--out', out, '--batch-size', '2', '--crop', '64x64',
                                       '--workers', '0', '--val-every', '0', '--save-every', '0',
                                       '--device', 'cpu', '--steps', '50', '--lr', '1e-3', '--schedule',
                                       'constant', '--freeze-flow-steps', '50', '--init', pwc_file)]) == 0
    values = list(losses(out).values())
    first, last = values[0], np.mean(values[-5:])
    assert last < 0.5 * first, (first, last)


def test_warmup_raises_the_rate_linearly_then_follows_the_schedule(tmp_path, pwc_file):
    root = make_dataset(tmp_path / 'two', train=2, test=1, h=64, w=64)
    out = tmp_path / 'warm'
    argv = ('--data', root, '--out', out, '--batch-size', '1', '--crop', '32x32', '--workers', '0', '--val-every', '0',
            '--save-every', '0', '--device', 'cpu', '--steps', '6', '--lr', '1e-3', '--schedule', 'constant',
            '--warmup', '4', '--freeze-flow-steps', '6', '--init', pwc_file)
    assert tat.main([str(a) for a in argv]) == 0
    rates = [r['lr'] for r in map(json.loads, (out / 'log.jsonl').read_text().splitlines()) if 'lr' in r]
    # the rate logged after step k is the one step k + 1 uses
    assert np.allclose(rates, [5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-3]), rates
    with pytest.raises(tat.UsageError):
        tat.validate_args(tat.build_parser().parse_args(['--warmup', '-1']), [])


def test_init_from_a_pwc_file_and_a_mainnet_checkpoint(dataset, pwc_file, tmp_path):
    from softmax_splatting import pwc
    flow = pwc.PWCNet.from_file(pwc_file)
    args = parsed(['--data', str(dataset), '--init', str(pwc_file)])
    model, pretrained = trainer_module.build_model(args)
    assert pretrained
    assert torch.equal(next(iter(model.flow_net.state_dict().values())), next(iter(flow.state_dict().values())))
    MainNet(pwc_weights=None).save(tmp_path / 'main.pt')
    args = parsed(['--data', str(dataset), '--init', str(tmp_path / 'main.pt')])
    model, pretrained = trainer_module.build_model(args)
    assert isinstance(model, MainNet) and pretrained


def test_test_mode_prints_a_table(dataset, tmp_path, capsys):
    assert tat.main(['--data', str(dataset), '--test', '--model', 'classical', '--json',
                     str(tmp_path / 'r.json')]) == 0
    result = json.loads((tmp_path / 'r.json').read_text())
    assert result['count'] == 2 and result['psnr'] > 25
    assert '| classical | 2 |' in capsys.readouterr().out


@pytest.mark.parametrize('extra, message', [
    (['--data', '/nonexistent'], 'no such folder'),
    (['--steps', '0'], '--steps must be at least 1'),
    (['--test', '--model', '/nonexistent.pt'], 'no such checkpoint'),
    (['--init', '/nonexistent.pt'], '--init'),
    (['--resume', '/nonexistent.pt'], '--resume'),
    (['--crop', '512x512', '--batch-size', '2'], '--crop 512x512 is larger than the frames'),
    (['--batch-size', '64'], 'fewer than one batch'),
    (['--loss', 'relmse'], '--loss relmse needs --flow dis'),
])
def test_errors(dataset, tmp_path, capsys, extra, message):
    args = ['--data', str(dataset), '--out', str(tmp_path / 'e'), '--workers', '0', '--steps', '1', '--crop', '64x64',
            '--device', 'cpu', '--val-every', '0', *extra]
    assert tat.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err, err


def test_training_triplets_are_scored_beside_validation(dataset, tmp_path):
    out = tmp_path / 'probe'
    assert train(dataset, out, '--steps', '2', '--val-every', '1', '--train-val-size', '3') == 0
    records = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
    probes = {r['step']: r for r in records if 'train_psnr' in r}
    assert sorted(probes) == [0, 1, 2]  # with every validation, the classical line at step 0
    assert 'train_classical_psnr' in probes[0] and all(np.isfinite(r['train_psnr']) for r in probes.values())
    assert sorted(r['step'] for r in records if 'val_psnr' in r) == [0, 1, 2]
    # the probe is whole training frames: its score is not the validation score
    assert probes[2]['train_psnr'] != next(r['val_psnr'] for r in records if r.get('step') == 2 and 'val_psnr' in r)


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


def test_torchrun_two_processes_on_cpu(dataset, pwc_file, tmp_path):
    out = tmp_path / 'ddp'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                             str(REPO / 'train_and_test.py'), '--data', str(dataset), '--out', str(out),
                             '--batch-size', '1', '--crop', '64x64', '--workers', '0', '--steps', '2',
                             '--val-every', '0', '--save-every', '1', '--device', 'cpu',
                             '--freeze-flow-steps', '1', '--init', str(pwc_file)],  # DDP is rebuilt on thawing
                            capture_output=True, text=True, env=env, timeout=600)
    # torchrun's summary ends stderr; a rank's own last words (e.g. an abort message) come before it
    assert result.returncode == 0, (result.stderr[:3000], result.stderr[-1500:])
    assert sorted(p.name for p in out.iterdir() if p.suffix == '.pt') == ['final.pt', 'last.pt']
    assert len(losses(out)) == 2  # one log line per step, from rank 0 only
    assert MainNet.from_file(out / 'final.pt')


@pytest.mark.parametrize('amp', [[], ['--amp']], ids=['float32', 'amp'])
def test_throughput_benchmark_runs_without_data(capsys, amp):
    assert tat.main(['--benchmark', '1', '--batch-size', '1', '--crop', '64x64', '--device', 'cpu', *amp]) == 0
    assert f"| {'on' if amp else 'off'} |" in capsys.readouterr().out


# --------------------------------------------------------------------------------- flow cache, recipe ---------

def test_cached_flows_follow_crops_flips_and_reversal(tmp_path):
    """Every augmentation keeps the flows true to the frames it returns: two warped back by F0->1 matches one,
    one warped back by F1->0 matches two (the texture moves 4 px left and up from frame one to frame three)."""
    from softmax_splatting import pwc
    from softmax_splatting.classical import DisParameters

    dataset = make_dataset(tmp_path / 'diagonal', train=2, test=1, diagonal=True)
    data = TripletDataset(dataset, 'train', crop=(64, 64), augment=True, flows=DisParameters())
    assert not data.flow_path(0).exists()
    seen = set()
    for epoch in range(16):
        one, middle, two, flow_01, flow_10, reference = data[(0, epoch)]
        assert flow_01.shape == flow_10.shape == (2, 64, 64)
        inner = (slice(None), slice(8, -8), slice(8, -8))
        mean = flow_01[inner].mean((1, 2))
        assert 3.0 < mean.abs().min() and mean.abs().max() < 5.0, mean
        seen.add(tuple(np.sign(mean.numpy())))
        for source, target, flow in ((two, one, flow_01), (one, two, flow_10)):
            right = (pwc.backwarp(source[None], flow[None])[0] - target)[inner].abs().mean()
            wrong = (pwc.backwarp(source[None], -flow[None])[0] - target)[inner].abs().mean()
            assert right < 0.5 * wrong, (epoch, right, wrong)
    assert len(seen) == 4  # flips and reversal turned the motion into all four diagonal directions
    cached = np.load(data.flow_path(0))
    assert cached.shape == (72, 80, 4) and cached.dtype == np.float32  # whole frames, computed once
    plain = TripletDataset(dataset, 'train', crop=None, augment=False, flows=DisParameters())
    assert torch.equal(plain[0][3], torch.from_numpy(cached[..., :2]).permute(2, 0, 1))
    other = TripletDataset(dataset, 'train', crop=None, augment=False, flows=DisParameters(patch_stride=4))
    assert other.flow_path(0) != data.flow_path(0)  # other DIS settings, another cache
    # the relmse reference: the classical interpolator's 8-bit MSE on the whole middle frame, the same every epoch
    from softmax_splatting.classical import ClassicalInterpolator
    one, middle, two = (t[None] for t in plain[0][:3])
    classical = ClassicalInterpolator(dis=DisParameters())  # the flow the cache holds, not the classical default
    guess = frames.to_tensor(frames.to_uint8(classical.interpolate(one, two, [0.5])[0]))
    assert plain[0][5].item() == pytest.approx((guess - middle).square().mean().item(), rel=1e-4)
    assert reference.item() == plain[0][5].item()


def test_cached_flows_follow_transpositions(tmp_path):
    """Under strong augmentation the flows stay true to the frames: a horizontal motion (4 px between frames one and
    three) becomes a vertical one when x and y are swapped, and the flow's two components swap with them."""
    from softmax_splatting import pwc
    from softmax_splatting.classical import DisParameters

    dataset = make_dataset(tmp_path / 'horizontal', train=1, test=1)
    data = TripletDataset(dataset, 'train', crop=(64, 64), augment='strong', flows=DisParameters())
    inner = (slice(None), slice(8, -8), slice(8, -8))
    axes = set()
    for epoch in range(24):
        one, middle, two, flow_01, flow_10, reference = data[(0, epoch)]
        mean = flow_01[inner].mean((1, 2)).abs()
        axes.add(int(mean.argmax()))
        assert 3.0 < mean.max() < 5.0 and mean.min() < 1.0, mean
        for source, target, flow in ((two, one, flow_01), (one, two, flow_10)):
            right = (pwc.backwarp(source[None], flow[None])[0] - target)[inner].abs().mean()
            swapped = (pwc.backwarp(source[None], flow[None].flip(1))[0] - target)[inner].abs().mean()
            assert right < 0.5 * swapped, (epoch, right, swapped)
    assert axes == {0, 1}  # the motion appeared along x and, transposed, along y


def test_several_roots_and_a_separate_validation_root(tmp_path):
    first, second = make_dataset(tmp_path / 'a', train=2, test=1), make_dataset(tmp_path / 'b', train=3, test=2)
    data = TripletDataset([first, second], 'train', crop=None, augment=False)
    assert len(data) == 5 and data.items[0][0] == first and data.items[-1][0] == second
    out = tmp_path / 'run'
    assert train(first, out, '--data', first, second, '--val-data', second, '--steps', '2', '--val-every', '1',
                 '--flow', 'dis', '--residual', '--loss', 'logmse') == 0  # the later --data wins
    records = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
    start = records[0]
    assert start['step'] == 0 and start['val_psnr'] == pytest.approx(start['val_classical_psnr'], abs=1e-9)
    assert MainNet.from_file(out / 'final.pt').config.flow == 'dis'


def test_random_pwc_is_announced_and_cannot_be_frozen(dataset, tmp_path, capsys, monkeypatch):
    from softmax_splatting import pwc
    monkeypatch.setattr(pwc, 'DEFAULT_WEIGHTS', tmp_path / 'absent.pytorch')
    assert train(dataset, tmp_path / 'a', '--steps', '1') == 0
    err = capsys.readouterr().err
    assert 'PWC-Net starts from random weights' in err
    assert train(dataset, tmp_path / 'b', '--steps', '1', '--freeze-flow-steps', '5') == 2
    assert 'frozen random flow is useless' in capsys.readouterr().err
    args = parsed(['--data', str(dataset), '--steps', '1000'])
    model = MainNet(pwc_weights=None)
    assert trainer_module.freeze_steps(args, model, pretrained_flow=True) == 100  # default: 10% of --steps
    assert trainer_module.freeze_steps(args, model, pretrained_flow=False) == 0


def test_resume_refuses_another_model_configuration(dataset, tmp_path, capsys):
    out = tmp_path / 'run'
    assert train(dataset, out, '--steps', '1', '--flow', 'dis') == 0
    assert train(dataset, out, '--steps', '2', '--flow', 'dis', '--residual', '--resume') == 2
    assert 'another model configuration (residual)' in capsys.readouterr().err


def test_ema_weights_are_what_is_published(dataset, tmp_path):
    out = tmp_path / 'ema'
    assert train(dataset, out, '--steps', '3', '--flow', 'dis', '--ema', '0.5', '--lr', '1e-2') == 0
    state = torch.load(out / 'last.pt', weights_only=True)
    final = MainNet.from_file(out / 'final.pt').state_dict()
    averaged = {k[len('module.'):]: v for k, v in state['ema'].items() if k.startswith('module.')}
    assert set(averaged) == set(final)
    assert all(torch.equal(final[k], averaged[k].float()) for k in final)
    assert any(not torch.equal(final[k], state['model'][k]) for k in final if final[k].is_floating_point())


@pytest.mark.parametrize('number, status', [('SIGINT', 130), ('SIGTERM', 143)])
def test_a_signal_saves_the_current_step_and_exits(dataset, tmp_path, number, status):
    """A real signal to a training process: one line, a checkpoint at the step it reached, 130 / 143, and
    --resume continues from there."""
    import signal
    import time

    out = tmp_path / 'run'
    command = [sys.executable, str(REPO / 'train_and_test.py'), '--data', str(dataset), '--out', str(out),
               '--batch-size', '2', '--crop', '64x64', '--workers', '1', '--steps', '100000', '--val-every', '0',
               '--save-every', '0', '--device', 'cpu', '--flow', 'dis']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    # SIGTERM goes to the whole process group (as pkill -f or a service manager sends it): the data-loading
    # worker must not die of it before the main process has saved.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    log = out / 'log.jsonl'
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (log.is_file() and len(log.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    if number == 'SIGTERM':
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == status, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip() and '\r' not in line and 'it/s' not in line]
    assert lines[-1].startswith(f'{number}: stopped at step ') and '--resume' in lines[-1], err[-2000:]
    assert 'Traceback' not in err
    steps = len(losses(out))
    state = torch.load(out / 'last.pt', weights_only=True)
    assert state['step'] == steps and f'step {steps},' in lines[-1]
    assert not (out / 'final.pt').exists()
    assert not list(out.glob('.*'))  # no temporary file left
    resumed = command[:command.index('--steps') + 1] + [str(steps + 1)] + command[command.index('--steps') + 2:]
    assert subprocess.run(resumed + ['--resume'], capture_output=True, env=env, timeout=300).returncode == 0
    assert len(losses(out)) == steps + 1


def test_runtime_hands_set_device_an_index_for_a_plain_cuda_choice(monkeypatch):
    """`--device cuda` (or auto on a GPU) gives torch.device('cuda'), without an index, which torch.cuda.set_device
    rejects: training crashed that way on the first GPU it met (H200, 2026-12-04). CUDA is faked here."""
    def strict_set_device(device):
        if device.index is None:
            raise ValueError('Expected a torch.device with a specified index')
        chosen.append(device)

    chosen = []
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    monkeypatch.setattr(trainer_module, 'select_device', lambda choice: torch.device(choice))
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 3)
    monkeypatch.setattr(torch.cuda, 'set_device', strict_set_device)
    assert trainer_module.Runtime('cuda').device == torch.device('cuda', 3)
    assert trainer_module.Runtime('cuda:1').device == torch.device('cuda', 1)
    assert chosen == [torch.device('cuda', 3), torch.device('cuda', 1)]
    assert trainer_module.Runtime('cpu').device == torch.device('cpu') and len(chosen) == 2


def test_divergence_stops_at_the_first_non_finite_loss_and_keeps_the_last_good_checkpoint(dataset, tmp_path, capsys):
    """--lr 1e30 breaks the weights at the first step: the next loss is not finite. One line names that step and the
    last good checkpoint, exit 2, and no checkpoint (last.pt, best.pt, final.pt) ever holds non-finite weights."""
    out = tmp_path / 'run'
    assert train(dataset, out, '--steps', '6', '--lr', '1e30', '--save-every', '1', '--val-every', '1',
                 '--val-size', '1', '--flow', 'dis') == 2
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    state = torch.load(out / 'last.pt', weights_only=True)
    assert line.startswith('error: training diverged at step ') and 'Traceback' not in err, err[-2000:]
    assert f'{out / "last.pt"} (step {state["step"]}) is the last good checkpoint' in line, line
    assert f'at step {state["step"] + 1} (' in line  # the step after the last save, which it did not write
    assert line.endswith(f'continue from it with --resume {out / "last.pt"} and a lower --lr'), line
    assert not (out / 'final.pt').exists()
    for path in out.glob('*.pt'):
        assert files.non_finite(torch.load(path, weights_only=True)) == [], path
    records = (out / 'log.jsonl').read_text()
    assert 'NaN' not in records and 'Infinity' not in records
    # a checkpoint holding NaN weights is refused on --resume as on --model
    state['model'][next(k for k, v in state['model'].items() if v.is_floating_point())].fill_(float('nan'))
    torch.save(state, out / 'last.pt')
    assert train(dataset, out, '--steps', '6', '--flow', 'dis', '--resume') == 2
    assert 'holds NaN or infinite weights' in capsys.readouterr().err
    assert train(dataset, tmp_path / 'b', '--steps', '1', '--flow', 'dis', '--init', out / 'last.pt') == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f'error: --init {out / "last.pt"}: holds NaN or infinite weights (model.')  # not "neither ... nor ..."


def test_a_bad_image_met_by_a_loader_worker_is_one_line_and_exit_2(tmp_path):
    """With the default four data-loading workers, an unreadable training frame ended in the worker's traceback and
    then a hang at exit (the workers ignore SIGTERM); it must read as with --workers 0: one line, exit 2."""
    root = make_dataset(tmp_path / 'bad', train=4, test=1)
    broken = root / 'sequences' / '00001' / '0002' / 'im2.png'
    broken.write_bytes(b'not an image')
    command = [sys.executable, str(REPO / 'train_and_test.py'), '--data', str(root), '--out', str(tmp_path / 'run'),
               '--batch-size', '2', '--crop', '64x64', '--val-every', '0', '--steps', '3', '--device', 'cpu']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == f'error: {broken}: not a readable image', result.stderr[-2000:]
    assert 'Traceback' not in result.stderr


def test_temporaries_of_a_killed_save_are_removed_by_the_next_run(dataset, tmp_path, capsys):
    """A save killed outright (SIGKILL, out of memory) leaves .last.<random>.pt beside last.pt (35 MB for the
    paper's model); the next run into the folder, resumed or fresh, removes such files and says so."""
    out = tmp_path / 'run'
    assert train(dataset, out, '--steps', '1') == 0
    stale = [out / '.last.k2x_9abc.pt', out / '.best.00000000.pt', out / '.log.abcdefgh.jsonl']
    kept = [out / '.last.pt.mine', out / 'notes.last.abcdefgh.pt']  # not atomic_path's names: not ours to remove
    for path in stale + kept:
        path.write_bytes(b'partial')
    capsys.readouterr()
    assert train(dataset, out, '--steps', '2', '--resume') == 0
    err = capsys.readouterr().err
    assert not any(path.exists() for path in stale) and all(path.exists() for path in kept)
    assert f'note: removed {stale[0]}, the temporary file of a save that was killed' in err
    fresh = tmp_path / 'fresh'  # killed during its first save: no last.pt, only the temporary
    fresh.mkdir()
    (fresh / '.last.zzzzzzzz.pt').write_bytes(b'partial')
    assert train(dataset, fresh, '--steps', '1') == 0
    assert sorted(p.name for p in fresh.iterdir() if p.name.startswith('.')) == []


@pytest.mark.parametrize('signal_name, status, line', [('SIGTERM', 143, 'interrupted (SIGTERM)'),
                                                        ('SIGINT', 130, 'interrupted')])
def test_a_signal_while_setting_up_stops_as_ctrl_c_does(dataset, tmp_path, capsys, monkeypatch, signal_name, status,
                                                        line):
    """Outside the step loop (reading data, building the model, resuming) SIGTERM acted at once: no line, no
    clean-up of a write in progress. It now unwinds as Ctrl-C does there: one line, 128 + the signal."""
    import signal

    building = trainer_module.Trainer.__init__

    def signalled(self, *args, **kwargs):
        os.kill(os.getpid(), getattr(signal, signal_name))
        building(self, *args, **kwargs)

    monkeypatch.setattr(trainer_module.Trainer, '__init__', signalled)
    assert train(dataset, tmp_path / 'run', '--steps', '1') == status
    assert capsys.readouterr().err.strip().splitlines()[-1] == line
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored for whoever called main()


def test_validation_without_test_triplets_is_refused_not_skipped(tmp_path, capsys):
    """--val-every (default 2000) on a root without a test list turned validation off without a word: no best.pt,
    no curve. It is refused with what to do; --val-every 0 trains without validation, as asked."""
    root = make_dataset(tmp_path / 'data', train=2, test=1)
    (root / 'tri_testlist.txt').unlink()
    assert train(root, tmp_path / 'a', '--steps', '1', '--val-every', '5') == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (f'error: --val-every 5 validates on {root / "tri_testlist.txt"}, which does not exist; give a root '
                    f'with test triplets (--val-data DIR) or train without validation (--val-every 0)')
    (root / 'tri_testlist.txt').write_text('\n')  # make_triplets.py --test-fraction 0 writes an empty list
    assert train(root, tmp_path / 'b', '--steps', '1', '--val-every', '5') == 2
    assert 'which is empty; give a root with test triplets' in capsys.readouterr().err
    assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()  # refused before anything was written
    assert train(root, tmp_path / 'c', '--steps', '1', '--train-val-size', '2') == 2
    assert '--train-val-size scores training triplets at each validation' in capsys.readouterr().err
    assert train(root, tmp_path / 'd', '--steps', '1') == 0  # the helper's --val-every 0


def test_a_fresh_run_refuses_a_folder_with_another_runs_log(dataset, tmp_path, capsys):
    """An old log.jsonl (a run killed before its first save, or one whose last.pt was removed) was appended to: every
    step twice. Like last.pt, it makes a fresh run refuse the folder; --resume is what continues a run."""
    out = tmp_path / 'run'
    out.mkdir()
    (out / 'log.jsonl').write_text('{"step": 1, "loss": 0.5}\n')
    assert train(dataset, out, '--steps', '1') == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f'error: --out {out} holds log.jsonl of another run but no last.pt to resume from; choose another --out or '
        f'remove those files')
    assert (out / 'log.jsonl').read_text() == '{"step": 1, "loss": 0.5}\n'
    (tmp_path / 'plain').write_text('')
    assert train(dataset, tmp_path / 'plain', '--steps', '1') == 2
    assert 'exists and is not a folder' in capsys.readouterr().err
    assert train(dataset, tmp_path / 'plain' / 'run', '--steps', '1') == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f'error: --out {tmp_path / "plain" / "run"}: cannot ' \
                                                                f'be created (Not a directory)'


def test_resume_refuses_a_run_already_past_steps(dataset, tmp_path, capsys):
    out = tmp_path / 'run'
    assert train(dataset, out, '--steps', '3') == 0
    final = (out / 'final.pt').read_bytes()
    assert train(dataset, out, '--steps', '2', '--resume') == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f'error: --resume: {out / "last.pt"} is at step 3, past --steps 2; give a --steps above 3 to train on')
    assert (out / 'final.pt').read_bytes() == final
    assert train(dataset, out, '--steps', '3', '--resume') == 0  # at --steps already: nothing to train, accepted


def test_resume_keeps_the_runs_rate_unless_lr_is_given(dataset, tmp_path, capsys):
    """--resume goes on at the run's own rate (not the default); --lr given with it applies from the resumed step,
    along the same schedule (here a warm-up over 8 steps: the rate logged after step k is lr * (k + 1) / 8)."""
    out = tmp_path / 'run'
    common = ('--flow', 'dis', '--schedule', 'constant', '--warmup', '8')
    assert train(dataset, out, '--steps', '2', '--lr', '1e-3', *common) == 0
    assert train(dataset, out, '--steps', '4', '--resume', *common) == 0
    assert 'replaces' not in capsys.readouterr().err
    assert train(dataset, out, '--steps', '6', '--resume', '--lr', '2e-4', *common) == 0
    assert "note: --lr 0.0002 replaces the resumed run's 0.001 from step 4 on" in capsys.readouterr().err
    rates = {r['step']: r['lr'] for r in map(json.loads, (out / 'log.jsonl').read_text().splitlines()) if 'lr' in r}
    expected = {k: (1e-3 if k <= 4 else 2e-4) * (k + 1) / 8 for k in range(1, 7)}
    assert sorted(rates) == sorted(expected) and all(np.isclose(rates[k], expected[k]) for k in rates), rates
    state = torch.load(out / 'last.pt', weights_only=True)
    assert state['args']['lr'] == 2e-4 and state['scheduler']['base_lrs'] == [2e-4]


def test_last_pt_serves_as_a_model_and_final_pt_is_not_a_training_state(dataset, tmp_path, capsys):
    out = tmp_path / 'run'
    assert train(dataset, out, '--steps', '2', '--flow', 'dis', '--ema', '0.5', '--lr', '1e-2') == 0
    final, last = MainNet.from_file(out / 'final.pt').state_dict(), MainNet.from_file(out / 'last.pt').state_dict()
    assert all(torch.equal(final[k], last[k]) for k in final)  # the EMA weights, as published
    from softmax_splatting.cli import interpolate as run_a_pair
    pair = dataset / 'sequences' / '00001' / '0001'
    assert run_a_pair.main(['--one', str(pair / 'im1.png'), '--two', str(pair / 'im3.png'), '--out',
                            str(tmp_path / 'mid.png'), '--model', str(out / 'last.pt')]) == 0
    # a new run can start from a training state's weights
    assert train(dataset, tmp_path / 'again', '--steps', '1', '--flow', 'dis', '--init', out / 'last.pt') == 0
    assert train(dataset, out, '--steps', '3', '--flow', 'dis', '--ema', '0.5', '--resume', out / 'final.pt') == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --resume: {out / 'final.pt'} is a model checkpoint (final.pt, best.pt), without the optimizer and "
        f"schedule a run continues from: resume from the run's last.pt, or start a new run from these weights with "
        f"--init")
