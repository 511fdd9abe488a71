"""main_net.py: the softmax-splatting model's shapes, gradients, time handling and checkpoints (CPU)."""

import pytest
import torch

from softmax_splatting import pwc
from softmax_splatting.main_net import MainNet


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MainNet(pwc_weights=None).eval()


def pair(n=1, h=64, w=96, seed=0):
    gen = torch.Generator().manual_seed(seed)
    one = torch.rand(n, 3, h, w, generator=gen)
    return one, torch.roll(one, shifts=(1, 2), dims=(2, 3))


@pytest.mark.parametrize('n, size', [(2, (64, 96)), (1, (67, 93))])
def test_forward_shapes(model, n, size):
    one, two = pair(n, *size)
    with torch.no_grad():
        out = model(one, two, 0.5)
    assert out.shape == (n, 3, *size)
    assert torch.isfinite(out).all()


def test_gradients_reach_every_part():
    torch.manual_seed(1)
    model = MainNet(metric='unet', pwc_weights=None)
    one, two = pair(1, 64, 64)
    model(one, two, 0.3).square().mean().backward()
    parts = {'PWC-Net': model.flow_net, 'pyramid': model.pyramid, 'GridNet': model.synthesis,
             'metric U-Net': model.metric_unet}
    for name, module in parts.items():
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0, f'no gradient reaches {name}'
    assert model.alpha.grad is not None and model.alpha.grad != 0


def test_brightness_metric_variant_has_no_unet():
    model = MainNet(metric='brightness', pwc_weights=None)
    assert model.metric_unet is None
    with pytest.raises(ValueError, match="metric must be 'brightness' or 'unet'"):
        MainNet(metric='learned', pwc_weights=None)


def test_frozen_flow_gets_no_gradient():
    model = MainNet(pwc_weights=None)
    model.set_flow_trainable(False)
    one, two = pair(1, 64, 64)
    model(one, two, 0.5).mean().backward()
    assert all(p.grad is None for p in model.flow_net.parameters())
    assert any(p.grad is not None for p in model.synthesis.parameters())


def test_interpolate_equals_separate_forward_calls(model):
    one, two = pair(1, 64, 64, seed=3)
    times = [0.0, 0.25, 1.0]
    with torch.no_grad():
        together = model.interpolate(one, two, times)
        for t, frame in zip(times, together):
            torch.testing.assert_close(frame, model(one, two, t), rtol=1e-5, atol=1e-6)


def test_time_as_a_per_sample_tensor(model):
    one, two = pair(2, 64, 64, seed=4)
    with torch.no_grad():
        mixed = model(one, two, torch.tensor([0.2, 0.7]))
        torch.testing.assert_close(mixed[:1], model(one[:1], two[:1], 0.2), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mixed[1:], model(one[1:], two[1:], 0.7), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r'\[N\] = \[2\]'):
        model(one, two, torch.tensor([0.2, 0.3, 0.4]))


def test_bad_inputs(model):
    one, two = pair(1, 64, 64)
    with pytest.raises(ValueError, match='same shape'):
        model(one, two[:, :, :32], 0.5)
    with pytest.raises(ValueError, match=r'one must be a \[N, 3, H, W\]'):
        model(one[:, :1], two, 0.5)


def test_save_and_load_round_trip(tmp_path, model):
    one, two = pair(1, 64, 64, seed=5)
    path = tmp_path / 'model.pt'
    model.save(path)
    loaded = MainNet.from_file(path).eval()
    assert loaded.config == model.config
    for (key, mine), theirs in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(mine, theirs), key
    half = tmp_path / 'half.pt'
    model.save(half, half=True)
    assert half.stat().st_size < 0.6 * path.stat().st_size
    with torch.no_grad():
        torch.testing.assert_close(MainNet.from_file(half).eval()(one, two, 0.5), model(one, two, 0.5),
                                   rtol=0, atol=2e-2)
    assert not list(tmp_path.glob('.*'))  # no temporary files left behind


def test_load_errors(tmp_path, model):
    with pytest.raises(FileNotFoundError, match='no such checkpoint'):
        MainNet.from_file(tmp_path / 'missing.pt')
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a checkpoint at all')
    with pytest.raises(ValueError, match='cannot be read as a PyTorch checkpoint'):
        MainNet.from_file(garbage)
    foreign = tmp_path / 'foreign.pt'
    torch.save({'weights': torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match='not a MainNet checkpoint'):
        MainNet.from_file(foreign)
    truncated = tmp_path / 'truncated.pt'
    model.save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(ValueError, match='cannot be read as a PyTorch checkpoint'):
        MainNet.from_file(truncated)
    wrong = tmp_path / 'wrong.pt'
    model.save(wrong)
    payload = torch.load(wrong, weights_only=True)
    del payload['state_dict']['alpha']
    torch.save(payload, wrong)
    with pytest.raises(ValueError, match='missing: alpha'):
        MainNet.from_file(wrong)


def test_pretrained_pwc_is_loaded_when_present(tmp_path, monkeypatch):
    torch.manual_seed(7)
    reference = pwc.PWCNet()
    path = tmp_path / 'network-default.pytorch'
    torch.save({k.replace('net', 'module', 1): v for k, v in reference.state_dict().items()}, path)
    monkeypatch.setattr(pwc, 'DEFAULT_WEIGHTS', path)
    model = MainNet(pwc_weights='default')
    for (k, a), b in zip(reference.state_dict().items(), model.flow_net.state_dict().values()):
        assert torch.equal(a, b), k
    monkeypatch.setattr(pwc, 'DEFAULT_WEIGHTS', tmp_path / 'absent.pytorch')
    other = MainNet(pwc_weights='default')  # no file: random initialization, no error
    assert not torch.equal(next(iter(other.flow_net.parameters())), next(iter(reference.parameters())))


# ------------------------------------------------------------------------------------------- fidelity ----------

def test_importance_metric_starts_as_published_and_is_clipped():
    """Z = -20 |I0 - backwarp(I1, F)| (mean over RGB) at initialization, clipped to [-20, 20]."""
    model = MainNet(metric='brightness', pwc_weights=None)
    assert model.alpha.item() == -20.0
    one, two = pair(1, 16, 16)
    flow = torch.zeros(1, 2, 16, 16)
    metric = model._metric(one, two, flow)
    torch.testing.assert_close(metric, -20 * (one - two).abs().mean(1, keepdim=True))
    with torch.no_grad():
        model.alpha.fill_(-1000.0)
    assert model._metric(one, two, flow).min().item() == -20.0


def test_three_softsplat_calls_per_time(monkeypatch, model):
    from softmax_splatting import main_net

    calls = []
    original = main_net.softsplat

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(main_net, 'softsplat', counting)
    one, two = pair(2, 32, 32)
    with torch.no_grad():
        model.interpolate(one, two, [0.25, 0.75])
    assert len(calls) == 6  # three per time, both frames stacked on the batch
    assert all(shape[0] == 4 for shape in calls)


def test_from_file_returns_eval_mode(tmp_path):
    model = MainNet(pwc_weights=None).train()
    model.save(tmp_path / 'm.pt')
    loaded = MainNet.from_file(tmp_path / 'm.pt')
    assert not loaded.training
    assert not any(module.training for module in loaded.modules())


@pytest.mark.parametrize('t', [-0.1, 1.5, float('nan'), torch.tensor([0.5, 1.2])])
def test_time_outside_zero_one_is_refused(model, t):
    one, two = pair(2, 32, 32)
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        model(one, two, t)
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        model.interpolate(one, two, [0.5, t])


def test_dis_residual_model_starts_as_the_classical_interpolator():
    from softmax_splatting.classical import ClassicalInterpolator

    model = MainNet(flow='dis', residual=True).eval()
    assert model.flow_net is None
    one, two = pair(2, 48, 64, seed=9)
    classical = ClassicalInterpolator(dis=model.config.dis_parameters)  # with the flow the model records
    with torch.no_grad():
        ours = model.interpolate(one, two, [0.0, 0.3, torch.tensor([0.5, 1.0])])
    theirs = [classical.interpolate(one, two, [0.0])[0], classical.interpolate(one, two, [0.3])[0],
              torch.cat([classical.interpolate(one[:1], two[:1], [0.5])[0],
                         classical.interpolate(one[1:], two[1:], [1.0])[0]])]
    for mine, reference in zip(ours, theirs):
        torch.testing.assert_close(mine, reference, rtol=0, atol=1e-6)


def test_dis_model_records_its_flow_settings(tmp_path):
    from softmax_splatting.classical import DisParameters

    model = MainNet(flow='dis', residual=True, metric='brightness')
    model.config.dis['patch_stride'] = 3  # trained with other DIS settings than today's default
    model.save(tmp_path / 'dis.pt', half=True)
    loaded = MainNet.from_file(tmp_path / 'dis.pt')
    assert loaded.config.flow == 'dis' and loaded.config.residual
    assert loaded.config.dis_parameters == DisParameters(patch_stride=3)
    one, two = pair(1, 32, 32)
    calls = []
    from softmax_splatting import classical

    original = classical.dis_flows
    try:
        classical.dis_flows = lambda a, b, parameters: calls.append(parameters) or original(a, b, parameters)
        with torch.no_grad():
            loaded(one, two, 0.5)
    finally:
        classical.dis_flows = original
    assert calls == [DisParameters(patch_stride=3)]


def test_precomputed_flows_are_used_and_checked():
    model = MainNet(flow='dis', residual=True, metric='brightness').eval()
    one, two = pair(1, 32, 32)
    flows = model.estimate_flows(one, two)
    with torch.no_grad():
        torch.testing.assert_close(model(one, two, 0.5, flows), model(one, two, 0.5))
        other = model(one, two, 0.5, (flows[0] + 3, flows[1] - 3))
    assert (other - model(one, two, 0.5)).abs().max() > 1e-3
    with pytest.raises(ValueError, match='flows must be two'):
        model(one, two, 0.5, (flows[0][:, :, :16], flows[1]))


def _cupy_on_gpu():
    from softmax_splatting.cupy_launch import import_cupy  # noqa: PLC0415
    return torch.cuda.is_available() and import_cupy()[0] is not None


@pytest.mark.cuda
@pytest.mark.skipif(not _cupy_on_gpu(), reason='needs a CUDA GPU and CuPy')
def test_model_on_gpu_matches_with_cupy_and_torch_kernels_and_the_cpu(monkeypatch):
    """The whole model with both CUDA kernels (splatting and cost volume) against its PyTorch path on the GPU and
    on the CPU: output and the gradients of every parameter; float16 autocast stays finite and close."""
    from softmax_splatting import softsplat  # noqa: PLC0415
    torch.manual_seed(3)
    model = MainNet(pwc_weights=None).cuda().train()
    one, two = (t.cuda() for t in pair(2, 64, 96, seed=4))
    results = {}
    for backend in ('cupy', 'torch'):
        monkeypatch.setenv(softsplat.BACKEND_ENV, backend)
        monkeypatch.setenv(pwc.cost_volume.BACKEND_ENV, backend)
        model.zero_grad()
        out = model(one, two, 0.4)
        out.square().mean().backward()
        results[backend] = [out.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]
    assert len(results['cupy']) == len(results['torch']) > 10
    for mine, theirs in zip(results['cupy'], results['torch']):
        torch.testing.assert_close(mine, theirs, rtol=2e-3, atol=2e-4)
    with torch.no_grad():
        on_cpu = model.cpu().eval()(one.cpu(), two.cpu(), 0.4)
        model.cuda()
        torch.testing.assert_close(model(one, two, 0.4).cpu(), on_cpu, rtol=1e-3, atol=1e-4)
        monkeypatch.setenv(softsplat.BACKEND_ENV, 'cupy')
        monkeypatch.setenv(pwc.cost_volume.BACKEND_ENV, 'cupy')
        with torch.autocast('cuda', dtype=torch.float16):
            half = model(one, two, 0.4)
    assert torch.isfinite(half).all()
    reference = results['cupy'][0]
    assert (half.float() - reference).abs().max() <= 0.02 * reference.abs().max() + 0.01


def test_non_finite_weights_are_refused_with_one_line_naming_the_file(tmp_path, capsys):
    """A checkpoint of a run that diverged (NaN or infinite weights) is refused on loading: MainNet.from_file,
    run_a_pair.py --model (exit 2, no frame written) and PWC-Net files; it would interpolate black frames."""
    from softmax_splatting.cli import interpolate as run_a_pair
    from softmax_splatting.files import EXAMPLE_IMAGES

    model = MainNet(flow='dis', residual=True)
    for value in (float('nan'), float('inf')):
        path = tmp_path / f'diverged-{value}.pt'
        with torch.no_grad():
            next(p for p in model.parameters() if p.dim() == 4)[0, 0, 0, 0] = value
        model.save(path)
        with pytest.raises(ValueError, match=r'holds NaN or infinite weights \(state_dict\.'):
            MainNet.from_file(path)
        out = tmp_path / 'mid.png'
        assert run_a_pair.main(['--one', str(EXAMPLE_IMAGES / 'one.png'), '--two', str(EXAMPLE_IMAGES / 'two.png'),
                                '--out', str(out), '--model', str(path), '--device', 'cpu']) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f'error: {path}: holds NaN or infinite weights') and 'diverged' in err[-1], err
        assert not out.exists()
    flow = pwc.PWCNet()
    with torch.no_grad():
        flow.netRefiner.netMain[0].bias[0] = float('nan')
    flow.save(tmp_path / 'pwc.pytorch')
    with pytest.raises(pwc.CheckpointError, match=r'pwc.pytorch holds NaN or infinite weights \(netRefiner'):
        pwc.PWCNet.from_file(tmp_path / 'pwc.pytorch')


def test_checkpoint_errors_say_what_is_wrong_in_their_one_line(tmp_path, model):
    """Tools show the first line of a loading error: it must hold the reason, not a heading (PyTorch's "Error(s) in
    loading state_dict for MainNet:") or a bare key ("bad MainNet configuration ('config')")."""
    good = tmp_path / 'good.pt'
    model.save(good)
    payload = torch.load(good, weights_only=True)

    def message(change, name):
        broken = {**payload, 'state_dict': dict(payload['state_dict']), 'config': dict(payload['config'])}
        change(broken)
        torch.save(broken, tmp_path / name)
        with pytest.raises(ValueError) as raised:
            MainNet.from_file(tmp_path / name)
        text = str(raised.value)
        assert '\n' not in text and text.startswith(f'{tmp_path / name}: '), text
        return text

    assert 'no configuration (the "config" entry' in message(lambda p: p.pop('config'), 'a.pt')
    assert 'unknown settings colour' in message(lambda p: p['config'].update(colour=1), 'b.pt')
    assert "metric must be 'brightness' or 'unet', got 'x'" in message(lambda p: p['config'].update(metric='x'), 'c.pt')
    wide = message(lambda p: p['state_dict'].update(alpha=torch.zeros(2, 2)), 'd.pt')
    assert 'wrong shapes: alpha [2, 2] (expected [' in wide, wide
    assert 'no weights' in message(lambda p: p.pop('state_dict'), 'e.pt')
    flow = tmp_path / 'pwc.pytorch'
    pwc.PWCNet().save(flow)
    with pytest.raises(ValueError, match='PWC-Net weights .*, not a MainNet checkpoint'):
        MainNet.from_file(flow)
    torch.save({'model': {}, 'optimizer': {}, 'step': 3}, tmp_path / 'checkpoint.pt')
    with pytest.raises(ValueError, match='a training checkpoint of softsplat-train-flow'):
        MainNet.from_file(tmp_path / 'checkpoint.pt')


def test_a_training_state_loads_as_the_model_it_publishes(tmp_path, model):
    """--model runs/x/last.pt said the file should come from train_and_test.py, which wrote it: the network of a
    training state loads, with the moving average of the weights when the run keeps one (what final.pt holds)."""
    from dataclasses import asdict
    state = model.state_dict()
    averaged = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    training = {'format': 'softsplat-training', 'step': 4, 'config': asdict(model.config), 'model': state,
                'optimizer': {}}
    torch.save(training, tmp_path / 'last.pt')
    loaded = MainNet.from_file(tmp_path / 'last.pt').state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    ema = {**{f'module.{k}': v for k, v in averaged.items()}, 'n_averaged': torch.tensor(4)}
    torch.save({**training, 'ema': ema}, tmp_path / 'last-ema.pt')
    loaded = MainNet.from_file(tmp_path / 'last-ema.pt').state_dict()
    assert all(torch.equal(loaded[k], averaged[k]) for k in state)
