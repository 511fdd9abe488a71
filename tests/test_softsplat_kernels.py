"""The CUDA kernels of softsplat.py: their logic on the CPU (compiled as C++), their source under nvcc, and the
CuPy backend against the PyTorch path on a real GPU (skipped without CUDA)."""

import shutil
import subprocess

import pytest
import torch
from kernels_on_cpu import CpuKernels, compiler
from test_softsplat import MODES, SWEEP, make_inputs, needs_metric, reference, sparse_inputs

from softmax_splatting import cupy_launch, softsplat as ss

requires_cxx = pytest.mark.skipif(compiler() is None, reason='no C++ compiler to build the kernels for the CPU')


def cupy_available():
    return torch.cuda.is_available() and cupy_launch.import_cupy()[0] is not None


requires_cupy = pytest.mark.skipif(not cupy_available(), reason='needs a CUDA GPU and CuPy')


@pytest.fixture(scope='module')
def cpu_kernels():
    return CpuKernels(ss.CUDA_SOURCE)


@pytest.fixture(scope='module', params=['cpu', pytest.param('cuda', marks=[pytest.mark.cuda, requires_cupy])])
def kernels_on(request):
    """``(launcher, device)``: the kernels compiled as C++ (one thread, plain read-modify-writes), or through CuPy
    on a GPU, where thousands of threads race through the real atomics. The same test runs on both."""
    if request.param == 'cpu':
        if compiler() is None:
            pytest.skip('no C++ compiler to build the kernels for the CPU')
        return CpuKernels(ss.CUDA_SOURCE), torch.device('cpu')
    return cupy_launch.cupy_launcher(ss.CUDA_SOURCE), torch.device('cuda')


def through_kernels(launcher, x, flow, metric, mode):
    kind, rule = ss.parse_mode(mode)
    num, den, eps_scale = ss.splat_with_kernels(x, flow, metric, kind, launcher)
    return num if kind == 'sum' else ss.normalize(num, den, rule, eps_scale)


KERNEL_CASES = [(mode, 4.0) for mode in MODES] + [(mode, 60.0) for mode in MODES if mode.startswith('soft')]


def awkward_inputs(dtype, seed=0, n=2, c=3, h=6, w=7):
    x, flow, metric = make_inputs(n=n, c=c, h=h, w=w, dtype=dtype, spread=2.5, seed=seed)
    flow[0, 0, 1, 2] = float('nan')
    flow[1, 1, 3, 3] = float('-inf')
    flow[1, :, 0, 0] = torch.tensor([1e9, 3.0], dtype=dtype)  # far outside, beyond int range
    flow[0, :, 2, 2] = torch.tensor([-2.0, 1.0], dtype=dtype)  # integer: zero-weight corners
    metric[1, 0, 2, 4] = float('nan')  # a non-finite metric drops the source in linear/soft
    return x, flow, metric


@requires_cxx
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('mode, metric_scale', KERNEL_CASES)
def test_cpu_compiled_kernels_match_reference_and_torch_path(cpu_kernels, mode, metric_scale, dtype):
    """Scale 60 makes soft shift per target (its metrics span more than 40), scale 4 per sample."""
    x, flow, metric = awkward_inputs(dtype)
    if needs_metric(mode):
        metric = metric.abs() + 0.1 if mode.startswith('linear') else metric * metric_scale
    else:
        metric = None
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    out = through_kernels(cpu_kernels, x, flow, metric, mode)
    torch.testing.assert_close(out.double(), reference(x, flow, metric, mode), rtol=tol, atol=tol)

    leaves = [t.clone().requires_grad_() for t in (x, flow) + ((metric,) if metric is not None else ())]
    args = leaves + [None] * (3 - len(leaves))
    upstream = torch.randn_like(x)
    (through_kernels(cpu_kernels, *args, mode) * upstream).sum().backward()
    grads_kernel = [t.grad for t in leaves]
    for t in leaves:
        t.grad = None
    (ss.softsplat(*args, mode, backend='torch') * upstream).sum().backward()
    for mine, theirs, name in zip(grads_kernel, [t.grad for t in leaves], ('tenIn', 'tenFlow', 'tenMetric')):
        torch.testing.assert_close(mine, theirs, rtol=tol * 10, atol=tol * 10, msg=f'gradient of {name}')


@requires_cxx
@pytest.mark.parametrize('mode, metric_scale', [(m, 1.0) for m in MODES] + [('soft', 30.0), ('soft-clipeps', 30.0)])
def test_cpu_compiled_kernels_gradcheck(cpu_kernels, mode, metric_scale):
    x, flow, metric = make_inputs(n=2, c=2, h=4, w=5, seed=7, spread=1.5, metric_scale=metric_scale)
    metric = metric.abs() + 0.5 if mode.startswith('linear') else metric
    inputs = [x.requires_grad_(), flow.requires_grad_()] + ([metric.requires_grad_()] if needs_metric(mode) else [])

    def fn(*tensors):
        a, b, m = (list(tensors) + [None])[:3]
        return through_kernels(cpu_kernels, a, b, m, mode)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_max_kernel_orders_negative_and_positive_floats(kernels_on):
    """The float atomic maximum goes through integer atomics; mixed signs, -0.0 and -inf must order correctly."""
    launcher, device = kernels_on
    flow = torch.zeros(1, 2, 1, 4, device=device)
    flow[0, 0] = torch.tensor([3.0, 2.0, 1.0, 0.0])  # all four land on pixel 3
    slow = torch.zeros(1, dtype=torch.int32, device=device)
    cases = ([-5.0, -0.5, -7.0, -1.0], [-5.0, 2.0, 0.0, -1.0], [0.0, -0.0, -3.0, -2.0], [1e-30, 4e20, 3.0, 9.0],
             [-0.0, -3.0, -2.0, -5.0], [-3.0, -0.0, -1e-30, -2.0], [-1.0, 2.0, -0.0, -7.0], [5.0, -0.0, 6.0, -9.0])
    for values in cases:
        metric = torch.tensor(values, device=device).view(1, 1, 1, 4)
        for dtype in (torch.float32, torch.float64):
            maxbuf = torch.full((1, 1, 1, 4), float('-inf'), dtype=dtype, device=device)
            launcher('softsplat_max', dtype, device, 4,
                     (4, ss.np.int32(1), ss.np.int32(4), flow.to(dtype), metric.to(dtype), slow, maxbuf))
            assert maxbuf[0, 0, 0, 3] == metric.to(dtype).max(), values
            assert torch.isinf(maxbuf[0, 0, 0, :3]).all()
    # with the per-sample shift in force the pass does nothing
    maxbuf = torch.full((1, 1, 1, 4), float('-inf'), device=device)
    launcher('softsplat_max', torch.float32, device, 4,
             (4, ss.np.int32(1), ss.np.int32(4), flow, metric.float(), torch.ones_like(slow), maxbuf))
    assert torch.isinf(maxbuf).all()


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_kernels_softmax_with_minus_zero_and_mixed_signs_on_one_target(kernels_on, dtype):
    """Per-target shift (metrics span over 40): one target receives -0.0 and negative metrics, another -0.0,
    negative and positive ones. A wrong maximum there weighs its contributors wrongly (the old integer ordering
    lost -0.0)."""
    launcher, device = kernels_on
    x = torch.rand(1, 2, 1, 8, dtype=dtype, generator=torch.Generator().manual_seed(2))
    flow = torch.zeros(1, 2, 1, 8, dtype=dtype)
    flow[0, 0] = torch.tensor([2.0, 1.0, 0.0, 4.0, 3.0, 2.0, 0.0, 0.0], dtype=dtype)  # 0-2 -> 2, 3-5 -> 7
    metric = torch.tensor([-0.0, -3.0, -1.0, -0.0, -2.0, 1.5, 45.0, -45.0], dtype=dtype).view(1, 1, 1, 8)
    for mode in ('soft', 'soft-zeroeps', 'soft-clipeps'):
        out = through_kernels(launcher, x.to(device), flow.to(device), metric.to(device), mode)
        tol = 1e-12 if dtype == torch.float64 else 1e-6
        torch.testing.assert_close(out.double().cpu(), reference(x, flow, metric, mode), rtol=tol, atol=tol, msg=mode)


@pytest.mark.parametrize('metric_scale', [3.0, 30.0])
@pytest.mark.parametrize('mode', ['soft', 'soft-zeroeps', 'soft-clipeps'])
def test_kernels_over_a_sweep_of_metric_offsets(kernels_on, mode, metric_scale):
    """Holes stay exactly 0 and gradients finite at any metric offset (the same sweep as the PyTorch path)."""
    launcher, device = kernels_on
    x, flow, metric = sparse_inputs(torch.float32, metric_scale=metric_scale)
    for offset in SWEEP:
        shifted = metric + offset
        out = through_kernels(launcher, x.to(device), flow.to(device), shifted.to(device), mode).cpu()
        assert torch.isfinite(out).all(), f'non-finite output at offset {offset}'
        torch.testing.assert_close(out.double(), reference(x, flow, shifted, mode), rtol=2e-5, atol=2e-6,
                                   msg=f'offset {offset}')
        leaves = [t.double().to(device).requires_grad_() for t in (x, flow, shifted)]
        upstream = torch.randn_like(leaves[0])
        (through_kernels(launcher, *leaves, mode) * upstream).sum().backward()
        ours = [t.grad for t in leaves]
        for t in leaves:
            t.grad = None
        (ss.softsplat(*leaves, mode, backend='torch') * upstream).sum().backward()
        for mine, theirs in zip(ours, [t.grad for t in leaves]):
            assert torch.isfinite(mine).all(), f'non-finite gradient at offset {offset}'
            torch.testing.assert_close(mine, theirs, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize('mode', ['sum', 'avg', 'linear', 'soft'])
def test_kernels_when_thousands_of_sources_collide(kernels_on, mode):
    """Every source of a 64 x 64 image lands on one of 9 targets, with metrics spanning 200 (per-target shift in
    soft mode): on a GPU each target's sums and maximum are raced for by hundreds of threads at once."""
    launcher, device = kernels_on
    n, c, h, w = 2, 3, 64, 64
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(n, c, h, w, generator=gen, dtype=torch.float64)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing='ij')
    hub = torch.randint(0, 3, (n, 2, h, w), generator=gen).double() * 20 + 10  # targets 10, 30, 50 in x and y
    flow = torch.stack([hub[:, 0] - xs, hub[:, 1] - ys], 1) + (torch.rand(n, 2, h, w, generator=gen) - 0.5) * 0.6
    metric = (torch.rand(n, 1, h, w, generator=gen, dtype=torch.float64) - 0.5) * 200
    metric = metric.abs() + 0.1 if mode == 'linear' else metric
    metric = metric if needs_metric(mode) else None
    leaves = [t.to(device).requires_grad_() for t in (x, flow) + ((metric,) if metric is not None else ())]
    args = leaves + [None] * (3 - len(leaves))
    upstream = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64).to(device)
    out = through_kernels(launcher, *args, mode)
    (out * upstream).sum().backward()
    ours = [out.detach()] + [t.grad for t in leaves]
    for t in leaves:
        t.grad = None
    expected = ss.softsplat(*args, mode, backend='torch')
    (expected * upstream).sum().backward()
    assert (out.detach() != 0).sum() > 9 * n  # the footprints cover the neighbours of the 9 hubs
    for mine, theirs in zip(ours, [expected.detach()] + [t.grad for t in leaves]):
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-9)


@requires_cxx
def test_benchmark_reference_kernel_is_summation_splatting():
    """The GPU benchmark's baseline (one thread per element, four atomicAdds) must compute what it stands for."""
    from softmax_splatting.cli import benchmark_softsplat
    kernels = CpuKernels(benchmark_softsplat.SIMPLE_KERNEL)
    x, flow, _ = awkward_inputs(torch.float32, seed=4)
    n, c, h, w = x.shape
    dims = (ss.np.int32(c), ss.np.int32(h), ss.np.int32(w))
    out = torch.zeros_like(x)
    kernels('simple_forward', torch.float32, x.device, x.numel(), (x.numel(), *dims, x, flow, out))
    torch.testing.assert_close(out, ss.softsplat(x, flow, None, 'sum'), rtol=1e-5, atol=1e-5)
    upstream = torch.randn_like(x)
    grad_x, grad_flow = torch.empty_like(x), torch.empty_like(flow)
    kernels('simple_grad_input', torch.float32, x.device, x.numel(), (x.numel(), *dims, flow, upstream, grad_x))
    kernels('simple_grad_flow', torch.float32, x.device, flow.numel(),
            (flow.numel(), *dims, x, flow, upstream, grad_flow))
    leaves = [x.clone().requires_grad_(), flow.clone().requires_grad_()]
    (ss.softsplat(*leaves, None, 'sum') * upstream).sum().backward()
    torch.testing.assert_close(grad_x, leaves[0].grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_flow, leaves[1].grad, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------------ nvcc ---------

NVCC = shutil.which('nvcc')


@pytest.mark.skipif(NVCC is None, reason='nvcc is not on PATH')
@pytest.mark.parametrize('arch', ['sm_80', 'sm_90'])
@pytest.mark.parametrize('scalar', ['float', 'double'])
def test_cuda_source_compiles_with_nvcc(tmp_path, arch, scalar):
    source = tmp_path / 'softsplat_kernels.cu'
    source.write_text(f'typedef {scalar} scalar_t;\n{ss.CUDA_SOURCE}')
    result = subprocess.run([NVCC, '-ptx', f'-arch={arch}', '-std=c++14', '-o', str(tmp_path / 'out.ptx'),
                             str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / 'out.ptx').read_text()
    for name in ('softsplat_max', 'softsplat_forward', 'softsplat_backward'):
        assert f'.entry {name}(' in ptx


@pytest.mark.skipif(NVCC is None, reason='nvcc is not on PATH')
def test_benchmark_reference_kernel_compiles_with_nvcc(tmp_path):
    from softmax_splatting.cli import benchmark_softsplat
    source = tmp_path / 'simple.cu'
    source.write_text(benchmark_softsplat.SIMPLE_KERNEL)
    result = subprocess.run([NVCC, '-ptx', '-arch=sm_80', '-o', str(tmp_path / 'simple.ptx'), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------------ CUDA ---------

@pytest.mark.cuda
@requires_cupy
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize('mode, metric_scale', KERNEL_CASES)
def test_cupy_matches_torch_path(mode, metric_scale, dtype):
    """Values and gradients of the kernels against the PyTorch path on the same GPU.

    In float32 the gradient of the flow loses digits wherever a target's weight sum is tiny (the quotient rule
    cancels), in both paths alike: measured against the float64 result the two differ from it by the same ~3e-4 of
    the largest gradient (on the H200 the two float32 paths differed by up to 4e-4 absolute, flow gradients up to
    4e4). So in float32 the kernels must be as accurate as the PyTorch path, judged against float64; half precision
    (rounded inputs and outputs, float32 accumulation) is compared directly."""
    x, flow, metric = awkward_inputs(torch.float32, seed=11, n=3, c=5, h=33, w=47)
    if needs_metric(mode):
        metric = metric.abs() + 0.1 if mode.startswith('linear') else metric * metric_scale
    else:
        metric = None
    runs = [('cupy', dtype), ('torch', dtype)] + ([('torch', torch.float64)] if dtype == torch.float32 else [])
    results = []
    for backend, run_dtype in runs:
        tensors = (x, flow) + ((metric,) if metric is not None else ())
        leaves = [t.cuda().to(run_dtype).requires_grad_() for t in tensors]
        args = leaves + [None] * (3 - len(leaves))
        out = ss.softsplat(*args, mode, backend=backend)
        assert out.dtype == run_dtype
        (out.double() * torch.linspace(-1, 1, out.numel(), device='cuda', dtype=torch.float64).view_as(out)).sum() \
            .backward()
        results.append([out.detach().double()] + [t.grad.double() for t in leaves])
    names = ['output', 'tenIn gradient', 'tenFlow gradient', 'tenMetric gradient']
    if dtype != torch.float32:
        for mine, theirs, name in zip(*results, names):
            torch.testing.assert_close(mine, theirs, rtol=1e-2, atol=1e-2, msg=name)
        return
    for mine, theirs, exact, name in zip(*results, names):
        assert torch.isfinite(mine).all() and torch.isfinite(theirs).all(), name
        allowed = 2 * (theirs - exact).abs().max() + 1e-6 * exact.abs().max().clamp_min(1)
        assert (mine - exact).abs().max() <= allowed, name


@pytest.mark.cuda
@requires_cupy
def test_cupy_runs_on_the_current_stream_and_non_contiguous_inputs():
    x, flow, metric = (t.cuda() for t in make_inputs(n=2, c=4, h=40, w=30, dtype=torch.float32, spread=4))
    expected = ss.softsplat(x, flow, metric, 'soft', backend='torch')
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = ss.softsplat(x.transpose(2, 3).contiguous().transpose(2, 3), flow, metric, 'soft', backend='cupy')
    stream.synchronize()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
