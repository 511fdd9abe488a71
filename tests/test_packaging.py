"""The project as others get it: `pip install .` with console scripts and package data, and pwc/ on its own.

The install builds with the setuptools of the interpreter running the tests (what requirements-test.txt installed;
no build isolation, no dependencies), so it needs no network and checks our packaging, not the registry. It goes
into a folder of its own (`pip install --target`) that the commands then find through PYTHONPATH: a fresh virtual
environment would see the base interpreter's packages instead of the test environment's, and the base Python of a
new machine has an old setuptools that cannot build wheels (issue 22).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from softmax_splatting import files

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ['softsplat-interpolate', 'softsplat-train', 'softsplat-train-flow', 'softsplat-benchmark',
           'softsplat-triplets', 'softsplat-app']


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """``pip install .`` into a folder of its own; returns that folder (the package, and the commands in bin/)."""
    root = tmp_path_factory.mktemp('install')
    source = root / 'source'  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO, source, symlinks=True,
                    ignore=shutil.ignore_patterns('.git', 'data', 'runs', '__pycache__', '*.egg-info', 'build'))
    target = root / 'site'
    result = subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-build-isolation',
                             '--no-index', '--target', str(target), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return target


def run_installed(installed, command, **kwargs):
    """Run ``command`` (a command of bin/ or a Python) with the installed package first on the import path."""
    env = dict(os.environ, PYTHONPATH=str(installed))
    return subprocess.run(command, capture_output=True, text=True, env=env, **kwargs)


def test_install_gives_the_commands_and_the_package_data(installed):
    for script in SCRIPTS:
        assert (installed / 'bin' / script).is_file(), script
    where = 'import softmax_splatting, pathlib; print(pathlib.Path(softmax_splatting.__file__).parent)'
    found = run_installed(installed, [sys.executable, '-c', where], cwd='/', check=True).stdout.strip()
    package = Path(found)
    assert str(package).startswith(str(installed)), package  # the installed copy, not the checkout
    for data in ('weights/softsplat.pt', 'example_img/one.png', 'example_img/two.png', 'app/sync.js'):
        assert (package / data).is_file(), data
    # no generic top-level modules (frames, video, ...) are installed: one package only
    assert package.parent == installed
    assert not any((installed / f'{name}.py').exists() for name in ('frames', 'video', 'metrics', 'softsplat',
                                                                     'main_net'))


def test_interpolate_from_another_folder(installed, tmp_path):
    shutil.copy(files.EXAMPLE_IMAGES / 'one.png', tmp_path / 'a.png')
    shutil.copy(files.EXAMPLE_IMAGES / 'two.png', tmp_path / 'b.png')
    command = [installed / 'bin' / 'softsplat-interpolate', '--one', 'a.png', '--two', 'b.png', '--out', 'c.png',
               '--threads', '2']
    result = run_installed(installed, command, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'c.png').is_file()
    default = run_installed(installed, [installed / 'bin' / 'softsplat-interpolate', '--out', 'd.png', '--threads',
                                        '2'], cwd=tmp_path, timeout=300)
    assert default.returncode == 0, default.stderr  # the example pair ships with the package


def test_every_command_answers_help(installed):
    for script in SCRIPTS:
        result = run_installed(installed, [installed / 'bin' / script, '--help'], timeout=120)
        assert result.returncode == 0 and 'usage: ' + script in result.stdout, (script, result.stderr)


def test_pwc_copied_alone_imports_and_estimates_flow(tmp_path):
    shutil.copytree(REPO / 'softmax_splatting' / 'pwc', tmp_path / 'pwc')
    code = '\n'.join([
        'import sys, torch, pwc',
        'assert "softmax_splatting" not in sys.modules',
        'one = torch.rand(1, 3, 64, 96)',
        'net = pwc.PWCNet()',
        'flow = pwc.estimate(one, torch.roll(one, 2, dims=3), net=net)',
        'assert flow.shape == (1, 2, 64, 96) and torch.isfinite(flow).all()',
        'net.save("net.pytorch")',
        'again = pwc.PWCNet.from_file("net.pytorch")',
        'assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))',
        'pwc.write_flo("f.flo", flow[0])',
        'assert pwc.read_flo("f.flo").shape == (64, 96, 2)',
        'print("ok")',
    ])
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={'PATH': '/usr/bin:/bin', 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(tmp_path)})
    assert result.returncode == 0 and result.stdout.strip() == 'ok', result.stderr[-3000:]


def test_pwc_alone_refuses_the_cupy_backend_with_a_reason(tmp_path):
    shutil.copytree(REPO / 'softmax_splatting' / 'pwc', tmp_path / 'pwc')
    code = ('import torch, pwc\n'
            'x = torch.rand(1, 4, 8, 8)\n'
            'assert pwc.correlation(x, x).shape == (1, 81, 8, 8)\n'
            'pwc.correlation(x, x, backend="cupy")\n')
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': str(tmp_path)})
    assert result.returncode != 0 and 'softmax_splatting package' in result.stderr


def test_flow_written_from_a_differentiable_estimate(tmp_path):
    from softmax_splatting import pwc
    flow = np.zeros((4, 5, 2), np.float32)
    tensor = torch.zeros(1, 2, 4, 5, requires_grad=True) * 2  # part of a graph, as pwc.estimate returns it
    pwc.write_flo(tmp_path / 'a.flo', tensor[0])
    assert np.array_equal(pwc.read_flo(tmp_path / 'a.flo'), flow)
