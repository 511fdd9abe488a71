"""pwc/cost_volume.py: the cost volume against a brute-force loop, the CUDA kernels' logic on the CPU, gradients,
nvcc compilation of the kernel source, and the CuPy backend on a real GPU (skipped without CUDA)."""

import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from kernels_on_cpu import CpuKernels, compiler

from softmax_splatting.cupy_launch import import_cupy
from softmax_splatting.pwc import correlation, cost_volume as pc

requires_cxx = pytest.mark.skipif(compiler() is None, reason='no C++ compiler to build the kernels for the CPU')


def brute_force(one, two):
    """The definition, one displacement and pixel at a time, in float64."""
    one, two = one.double().numpy(), two.double().numpy()
    n, c, h, w = one.shape
    out = np.zeros((n, 81, h, w))
    for dy in range(-4, 5):
        for dx in range(-4, 5):
            for y in range(h):
                for x in range(w):
                    if 0 <= y + dy < h and 0 <= x + dx < w:
                        out[:, (dy + 4) * 9 + dx + 4, y, x] = (one[:, :, y, x] * two[:, :, y + dy, x + dx]).mean(1)
    return torch.from_numpy(out)


def features(n=2, c=3, h=6, w=11, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, h, w, generator=gen, dtype=dtype), torch.randn(n, c, h, w, generator=gen, dtype=dtype))


@pytest.fixture(scope='module')
def cpu_kernels():
    return CpuKernels(pc.CUDA_SOURCE)


def test_torch_path_matches_brute_force():
    one, two = features()
    torch.testing.assert_close(correlation(one, two, backend='torch'), brute_force(one, two), rtol=1e-12, atol=1e-12)


def test_channel_order_is_dy_major():
    """A feature map that is a single spike reveals which channel holds which displacement."""
    one = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    two = torch.zeros_like(one)
    one[0, 0, 4, 4] = 1.0
    two[0, 0, 4 + 3, 4 - 2] = 1.0  # dy = 3, dx = -2
    out = correlation(one, two)
    assert out[0, :, 4, 4].nonzero().flatten().tolist() == [(3 + 4) * 9 + (-2 + 4)]
    assert out.sum() == 1.0


def test_mean_over_channels_and_zero_outside():
    one, two = torch.ones(1, 5, 3, 3), torch.full((1, 5, 3, 3), 2.0)
    out = correlation(one, two)
    assert out[0, 40].eq(2.0).all()  # zero displacement: mean of 1 * 2
    assert out[0, 0].eq(0.0).all()  # dx = dy = -4 reaches outside a 3 x 3 image everywhere


def test_gradcheck_torch_path():
    one, two = features(n=1, c=2, h=3, w=5)
    assert torch.autograd.gradcheck(lambda a, b: correlation(a, b, backend='torch'),
                                    (one.requires_grad_(), two.requires_grad_()), fast_mode=True)


@requires_cxx
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_cpu_compiled_kernels_match_brute_force_and_torch_path(cpu_kernels, dtype):
    one, two = features(n=2, c=5, h=7, w=10, dtype=dtype, seed=3)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    out = pc.correlation_with_kernels(one, two, cpu_kernels)
    torch.testing.assert_close(out.double(), brute_force(one, two), rtol=tol, atol=tol)

    upstream = torch.randn(2, 81, 7, 10, dtype=dtype)
    grads = []
    for fn in (lambda a, b: pc.correlation_with_kernels(a, b, cpu_kernels), pc.correlation_torch):
        a, b = one.clone().requires_grad_(), two.clone().requires_grad_()
        (fn(a, b) * upstream).sum().backward()
        grads.append((a.grad, b.grad))
    for mine, theirs in zip(*grads):
        torch.testing.assert_close(mine, theirs, rtol=tol * 10, atol=tol * 10)


@requires_cxx
def test_cpu_compiled_kernels_gradcheck_and_partial_gradients(cpu_kernels):
    one, two = features(n=2, c=2, h=3, w=6, seed=5)

    def fn(a, b):
        return pc.correlation_with_kernels(a, b, cpu_kernels)

    assert torch.autograd.gradcheck(fn, (one.clone().requires_grad_(), two.clone().requires_grad_()), fast_mode=True)
    b = two.clone().requires_grad_()
    fn(one, b).sum().backward()  # only the second input needs a gradient: the kernel skips the other output
    reference = two.clone().requires_grad_()
    pc.correlation_torch(one, reference).sum().backward()
    torch.testing.assert_close(b.grad, reference.grad)


def test_float16_is_computed_in_float32_and_returned_as_float16():
    one, two = features(n=1, c=64, h=4, w=4, dtype=torch.float32)
    out = correlation(one.half(), two.half())
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), correlation(one.half().float(), two.half().float()), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('args, error, words', [
    ((np.zeros((1, 2, 3, 3)), torch.zeros(1, 2, 3, 3)), TypeError, 'one must be a torch.Tensor'),
    ((torch.zeros(1, 2, 3, 3, dtype=torch.int64), torch.zeros(1, 2, 3, 3)), TypeError, 'floating-point'),
    ((torch.zeros(2, 3, 3), torch.zeros(2, 3, 3)), ValueError, '[N, C, H, W]'),
    ((torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4)), ValueError, 'same shape'),
])
def test_bad_inputs_name_the_argument(args, error, words):
    with pytest.raises(error, match=re.escape(words)):
        correlation(*args)


def test_backend_selection_errors(monkeypatch):
    one, two = features(n=1, c=1, h=2, w=2)
    with pytest.raises(ValueError, match='runs CUDA tensors only'):
        correlation(one, two, backend='cupy')
    monkeypatch.setenv(pc.BACKEND_ENV, 'fast')
    with pytest.raises(ValueError, match=pc.BACKEND_ENV):
        correlation(one, two)
    monkeypatch.setenv(pc.BACKEND_ENV, 'torch')
    assert correlation(one, two).shape == (1, 81, 2, 2)


# ------------------------------------------------------------------------------------------------ nvcc ---------

NVCC = shutil.which('nvcc')


@pytest.mark.skipif(NVCC is None, reason='nvcc is not on PATH')
@pytest.mark.parametrize('arch', ['sm_80', 'sm_90'])
def test_cuda_source_compiles_with_nvcc(tmp_path, arch):
    for scalar in ('float', 'double'):
        source = tmp_path / f'correlation_{scalar}.cu'
        source.write_text(f'typedef {scalar} scalar_t;\n{pc.CUDA_SOURCE}')
        ptx = tmp_path / f'correlation_{scalar}.ptx'
        result = subprocess.run([NVCC, '-ptx', f'-arch={arch}', '-std=c++14', '-o', str(ptx), str(source)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        text = ptx.read_text()
        for name in ('correlation_forward', 'correlation_backward'):
            assert f'.entry {name}(' in text


# ------------------------------------------------------------------------------------------------ CUDA ---------

def cupy_available():
    return torch.cuda.is_available() and import_cupy()[0] is not None


requires_cupy = pytest.mark.skipif(not cupy_available(), reason='needs a CUDA GPU and CuPy')


@pytest.mark.cuda
@requires_cupy
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
@pytest.mark.parametrize('shape', [(2, 16, 17, 23), (1, 196, 7, 16), (1, 32, 112, 256)])
def test_cupy_matches_torch_path(shape, dtype):
    one, two = (t.cuda().to(dtype) for t in features(*shape, dtype=torch.float32, seed=11))
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    results = []
    for backend in ('cupy', 'torch'):
        a, b = one.clone().requires_grad_(), two.clone().requires_grad_()
        out = correlation(a, b, backend=backend)
        assert out.dtype == dtype
        (out.float() * torch.linspace(-1, 1, out.numel(), device='cuda').view_as(out)).sum().backward()
        results.append((out, a.grad, b.grad))
    for mine, theirs in zip(*results):
        torch.testing.assert_close(mine.float(), theirs.float(), rtol=tol, atol=tol)


@pytest.mark.cuda
@requires_cupy
def test_cupy_runs_on_the_current_stream_and_non_contiguous_inputs():
    one, two = (t.cuda() for t in features(2, 8, 20, 30, dtype=torch.float32))
    expected = correlation(one, two, backend='torch')
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = correlation(one.transpose(2, 3).contiguous().transpose(2, 3), two, backend='cupy')
    stream.synchronize()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
