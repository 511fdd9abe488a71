"""interpolator.py: choosing between a model file and the classical interpolator (no network code needed)."""

import sys
import types

import pytest
import torch

import softmax_splatting
from softmax_splatting import interpolator
from softmax_splatting.classical import ClassicalInterpolator
from softmax_splatting.errors import UsageError

CPU = torch.device('cpu')


def test_classical_by_name(capsys):
    chosen = interpolator.load_interpolator('classical', CPU)
    assert isinstance(chosen, ClassicalInterpolator)
    assert capsys.readouterr().err == ''


def test_default_without_weights_falls_back_with_a_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(interpolator, 'DEFAULT_CHECKPOINT', tmp_path / 'weights' / 'softsplat.pt')
    chosen = interpolator.load_interpolator(None, CPU)
    assert isinstance(chosen, ClassicalInterpolator)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert 'softsplat.pt' in err and 'classical' in err


def test_missing_checkpoint_is_a_usage_error(tmp_path):
    missing = tmp_path / 'nowhere.pt'
    with pytest.raises(UsageError, match='nowhere.pt'):
        interpolator.load_interpolator(str(missing), CPU)


class FakeNet(torch.nn.Module):
    """Stands in for a network that models.read_model built: records how it was loaded."""

    loaded = []

    @classmethod
    def read_model(cls, path, map_location=None):
        if 'broken' in str(path):
            raise ValueError(f'{path}: not a MainNet checkpoint (no "state_dict")\nsecond line')
        cls.loaded.append((str(path), map_location))
        return cls().eval()

    def interpolate(self, one, two, times):
        return [one * (1 - t) + two * t for t in times]


@pytest.fixture
def fake_main_net(monkeypatch):
    module = types.ModuleType('models')
    module.read_model = FakeNet.read_model
    FakeNet.loaded = []
    monkeypatch.setitem(sys.modules, 'softmax_splatting.models', module)
    monkeypatch.setattr(softmax_splatting, 'models', module, raising=False)
    return module


def test_checkpoint_path_loads_main_net(tmp_path, fake_main_net):
    checkpoint = tmp_path / 'model.pt'
    checkpoint.write_bytes(b'weights')
    chosen = interpolator.load_interpolator(str(checkpoint), CPU)
    assert isinstance(chosen, FakeNet) and not chosen.training
    assert FakeNet.loaded == [(str(checkpoint), CPU)]


@pytest.mark.parametrize('declared', [True, False])
def test_shipped_checkpoint_is_the_default_only_when_declared(tmp_path, monkeypatch, fake_main_net, capsys,
                                                               declared):
    """weights/softsplat.pt is used by default only once it is declared the default (it has beaten classical);
    before that it is a preview, opt-in with --model, and the default run says so in one line."""
    checkpoint = tmp_path / 'softsplat.pt'
    checkpoint.write_bytes(b'weights')
    monkeypatch.setattr(interpolator, 'DEFAULT_CHECKPOINT', checkpoint)
    monkeypatch.setattr(interpolator, 'CHECKPOINT_IS_DEFAULT', declared)
    chosen = interpolator.load_interpolator(None, CPU)
    err = capsys.readouterr().err
    if declared:
        assert isinstance(chosen, FakeNet) and err == ''
    else:
        assert isinstance(chosen, ClassicalInterpolator)
        assert len(err.strip().splitlines()) == 1 and 'preview' in err and '--model' in err
        assert isinstance(interpolator.load_interpolator(str(checkpoint), CPU), FakeNet)


def test_load_failure_becomes_one_line_usage_error(tmp_path, fake_main_net):
    checkpoint = tmp_path / 'broken.pt'
    checkpoint.write_bytes(b'junk')
    with pytest.raises(UsageError) as error:
        interpolator.load_interpolator(str(checkpoint), CPU)
    message = str(error.value)
    assert 'broken.pt' in message and 'no "state_dict"' in message and '\n' not in message


def test_missing_network_module_is_a_usage_error(tmp_path, monkeypatch):
    checkpoint = tmp_path / 'model.pt'
    checkpoint.write_bytes(b'weights')
    monkeypatch.setitem(sys.modules, 'softmax_splatting.models', None)  # makes `from . import models` fail
    monkeypatch.delattr(softmax_splatting, 'models', raising=False)
    with pytest.raises(UsageError, match='model.pt'):
        interpolator.load_interpolator(str(checkpoint), CPU)


def test_fp16_is_rejected_where_it_does_not_apply(tmp_path, fake_main_net):
    with pytest.raises(UsageError, match='fp16'):
        interpolator.load_interpolator('classical', CPU, fp16=True)
    checkpoint = tmp_path / 'model.pt'
    checkpoint.write_bytes(b'weights')
    with pytest.raises(UsageError, match='CUDA'):
        interpolator.load_interpolator(str(checkpoint), CPU, fp16=True)


def test_real_main_net_rejects_a_junk_file(tmp_path):
    checkpoint = tmp_path / 'junk.pt'
    checkpoint.write_bytes(b'this is not a checkpoint')
    with pytest.raises(UsageError) as error:
        interpolator.load_interpolator(str(checkpoint), CPU)
    message = str(error.value)
    assert 'junk.pt' in message and '\n' not in message and message.count(str(checkpoint)) == 1
