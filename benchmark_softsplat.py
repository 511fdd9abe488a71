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
``--device``, ``--sizes 1x3x480x854 ...``, ``--modes``, ``--repeats``, ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

import softsplat as ss
from frames import UsageError
from interpolator import select_device
from timing import median_ms

DEFAULT_SIZES = ['1x3x480x854', '1x3x1080x1920', '4x64x256x448']
GPU_ONLY_SIZES = ['1x3x2160x3840']


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
extern "C" __global__ void simple_forward(const long long n, const int C, const int H, const int W,
                                          const float* input, const float* flow, float* output) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        const int x = (int)(i % W), y = (int)((i / W) % H), c = (int)((i / ((long long)H * W)) % C);
        const long long b = i / ((long long)C * H * W);
        const float gx = (float)x + flow[((b * 2 + 0) * H + y) * W + x];
        const float gy = (float)y + flow[((b * 2 + 1) * H + y) * W + x];
        if (!isfinite(gx) || !isfinite(gy)) continue;
        const int x0 = (int)floorf(gx), y0 = (int)floorf(gy);
        const float value = input[i];
        for (int k = 0; k < 4; ++k) {
            const int tx = x0 + (k & 1), ty = y0 + (k >> 1);
            if (tx < 0 || tx >= W || ty < 0 || ty >= H) continue;
            const float weight = (1.0f - fabsf(gx - (float)tx)) * (1.0f - fabsf(gy - (float)ty));
            atomicAdd(&output[((b * C + c) * H + ty) * W + tx], value * weight);
        }
    }
}

// Gradient of the input: one thread per element gathers from its four targets.
extern "C" __global__ void simple_grad_input(const long long n, const int C, const int H, const int W,
                                             const float* flow, const float* grad_output, float* grad_input) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        const int x = (int)(i % W), y = (int)((i / W) % H), c = (int)((i / ((long long)H * W)) % C);
        const long long b = i / ((long long)C * H * W);
        const float gx = (float)x + flow[((b * 2 + 0) * H + y) * W + x];
        const float gy = (float)y + flow[((b * 2 + 1) * H + y) * W + x];
        float sum = 0.0f;
        if (isfinite(gx) && isfinite(gy)) {
            const int x0 = (int)floorf(gx), y0 = (int)floorf(gy);
            for (int k = 0; k < 4; ++k) {
                const int tx = x0 + (k & 1), ty = y0 + (k >> 1);
                if (tx < 0 || tx >= W || ty < 0 || ty >= H) continue;
                const float weight = (1.0f - fabsf(gx - (float)tx)) * (1.0f - fabsf(gy - (float)ty));
                sum += weight * grad_output[((b * C + c) * H + ty) * W + tx];
            }
        }
        grad_input[i] = sum;
    }
}

// Gradient of the flow: one thread per flow element loops over the channels.
extern "C" __global__ void simple_grad_flow(const long long n, const int C, const int H, const int W,
                                            const float* input, const float* flow, const float* grad_output,
                                            float* grad_flow) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        const int x = (int)(i % W), y = (int)((i / W) % H), d = (int)((i / ((long long)H * W)) % 2);
        const long long b = i / (2LL * H * W);
        const float gx = (float)x + flow[((b * 2 + 0) * H + y) * W + x];
        const float gy = (float)y + flow[((b * 2 + 1) * H + y) * W + x];
        float sum = 0.0f;
        if (isfinite(gx) && isfinite(gy)) {
            const int x0 = (int)floorf(gx), y0 = (int)floorf(gy);
            for (int k = 0; k < 4; ++k) {
                const int tx = x0 + (k & 1), ty = y0 + (k >> 1);
                if (tx < 0 || tx >= W || ty < 0 || ty >= H) continue;
                const float sx = (k & 1) ? 1.0f : -1.0f, sy = (k >> 1) ? 1.0f : -1.0f;
                const float derivative = d == 0 ? sx * (1.0f - fabsf(gy - (float)ty))
                                                : sy * (1.0f - fabsf(gx - (float)tx));
                for (int c = 0; c < C; ++c) {
                    sum += derivative * input[((b * C + c) * H + y) * W + x]
                                      * grad_output[((b * C + c) * H + ty) * W + tx];
                }
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
        ss.launch_cupy(SIMPLE_KERNEL, 'simple_forward', torch.float32, x.device, x.numel(),
                       (x.numel(), np.int32(c), np.int32(h), np.int32(w), x, flow, out))
        ctx.save_for_backward(x, flow)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, flow = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        n, c, h, w = x.shape
        grad_x, grad_flow = torch.empty_like(x), torch.empty_like(flow)
        ss.launch_cupy(SIMPLE_KERNEL, 'simple_grad_input', torch.float32, x.device, x.numel(),
                       (x.numel(), np.int32(c), np.int32(h), np.int32(w), flow, grad_out, grad_x))
        ss.launch_cupy(SIMPLE_KERNEL, 'simple_grad_flow', torch.float32, x.device, flow.numel(),
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


def benchmark(device: torch.device, sizes: List[str], modes: List[str], repeats: int) -> List[Dict[str, object]]:
    if device.type == 'cuda':
        backends = {'cupy': lambda x, f, m, mode: ss.softsplat(x, f, m, mode, backend='cupy'),
                    'torch': lambda x, f, m, mode: ss.softsplat(x, f, m, mode, backend='torch')}
        reference_name, reference = 'simple kernel', published_style(_SimpleKernelSum.apply)
    else:
        backends = {'torch': lambda x, f, m, mode: ss.softsplat(x, f, m, mode, backend='torch')}
        reference_name, reference = 'scatter_add', published_style(_scatter_add_sum)
    rows = []
    for size in sizes:
        shape = tuple(int(v) for v in size.split('x'))
        n, c, h, w = shape
        gen = torch.Generator().manual_seed(1)
        x = torch.rand(shape, generator=gen).to(device)
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
                bytes_moved = nominal_bytes(shape, m is not None, backward)
                for name, ms in zip(contenders, times):
                    rows.append(dict(size=size, mode=mode, pass_='fwd+bwd' if backward else 'fwd', backend=name,
                                     ms=ms, gbps=bytes_moved / (ms * 1e-3) / 1e9, speedup=times[0] / ms))
                print(format_rows(rows[-len(contenders):], header=False), flush=True)
    return rows


def format_rows(rows: List[Dict[str, object]], header: bool = True) -> str:
    lines = []
    if header:
        lines += ['| size | mode | pass | backend | ms (median) | GB/s effective | × reference |',
                  '| --- | --- | --- | --- | ---: | ---: | ---: |']
    for r in rows:
        lines.append(f"| {r['size']} | {r['mode']} | {r['pass_']} | {r['backend']} | {r['ms']:.2f} | "
                     f"{r['gbps']:.1f} | {r['speedup']:.2f} |")
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'],
                        help='where to run (auto: cuda when available)')
    parser.add_argument('--sizes', nargs='+', default=None,
                        help='NxCxHxW shapes (default: %s; plus %s on a GPU)' % (' '.join(DEFAULT_SIZES),
                                                                                 ' '.join(GPU_ONLY_SIZES)))
    parser.add_argument('--modes', nargs='+', default=['sum', 'avg', 'linear', 'soft'], choices=ss.MODES,
                        help='splatting modes to time (default: sum avg linear soft)')
    parser.add_argument('--repeats', type=int, default=None, help='timed runs per case (default: 5 CPU, 20 GPU)')
    parser.add_argument('--json', default=None, help='also write the rows to this JSON file')
    args = parser.parse_args(argv)
    try:
        device = select_device(args.device)
    except UsageError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    if device.type == 'cuda' and ss.import_cupy()[0] is None:
        print(f'error: the GPU benchmark needs CuPy ({ss.import_cupy()[1]}); '
              f'pip install -r requirements-cuda.txt', file=sys.stderr)
        return 2
    sizes = args.sizes or DEFAULT_SIZES + (GPU_ONLY_SIZES if device.type == 'cuda' else [])
    for size in sizes:
        parts = size.split('x')
        if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
            print(f'error: size {size!r} is not of the form NxCxHxW', file=sys.stderr)
            return 2
    repeats = args.repeats or (20 if device.type == 'cuda' else 5)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    print(f'softsplat benchmark on {name}, torch {torch.__version__}, float32, median of {repeats}')
    if device.type == 'cuda':
        print(f'device-to-device copy: {copy_bandwidth(device, repeats):.0f} GB/s')
    print(format_rows([]))
    rows = benchmark(device, sizes, args.modes, repeats)
    if args.json:
        from pathlib import Path  # noqa: PLC0415
        path = Path(args.json)
        tmp = path.with_name(path.name + '.tmp')
        tmp.write_text(json.dumps({'device': name, 'torch': torch.__version__, 'rows': rows}, indent=1))
        tmp.replace(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
