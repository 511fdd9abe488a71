"""softsplat.py: every mode against a per-pixel loop, gradients, invariances, interfaces and errors (CPU)."""

import math
from decimal import Decimal, getcontext

import numpy as np
import pytest
import torch

from softmax_splatting import cupy_launch, softsplat as ss
from softmax_splatting.softsplat import FunctionSoftsplat, ModuleSoftsplat, softsplat

MODES = list(ss.MODES)
NORMALIZED = [m for m in MODES if m != 'sum']
getcontext().prec = 50


def needs_metric(mode):
    return mode.split('-')[0] in ('linear', 'soft')


def reference(x, flow, metric, mode):
    """The published formula, one source pixel at a time, in exact decimal arithmetic (no overflow at any metric)."""
    kind, _, rule = mode.partition('-')
    rule = rule or 'addeps'
    x, flow = x.double().numpy(), flow.double().numpy()
    metric = metric.double().numpy() if metric is not None else None
    n, c, h, w = x.shape
    sums = {}  # (b, ty, tx) -> [numerator per channel..., denominator] as Decimals
    for b in range(n):
        for y in range(h):
            for xx in range(w):
                u, v = flow[b, 0, y, xx], flow[b, 1, y, xx]
                z = metric[b, 0, y, xx] if metric is not None else 0.0
                if not (math.isfinite(u) and math.isfinite(v) and math.isfinite(z)):
                    continue
                g = {'sum': Decimal(1), 'avg': Decimal(1), 'linear': Decimal(z), 'soft': Decimal(z).exp()}[kind]
                gx, gy = xx + u, y + v
                x0, y0 = math.floor(gx), math.floor(gy)
                for tx, ty in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
                    if 0 <= tx < w and 0 <= ty < h:
                        a = Decimal(1 - abs(gx - tx)) * Decimal(1 - abs(gy - ty)) * g
                        acc = sums.setdefault((b, ty, tx), [Decimal(0)] * (c + 1))
                        for ch in range(c):
                            acc[ch] += a * Decimal(x[b, ch, y, xx])
                        acc[c] += a
    out = np.zeros_like(x)
    for (b, ty, tx), acc in sums.items():
        den = Decimal(1) if kind == 'sum' else normalizer(acc[c], rule)
        out[b, :, ty, tx] = [float(value / den) for value in acc[:c]]
    return torch.from_numpy(out)


def normalizer(den, rule):
    eps = Decimal('1e-7')
    if rule == 'addeps':
        return den + eps
    if rule == 'zeroeps':
        return Decimal(1) if den == 0 else den
    return max(den, eps)


def make_inputs(n=2, c=3, h=5, w=6, dtype=torch.float64, spread=2.0, seed=0, metric_scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h, w, generator=gen, dtype=dtype)
    flow = torch.randn(n, 2, h, w, generator=gen, dtype=dtype) * spread
    metric = torch.randn(n, 1, h, w, generator=gen, dtype=dtype) * metric_scale
    return x, flow, metric


@pytest.mark.parametrize('mode', MODES)
def test_every_mode_matches_per_pixel_loop(mode):
    x, flow, metric = make_inputs()
    flow[0, 0, 1, 2] = float('nan')  # a source with non-finite flow contributes nothing
    flow[1, 1, 3, 3] = float('inf')
    flow[1, :, 0, 0] = torch.tensor([40.0, 0.0])  # pushed far out of the frame
    metric = metric.abs() + 0.1 if mode.startswith('linear') else metric
    metric = metric if needs_metric(mode) else None
    expected = reference(x, flow, metric, mode)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        out = softsplat(x.to(dtype), flow.to(dtype), metric.to(dtype) if metric is not None else None, mode)
        assert out.dtype == dtype and out.shape == x.shape
        torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol)


def test_reference_detects_collisions():
    """The random inputs above really contain targets hit by several sources (else softmax is untested)."""
    x, flow, _ = make_inputs()
    hits = softsplat(torch.ones_like(x[:, :1]), flow, None, 'sum')
    assert (hits > 1.2).any()


GRADCHECK_CASES = [(mode, 1.0) for mode in MODES] + [(mode, 30.0) for mode in MODES if mode.startswith('soft')]


@pytest.mark.parametrize('mode, metric_scale', GRADCHECK_CASES)
def test_gradcheck_every_mode(mode, metric_scale):
    """Metric scale 30 spans more than MAX_SAMPLE_SPREAD: soft then shifts per target instead of per sample."""
    x, flow, metric = make_inputs(n=1, c=2, h=4, w=5, seed=3, spread=1.5, metric_scale=metric_scale)
    metric = metric.abs() + 0.5 if mode.startswith('linear') else metric
    assert bool(ss.sample_shift(metric, torch.isfinite(metric))[1]) == (metric_scale == 1.0)
    inputs = [x.requires_grad_(), flow.requires_grad_()]
    if needs_metric(mode):
        inputs.append(metric.requires_grad_())
    fn = (lambda a, b, m: softsplat(a, b, m, mode)) if needs_metric(mode) else (lambda a, b: softsplat(a, b, None, mode))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize('mode', ['sum', 'avg-zeroeps', 'linear-zeroeps', 'soft-zeroeps'])
@pytest.mark.parametrize('shift', [(2, 1), (-1, 3), (0, 0)])
def test_integer_flow_is_an_exact_translation(mode, shift):
    """Bit-exact, except that linear's (Z x) / Z and soft's (e^Z x) / e^Z may round in the last place."""
    x, _, metric = make_inputs(n=1, c=3, h=7, w=9, dtype=torch.float32)
    dx, dy = shift
    flow = torch.zeros(1, 2, 7, 9)
    flow[:, 0], flow[:, 1] = dx, dy
    metric = metric.abs() + 1 if needs_metric(mode) else None
    out = softsplat(x, flow, metric, mode)
    expected = torch.zeros_like(x)
    expected[:, :, max(dy, 0):7 + min(dy, 0), max(dx, 0):9 + min(dx, 0)] = \
        x[:, :, max(-dy, 0):7 - max(dy, 0), max(-dx, 0):9 - max(dx, 0)]
    if mode.startswith(('linear', 'soft')):
        torch.testing.assert_close(out, expected, rtol=2.5e-7, atol=0)
    else:
        assert torch.equal(out, expected)


def test_addeps_translation_is_exact_up_to_epsilon():
    x, _, _ = make_inputs(n=1, h=6, w=6, dtype=torch.float32)
    flow = torch.ones(1, 2, 6, 6)
    out = softsplat(x, flow, None, 'avg')
    torch.testing.assert_close(out[:, :, 1:, 1:], x[:, :, :-1, :-1], rtol=2e-7, atol=0)


@pytest.mark.parametrize('constant', [7.5, -300.0, 4000.0])
@pytest.mark.parametrize('metric_scale', [3.0, 40.0])
def test_soft_zeroeps_is_invariant_to_adding_a_constant(constant, metric_scale):
    x, flow, metric = make_inputs(dtype=torch.float32, metric_scale=metric_scale)
    base = softsplat(x, flow, metric, 'soft-zeroeps')
    shifted = softsplat(x, flow, metric + constant, 'soft-zeroeps')
    # exact in real arithmetic; float32 rounding of metric + constant is the only difference
    tol = 3e-6 * max(1.0, abs(constant)) * metric_scale
    torch.testing.assert_close(shifted, base, rtol=tol, atol=tol)


def test_soft_addeps_keeps_the_published_absolute_epsilon():
    """Like the published operator, addeps is not shift invariant: 1e-7 is absolute, so very low metrics darken."""
    x = torch.full((1, 1, 1, 3), 0.8)
    flow = torch.zeros(1, 2, 1, 3)
    metric = torch.tensor([[[[0.0, -16.0, -40.0]]]])
    out = softsplat(x, flow, metric, 'soft')
    expected = 0.8 * torch.exp(metric) / (torch.exp(metric) + 1e-7)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-9)
    assert out[0, 0, 0, 0] > 0.79 and out[0, 0, 0, 2] < 1e-6
    torch.testing.assert_close(softsplat(x, flow, metric, 'soft-zeroeps'), x)


@pytest.mark.parametrize('scale', [20.0, 500.0, 5000.0])
@pytest.mark.parametrize('mode', ['soft', 'soft-zeroeps', 'soft-clipeps'])
def test_soft_does_not_overflow_and_is_exact(scale, mode):
    x, flow, metric = make_inputs(n=2, c=3, h=6, w=7, dtype=torch.float32, seed=5)
    metric = (torch.rand_like(metric) * 2 - 1) * scale  # values anywhere in [-scale, scale]
    metric[0, 0, 0, :3] = torch.tensor([scale, -scale, 0.0])
    metric[1] = metric[1] / scale * 10 + scale / 2  # a narrow band far from zero: the per-sample shift
    out = softsplat(x, flow, metric, mode)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), reference(x, flow, metric, mode), rtol=2e-5, atol=2e-6)


def test_soft_with_huge_metric_has_finite_gradients():
    x, flow, metric = make_inputs(dtype=torch.float32)
    metric = (metric * 3000).requires_grad_()
    x.requires_grad_()
    flow.requires_grad_()
    softsplat(x, flow, metric, 'soft-zeroeps').square().sum().backward()
    for tensor in (x, flow, metric):
        assert torch.isfinite(tensor.grad).all()
    assert metric.grad.abs().sum() > 0


def test_soft_softmax_picks_the_dominant_source():
    """Two sources land on one pixel: the larger metric wins (the point of softmax splatting)."""
    x = torch.tensor([[[[0.0, 1.0]]]])
    flow = torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]]]])  # pixel 0 moves onto pixel 1
    for metric, expected in (([10.0, 0.0], 0.0), ([0.0, 10.0], 1.0)):
        out = softsplat(x, flow, torch.tensor([[[metric]]]), 'soft')
        assert abs(out[0, 0, 0, 1].item() - expected) < 1e-4
    # equal metrics: the plain average
    out = softsplat(x, flow, torch.zeros(1, 1, 1, 2), 'soft')
    assert abs(out[0, 0, 0, 1].item() - 0.5) < 1e-6


def test_legacy_interface_matches_new_modes():
    x, flow, metric = make_inputs(dtype=torch.float32)
    for legacy, mode in (('summation', 'sum'), ('average', 'avg'), ('linear', 'linear'), ('softmax', 'soft')):
        m = metric.abs() if needs_metric(mode) else None
        expected = softsplat(x, flow, m, mode)
        torch.testing.assert_close(FunctionSoftsplat(x, flow, m, legacy), expected, rtol=0, atol=0)
        module = ModuleSoftsplat(legacy)
        torch.testing.assert_close(module(x, flow, m), expected, rtol=0, atol=0)
        assert legacy in repr(module)
    # as in 2020, summation and average ignore a metric they are given
    torch.testing.assert_close(FunctionSoftsplat(x, flow, metric, 'average'), softsplat(x, flow, None, 'avg'))
    with pytest.raises(ValueError, match='strType'):
        FunctionSoftsplat(x, flow, None, 'max')
    with pytest.raises(ValueError, match='strType'):
        ModuleSoftsplat('soft')


def test_addeps_is_the_default_and_rules_differ_only_in_empty_or_thin_pixels():
    x, flow, metric = make_inputs(dtype=torch.float64)
    torch.testing.assert_close(softsplat(x, flow, metric, 'soft'), softsplat(x, flow, metric, 'soft-addeps'),
                               rtol=0, atol=0)
    num = softsplat(x, flow, None, 'sum')
    den = softsplat(torch.ones_like(x[:, :1]), flow, None, 'sum')
    torch.testing.assert_close(softsplat(x, flow, None, 'avg-zeroeps'), num / torch.where(den == 0, 1.0, den))
    torch.testing.assert_close(softsplat(x, flow, None, 'avg-clipeps'), num / den.clamp_min(1e-7))
    torch.testing.assert_close(softsplat(x, flow, None, 'avg-addeps'), num / (den + 1e-7))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_accumulates_in_float32(dtype):
    x, flow, metric = make_inputs(n=1, c=4, h=16, w=16, dtype=torch.float32, spread=3.0)
    out = softsplat(x.to(dtype), flow.to(dtype), metric.to(dtype), 'soft')
    assert out.dtype == dtype
    expected = softsplat(x.to(dtype).float(), flow.to(dtype).float(), metric.to(dtype).float(), 'soft')
    torch.testing.assert_close(out.float(), expected.to(dtype).float(), rtol=0, atol=0)


def test_autocast_returns_input_dtype():
    x, flow, metric = make_inputs(dtype=torch.float32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = softsplat(x, flow, metric, 'soft')
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, softsplat(x, flow, metric, 'soft'))


def test_mixed_float64_input_accumulates_in_float64():
    x, flow, metric = make_inputs(dtype=torch.float64)
    out = softsplat(x.float(), flow, metric.float(), 'soft')
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, softsplat(x, flow, metric.float().double(), 'soft').float())


def test_non_contiguous_inputs():
    x, flow, metric = make_inputs(n=2, c=3, h=6, w=5, dtype=torch.float32)
    xt = x.transpose(2, 3).contiguous().transpose(2, 3)
    ft = flow.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    mt = torch.cat([metric, metric], 1)[:, ::2]
    assert not (xt.is_contiguous() or ft.is_contiguous() or mt.is_contiguous())
    for mode in ('sum', 'avg', 'soft'):
        m = mt if needs_metric(mode) else None
        expected = softsplat(x, flow, metric if m is not None else None, mode)
        torch.testing.assert_close(softsplat(xt, ft, m, mode), expected, rtol=0, atol=0)


def test_batch_samples_are_independent():
    x, flow, metric = make_inputs(n=3, dtype=torch.float32)
    out = softsplat(x, flow, metric, 'soft')
    for b in range(3):
        torch.testing.assert_close(out[b:b + 1], softsplat(x[b:b + 1], flow[b:b + 1], metric[b:b + 1], 'soft'))


def test_backend_selection(monkeypatch):
    cpu = torch.device('cpu')

    def resolve(backend, device):
        return cupy_launch.resolve_backend(backend, device, env_var=ss.BACKEND_ENV)

    monkeypatch.delenv(ss.BACKEND_ENV, raising=False)
    assert resolve(None, cpu) == 'torch'
    assert resolve('torch', cpu) == 'torch'
    with pytest.raises(ValueError, match='CUDA tensors'):
        resolve('cupy', cpu)
    with pytest.raises(ValueError, match="'auto', 'cupy' or 'torch'"):
        resolve('triton', cpu)
    monkeypatch.setenv(ss.BACKEND_ENV, 'cupy')
    assert resolve(None, cpu) == 'torch'  # the variable cannot make CPU tensors run CUDA kernels
    monkeypatch.setenv(ss.BACKEND_ENV, 'bogus')
    with pytest.raises(ValueError, match=ss.BACKEND_ENV):
        resolve(None, cpu)
    # on CUDA tensors 'auto' means CuPy exactly when it imports, and 'cupy' without CuPy is a clear error
    monkeypatch.delenv(ss.BACKEND_ENV)
    cuda = torch.device('cuda', 0)
    monkeypatch.setattr(cupy_launch, 'import_cupy', lambda: (None, ImportError('no cupy')))
    assert resolve(None, cuda) == 'torch'
    with pytest.raises(RuntimeError, match='requirements-cuda.txt'):
        resolve('cupy', cuda)
    monkeypatch.setattr(cupy_launch, 'import_cupy', lambda: (object(), None))
    assert resolve(None, cuda) == 'cupy'
    assert resolve('torch', cuda) == 'torch'
    monkeypatch.setenv(ss.BACKEND_ENV, 'torch')
    assert resolve(None, cuda) == 'torch'
    assert resolve('cupy', cuda) == 'cupy'



def test_cupy_stream_wrapper_is_made_once_per_stream_without_the_deprecation_warning(monkeypatch):
    """CuPy 14 warns on every ExternalStream (569 warnings in one GPU test run); one wrapper per stream, and none
    of the warning in the user's output. A stand-in CuPy records the constructions (the real one needs a GPU)."""
    import warnings  # noqa: PLC0415

    made = []

    class ExternalStream:
        def __init__(self, pointer, device):
            warnings.warn('ExternalStream is deprecated. Use Stream.from_external() instead', DeprecationWarning)
            made.append((pointer, device))

    fake = type('cupy', (), {'cuda': type('cuda', (), {'ExternalStream': ExternalStream})})
    monkeypatch.setattr(cupy_launch, 'import_cupy', lambda: (fake, None))
    cupy_launch._external_stream.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        first = cupy_launch._external_stream(1234, 0)
        assert cupy_launch._external_stream(1234, 0) is first
        other = cupy_launch._external_stream(1234, 1)
    cupy_launch._external_stream.cache_clear()
    assert made == [(1234, 0), (1234, 1)] and other is not first
    assert not caught

def test_forced_cupy_on_cpu_tensors_is_an_error():
    x, flow, _ = make_inputs()
    with pytest.raises(ValueError, match='CUDA'):
        softsplat(x, flow, None, 'sum', backend='cupy')


class TestErrors:
    x, flow, metric = make_inputs(n=2, c=3, h=5, w=6, dtype=torch.float32)

    @pytest.mark.parametrize('args, error, pattern', [
        (('x', 'flow', None, 'avg'), TypeError, 'tenIn must be a torch.Tensor'),
        ((None, 'flow', None, 'avg'), TypeError, 'tenIn'),
    ])
    def test_not_tensors(self, args, error, pattern):
        args = tuple(self.flow if a == 'flow' else a for a in args)
        with pytest.raises(error, match=pattern):
            softsplat(*args)

    def test_flow_channels(self):
        with pytest.raises(ValueError, match=r'tenFlow must have shape \[N, 2, H, W\] = \[2, 2, 5, 6\]'):
            softsplat(self.x, self.flow[:, :1], None, 'avg')

    @pytest.mark.parametrize('flow_shape', [(1, 2, 5, 6), (2, 2, 4, 6), (2, 2, 5, 7)])
    def test_flow_size_mismatch(self, flow_shape):
        with pytest.raises(ValueError, match='tenFlow'):
            softsplat(self.x, torch.zeros(flow_shape), None, 'sum')

    def test_flow_wrong_rank(self):
        with pytest.raises(ValueError, match=r'tenFlow must be 4-D'):
            softsplat(self.x, self.flow[0], None, 'sum')

    def test_input_wrong_rank(self):
        with pytest.raises(ValueError, match=r'tenIn must be 4-D \[N, C, H, W\]'):
            softsplat(self.x[0], self.flow, None, 'sum')

    def test_empty_input(self):
        with pytest.raises(ValueError, match='non-empty'):
            softsplat(self.x[:, :0], self.flow, None, 'sum')

    @pytest.mark.parametrize('mode', ['linear', 'soft-zeroeps'])
    def test_metric_missing(self, mode):
        with pytest.raises(ValueError, match=r'needs tenMetric of shape \[N, 1, H, W\]'):
            softsplat(self.x, self.flow, None, mode)

    @pytest.mark.parametrize('mode', ['sum', 'avg', 'avg-clipeps'])
    def test_metric_superfluous(self, mode):
        with pytest.raises(ValueError, match='tenMetric must be None'):
            softsplat(self.x, self.flow, self.metric, mode)

    @pytest.mark.parametrize('shape', [(2, 3, 5, 6), (2, 1, 5, 5), (1, 1, 5, 6)])
    def test_metric_wrong_shape(self, shape):
        with pytest.raises(ValueError, match=r'tenMetric must have shape \[N, 1, H, W\] = \[2, 1, 5, 6\]'):
            softsplat(self.x, self.flow, torch.zeros(shape), 'soft')

    @pytest.mark.parametrize('mode', ['softmax', 'sum-addeps', 'avg-eps', 'SOFT', ''])
    def test_unknown_mode(self, mode):
        with pytest.raises(ValueError, match='not a splatting mode'):
            softsplat(self.x, self.flow, self.metric, mode)

    def test_mode_not_a_string(self):
        with pytest.raises(TypeError, match='strMode'):
            softsplat(self.x, self.flow, None, 3)

    @pytest.mark.parametrize('which', ['tenIn', 'tenFlow', 'tenMetric'])
    def test_integer_tensors(self, which):
        args = {'tenIn': self.x, 'tenFlow': self.flow, 'tenMetric': self.metric}
        args[which] = args[which].to(torch.int32)
        with pytest.raises(TypeError, match=f'{which} must be a floating-point tensor'):
            softsplat(args['tenIn'], args['tenFlow'], args['tenMetric'], 'soft')

    def test_different_devices(self):
        with pytest.raises(ValueError, match='tenFlow is on meta but tenIn is on cpu'):
            softsplat(self.x, self.flow.to('meta'), None, 'sum')
        with pytest.raises(ValueError, match='tenMetric is on meta'):
            softsplat(self.x, self.flow, self.metric.to('meta'), 'soft')

    def test_no_asserts_guard_user_input(self):
        import ast
        import inspect
        tree = ast.parse(inspect.getsource(ss))
        assert not [node for node in ast.walk(tree) if isinstance(node, ast.Assert)]


def sparse_inputs(dtype, seed=11, n=1, c=3, h=12, w=12, metric_scale=3.0):
    """Flows that scatter the sources (and drop a third of them) so that many targets stay empty (holes)."""
    x, flow, metric = make_inputs(n=n, c=c, h=h, w=w, dtype=dtype, spread=4.0, seed=seed, metric_scale=metric_scale)
    gen = torch.Generator().manual_seed(seed + 1)
    dropped = torch.rand(n, 1, h, w, generator=gen) < 0.33
    flow = torch.where(dropped, torch.full_like(flow, float('nan')), flow)
    return x, flow, metric


SWEEP = [-5000.0, -500.0, -100.0, -60.0, -20.0, 0.0, 20.0, 60.0, 90.0, 100.0, 500.0, 5000.0]


@pytest.mark.parametrize('metric_scale', [3.0, 30.0])  # one shift per sample / per target (spread above 40)
@pytest.mark.parametrize('mode', ['soft', 'soft-zeroeps', 'soft-clipeps'])
def test_soft_is_exact_and_finite_over_a_sweep_of_metric_offsets(mode, metric_scale):
    """Before the fix, 1e-7 * e^-S underflowed for S > ~88 and every hole came out 0 / 0 = NaN."""
    x, flow, metric = sparse_inputs(torch.float32, metric_scale=metric_scale)
    holes = None
    for offset in SWEEP:
        shifted = metric + offset
        out = softsplat(x, flow, shifted, mode, backend='torch')
        expected = reference(x, flow, shifted, mode)
        assert torch.isfinite(out).all(), f'non-finite output at offset {offset}'
        torch.testing.assert_close(out.double(), expected, rtol=2e-5, atol=2e-6, msg=f'offset {offset}')
        holes = softsplat(torch.ones_like(x[:, :1]), flow, None, 'sum') == 0
        assert holes.any()  # the case that used to fail is present


@pytest.mark.parametrize('offset', [-5000.0, -100.0, 100.0, 5000.0])
@pytest.mark.parametrize('metric_scale', [3.0, 30.0])
@pytest.mark.parametrize('mode', ['soft', 'soft-zeroeps', 'soft-clipeps'])
def test_soft_gradients_over_large_metric_offsets(mode, metric_scale, offset):
    """float64 gradcheck (finite differences) with holes and huge shifts; float32 gradients finite and equal to it."""
    x, flow, metric = sparse_inputs(torch.float64, n=1, c=2, h=6, w=6, metric_scale=metric_scale, seed=3)
    metric = metric + offset
    leaves = [t.clone().requires_grad_() for t in (x, flow, metric)]
    assert torch.autograd.gradcheck(lambda a, b, m: softsplat(a, b, m, mode, backend='torch'), leaves,
                                    eps=1e-6, atol=1e-6, rtol=1e-4)
    upstream = torch.randn_like(x)
    (softsplat(*leaves, mode, backend='torch') * upstream).sum().backward()
    single = [t.detach().float().requires_grad_() for t in (x, flow, metric)]
    (softsplat(*single, mode, backend='torch') * upstream.float()).sum().backward()
    for mine, exact, name in zip(single, leaves, ('tenIn', 'tenFlow', 'tenMetric')):
        assert torch.isfinite(mine.grad).all(), name
        torch.testing.assert_close(mine.grad.double(), torch.nan_to_num(exact.grad), rtol=1e-3, atol=1e-4,
                                   msg=f'gradient of {name}')


@pytest.mark.parametrize('mode, metric_scale', [('sum', 1.0), ('avg', 1.0), ('linear', 1.0), ('soft', 3.0),
                                                ('soft', 30.0)])
def test_banded_pytorch_path_equals_one_pass(monkeypatch, mode, metric_scale):
    """Large frames are splatted in bands of source rows (bounded memory); bands of 1 and 3 rows must give the
    one-pass values and gradients, per-target shift (scale 30) included."""
    x, flow, metric = make_inputs(n=2, c=3, h=9, w=7, dtype=torch.float64, spread=3.0, seed=4,
                                  metric_scale=metric_scale)
    metric = metric.abs() + 0.1 if mode == 'linear' else metric
    metric = metric if needs_metric(mode) else None

    def run():
        leaves = [t.clone().requires_grad_() for t in (x, flow) + ((metric,) if metric is not None else ())]
        args = leaves + [None] * (3 - len(leaves))
        out = softsplat(*args, mode, backend='torch')
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        return [out.detach()] + [t.grad for t in leaves]

    whole = run()
    for rows in (1, 3):
        monkeypatch.setattr(ss, 'CHUNK_PIXELS', rows * 2 * 7)
        assert len(ss._bands(2, 9, 7)) == -(-9 // rows)
        for mine, reference in zip(run(), whole):
            torch.testing.assert_close(mine, reference, rtol=1e-12, atol=1e-12)
        # large inputs without autograd scatter one channel at a time: the same values
        monkeypatch.setattr(ss, 'BY_CHANNEL_ELEMENTS', 0)
        with torch.no_grad():
            out = softsplat(x, flow, metric, mode, backend='torch')
        torch.testing.assert_close(out, whole[0], rtol=1e-12, atol=1e-12)
        monkeypatch.setattr(ss, 'BY_CHANNEL_ELEMENTS', 2 ** 24)


def test_pytorch_path_graph_has_no_view_copies():
    """Under autograd the PyTorch path must not write into views of its accumulator: every such write becomes a
    CopySlices node that copies the whole accumulator in the backward pass (13x slower at [4, 64, 256, 448])."""
    x, flow, metric = make_inputs(n=2, c=5, h=6, w=7, dtype=torch.float32)
    x.requires_grad_()
    out = softsplat(x, flow, metric, 'soft', backend='torch')
    seen, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        assert type(node).__name__ != 'CopySlices', 'in-place write into a view inside the graph'
        stack.extend(next_node for next_node, _ in node.next_functions)
    assert len(seen) > 3
