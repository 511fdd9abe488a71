"""Benchmark softsplat.py: forward and forward+backward per backend, mode and size, each against a reference.

Every figure is timed in the same run as a straightforward reference, so the tables report ratios that do not
depend on the machine's mood:

* CPU: plain PyTorch with one ``scatter_add_`` per bilinear corner, wrapped the way the published operator wraps
  its kernel (metric weighting, concatenation of the weight channel, normalization as separate PyTorch ops).
* GPU: a simple CUDA kernel with one thread per element of the input that recomputes the bilinear weights and does
  four ``atomicAdd`` (the published operator's design), wrapped the same way, with gather kernels for its backward.

Effective bandwidth counts the bytes a splatting pass must at least touch, divided by the time: forward reads
tenIn, tenFlow (and tenMetric) and writes the output; forward+backward adds reading the output gradient and writing
the gradients of tenIn, tenFlow (and tenMetric). On a GPU the table also reports a device-to-device copy for scale.
Flows are smooth random fields (a coarse random grid upsampled, a few pixels of motion) like real optical flow.

Usage: ``python benchmark_softsplat.py`` (CPU: the three default sizes; GPU: adds [1, 3, 2160, 3840]);
``--device``, ``--shapes 1x3x480x854 ...``, ``--modes``, ``--repeats``, ``--json PATH``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .. import errors, files, softsplat as ss
from ..cupy_launch import launch_cupy
from ..timing import median_ms
from . import options, tables

DEFAULT_SHAPES = ['1x3x480x854', '1x3x1080x1920', '4x64x256x448']
GPU_ONLY_SHAPES = ['1x3x2160x3840']


# ---------------------------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------------------------

def _scatter_add_sum(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Summation splatting with one scatter_add_ per bilinear corner (autograd gives the backward)."""
    n, c, h, w = x.shape
    gx = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w) + flow[:, 0]
    gy = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1) + flow[:, 1]
    x0, y0 = gx.detach().floor(), gy.detach().floor()
    out = x.new_zeros((n, c, h * w))
    for dy in (0, 1):
        for dx in (0, 1):
            tx, ty = x0 + dx, y0 + dy
            weight = (1 - (gx - tx).abs()) * (1 - (gy - ty).abs())
            inside = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
            index = (ty.clamp(0, h - 1) * w + tx.clamp(0, w - 1)).long().view(n, 1, h * w).expand(n, c, h * w)
            out = out.scatter_add(2, index, (x * (weight * inside).unsqueeze(1)).view(n, c, h * w))
    return out.view(n, c, h, w)


SIMPLE_KERNEL = r'''
// The published operator's design: one thread per element of the input, four atomicAdds.
#define GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

// Where source pixel (x, y) of sample b lands; false for a non-finite flow.
__device__ inline bool landing(const float* flow, long long b, int H, int W, int x, int y, float& gx, float& gy) {
    gx = (float)x + flow[((b * 2 + 0) * H + y) * W + x];
    gy = (float)y + flow[((b * 2 + 1) * H + y) * W + x];
    return isfinite(gx) && isfinite(gy);
}

// Corner k (0..3) of the bilinear footprint around (gx, gy); false when it lies outside the image.
__device__ inline bool corner(float gx, float gy, int k, int H, int W, int& tx, int& ty) {
    tx = (int)floorf(gx) + (k & 1);
    ty = (int)floorf(gy) + (k >> 1);
    return tx >= 0 && tx < W && ty >= 0 && ty < H;
}

extern "C" __global__ void simple_forward(const long long n, const int C, const int H, const int W,
                                          const float* input, const float* flow, float* output) {
    GRID_STRIDE(i, n) {
        const int x = (int)(i % W), y = (int)((i / W) % H), c = (int)((i / ((long long)H * W)) % C);
        const long long b = i / ((long long)C * H * W);
        float gx, gy;
        if (!landing(flow, b, H, W, x, y, gx, gy)) continue;
        for (int k = 0; k < 4; ++k) {
            int tx, ty;
            if (!corner(gx, gy, k, H, W, tx, ty)) continue;
            const float weight = (1.0f - fabsf(gx - (float)tx)) * (1.0f - fabsf(gy - (float)ty));
            atomicAdd(&output[((b * C + c) * H + ty) * W + tx], input[i] * weight);
        }
    }
}

// Gradient of the input: one thread per element gathers from its four targets.
extern "C" __global__ void simple_grad_input(const long long n, const int C, const int H, const int W,
                                             const float* flow, const float* grad_output, float* grad_input) {
    GRID_STRIDE(i, n) {
        const int x = (int)(i % W), y = (int)((i / W) % H), c = (int)((i / ((long long)H * W)) % C);
        const long long b = i / ((long long)C * H * W);
        float gx, gy, sum = 0.0f;
        const bool lands = landing(flow, b, H, W, x, y, gx, gy);
        for (int k = 0; lands && k < 4; ++k) {
            int tx, ty;
            if (!corner(gx, gy, k, H, W, tx, ty)) continue;
            sum += (1.0f - fabsf(gx - (float)tx)) * (1.0f - fabsf(gy - (float)ty))
                   * grad_output[((b * C + c) * H + ty) * W + tx];
        }
        grad_input[i] = sum;
    }
}

// Gradient of the flow: one thread per flow element loops over the channels.
extern "C" __global__ void simple_grad_flow(const long long n, const int C, const int H, const int W,
                                            const float* input, const float* flow, const float* grad_output,
                                            float* grad_flow) {
    GRID_STRIDE(i, n) {
        const int x = (int)(i % W), y = (int)((i / W) % H), d = (int)((i / ((long long)H * W)) % 2);
        const long long b = i / (2LL * H * W);
        float gx, gy, sum = 0.0f;
        const bool lands = landing(flow, b, H, W, x, y, gx, gy);
        for (int k = 0; lands && k < 4; ++k) {
            int tx, ty;
            if (!corner(gx, gy, k, H, W, tx, ty)) continue;
            const float sx = (k & 1) ? 1.0f : -1.0f, sy = (k >> 1) ? 1.0f : -1.0f;
            const float derivative = d == 0 ? sx * (1.0f - fabsf(gy - (float)ty)) : sy * (1.0f - fabsf(gx - (float)tx));
            for (int c = 0; c < C; ++c) {
                sum += derivative * input[((b * C + c) * H + y) * W + x] * grad_output[((b * C + c) * H + ty) * W + tx];
            }
        }
        grad_flow[i] = sum;
    }
}
'''


class _SimpleKernelSum(torch.autograd.Function):
    """Summation splatting through SIMPLE_KERNEL (float32, CUDA)."""

    @staticmethod
    def forward(ctx, x, flow):
        x, flow = x.contiguous(), flow.contiguous()
        n, c, h, w = x.shape
        out = torch.zeros_like(x)
        launch_cupy(SIMPLE_KERNEL, 'simple_forward', torch.float32, x.device, x.numel(),
                    (x.numel(), np.int32(c), np.int32(h), np.int32(w), x, flow, out))
        ctx.save_for_backward(x, flow)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, flow = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        n, c, h, w = x.shape
        grad_x, grad_flow = torch.empty_like(x), torch.empty_like(flow)
        launch_cupy(SIMPLE_KERNEL, 'simple_grad_input', torch.float32, x.device, x.numel(),
                    (x.numel(), np.int32(c), np.int32(h), np.int32(w), flow, grad_out, grad_x))
        launch_cupy(SIMPLE_KERNEL, 'simple_grad_flow', torch.float32, x.device, flow.numel(),
                    (flow.numel(), np.int32(c), np.int32(h), np.int32(w), x, flow, grad_out, grad_flow))
        return grad_x, grad_flow


def published_style(splat_sum: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    """Wrap a summation splat the way the published operator does: weight, concatenate, splat, normalize."""

    def run(x: torch.Tensor, flow: torch.Tensor, metric: Optional[torch.Tensor], mode: str) -> torch.Tensor:
        kind, rule = ss.parse_mode(mode)
        if kind == 'sum':
            return splat_sum(x, flow)
        weight = {'avg': lambda: torch.ones_like(x[:, :1]), 'linear': lambda: metric,
                  'soft': lambda: metric.exp()}[kind]()
        out = splat_sum(torch.cat([x * weight, weight], 1), flow)
        return ss.normalize(out[:, :-1], out[:, -1:], rule)

    return run


# ---------------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------------

def smooth_flow(n: int, h: int, w: int, device: torch.device, magnitude: float = 6.0, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 2, max(2, h // 32), max(2, w // 32), generator=gen) * magnitude
    flow = torch.nn.functional.interpolate(coarse, size=(h, w), mode='bilinear', align_corners=False)
    return (flow + 0.5 * torch.randn(n, 2, h, w, generator=gen)).to(device)


def nominal_bytes(shape: Tuple[int, int, int, int], metric: bool, backward: bool, itemsize: int = 4) -> int:
    n, c, h, w = shape
    per_pixel = c + 2 + (1 if metric else 0) + c  # read x, flow, metric; write output
    if backward:
        per_pixel += c + c + 2 + (1 if metric else 0)  # read grad_out; write grads of x, flow, metric
    return per_pixel * n * h * w * itemsize


def copy_bandwidth(device: torch.device, repeats: int) -> float:
    """GB/s of a device-to-device copy of 1 GiB (read + write counted)."""
    a = torch.empty(256 * 1024 * 1024, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    ms, = median_ms([lambda: b.copy_(a)], device, repeats)
    return 2 * a.numel() * 4 / (ms * 1e-3) / 1e9


def make_step(fn, x, flow, metric, mode, backward):
    """A closure running one forward (under no_grad) or one forward+backward of ``fn``."""
    if not backward:
        def forward():
            with torch.no_grad():
                fn(x, flow, metric, mode)
        return forward
    leaves = [t.detach().clone().requires_grad_() for t in (x, flow)]
    m = metric.detach().clone().requires_grad_() if metric is not None else None
    grad = torch.rand_like(x)

    def step():
        for t in leaves + ([m] if m is not None else []):
            t.grad = None
        fn(leaves[0], leaves[1], m, mode).backward(grad)

    return step


def benchmark(device: torch.device, shapes: List[Tuple[int, int, int, int]], modes: List[str],
              repeats: int) -> List[Dict[str, object]]:
    if device.type == 'cuda':
        backends = {'cupy': lambda x, f, m, mode: ss.softsplat(x, f, m, mode, backend='cupy'),
                    'torch': lambda x, f, m, mode: ss.softsplat(x, f, m, mode, backend='torch')}
        reference_name, reference = 'simple kernel', published_style(_SimpleKernelSum.apply)
    else:
        backends = {'torch': lambda x, f, m, mode: ss.softsplat(x, f, m, mode, backend='torch')}
        reference_name, reference = 'scatter_add', published_style(_scatter_add_sum)
    rows = []
    for dims in shapes:
        n, c, h, w = dims
        size = 'x'.join(str(d) for d in dims)
        gen = torch.Generator().manual_seed(1)
        x = torch.rand(dims, generator=gen).to(device)
        flow = smooth_flow(n, h, w, device)
        metric = (-5 * torch.rand(n, 1, h, w, generator=gen)).to(device)
        # One untimed forward+backward of everything at this size first: the allocator (glibc's mmap threshold,
        # PyTorch's CUDA cache) adapts to a new size over the first runs, which would penalize whichever mode
        # happened to be measured first.
        contenders = {reference_name: reference, **backends}
        for fn in contenders.values():
            make_step(fn, x, flow, metric, 'soft', True)()
        for mode in modes:
            m = metric if mode.split('-')[0] in ('linear', 'soft') else None
            if mode.startswith('linear'):
                m = metric.neg() + 0.1
            for backward in (False, True):
                steps = [make_step(fn, x, flow, m, mode, backward) for fn in contenders.values()]
                times = median_ms(steps, device, repeats)
                bytes_moved = nominal_bytes(dims, m is not None, backward)
                for name, ms in zip(contenders, times):
                    rows.append(dict(size=size, mode=mode, pass_='fwd+bwd' if backward else 'fwd', backend=name,
                                     ms=ms, gbps=bytes_moved / (ms * 1e-3) / 1e9, speedup=times[0] / ms))
                print(format_rows(rows[-len(contenders):], header=False), flush=True)
    return rows


def format_rows(rows: List[Dict[str, object]], header: bool = True) -> str:
    lines = [tables.row((r['size'], r['mode'], r['pass_'], r['backend'], f"{r['ms']:.2f}", f"{r['gbps']:.1f}",
                         f"{r['speedup']:.2f}")) for r in rows]
    if header:
        lines.insert(0, tables.header(['size', 'mode', 'pass', 'backend', 'ms (median)', 'GB/s effective',
                                       '× reference'], [False] * 4 + [True] * 3))
    return '\n'.join(lines)


def shape(text: str) -> Tuple[int, int, int, int]:
    """argparse type: ``'1x3x480x854'`` -> ``(1, 3, 480, 854)``, a tensor shape N x C x H x W."""
    parts = text.lower().split('x')
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f'{text!r} is not a tensor shape NxCxHxW, e.g. 1x3x480x854')
    return tuple(int(p) for p in parts)


def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--shapes', nargs='+', type=shape, default=None, metavar='NxCxHxW',
                        help='input tensor shapes (default: %s; plus %s on a GPU)' % (' '.join(DEFAULT_SHAPES),
                                                                                      ' '.join(GPU_ONLY_SHAPES)))
    parser.add_argument('--modes', nargs='+', default=['sum', 'avg', 'linear', 'soft'], choices=ss.MODES,
                        help='splatting modes to time (default: sum avg linear soft)')
    options.add_kernel_benchmark(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    device, repeats, name = options.kernel_benchmark_setup(args)
    defaults = DEFAULT_SHAPES + (GPU_ONLY_SHAPES if device.type == 'cuda' else [])
    shapes = args.shapes or [shape(text) for text in defaults]
    print(f'softsplat benchmark on {name}, torch {torch.__version__}, float32, median of {repeats}')
    if device.type == 'cuda':
        print(f'device-to-device copy: {copy_bandwidth(device, repeats):.0f} GB/s')
    print(format_rows([]))
    rows = benchmark(device, shapes, args.modes, repeats)
    if args.json:
        files.write_json(Path(args.json), {'device': name, 'torch': torch.__version__, 'rows': rows})
    return 0


if __name__ == '__main__':
    sys.exit(main())
