"""published/: the released SoftSplat network loads its files key for key and runs like our other interpolators.

Here: the layout (both key spellings), files (ours read back as the release would,
broken ones refused in one line), odd sizes, times, batches, determinism, quadratic motion, flows given from outside,
gradients (gradcheck on tiny inputs) and a frozen value of our own.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.func import functional_call

from softmax_splatting import load_interpolator, models
from softmax_splatting.errors import UsageError
from softmax_splatting.files import CHECKOUT, SHARED_DATA
from softmax_splatting.published import (EXPECTED_PARAMETERS, EXPECTED_TENSORS, PublishedNet, is_published_layout,
                                         published_keys)
from softmax_splatting.published.flow import LEVEL_NAMES

REFERENCE_KEYS = SHARED_DATA.parent / 'reference' / 'softsplat_published_keys.txt'


def lively_net(seed: int = 0, metric_scale: float = 30.0) -> PublishedNet:
    """Random weights scaled so that flows are pixels long and (with the default ``metric_scale``) metrics reach past
    the release's clip of 20; default weights would give nearly no motion and exercise neither."""
    torch.manual_seed(seed)
    net = PublishedNet().eval()
    with torch.no_grad():
        for name in LEVEL_NAMES:
            last = net.netFlow._modules[name].netMain[-1]
            last.weight.mul_(30)
            last.bias.mul_(30)
        output = net.netSynthesis.netSoftmetric.netOutput
        output.netMain[-1].weight.mul_(metric_scale)
        output.netShortcut.weight.mul_(metric_scale)
    return net


def frames(n: int = 1, height: int = 37, width: int = 29, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    one = torch.rand(n, 3, height, width, generator=generator)
    return one, torch.roll(one, shifts=(1, 2), dims=(2, 3))


# ------------------------------------------------------------------------------------------------ layout, files --

def test_state_dict_has_the_published_layout():
    state = PublishedNet().state_dict()
    assert len(state) == EXPECTED_TENSORS == 278
    assert sum(v.numel() for v in state.values()) == EXPECTED_PARAMETERS == 7_668_852
    # a few rows of the published layout, from each part of the network
    shapes = {k: list(v.shape) for k, v in state.items()}
    assert shapes['netFlow.netSixth.netMain.0.weight'] == [128, 273, 3, 3]  # 192 features + 81 costs
    assert shapes['netFlow.netFirst.netMain.0.weight'] == [128, 99, 3, 3]   # 16 + 81 + 2 (the flow)
    assert shapes['netSynthesis.netWarp.netOne.netShortcut.weight'] == [32, 72, 1, 1]
    assert shapes['netSynthesis.netSoftmetric.3x1 - 2x1.netMain.1.weight'] == [96]
    assert shapes['netSynthesis.2x5 - 1x5.netMain.4.weight'] == [64, 64, 3, 3]
    assert shapes['netSynthesis.netOutput.netShortcut.weight'] == [3, 32, 1, 1]


@pytest.mark.skipif(not REFERENCE_KEYS.is_file(), reason='needs ../shared/reference (the published key list)')
def test_state_dict_matches_the_reference_key_list_key_for_key():
    expected = {}
    for line in REFERENCE_KEYS.read_text().splitlines():
        if line.strip():
            key, shape = line.rsplit(' ', 1)
            expected[key] = [int(x) for x in shape.split('x')]
    mine = {k: list(v.shape) for k, v in PublishedNet().state_dict().items()}
    assert mine == expected


def test_both_key_spellings_load_and_give_the_same_frames(tmp_path):
    net = lively_net()
    state = net.state_dict()
    net_file, module_file = tmp_path / 'net.pytorch', tmp_path / 'softsplat-l1'
    torch.save(state, net_file)
    spelled = {k.replace('net', 'module'): v for k, v in state.items()}
    assert all(k.startswith(('moduleFlow.', 'moduleSynthesis.')) for k in spelled)
    torch.save(spelled, module_file)
    one, two = frames()
    with torch.no_grad():
        expected = net.interpolate(one, two, [0.5])[0]
        for path in (net_file, module_file):
            loaded = load_interpolator(str(path), torch.device('cpu'))
            assert isinstance(loaded, PublishedNet) and not loaded.training
            assert torch.equal(loaded.interpolate(one, two, [0.5])[0], expected)


def test_save_writes_what_the_release_reads_back(tmp_path):
    net = lively_net()
    path = tmp_path / 'network-tuned.pytorch'
    net.save(path)
    raw = torch.load(path, weights_only=True)  # the release's loader: a plain state_dict, keys mapped module -> net
    assert list(published_keys(raw)) == list(net.state_dict())
    assert all(torch.equal(raw[k], v) for k, v in net.state_dict().items())
    assert is_published_layout(raw) and models.architecture_of(raw) == models.PUBLISHED
    net.save(path, half=True)
    half = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in half.values())
    assert PublishedNet.from_file(path).state_dict()['netFlow.netFirst.netMain.0.weight'].dtype == torch.float32


def test_other_checkpoints_are_not_taken_for_the_published_layout():
    state = PublishedNet().state_dict()
    assert not is_published_layout({k: v for k, v in state.items() if k.startswith('netFlow.')})  # half a model
    assert not is_published_layout(dict(state, extra=torch.zeros(1)))
    assert not is_published_layout({'format': 'softsplat-mainnet', 'state_dict': state})
    assert not is_published_layout({})


@pytest.mark.parametrize('damage, message', [
    ('truncate', 'truncated or corrupt'),
    ('drop', 'missing: netFlow.netFirst.netMain.0.weight'),
    ('reshape', 'wrong shapes: netSynthesis.netOutput.netShortcut.weight [3, 16, 1, 1]'),
    ('nan', 'NaN or infinite weights'),
])
def test_a_broken_file_is_one_line(tmp_path, damage, message):
    state = PublishedNet().state_dict()
    path = tmp_path / 'network-l1.pytorch'
    if damage == 'drop':
        state.pop('netFlow.netFirst.netMain.0.weight')
    elif damage == 'reshape':
        state['netSynthesis.netOutput.netShortcut.weight'] = torch.zeros(3, 16, 1, 1)
    elif damage == 'nan':
        state['netSynthesis.netOutput.netShortcut.weight'][0] = float('nan')
    torch.save(state, path)
    if damage == 'truncate':
        path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(UsageError) as error:
        load_interpolator(str(path), torch.device('cpu'))
    assert message in str(error.value) and str(path) in str(error.value) and '\n' not in str(error.value)


def test_the_command_line_runs_a_published_file_and_refuses_a_truncated_one(tmp_path):
    path = tmp_path / 'network-lf.pytorch'
    lively_net().save(path)
    out = tmp_path / 'mid.png'
    run = subprocess.run([sys.executable, str(CHECKOUT / 'run_a_pair.py'), '--model', str(path), '--out', str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert out.is_file()
    path.write_bytes(path.read_bytes()[:20000])
    run = subprocess.run([sys.executable, str(CHECKOUT / 'run_a_pair.py'), '--model', str(path), '--out',
                          str(tmp_path / 'second.png')], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stderr.strip().count('\n') == 0 and 'truncated or corrupt' in run.stderr
    assert not (tmp_path / 'second.png').exists()


# ------------------------------------------------------------------------------------------------ frames --------

@pytest.mark.parametrize('height, width', [(37, 29), (16, 31), (9, 9)])
def test_any_size_gives_frames_of_that_size_in_range(height, width):
    one, two = frames(2, height, width)
    with torch.no_grad():
        results = lively_net().interpolate(one, two, [0.0, 0.25, 1.0])
    assert len(results) == 3
    for frame in results:
        assert frame.shape == (2, 3, height, width) and frame.dtype == torch.float32
        assert torch.isfinite(frame).all() and frame.min() >= 0 and frame.max() <= 1


def test_times_batches_and_determinism():
    net = lively_net()
    one, two = frames(2)
    with torch.no_grad():
        first = net.interpolate(one, two, [0.3, 0.7])
        again = net.interpolate(one, two, [0.3, 0.7])
        single = [net.interpolate(one[i:i + 1], two[i:i + 1], [0.3, 0.7]) for i in range(2)]
        per_sample = net.interpolate(one, two, [torch.tensor([0.3, 0.7])])[0]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    for i in range(2):  # a batch is its samples side by side
        for t in range(2):
            assert torch.allclose(first[t][i], single[i][t][0], atol=1e-5)
    assert torch.allclose(per_sample[0], first[0][0], atol=1e-6)  # t given per sample
    assert torch.allclose(per_sample[1], first[1][1], atol=1e-6)
    assert not torch.allclose(first[0], first[1], atol=1e-3)  # the time matters


@pytest.mark.parametrize('times', [[1.5], [-0.1], [float('nan')]])
def test_times_outside_zero_one_are_refused(times):
    one, two = frames()
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        PublishedNet().interpolate(one, two, times)


def test_mismatched_inputs_are_refused():
    one, two = frames()
    with pytest.raises(ValueError, match='same shape'):
        PublishedNet().interpolate(one, two[:, :, :-1], [0.5])
    with pytest.raises(ValueError, match=r'\[N, 3, H, W\]'):
        PublishedNet().interpolate(one[:, :2], two[:, :2], [0.5])


def test_given_flows_are_used_instead_of_the_networks():
    net = lively_net()
    one, two = frames(1, 36, 28)  # even: no padded rows the given flows would lack
    with torch.no_grad():
        flows = net.estimate_flows(one, two)
        assert all(f.shape == (1, 2, 36, 28) for f in flows)
        own = net.interpolate(one, two, [0.5])[0]
        given = net.interpolate(one, two, [0.5], flows=flows)[0]
        still = net.interpolate(one, two, [0.5], flows=tuple(torch.zeros_like(f) for f in flows))[0]
        assert torch.allclose(net.estimate_flow(one, two), flows[0], atol=1e-5)
    assert torch.allclose(own, given, atol=1e-6)
    assert not torch.allclose(own, still, atol=1e-3)


def test_quadratic_motion_from_neighbour_flows():
    net = lively_net()
    one, two = frames(1, 36, 28)
    with torch.no_grad():
        flow_01, flow_10 = net.estimate_flows(one, two)
        linear = net.interpolate(one, two, [0.25])[0]
        # neighbours that continue the pair's motion: no acceleration, exactly the linear frame
        steady = net.interpolate(one, two, [0.25], outer=(-flow_01, -flow_10))[0]
        curved = net.interpolate(one, two, [0.25], outer=(torch.zeros_like(flow_01), torch.zeros_like(flow_10)))[0]
        from_frames = net.interpolate(one, two, [0.25], before=two, after=one)  # frames only: flows estimated here
    assert torch.equal(linear, steady)
    assert (linear - curved).abs().max() > 1e-3
    assert from_frames[0].shape == linear.shape


def test_frozen_value():
    """A value of this implementation frozen on 2026-12-06 (torch 2.13.0, CPU): any change to the arithmetic shows."""
    one, two = frames(1, 37, 29)
    with torch.no_grad():
        frame = lively_net().interpolate(one, two, [0.4])[0]
    assert frame.mean().item() == pytest.approx(FROZEN_MEAN, abs=2e-5)
    assert frame[0, :, 18, 14].tolist() == pytest.approx(FROZEN_PIXEL, abs=2e-4)


FROZEN_MEAN = 0.576904
FROZEN_PIXEL = [0.521051, 0.203048, 0.674278]


# ------------------------------------------------------------------------------------------------ gradients -----

def test_gradcheck_flow_network():
    torch.manual_seed(0)
    net = PublishedNet().double()
    one, two = (f.double().requires_grad_() for f in frames(1, 6, 10))
    assert torch.autograd.gradcheck(lambda a, b: net.netFlow(a, b), (one, two), eps=1e-6, atol=1e-6,
                                    fast_mode=True)


def test_gradcheck_synthesis_in_frames_and_flows():
    torch.manual_seed(0)
    net = PublishedNet().double()
    one, two = (f.double().requires_grad_() for f in frames(1, 6, 10))
    generator = torch.Generator().manual_seed(3)
    flows = [(2 * torch.randn(1, 2, 6, 10, generator=generator, dtype=torch.float64)).requires_grad_()
             for _ in range(2)]
    assert torch.autograd.gradcheck(lambda a, b, f, g: net.netSynthesis(a, b, f, g, 0.3), (one, two, *flows),
                                    eps=1e-6, atol=1e-6, fast_mode=True)


def test_gradcheck_whole_model_in_its_weights():
    """Training reaches every part: the flow network's last bias through flow, warping and synthesis; the metric
    and the splatting level's weights."""
    net = lively_net().double()
    one, two = (f.double() for f in frames(1, 6, 10))
    names = ['netFlow.netFirst.netMain.10.bias', 'netSynthesis.netSoftmetric.netOutput.netShortcut.weight',
             'netSynthesis.netWarp.netOne.netMain.1.weight']
    params = dict(net.named_parameters())

    def frame(*values):
        return functional_call(net, dict(zip(names, values)), (one, two, 0.3))

    inputs = tuple(params[name].detach().clone().requires_grad_() for name in names)
    assert torch.autograd.gradcheck(frame, inputs, eps=1e-6, atol=1e-6, fast_mode=True)


def test_training_step_reaches_every_parameter():
    net = lively_net().train()
    one, two = frames(2, 24, 32)
    net(one, two, 0.5).mean().backward()
    dead = [name for name, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert dead == []
    net.zero_grad()
    net.set_flow_trainable(False)
    net(one, two, 0.5).mean().backward()
    assert all(p.grad is None for p in net.netFlow.parameters())
    assert all(p.grad is not None for p in net.netSynthesis.parameters())


# ------------------------------------------------------------------------------------------------ CUDA ----------

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_cuda_kernels_and_float16_agree_with_the_cpu(tmp_path):
    """On CUDA the CuPy kernels of softsplat and the cost volume run, and --fp16 (autocast) too. The CPU side of the
    same logic is every other test here (the PyTorch paths of both), and the kernels' own CPU tests."""
    net = lively_net()
    path = tmp_path / 'network-l1.pytorch'
    net.save(path)
    one, two = frames(2, 37, 29)
    device = torch.device('cuda')
    with torch.no_grad():
        expected = net.interpolate(one, two, [0.3, 0.5])
        on_gpu = load_interpolator(str(path), device).interpolate(one.to(device), two.to(device), [0.3, 0.5])
        in_half = load_interpolator(str(path), device, fp16=True).interpolate(one.to(device), two.to(device),
                                                                             [0.3, 0.5])
    for a, b, c in zip(expected, on_gpu, in_half):
        assert (a - b.cpu()).abs().max() < 1e-4
        assert c.dtype == torch.float32 and (a - c.cpu()).abs().mean() < 2e-2


def test_the_release_names_find_its_files_or_say_where_to_put_them(tmp_path, monkeypatch):
    from softmax_splatting import interpolator
    monkeypatch.setattr(interpolator, 'DEFAULT_CHECKPOINT', tmp_path / 'weights' / 'softsplat.pt')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(UsageError) as error:
        load_interpolator('lf', torch.device('cpu'))
    message = str(error.value)
    assert 'http://content.sniklaus.com/softsplat/network-lf.pytorch' in message
    assert str(tmp_path / 'weights' / 'network-lf.pytorch') in message and 'softsplat-lf' in message
    cached = tmp_path / 'hub' / 'checkpoints' / 'softsplat-lf'  # what the release's script leaves in torch hub
    cached.parent.mkdir(parents=True)
    torch.save({k.replace('net', 'module'): v for k, v in lively_net().state_dict().items()}, cached)
    assert isinstance(load_interpolator('lf', torch.device('cpu')), PublishedNet)
    (tmp_path / 'weights').mkdir()
    PublishedNet().save(tmp_path / 'weights' / 'network-lf.pytorch')  # weights/ is looked at first
    assert interpolator.published_weights('lf') == tmp_path / 'weights' / 'network-lf.pytorch'
    with pytest.raises(UsageError, match='network-l1.pytorch'):
        load_interpolator('l1', torch.device('cpu'))
