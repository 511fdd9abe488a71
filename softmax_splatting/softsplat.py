"""Softmax splatting: differentiable forward warping (Niklaus & Liu, CVPR 2020, Sec. 3).

Every source pixel (x, y) of ``tenIn`` is pushed bilinearly onto (x + u, y + v), where (u, v) is its flow.
Several source pixels can land on one target pixel; the modes resolve that differently (Sec. 3.1-3.4):

    sum      out_t = sum_i b_it x_i                             (b = bilinear weight of source i at target t)
    avg      out_t = sum_i b_it x_i         / N(sum_i b_it)
    linear   out_t = sum_i b_it Z_i x_i     / N(sum_i b_it Z_i)
    soft     out_t = sum_i b_it e^Z_i x_i   / N(sum_i b_it e^Z_i)

with the importance metric Z (``tenMetric``) and the normalizer rule N chosen by the mode's suffix: ``-addeps``
(N(d) = d + 1e-7, the default), ``-zeroeps`` (zeros replaced by 1) or ``-clipeps`` (clipped to >= 1e-7).

Why this file differs from the published operator, while keeping its interface and its formula:

* No overflow. The formula is evaluated on a shifted metric, sum b e^(Z - S) x / (sum b e^(Z - S) + 1e-7 e^(-S)),
  which equals it exactly for any shift S. S is the sample's largest metric when the sample's metrics span at most
  40 (one exponential per source, nothing can underflow), else the largest metric among the sources reaching each
  target with a positive weight. Metrics of any finite size (+-5000) give the exact, finite value, holes (targets
  no source reaches) exactly 0 even where e^-S underflows: callers need not clip Z. As in the published operator,
  ``-zeroeps`` is invariant to adding a constant to Z and ``-addeps`` is not (the 1e-7 is absolute). Since the
  value does not depend on S, holding S fixed gives the exact gradient.
* Two backends behind one call. CUDA tensors run CuPy kernels when CuPy imports (one thread per source pixel that
  computes its bilinear footprint once and loops over channels; a gather-only backward that yields the gradients
  of tenIn, tenFlow and tenMetric in one pass). Every device runs the pure-PyTorch path, which relies on autograd.
  ``backend='torch'|'cupy'`` or the environment variable ``SOFTSPLAT_BACKEND`` forces one.
* Sources with a non-finite flow or metric contribute nothing; contributions outside the image are dropped.
* float16 / bfloat16 (and ``torch.autocast``) accumulate in float32 and return the dtype of ``tenIn``.

The CUDA source below is plain CUDA C with grid-stride loops and no headers, so the same text also compiles as
C++ on a CPU (see ``tests/kernels_on_cpu.py``): our CI, which has no GPU, runs the kernels' logic.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch

from .cupy_launch import Launcher, cupy_launcher, resolve_backend

__all__ = ['softsplat', 'FunctionSoftsplat', 'ModuleSoftsplat', 'MODES']

EPSILON = 1e-7
_KINDS = ('sum', 'avg', 'linear', 'soft')
_SUFFIXES = ('', '-addeps', '-zeroeps', '-clipeps')
MODES = ('sum',) + tuple(f'{kind}{suffix}' for kind in _KINDS[1:] for suffix in _SUFFIXES)
_KIND_CODE = {kind: code for code, kind in enumerate(_KINDS)}
_LEGACY_TYPES = {'summation': 'sum', 'average': 'avg', 'linear': 'linear', 'softmax': 'soft'}
BACKEND_ENV = 'SOFTSPLAT_BACKEND'


# ---------------------------------------------------------------------------------------------------------------
# Input checking
# ---------------------------------------------------------------------------------------------------------------

def parse_mode(strMode: str) -> Tuple[str, str]:
    """Split a mode such as ``'soft-zeroeps'`` into its kind and its normalizer rule (``'addeps'`` by default)."""
    if not isinstance(strMode, str):
        raise TypeError(f'strMode must be a string, one of {", ".join(MODES)}; got {type(strMode).__name__}')
    if strMode not in MODES:
        raise ValueError(f'strMode {strMode!r} is not a splatting mode; expected one of {", ".join(MODES)}')
    kind, _, rule = strMode.partition('-')
    return kind, rule or 'addeps'


def _check_tensor(name: str, tensor: object) -> torch.Tensor:
    is_tensor = isinstance(tensor, torch.Tensor)
    if not (is_tensor and tensor.is_floating_point()):
        wanted = 'a floating-point tensor (float16, bfloat16, float32 or float64)' if is_tensor else 'a torch.Tensor'
        raise TypeError(f'{name} must be {wanted}, got {tensor.dtype if is_tensor else type(tensor).__name__}')
    if tensor.dim() != 4:
        raise ValueError(f'{name} must be 4-D [N, C, H, W], got shape {list(tensor.shape)}')
    return tensor


def check_inputs(tenIn: torch.Tensor, tenFlow: torch.Tensor, tenMetric: Optional[torch.Tensor], kind: str) -> None:
    """Raise TypeError/ValueError naming the argument if the inputs do not fit ``[N, C, H, W]`` conventions."""
    _check_tensor('tenIn', tenIn)
    _check_tensor('tenFlow', tenFlow)
    n, _, h, w = tenIn.shape
    if min(tenIn.shape) == 0:
        raise ValueError(f'tenIn must be non-empty [N, C, H, W], got shape {list(tenIn.shape)}')
    if tuple(tenFlow.shape) != (n, 2, h, w):
        raise ValueError(f'tenFlow must have shape [N, 2, H, W] = [{n}, 2, {h}, {w}] to match tenIn '
                         f'{list(tenIn.shape)}, got {list(tenFlow.shape)}')
    if kind in ('sum', 'avg'):
        if tenMetric is not None:
            raise ValueError(f"tenMetric must be None in mode '{kind}' (only 'linear' and 'soft' weight by a "
                             f'metric), got a tensor of shape {list(tenMetric.shape)}')
    else:
        if tenMetric is None:
            raise ValueError(f"mode '{kind}' needs tenMetric of shape [N, 1, H, W] = [{n}, 1, {h}, {w}], got None")
        _check_tensor('tenMetric', tenMetric)
        if tuple(tenMetric.shape) != (n, 1, h, w):
            raise ValueError(f'tenMetric must have shape [N, 1, H, W] = [{n}, 1, {h}, {w}] to match tenIn '
                             f'{list(tenIn.shape)}, got {list(tenMetric.shape)}')
    for name, tensor in (('tenFlow', tenFlow), ('tenMetric', tenMetric)):
        if tensor is not None and tensor.device != tenIn.device:
            raise ValueError(f'{name} is on {tensor.device} but tenIn is on {tenIn.device}; '
                             f'all tensors must be on one device')


# ---------------------------------------------------------------------------------------------------------------
# The shift of soft mode
# ---------------------------------------------------------------------------------------------------------------

# A sample whose valid metrics span at most this much is shifted by its maximum: e^-40 times the smallest bilinear
# weight float32 can produce (~1e-14) is still a normal float, so no contribution underflows.
MAX_SAMPLE_SPREAD = 40.0


def sample_shift(z: torch.Tensor, valid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-sample shift ``s`` ``[N]`` (the largest valid metric, 0 if none) and whether every sample's valid metrics
    span at most ``MAX_SAMPLE_SPREAD`` (a bool tensor, no host sync). ``z`` and ``valid`` are ``[N, ...]``."""
    z = z.detach().flatten(1)
    valid = valid.flatten(1)
    top = torch.where(valid, z, float('-inf')).amax(1)
    bottom = torch.where(valid, z, float('inf')).amin(1)
    fast = ((top - bottom) <= MAX_SAMPLE_SPREAD) | ~valid.any(1)
    return torch.where(torch.isfinite(top), top, torch.zeros_like(top)), fast.all()


# ---------------------------------------------------------------------------------------------------------------
# CUDA kernels
# ---------------------------------------------------------------------------------------------------------------

CUDA_SOURCE = r"""
// scalar_t is typedef'd by the loader (float or double). Pixels are indexed i = (b * H + y) * W + x.
// mode: 0 sum, 1 avg, 2 linear, 3 soft. A contribution of source i to target t weighs b_it * g with g = 1, 1, Z_i
// or e^(Z_i - S): S is the sample's shift (sample_shift[b]) when *fast, else the target's maximum (maxbuf[t]).

#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

// The bilinear footprint of one source pixel: corners k = 0..3 are (x0, y0), (x0+1, y0), (x0, y0+1),
// (x0+1, y0+1); w is the weight, dwdu/dwdv its derivative by the flow, inside whether the corner is in the image.
struct Footprint {
    long long target[4];
    scalar_t w[4], dwdu[4], dwdv[4];
    bool inside[4];
};

__device__ __forceinline__ bool footprint(long long i, int H, int W, const scalar_t* flow, Footprint& f) {
    const long long hw = (long long)H * W;
    const long long b = i / hw;
    const long long p = i - b * hw;
    const int y = (int)(p / W), x = (int)(p - (long long)y * W);
    const scalar_t u = flow[(2 * b) * hw + p], v = flow[(2 * b + 1) * hw + p];
    if (!isfinite(u) || !isfinite(v)) return false;
    const scalar_t gx = (scalar_t)x + u, gy = (scalar_t)y + v;
    const scalar_t fx = floor(gx), fy = floor(gy);
    // Anything floored outside [-1, W-1] x [-1, H-1] misses the image entirely (and may not fit in an int).
    if (fx < (scalar_t)-1 || fx > (scalar_t)(W - 1) || fy < (scalar_t)-1 || fy > (scalar_t)(H - 1)) return false;
    const int x0 = (int)fx, y0 = (int)fy;
    const scalar_t ax = gx - fx, ay = gy - fy;
    const scalar_t one = (scalar_t)1;
    f.w[0] = (one - ax) * (one - ay); f.dwdu[0] = -(one - ay); f.dwdv[0] = -(one - ax);
    f.w[1] = ax * (one - ay);         f.dwdu[1] = one - ay;    f.dwdv[1] = -ax;
    f.w[2] = (one - ax) * ay;         f.dwdu[2] = -ay;         f.dwdv[2] = one - ax;
    f.w[3] = ax * ay;                 f.dwdu[3] = ay;          f.dwdv[3] = ax;
    bool any = false;
    for (int k = 0; k < 4; ++k) {
        const int tx = x0 + (k & 1), ty = y0 + (k >> 1);
        f.inside[k] = tx >= 0 && tx < W && ty >= 0 && ty < H;
        f.target[k] = b * hw + (long long)ty * W + tx;
        any = any || f.inside[k];
    }
    return any;
}

// Maximum for floats by compare-and-swap on their bits: a new value is written only while it is larger than what
// the address holds, so the result is right for every finite float, -0.0 and mixed signs included (integer orderings
// of float bits are not: -0.0 has the smallest signed bit pattern). The buffer starts at -inf.
__device__ __forceinline__ void atomic_max(float* address, float value) {
    int* bits = (int*)address;
    int seen = *bits;
    while (value > __int_as_float(seen)) {
        const int before = atomicCAS(bits, seen, __float_as_int(value));
        if (before == seen) break;
        seen = before;
    }
}

__device__ __forceinline__ void atomic_max(double* address, double value) {
    unsigned long long* bits = (unsigned long long*)address;
    unsigned long long seen = *bits;
    while (value > __longlong_as_double((long long)seen)) {
        const unsigned long long before = atomicCAS(bits, seen, (unsigned long long)__double_as_longlong(value));
        if (before == seen) break;
        seen = before;
    }
}

__device__ __forceinline__ bool source_metric(int mode, const scalar_t* metric, long long i, scalar_t& z) {
    z = (scalar_t)0;
    if (mode < 2) return true;
    z = metric[i];
    return isfinite(z);
}

// The factor g of a corner at target t. With the per-target shift, a corner of zero weight may see a smaller
// maximum (or none, -inf); its shift is then its own metric, which keeps g <= 1 (it only enters the flow gradient).
__device__ __forceinline__ scalar_t corner_factor(int mode, scalar_t z, long long b, long long t,
                                                  const scalar_t* maxbuf, const scalar_t* sample_shift,
                                                  const int* fast) {
    if (mode == 2) return z;
    if (mode != 3) return (scalar_t)1;
    if (*fast) return exp(z - sample_shift[b]);
    const scalar_t m = maxbuf[t];
    return exp(z - (m > z ? m : z));
}

// Per target pixel, the largest metric among the sources that reach it with a positive weight (soft mode, only
// when the per-sample shift does not apply).
extern "C" __global__ void softsplat_max(const long long n, const int H, const int W, const scalar_t* flow,
                                         const scalar_t* metric, const int* fast, scalar_t* maxbuf) {
    if (*fast) return;
    GRID_STRIDE_LOOP(i, n) {
        scalar_t z;
        if (!source_metric(3, metric, i, z)) continue;
        Footprint f;
        if (!footprint(i, H, W, flow, f)) continue;
        for (int k = 0; k < 4; ++k) {
            if (f.inside[k] && f.w[k] > (scalar_t)0) atomic_max(&maxbuf[f.target[k]], z);
        }
    }
}

// num[b, c, t] += b_it g x[b, c, i] and den[b, t] += b_it g (den is null in sum mode).
extern "C" __global__ void softsplat_forward(const long long n, const int C, const int H, const int W,
                                             const int mode, const scalar_t* input, const scalar_t* flow,
                                             const scalar_t* metric, const scalar_t* maxbuf,
                                             const scalar_t* sample_shift, const int* fast, scalar_t* num,
                                             scalar_t* den) {
    const long long hw = (long long)H * W;
    GRID_STRIDE_LOOP(i, n) {
        scalar_t z;
        if (!source_metric(mode, metric, i, z)) continue;
        Footprint f;
        if (!footprint(i, H, W, flow, f)) continue;
        const long long b = i / hw, p = i - b * hw;
        scalar_t a[4];
        long long offset[4];  // target offset within one channel plane of sample b
        for (int k = 0; k < 4; ++k) {
            a[k] = f.inside[k] ? f.w[k] * corner_factor(mode, z, b, f.target[k], maxbuf, sample_shift, fast)
                               : (scalar_t)0;
            offset[k] = f.target[k] - b * hw;
            if (den != 0 && a[k] != (scalar_t)0) atomicAdd(&den[f.target[k]], a[k]);
        }
        for (int c = 0; c < C; ++c) {
            const long long plane = (b * C + c) * hw;
            const scalar_t value = input[plane + p];
            for (int k = 0; k < 4; ++k) {
                if (a[k] != (scalar_t)0) atomicAdd(&num[plane + offset[k]], a[k] * value);
            }
        }
    }
}

// One gather pass per source pixel: with A_k = sum_c x_c gnum[c, t_k] + gden[t_k] (the gradient of the loss by
// the weight a_k = w_k g_k of corner k), d input_c = sum_k a_k gnum[c, t_k], d flow = sum_k A_k g_k dw_k, and
// d metric = sum_k A_k w_k (linear) or sum_k A_k a_k (soft). Null outputs are skipped.
extern "C" __global__ void softsplat_backward(const long long n, const int C, const int H, const int W,
                                              const int mode, const scalar_t* input, const scalar_t* flow,
                                              const scalar_t* metric, const scalar_t* maxbuf,
                                              const scalar_t* sample_shift, const int* fast,
                                              const scalar_t* grad_num, const scalar_t* grad_den,
                                              scalar_t* grad_input, scalar_t* grad_flow, scalar_t* grad_metric) {
    const long long hw = (long long)H * W;
    GRID_STRIDE_LOOP(i, n) {
        const long long b = i / hw, p = i - b * hw;
        scalar_t z;
        Footprint f;
        const bool active = source_metric(mode, metric, i, z) && footprint(i, H, W, flow, f);
        scalar_t g[4], a[4], A[4];
        long long offset[4];
        for (int k = 0; k < 4; ++k) {
            const bool on = active && f.inside[k];
            g[k] = on ? corner_factor(mode, z, b, f.target[k], maxbuf, sample_shift, fast) : (scalar_t)0;
            a[k] = on ? f.w[k] * g[k] : (scalar_t)0;
            offset[k] = on ? f.target[k] - b * hw : -1;
            A[k] = (on && grad_den != 0) ? grad_den[f.target[k]] : (scalar_t)0;
        }
        for (int c = 0; c < C; ++c) {
            const long long plane = (b * C + c) * hw;
            const scalar_t value = input[plane + p];
            scalar_t sum = (scalar_t)0;
            for (int k = 0; k < 4; ++k) {
                if (offset[k] < 0) continue;
                const scalar_t gn = grad_num[plane + offset[k]];
                sum += a[k] * gn;
                A[k] += value * gn;
            }
            if (grad_input != 0) grad_input[plane + p] = sum;
        }
        scalar_t du = (scalar_t)0, dv = (scalar_t)0, dz = (scalar_t)0;
        for (int k = 0; k < 4; ++k) {
            if (offset[k] < 0) continue;
            du += A[k] * g[k] * f.dwdu[k];
            dv += A[k] * g[k] * f.dwdv[k];
            dz += A[k] * (mode == 3 ? a[k] : f.w[k]);
        }
        if (grad_flow != 0) {
            grad_flow[(2 * b) * hw + p] = du;
            grad_flow[(2 * b + 1) * hw + p] = dv;
        }
        if (grad_metric != 0) grad_metric[i] = dz;
    }
}
"""


class _KernelSplat(torch.autograd.Function):
    """Numerator and denominator of a splatting mode through the kernels in ``CUDA_SOURCE``.

    forward(x [N, C, H, W], flow [N, 2, H, W], metric [N, 1, H, W] or None, shift, kind, launcher)
    -> (num [N, C, H, W], den [N, 1, H, W], an empty tensor in sum mode). Floating tensors contiguous, of one dtype
    (float32 or float64), on one device. ``shift`` is soft mode's (maxbuf [N, 1, H, W], sample_shift [N],
    fast [1] int32), else None; it is held fixed, which is exact because the normalized result does not depend on it.
    """

    @staticmethod
    def forward(ctx, x, flow, metric, shift, kind: str, launcher: Launcher):
        n, c, h, w = x.shape
        num = torch.zeros_like(x)
        den = x.new_zeros((n, 1, h, w) if kind != 'sum' else (0,))
        maxbuf, sample, fast = shift if shift is not None else (None, None, None)
        launcher('softsplat_forward', x.dtype, x.device, n * h * w,
                 (n * h * w, np.int32(c), np.int32(h), np.int32(w), np.int32(_KIND_CODE[kind]), x, flow, metric,
                  maxbuf, sample, fast, num, den if kind != 'sum' else None))
        ctx.save_for_backward(x, flow, metric, maxbuf, sample, fast)
        ctx.kind, ctx.launcher = kind, launcher
        if kind == 'sum':
            ctx.mark_non_differentiable(den)
        return num, den

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_num, grad_den):
        x, flow, metric, maxbuf, sample, fast = ctx.saved_tensors
        need_x, need_flow, need_metric = ctx.needs_input_grad[:3]
        need_metric = need_metric and metric is not None
        if not (need_x or need_flow or need_metric):
            return None, None, None, None, None, None
        n, c, h, w = x.shape
        grad_num = torch.zeros_like(x) if grad_num is None else grad_num.contiguous()
        grad_den = None if (ctx.kind == 'sum' or grad_den is None) else grad_den.contiguous()
        grad_x = torch.empty_like(x) if need_x else None
        grad_flow = torch.empty_like(flow) if need_flow else None
        grad_metric = torch.empty_like(metric) if need_metric else None
        ctx.launcher('softsplat_backward', x.dtype, x.device, n * h * w,
                     (n * h * w, np.int32(c), np.int32(h), np.int32(w), np.int32(_KIND_CODE[ctx.kind]), x, flow,
                      metric, maxbuf, sample, fast, grad_num, grad_den, grad_x, grad_flow, grad_metric))
        return grad_x, grad_flow, grad_metric, None, None, None


def splat_with_kernels(x: torch.Tensor, flow: torch.Tensor, metric: Optional[torch.Tensor], kind: str,
                       launcher: Launcher) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Numerator ``[N, C, H, W]``, denominator ``[N, 1, H, W]`` (None in sum mode) and the scale of epsilon
    (soft mode: e^-S, broadcastable to ``[N, 1, H, W]``; else None) through the kernels of ``launcher``."""
    x, flow = x.contiguous(), flow.contiguous()
    metric = metric.contiguous() if metric is not None else None
    shift = eps_scale = None
    if kind == 'soft':
        n, _, h, w = x.shape
        valid = torch.isfinite(flow).all(1, keepdim=True) & torch.isfinite(metric)
        sample, fast = sample_shift(metric, valid)
        fast_flag = fast.to(torch.int32).reshape(1)
        maxbuf = x.new_full((n, 1, h, w), float('-inf'))
        launcher('softsplat_max', x.dtype, x.device, n * h * w,
                 (n * h * w, np.int32(h), np.int32(w), flow.detach(), metric.detach(), fast_flag, maxbuf))
        shift = (maxbuf, sample, fast_flag)
        eps_scale = torch.where(fast, torch.exp(-sample).view(n, 1, 1, 1), torch.exp(-maxbuf))
    num, den = _KernelSplat.apply(x, flow, metric, shift, kind, launcher)
    return num, (den if kind != 'sum' else None), eps_scale


# ---------------------------------------------------------------------------------------------------------------
# PyTorch path
# ---------------------------------------------------------------------------------------------------------------

# Source pixels per pass of the PyTorch path (all samples together): the temporary index and weight planes scale
# with this, not with the image, so a 3840 x 2160 frame needs a few hundred MB rather than several GB.
CHUNK_PIXELS = 2 ** 20
BY_CHANNEL_ELEMENTS = 2 ** 24  # inputs above this many elements scatter one channel at a time (without autograd)


def _corners(flow: torch.Tensor, valid: Optional[torch.Tensor], row_factor: Optional[torch.Tensor], top: int,
             height: int) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """Target and bilinear weight of each of the four corners of the source pixels in rows ``top ...`` of an image
    ``height`` rows high, ``[N, rows * W]`` each, one corner at a time.

    ``flow`` ``[N, 2, rows, W]``, ``valid`` and ``row_factor`` ``[N, rows, W]`` are those rows. Targets index a
    per-sample plane padded by one pixel on every side, ``(height + 2) * (W + 2)``: a corner outside the image clamps
    into that border, which is discarded afterwards, so no corner needs a mask. Invalid sources (``valid`` False;
    None means all are valid) are moved outside. ``row_factor`` multiplies every weight of a source. Weights keep
    their autograd link to ``flow`` (and ``row_factor``).
    """
    n, _, rows, w = flow.shape
    h = height
    gx = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w) + flow[:, 0]
    gy = torch.arange(top, top + rows, dtype=flow.dtype, device=flow.device).view(1, rows, 1) + flow[:, 1]
    if valid is not None:
        outside = torch.tensor(-4.0, dtype=flow.dtype, device=flow.device)
        gx, gy = torch.where(valid, gx, outside), torch.where(valid, gy, outside)
    fx, fy = gx.detach().floor(), gy.detach().floor()
    ax, ay = gx - fx, gy - fy
    del gx, gy
    index = torch.int32 if (h + 2) * (w + 2) < 2 ** 31 else torch.int64
    x0 = fx.clamp_(-2, w).to(index)
    y0 = fy.clamp_(-2, h).to(index)
    del fx, fy
    columns = (x0.clamp(min=-1).add_(1), x0.clamp_(max=w - 1).add_(2))  # padded columns of x0 and x0 + 1
    rows_ = (y0.clamp(min=-1).add_(1).mul_(w + 2), y0.clamp_(max=h - 1).add_(2).mul_(w + 2))
    del x0, y0
    for dy in (0, 1):
        wy = 1 - ay if dy == 0 else ay
        if row_factor is not None:
            wy = wy * row_factor
        for dx in (0, 1):
            wx = 1 - ax if dx == 0 else ax
            yield (rows_[dy] + columns[dx]).view(n, -1).to(torch.int64), (wy * wx).view(n, -1)


def splat_torch(x: torch.Tensor, flow: torch.Tensor, metric: Optional[torch.Tensor],
                kind: str) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Same contract as :func:`splat_with_kernels`, with PyTorch ops (``scatter_add_`` per corner and channel, over
    bands of at most ``CHUNK_PIXELS`` source pixels)."""
    n, c, h, w = x.shape
    # One reduction tells whether every flow (and metric) value is finite; only otherwise build the mask.
    probe = flow.detach().sum() + (metric.detach().sum() if metric is not None else 0)
    valid = None
    if not bool(torch.isfinite(probe)):
        valid = torch.isfinite(flow[:, 0]) & torch.isfinite(flow[:, 1])
        if metric is not None:
            valid = valid & torch.isfinite(metric[:, 0])
    z = None
    if metric is not None:
        z = metric[:, 0] if valid is None else torch.where(valid, metric[:, 0], torch.zeros_like(metric[:, 0]))
    values = x.reshape(n, c, h * w)
    if kind != 'sum':
        values = torch.cat([values, values.new_ones((n, 1, h * w))], 1)
    eps_scale = row_factor = maxbuf = None
    if kind == 'linear':
        row_factor = z
    elif kind == 'soft':
        sample, fast = sample_shift(z, valid if valid is not None else torch.ones_like(z, dtype=torch.bool))
        if bool(fast):
            row_factor = torch.exp(z - sample.view(n, 1, 1))
            if valid is not None:  # dropped sources (z = 0 stands in) may lie far above the shift: e^(0 - S) = inf
                row_factor = torch.where(valid, row_factor, torch.zeros_like(row_factor))
            eps_scale = torch.exp(-sample).view(n, 1, 1, 1)
        else:
            maxbuf = _target_maximum(z, flow, valid, h, w)
            eps_scale = torch.exp(-maxbuf.view(n, 1, h + 2, w + 2)[:, :, 1:h + 1, 1:w + 1])
    planes = values.new_zeros((n, values.shape[1], (h + 2) * (w + 2)))
    # Large inputs without autograd go channel by channel: one [N, band] product at a time instead of [N, C, band]
    # (4K frames). Otherwise all channels at once, which is faster, and under autograd necessary: in-place writes
    # into views of `planes` would make every backward step copy it.
    by_channel = values.numel() > BY_CHANNEL_ELEMENTS and not (
        torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, flow, metric)))
    for top, bottom in _bands(n, h, w):
        band = slice(top * w, bottom * w)
        part = (lambda t: None if t is None else t[:, top:bottom])
        for target, weight in _corners(flow[:, :, top:bottom], part(valid), part(row_factor), top, h):
            if maxbuf is not None:  # shifted by each target's largest metric (see corner_factor in CUDA_SOURCE)
                zd = z[:, top:bottom].reshape(n, -1)
                weight = weight * torch.exp(zd - torch.maximum(maxbuf.gather(1, target), zd.detach()))
            if by_channel:
                for channel in range(values.shape[1]):
                    planes[:, channel].scatter_add_(1, target, values[:, channel, band] * weight)
            else:
                planes.scatter_add_(2, target.unsqueeze(1).expand(-1, values.shape[1], -1),
                                    values[:, :, band] * weight.unsqueeze(1))
            del target, weight
    planes = planes.view(n, -1, h + 2, w + 2)[:, :, 1:h + 1, 1:w + 1]
    if kind == 'sum':
        return planes, None, None
    return planes[:, :c], planes[:, c:], eps_scale


def _bands(n: int, h: int, w: int) -> List[Tuple[int, int]]:
    """Row ranges covering the image with at most CHUNK_PIXELS source pixels each (at least one row)."""
    step = max(1, CHUNK_PIXELS // max(1, n * w))
    return [(top, min(h, top + step)) for top in range(0, h, step)]


@torch.no_grad()
def _target_maximum(z: torch.Tensor, flow: torch.Tensor, valid: Optional[torch.Tensor], h: int, w: int
                    ) -> torch.Tensor:
    """``[N, (H + 2) * (W + 2)]``: per target, the largest metric among the sources reaching it with a positive
    weight (soft mode when the metrics span more than MAX_SAMPLE_SPREAD), -inf where none does."""
    n = z.shape[0]
    zd = z.detach()
    maxbuf = zd.new_full((n, (h + 2) * (w + 2)), float('-inf'))
    for top, bottom in _bands(n, h, w):
        part = None if valid is None else valid[:, top:bottom]
        band = zd[:, top:bottom].reshape(n, -1)
        for target, weight in _corners(flow[:, :, top:bottom].detach(), part, None, top, h):
            maxbuf.scatter_reduce_(1, target, torch.where(weight > 0, band, float('-inf')), 'amax')
    return maxbuf


# ---------------------------------------------------------------------------------------------------------------
# Public interface
# ---------------------------------------------------------------------------------------------------------------

def normalize(num: torch.Tensor, den: torch.Tensor, rule: str,
              eps_scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``num / N(den)`` for the rule ``'addeps'``, ``'zeroeps'`` or ``'clipeps'``; epsilon is 1e-7 * eps_scale.

    A target that no source reaches has ``num = den = 0`` and the formula gives exactly 0 there. With a large shift
    S (soft mode), 1e-7 * e^-S underflows to 0 (float32 beyond S ~ 88), so such targets are set to 0 explicitly
    rather than computed as 0 / 0; elsewhere den > 0 and the lost epsilon is below float precision of den.
    """
    if rule == 'zeroeps':
        return num / torch.where(den == 0, torch.ones_like(den), den)
    eps = EPSILON if eps_scale is None else EPSILON * eps_scale
    if rule == 'addeps':
        den = den + eps
    elif eps_scale is None:
        den = den.clamp_min(EPSILON)
    else:
        den = torch.maximum(den, eps)
    if eps_scale is None:
        return num / den
    empty = den == 0
    return torch.where(empty, torch.zeros_like(num), num / torch.where(empty, torch.ones_like(den), den))


def softsplat(tenIn: torch.Tensor, tenFlow: torch.Tensor, tenMetric: Optional[torch.Tensor], strMode: str, *,
              backend: Optional[str] = None) -> torch.Tensor:
    """Forward-warp ``tenIn`` by ``tenFlow``, resolving collisions as ``strMode`` says.

    Args:
        tenIn: ``[N, C, H, W]`` floating point (float16, bfloat16, float32, float64).
        tenFlow: ``[N, 2, H, W]`` displacement in pixels; channel 0 horizontal (x), channel 1 vertical (y).
        tenMetric: ``[N, 1, H, W]`` importance metric Z for ``'linear'`` and ``'soft'``; None for ``'sum'``, ``'avg'``.
        strMode: ``'sum'``, or ``'avg'``/``'linear'``/``'soft'`` with an optional suffix ``-addeps`` (default),
            ``-zeroeps`` or ``-clipeps`` choosing how the normalizer avoids division by zero.
        backend: ``'auto'`` (default: CuPy kernels for CUDA tensors when CuPy imports, else PyTorch), ``'cupy'`` or
            ``'torch'``. Without it, the environment variable ``SOFTSPLAT_BACKEND`` decides.

    Returns:
        ``[N, C, H, W]`` in the dtype of ``tenIn``; accumulation is float32 (float64 if an input is float64).
        Differentiable with respect to all three tensors.

    Raises:
        TypeError, ValueError: on inputs of the wrong type, dtype, shape or device, or an unknown mode.
    """
    kind, rule = parse_mode(strMode)
    check_inputs(tenIn, tenFlow, tenMetric, kind)
    chosen = resolve_backend(backend, tenIn.device, env_var=BACKEND_ENV)
    tensors = [t for t in (tenIn, tenFlow, tenMetric) if t is not None]
    dtype = torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32
    x, flow = tenIn.to(dtype), tenFlow.to(dtype)
    metric = tenMetric.to(dtype) if tenMetric is not None else None
    with torch.autocast(device_type=tenIn.device.type, enabled=False):
        if chosen == 'cupy':
            num, den, eps_scale = splat_with_kernels(x, flow, metric, kind, cupy_launcher(CUDA_SOURCE))
        else:
            num, den, eps_scale = splat_torch(x, flow, metric, kind)
        out = num if kind == 'sum' else normalize(num, den, rule, eps_scale)
    return out.to(tenIn.dtype)


def FunctionSoftsplat(tenInput: torch.Tensor, tenFlow: torch.Tensor, tenMetric: Optional[torch.Tensor],
                      strType: str) -> torch.Tensor:
    """The 2020 interface: ``strType`` in ``'summation' | 'average' | 'linear' | 'softmax'`` (normalizer + 1e-7).

    As in the 2020 release, ``tenMetric`` is ignored by ``'summation'`` and ``'average'``.
    """
    if strType not in _LEGACY_TYPES:
        raise ValueError(f'strType {strType!r} is not a splatting type; expected one of '
                         f'{", ".join(_LEGACY_TYPES)}')
    kind = _LEGACY_TYPES[strType]
    return softsplat(tenInput, tenFlow, tenMetric if kind in ('linear', 'soft') else None, kind)


class ModuleSoftsplat(torch.nn.Module):
    """The 2020 module: ``ModuleSoftsplat(strType)(tenInput, tenFlow, tenMetric)``; see :func:`FunctionSoftsplat`."""

    def __init__(self, strType: str):
        super().__init__()
        if strType not in _LEGACY_TYPES:
            raise ValueError(f'strType {strType!r} is not a splatting type; expected one of '
                             f'{", ".join(_LEGACY_TYPES)}')
        self.strType = strType

    def forward(self, tenInput: torch.Tensor, tenFlow: torch.Tensor,
                tenMetric: Optional[torch.Tensor] = None) -> torch.Tensor:
        return FunctionSoftsplat(tenInput, tenFlow, tenMetric, self.strType)

    def extra_repr(self) -> str:
        return f'strType={self.strType!r}'
