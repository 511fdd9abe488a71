"""Run every CUDA kernel of the project once on small, awkward inputs: the workload of `compute-sanitizer`.

`tools/gpu_check.py` runs this under `compute-sanitizer --tool memcheck` (with PyTorch's caching allocator off, so
that each tensor is its own allocation and a read or write past one is caught). Sizes are odd and not multiples of
a block; flows leave the image on every side, some are NaN or huge; soft mode runs with metrics that span less than
40 (one shift per sample) and more (the per-target maximum kernel). Each case compares the kernels with the
PyTorch path, so the run also fails loudly on a wrong value. With ``--device cpu`` the same kernels run compiled as
C++ (``tests/kernels_on_cpu.py``): the dry run of the GPU check.

    python tools/gpu_kernel_cases.py --device cuda
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'tests'))

from softmax_splatting import softsplat as ss  # noqa: E402
from softmax_splatting.cupy_launch import cupy_launcher  # noqa: E402
from softmax_splatting.pwc import cost_volume as pc  # noqa: E402


def launchers(device: torch.device):
    if device.type == 'cuda':
        return cupy_launcher(ss.CUDA_SOURCE), cupy_launcher(pc.CUDA_SOURCE)
    from kernels_on_cpu import CpuKernels  # noqa: PLC0415 - test helper, for the dry run only
    return CpuKernels(ss.CUDA_SOURCE), CpuKernels(pc.CUDA_SOURCE)


def splat_inputs(dtype: torch.dtype, device: torch.device, metric_scale: float):
    gen = torch.Generator().manual_seed(7)
    n, c, h, w = 2, 5, 37, 53
    x = torch.rand(n, c, h, w, generator=gen, dtype=dtype)
    flow = torch.randn(n, 2, h, w, generator=gen, dtype=dtype) * 6
    flow[:, 0, :, :3] = -9.5  # off the left edge, and the same on every other side
    flow[:, 0, :, -3:] = 9.5
    flow[:, 1, :3] = -9.5
    flow[:, 1, -3:] = 9.5
    flow[0, 0, 5, 5] = float('nan')
    flow[1, :, 6, 6] = torch.tensor([1e9, -1e9], dtype=dtype)
    metric = torch.randn(n, 1, h, w, generator=gen, dtype=dtype) * metric_scale
    return (t.to(device) for t in (x, flow, metric))


def worst_difference(mine: List[torch.Tensor], theirs: List[torch.Tensor]) -> float:
    """Largest difference of corresponding tensors, relative to the largest magnitude of each reference."""
    return max(((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item() for a, b in zip(mine, theirs))


def run_case(launcher, kind: str, dtype: torch.dtype, device: torch.device, metric_scale: float) -> float:
    x, flow, metric = splat_inputs(dtype, device, metric_scale)
    metric = metric.abs() + 0.1 if kind == 'linear' else metric
    metric = metric if kind in ('linear', 'soft') else None
    results = []
    for path in ('kernels', 'torch'):
        leaves = [t.clone().requires_grad_() for t in (x, flow) + ((metric,) if metric is not None else ())]
        args = leaves + [None] * (3 - len(leaves))
        if path == 'kernels':
            num, den, eps = ss.splat_with_kernels(*args, kind, launcher)
        else:
            num, den, eps = ss.splat_torch(*args, kind)
        out = num if kind == 'sum' else ss.normalize(num, den, 'addeps', eps)
        (out * torch.linspace(-1, 1, out.numel(), device=device, dtype=dtype).view_as(out)).sum().backward()
        results.append([out.detach()] + [t.grad for t in leaves])
    return worst_difference(*results)


def run_correlation(launcher, dtype: torch.dtype, device: torch.device) -> float:
    gen = torch.Generator().manual_seed(3)
    one, two = (torch.randn(2, 7, 11, 19, generator=gen, dtype=dtype).to(device) for _ in range(2))
    results = []
    for path in ('kernels', 'torch'):
        a, b = one.clone().requires_grad_(), two.clone().requires_grad_()
        out = pc.correlation_with_kernels(a, b, launcher) if path == 'kernels' else pc.correlation_torch(a, b)
        (out * torch.linspace(-1, 1, out.numel(), device=device, dtype=dtype).view_as(out)).sum().backward()
        results.append((out.detach(), a.grad, b.grad))
    return worst_difference(*results)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'],
                        help='cuda: CuPy kernels on the GPU; cpu: the same kernels compiled as C++ (dry run)')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    splat, corr = launchers(device)
    failures = 0
    for dtype in (torch.float32, torch.float64):
        tolerance = 1e-4 if dtype == torch.float32 else 1e-9
        cases = [('sum', 1.0), ('avg', 1.0), ('linear', 1.0), ('soft', 3.0), ('soft', 60.0)]
        for kind, scale in cases:
            worst = run_case(splat, kind, dtype, device, scale)
            failures += worst > tolerance
            print(f'softsplat {kind:6s} metric scale {scale:4.0f} {str(dtype):14s} '
                  f'worst relative difference {worst:.1e}')
        worst = run_correlation(corr, dtype, device)
        failures += worst > tolerance
        print(f'correlation                        {str(dtype):14s} worst relative difference {worst:.1e}')
    if device.type == 'cuda':
        torch.cuda.synchronize()
    print('all cases match the PyTorch path' if not failures else f'{failures} cases differ from the PyTorch path')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
