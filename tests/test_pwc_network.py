"""pwc/network.py and pwc/inference.py: the checkpoint layout, loading in both key styles, errors, shapes,
differentiability of ``estimate``, and (when a user has the published weights) the flow of a real pair."""

from pathlib import Path

import numpy as np
import pytest
import torch

from softmax_splatting.pwc import PWCNet, estimate, inference, network, read_flo
from softmax_splatting.pwc.network import CheckpointError, to_file_layout, to_net_layout

SHARED = Path(__file__).resolve().parents[1].parent / 'shared'
MANIFEST = SHARED / 'reference' / 'pwc_network_default_keys.txt'


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return PWCNet()


def read_manifest(path):
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith('#'):
            key, shape = line.split()
            entries[key] = tuple(int(v) for v in shape.split('x'))
    return entries


@pytest.mark.skipif(not MANIFEST.is_file(), reason='../shared/reference is not here (a fresh clone has none)')
def test_state_dict_matches_the_manifest_key_for_key(net):
    manifest = read_manifest(MANIFEST)
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert list(mine) == list(manifest)
    assert mine == manifest


def test_state_dict_size_and_landmark_shapes(net):
    state = net.state_dict()
    assert len(state) == 126
    assert sum(v.numel() for v in state.values()) == 9_374_274
    landmarks = {
        'netExtractor.netOne.0.weight': (16, 3, 3, 3),
        'netExtractor.netSix.4.weight': (196, 196, 3, 3),
        'netSix.netOne.0.weight': (128, 81, 3, 3),
        'netSix.netSix.0.weight': (2, 529, 3, 3),
        'netFiv.netUpfeat.weight': (529, 2, 4, 4),
        'netTwo.netUpflow.weight': (2, 2, 4, 4),
        'netTwo.netOne.0.weight': (128, 117, 3, 3),
        'netTwo.netUpfeat.weight': (597, 2, 4, 4),
        'netRefiner.netMain.0.weight': (128, 565, 3, 3),
        'netRefiner.netMain.12.weight': (2, 32, 3, 3),
    }
    for key, shape in landmarks.items():
        assert tuple(state[key].shape) == shape, key
    assert 'netSix.netUpflow.weight' not in state  # the coarsest level has nothing to upsample
    dilations = [m.dilation[0] for m in net.netRefiner.netMain if isinstance(m, torch.nn.Conv2d)]
    assert dilations == [1, 2, 4, 8, 16, 1, 1]
    scales = [decoder.warp_scale for decoder in (net.netFiv, net.netFou, net.netThr, net.netTwo)]
    assert scales == [0.625, 1.25, 2.5, 5.0]  # the coarser flow (pixels / 20) in this level's pixels
    slopes = {m.negative_slope for m in net.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.1}


def test_key_translation_round_trips():
    assert to_file_layout('netExtractor.netOne.0.weight') == 'moduleExtractor.moduleOne.0.weight'
    assert to_net_layout('moduleRefiner.moduleMain.12.bias') == 'netRefiner.netMain.12.bias'
    assert to_net_layout('netTwo.netUpfeat.weight') == 'netTwo.netUpfeat.weight'


@pytest.mark.parametrize('style', ['module', 'net', 'dataparallel', 'training-checkpoint'])
def test_from_file_round_trip(tmp_path, net, style):
    state = {k: v.clone() for k, v in net.state_dict().items()}
    if style == 'module':
        saved = {to_file_layout(k): v for k, v in state.items()}
    elif style == 'net':
        saved = state
    elif style == 'dataparallel':
        saved = {'module.' + to_file_layout(k): v for k, v in state.items()}
    else:
        saved = {'model': state, 'step': 3}
    path = tmp_path / 'weights.pytorch'
    torch.save(saved, path)
    loaded = PWCNet.from_file(path)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_save_writes_the_published_layout(tmp_path, net):
    path = tmp_path / 'out' / 'network-default.pytorch'
    net.save(path)
    stored = torch.load(path, weights_only=True)
    assert all(k.startswith('module') for k in stored)
    assert 'moduleExtractor.moduleOne.0.weight' in stored
    assert [p.name for p in path.parent.iterdir()] == ['network-default.pytorch']  # no temporary left behind
    assert torch.equal(PWCNet.from_file(path).netRefiner.netMain[12].weight, net.netRefiner.netMain[12].weight)


def test_mismatched_file_lists_the_keys(tmp_path, net):
    state = {to_file_layout(k): v for k, v in net.state_dict().items()}
    del state['moduleRefiner.moduleMain.12.bias']
    state['moduleExtra.weight'] = torch.zeros(1)
    state['moduleSix.moduleOne.0.weight'] = torch.zeros(128, 80, 3, 3)
    path = tmp_path / 'wrong.pytorch'
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        PWCNet.from_file(path)
    message = str(info.value)
    assert str(path) in message
    assert 'missing keys (1): netRefiner.netMain.12.bias' in message
    assert 'unexpected keys (1): netExtra.weight' in message
    assert 'netSix.netOne.0.weight (128, 80, 3, 3) (expected (128, 81, 3, 3))' in message
    assert isinstance(info.value, ValueError)


def test_unreadable_and_missing_files(tmp_path, monkeypatch):
    garbage = tmp_path / 'garbage.pytorch'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='garbage.pytorch'):
        PWCNet.from_file(garbage)
    torch.save([torch.zeros(1)], tmp_path / 'list.pytorch')
    with pytest.raises(CheckpointError, match='not a PWC-Net checkpoint'):
        PWCNet.from_file(tmp_path / 'list.pytorch')
    with pytest.raises(FileNotFoundError, match='nothing.pytorch'):
        PWCNet.from_file(tmp_path / 'nothing.pytorch')
    monkeypatch.setattr(network, 'DEFAULT_WEIGHTS', tmp_path / 'weights' / 'network-default.pytorch')
    monkeypatch.setattr(inference, 'DEFAULT_WEIGHTS', network.DEFAULT_WEIGHTS)
    with pytest.raises(FileNotFoundError, match='network-default.pytorch.*nothing is downloaded'):
        PWCNet.from_file()
    with pytest.raises(FileNotFoundError, match='pwc/weights/README.md'):
        estimate(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_forward_shapes_and_levels(net):
    one, two = torch.rand(1, 3, 64, 128), torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        flow = net(one, two)
        levels = net(one, two, return_levels=True)
    assert flow.shape == (1, 2, 16, 32)
    assert [tuple(level.shape[2:]) for level in levels] == [(1, 2), (2, 4), (4, 8), (8, 16), (16, 32)]
    torch.testing.assert_close(flow, levels[-1] * 20)


@pytest.mark.parametrize('shape, words', [((1, 3, 64, 96), 'multiples of 64'), ((1, 4, 64, 64), '[N, 3, H, W]')])
def test_forward_rejects_bad_sizes(net, shape, words):
    with pytest.raises(ValueError, match=words.replace('[', r'\[').replace(']', r'\]')):
        net(torch.rand(shape), torch.rand(shape))


def test_estimate_odd_sizes_and_rgb_to_bgr(net):
    def resize(t):
        return torch.nn.functional.interpolate(t.flip(1), size=(128, 128), mode='bilinear')

    one, two = torch.rand(1, 3, 67, 93), torch.rand(1, 3, 67, 93)
    with torch.no_grad():
        flow = estimate(one, two, net=net)
        assert flow.shape == (1, 2, 67, 93) and flow.dtype == torch.float32
        # The same computation by hand: BGR, resized to 128 x 128, flow upsampled and rescaled per axis.
        raw = torch.nn.functional.interpolate(net(resize(one), resize(two)), size=(67, 93), mode='bilinear')
    torch.testing.assert_close(flow[:, 0], raw[:, 0] * 93 / 128)
    torch.testing.assert_close(flow[:, 1], raw[:, 1] * 67 / 128)


def test_estimate_is_differentiable_through_the_network_and_inputs(net):
    one = torch.rand(1, 3, 64, 64, requires_grad=True)
    two = torch.rand(1, 3, 64, 64)
    net.zero_grad()
    flow = estimate(one, two, net=net)
    flow.square().mean().backward()
    assert one.grad is not None and one.grad.abs().sum() > 0
    assert net.netExtractor.netOne[0].weight.grad.abs().sum() > 0
    assert net.netRefiner.netMain[12].bias.grad.abs().sum() > 0
    net.zero_grad()


def test_estimate_rejects_bad_inputs(net):
    with pytest.raises(ValueError, match='RGB'):
        estimate(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32), net=net)
    with pytest.raises(ValueError, match='one shape'):
        estimate(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 33), net=net)
    with pytest.raises(TypeError, match='one must be'):
        estimate(np.zeros((1, 3, 32, 32)), torch.rand(1, 3, 32, 32), net=net)


def test_default_network_is_cached_and_frozen(tmp_path, monkeypatch, net):
    path = tmp_path / 'network-default.pytorch'
    net.save(path)
    monkeypatch.setattr(inference, 'DEFAULT_WEIGHTS', path)
    first = inference.default_network('cpu')
    assert inference.default_network('cpu') is first
    assert not any(p.requires_grad for p in first.parameters())
    one = torch.rand(1, 3, 40, 50)
    torch.testing.assert_close(estimate(one, one.flip(3)), estimate(one, one.flip(3), net=net))


@pytest.mark.skipif(not (network.DEFAULT_WEIGHTS.is_file() and (SHARED / 'data' / 'splat_demo').is_dir()),
                    reason='needs the published weights in pwc/weights/ and ../shared/data/splat_demo')
def test_published_weights_reproduce_the_demo_flow():
    """splat_demo/flow.flo was estimated by a PWC-Net; ours, with the published weights, should agree closely."""
    from softmax_splatting.frames import read_image, to_tensor  # noqa: PLC0415
    folder = SHARED / 'data' / 'splat_demo'
    one, two = (to_tensor(read_image(folder / name)) for name in ('one.png', 'two.png'))
    with torch.no_grad():
        flow = estimate(one, two)
    truth = torch.from_numpy(read_flo(folder / 'flow.flo')).permute(2, 0, 1)[None]
    epe = torch.linalg.vector_norm(flow - truth, dim=1).mean().item()
    assert epe < 0.5, f'endpoint error {epe:.3f} against the demo flow'
