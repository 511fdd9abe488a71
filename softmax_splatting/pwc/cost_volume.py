"""The cost volume of PWC-Net (Sun et al., CVPR 2018, Sec. 3 "Cost volume layer").

For features ``one`` and ``two`` of shape ``[N, C, H, W]`` the cost volume has 81 channels, one per displacement
(dx, dy) in [-4, 4]^2, stored at channel ``(dy + 4) * 9 + (dx + 4)``:

    out[n, (dy + 4) * 9 + (dx + 4), y, x] = 1/C * sum_c one[n, c, y, x] * two[n, c, y + dy, x + dx]

with ``two`` read as zero outside the image. The 1/C normalisation (a mean, where the paper writes a plain dot
product), the channel order and the search range of 4 are those of the published network; its weights were trained
with exactly this layer, so they are part of the contract, not a choice.

Two backends behind one call, chosen like softsplat.py's (by ``cupy_launch.py``): CUDA tensors run CuPy kernels when
CuPy imports, every device runs a pure-PyTorch path that relies on autograd; ``backend='torch'|'cupy'`` or the
environment variable ``PWC_CORRELATION_BACKEND`` forces one. Used alone (copied out of this project), ``pwc/`` runs
the PyTorch path. The kernels are plain CUDA C with grid-stride loops, no shared memory and no headers, so that
tests/kernels_on_cpu.py can compile the very same text as C++ on a machine without a GPU. Their backward pass is
written as gathers (one thread per input element collects the 81 products it took part in), so it needs no atomics
and gives both gradients in one launch. float16 / bfloat16 inputs (and ``torch.autocast``) are computed in float32
and returned in the dtype of ``one``.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import require_float_tensor, shape_text

try:  # the CuPy plumbing of the project; absent when pwc/ is used on its own, which leaves the PyTorch path
    from ..cupy_launch import Launcher, cupy_launcher, resolve_backend
except ImportError:
    Launcher = Callable
    cupy_launcher = None

    def resolve_backend(backend: Optional[str], device: torch.device, env_var: str) -> str:
        if (backend or 'torch').strip().lower() not in ('auto', 'torch'):
            raise ValueError(f'backend {backend!r}: the CuPy kernels need the softmax_splatting package around pwc/')
        return 'torch'

__all__ = ['correlation', 'correlation_torch', 'correlation_with_kernels', 'CUDA_SOURCE', 'BACKEND_ENV',
           'MAX_DISPLACEMENT', 'DISPLACEMENTS']

BACKEND_ENV = 'PWC_CORRELATION_BACKEND'
MAX_DISPLACEMENT = 4
SIDE = 2 * MAX_DISPLACEMENT + 1
DISPLACEMENTS = SIDE * SIDE  # 81 output channels


def check_inputs(one: object, two: object) -> None:
    """Raise TypeError/ValueError naming the argument unless both are floating ``[N, C, H, W]`` of one shape/device."""
    for name, tensor in (('one', one), ('two', two)):
        require_float_tensor(name, tensor)
        if tensor.dim() != 4 or min(tensor.shape) == 0:
            raise ValueError(f'{name} must be a non-empty 4-D tensor [N, C, H, W], got shape {shape_text(tensor)}')
    if one.shape != two.shape:
        raise ValueError(f'one and two must have the same shape [N, C, H, W], got {shape_text(one)} and '
                         f'{shape_text(two)}')
    if one.device != two.device:
        raise ValueError(f'two is on {two.device} but one is on {one.device}; both must be on one device')


# ---------------------------------------------------------------------------------------------------------------
# CUDA kernels
# ---------------------------------------------------------------------------------------------------------------

CUDA_SOURCE = r"""
// scalar_t is typedef'd by the loader (float or double). Feature element (b, c, y, x) sits at ((b * C + c) * H + y)
// * W + x; cost-volume element (b, d, y, x) at ((b * 81 + d) * H + y) * W + x with d = (dy + 4) * 9 + (dx + 4).

#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

#define PWC_RADIUS 4
#define PWC_SIDE 9
#define PWC_DISPLACEMENTS 81

// One thread per cost-volume element; neighbouring threads take neighbouring x, so both feature reads coalesce.
extern "C" __global__ void correlation_forward(const long long n, const int C, const int H, const int W,
                                               const scalar_t* one, const scalar_t* two, scalar_t* out) {
    const long long hw = (long long)H * W;
    GRID_STRIDE_LOOP(i, n) {
        const long long p = i % hw;
        const long long bd = i / hw;
        const int d = (int)(bd % PWC_DISPLACEMENTS);
        const long long b = bd / PWC_DISPLACEMENTS;
        const int y = (int)(p / W), x = (int)(p - (long long)y * W);
        const int y2 = y + d / PWC_SIDE - PWC_RADIUS, x2 = x + d % PWC_SIDE - PWC_RADIUS;
        scalar_t sum = (scalar_t)0;
        if (y2 >= 0 && y2 < H && x2 >= 0 && x2 < W) {
            const scalar_t* a = one + b * C * hw + p;
            const scalar_t* t = two + b * C * hw + (long long)y2 * W + x2;
            for (int c = 0; c < C; ++c) sum += a[c * hw] * t[c * hw];
            sum /= (scalar_t)C;
        }
        out[i] = sum;
    }
}

// One thread per feature element (b, c, y, x) gathers everything it contributed to:
//   d one[b, c, y, x] = 1/C sum_d g[b, d, y, x] two[b, c, y + dy, x + dx]
//   d two[b, c, y, x] = 1/C sum_d g[b, d, y - dy, x - dx] one[b, c, y - dy, x - dx]
// so no two threads write one place and no atomics are needed. Null outputs are skipped.
extern "C" __global__ void correlation_backward(const long long n, const int C, const int H, const int W,
                                                const scalar_t* one, const scalar_t* two, const scalar_t* grad_out,
                                                scalar_t* grad_one, scalar_t* grad_two) {
    const long long hw = (long long)H * W;
    GRID_STRIDE_LOOP(i, n) {
        const long long p = i % hw;
        const long long bc = i / hw;
        const long long b = bc / C;
        const int y = (int)(p / W), x = (int)(p - (long long)y * W);
        const scalar_t* g = grad_out + b * PWC_DISPLACEMENTS * hw;
        const scalar_t* plane_one = one + bc * hw;
        const scalar_t* plane_two = two + bc * hw;
        scalar_t g1 = (scalar_t)0, g2 = (scalar_t)0;
        for (int d = 0; d < PWC_DISPLACEMENTS; ++d) {
            const int dy = d / PWC_SIDE - PWC_RADIUS, dx = d % PWC_SIDE - PWC_RADIUS;
            const int ya = y + dy, xa = x + dx;
            if (grad_one != 0 && ya >= 0 && ya < H && xa >= 0 && xa < W) {
                g1 += g[d * hw + p] * plane_two[(long long)ya * W + xa];
            }
            const int yb = y - dy, xb = x - dx;
            if (grad_two != 0 && yb >= 0 && yb < H && xb >= 0 && xb < W) {
                const long long q = (long long)yb * W + xb;
                g2 += g[d * hw + q] * plane_one[q];
            }
        }
        if (grad_one != 0) grad_one[i] = g1 / (scalar_t)C;
        if (grad_two != 0) grad_two[i] = g2 / (scalar_t)C;
    }
}
"""


class _KernelCorrelation(torch.autograd.Function):
    """The cost volume through the kernels of ``CUDA_SOURCE``, run by ``launcher`` (see cupy_launch.Launcher).

    forward(one [N, C, H, W], two [N, C, H, W], launcher) -> [N, 81, H, W]; both contiguous, of one dtype (float32 or
    float64), on one device.
    """

    @staticmethod
    def forward(ctx, one, two, launcher: Launcher):
        n, c, h, w = one.shape
        out = one.new_empty((n, DISPLACEMENTS, h, w))
        total = n * DISPLACEMENTS * h * w
        launcher('correlation_forward', one.dtype, one.device, total,
                 (total, np.int32(c), np.int32(h), np.int32(w), one, two, out))
        ctx.save_for_backward(one, two)
        ctx.launcher = launcher
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        one, two = ctx.saved_tensors
        need_one, need_two = ctx.needs_input_grad[:2]
        if not (need_one or need_two):
            return None, None, None
        n, c, h, w = one.shape
        grad_one = torch.empty_like(one) if need_one else None
        grad_two = torch.empty_like(two) if need_two else None
        total = n * c * h * w
        ctx.launcher('correlation_backward', one.dtype, one.device, total,
                     (total, np.int32(c), np.int32(h), np.int32(w), one, two, grad_out.contiguous(), grad_one,
                      grad_two))
        return grad_one, grad_two, None


def correlation_with_kernels(one: torch.Tensor, two: torch.Tensor, launcher: Launcher) -> torch.Tensor:
    """Cost volume ``[N, 81, H, W]`` of float32/float64 ``[N, C, H, W]`` features through ``launcher``'s kernels."""
    return _KernelCorrelation.apply(one.contiguous(), two.contiguous(), launcher)


# ---------------------------------------------------------------------------------------------------------------
# PyTorch path
# ---------------------------------------------------------------------------------------------------------------

def correlation_torch(one: torch.Tensor, two: torch.Tensor) -> torch.Tensor:
    """Cost volume ``[N, 81, H, W]`` with PyTorch ops; autograd gives the backward.

    One product and channel mean per displacement, each reading a shifted view of the zero-padded ``two`` (no
    copy). Batching the nine column offsets of a row (``unfold`` + ``einsum``) was timed too and was slower on CPU.
    """
    _, _, h, w = one.shape
    r = MAX_DISPLACEMENT
    padded = F.pad(two, (r, r, r, r))
    return torch.stack([(one * padded[:, :, dy:dy + h, dx:dx + w]).mean(1)
                        for dy in range(SIDE) for dx in range(SIDE)], 1)


# ---------------------------------------------------------------------------------------------------------------
# Public interface
# ---------------------------------------------------------------------------------------------------------------

def correlation(one: torch.Tensor, two: torch.Tensor, *, backend: Optional[str] = None) -> torch.Tensor:
    """PWC-Net's cost volume between two feature maps.

    Args:
        one: ``[N, C, H, W]`` floating point, the first image's features.
        two: ``[N, C, H, W]`` same shape and device, the (warped) second image's features.
        backend: ``'auto'`` (default: CuPy kernels for CUDA tensors when CuPy imports, else PyTorch), ``'cupy'`` or
            ``'torch'``. Without it, the environment variable ``PWC_CORRELATION_BACKEND`` decides.

    Returns:
        ``[N, 81, H, W]`` in the dtype of ``one``: channel ``(dy + 4) * 9 + (dx + 4)`` holds the channel mean of
        ``one[:, :, y, x] * two[:, :, y + dy, x + dx]`` (zero where that is outside the image). Differentiable
        with respect to both inputs.

    Raises:
        TypeError, ValueError: inputs of the wrong type, dtype, shape or device, or an unknown backend.
    """
    check_inputs(one, two)
    chosen = resolve_backend(backend, one.device, env_var=BACKEND_ENV)
    dtype = torch.float64 if torch.float64 in (one.dtype, two.dtype) else torch.float32
    with torch.autocast(device_type=one.device.type, enabled=False):
        a, b = one.to(dtype), two.to(dtype)
        if chosen == 'cupy':
            out = correlation_with_kernels(a, b, cupy_launcher(CUDA_SOURCE))
        else:
            out = correlation_torch(a, b)
    return out.to(one.dtype)
