"""Time ``pwc.estimate`` on a 1024 x 436 pair (the Sintel frame size) per device and cost-volume backend.

For every backend available on the device (CPU: the PyTorch path; GPU: the CuPy kernels and the PyTorch path) it
reports the median time of a whole ``estimate`` call (resize to 1024 x 448, the network, upsampling the flow) under
``torch.no_grad()``, and of the five cost volumes alone at the sizes the network computes them, so the table shows
what the backend choice is worth. The weights do not change the time: the default weights are used when present,
else a random initialisation. Each repeat runs every case in turn, so drift in the machine's load hits all alike.

Usage: ``python -m pwc.benchmark [--device auto|cpu|cuda] [--size 1024x436] [--repeats N] [--threads N]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from frames import UsageError, atomic_path
from interpolator import select_device
from pwc.cost_volume import correlation
from pwc.inference import estimate
from pwc.network import DEFAULT_WEIGHTS, MULTIPLE, PYRAMID_CHANNELS, PWCNet
from softsplat import import_cupy
from timing import median_ms


def benchmark(device: torch.device, width: int, height: int, batch: int, repeats: int) -> List[Dict[str, object]]:
    backends = ['cupy', 'torch'] if device.type == 'cuda' else ['torch']
    weights = 'default' if DEFAULT_WEIGHTS.is_file() else 'random'
    nets = {b: (PWCNet.from_file(backend=b) if weights == 'default' else PWCNet(backend=b)).to(device).eval()
            for b in backends}
    if weights == 'random':
        for net in nets.values():
            net.load_state_dict(nets[backends[0]].state_dict())
    gen = torch.Generator().manual_seed(0)
    one = torch.rand(batch, 3, height, width, generator=gen).to(device)
    two = torch.rand(batch, 3, height, width, generator=gen).to(device)
    padded_h, padded_w = (math.ceil(s / MULTIPLE) * MULTIPLE for s in (height, width))
    features = [(torch.randn(batch, PYRAMID_CHANNELS[level - 1], padded_h >> level, padded_w >> level,
                             generator=gen).to(device),) * 2 for level in range(2, 7)]

    def run_estimate(backend: str) -> Callable[[], object]:
        def fn():
            with torch.no_grad():
                return estimate(one, two, net=nets[backend])
        return fn

    def run_volumes(backend: str) -> Callable[[], object]:
        def fn():
            with torch.no_grad():
                return [correlation(a, b, backend=backend) for a, b in features]
        return fn

    fns = [run_estimate(b) for b in backends] + [run_volumes(b) for b in backends]
    times = median_ms(fns, device, repeats)
    rows = []
    for index, backend in enumerate(backends):
        rows.append({'device': device.type, 'backend': backend, 'size': f'{width}x{height}', 'batch': batch,
                     'weights': weights, 'estimate_ms': times[index],
                     'correlation_ms': times[len(backends) + index]})
    return rows


def format_rows(rows: List[Dict[str, object]]) -> str:
    lines = ['| device | correlation backend | size (W×H) | batch | `estimate` ms (median) | 5 cost volumes ms |',
             '| --- | --- | --- | ---: | ---: | ---: |']
    for r in rows:
        lines.append(f"| {r['device']} | {r['backend']} | {r['size']} | {r['batch']} | {r['estimate_ms']:.1f} | "
                     f"{r['correlation_ms']:.1f} |")
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m pwc.benchmark', description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'],
                        help='where to run (auto: cuda when available)')
    parser.add_argument('--size', default='1024x436', help='image size WIDTHxHEIGHT (default 1024x436)')
    parser.add_argument('--batch', type=int, default=1, help='image pairs per call (default 1)')
    parser.add_argument('--repeats', type=int, default=None, help='timed runs per case (default: 5 CPU, 20 GPU)')
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads for PyTorch (default: its own choice, usually the core count)')
    parser.add_argument('--json', default=None, help='also write the rows to this JSON file')
    args = parser.parse_args(argv)
    parts = args.size.lower().split('x')
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        print(f'error: --size {args.size!r} is not of the form WIDTHxHEIGHT', file=sys.stderr)
        return 2
    if args.batch <= 0 or any(v is not None and v <= 0 for v in (args.repeats, args.threads)):
        print('error: --batch, --repeats and --threads must be positive', file=sys.stderr)
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        device = select_device(args.device)
    except UsageError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    if device.type == 'cuda' and import_cupy()[0] is None:
        print(f'error: the GPU benchmark compares the CuPy kernels and needs CuPy ({import_cupy()[1]}); '
              f'pip install -r requirements-cuda.txt', file=sys.stderr)
        return 2
    width, height = int(parts[0]), int(parts[1])
    repeats = args.repeats or (20 if device.type == 'cuda' else 5)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    print(f'pwc.estimate benchmark on {name}, torch {torch.__version__}, float32, median of {repeats}')
    rows = benchmark(device, width, height, args.batch, repeats)
    print(format_rows(rows))
    if args.json:
        with atomic_path(Path(args.json)) as temporary:
            temporary.write_text(json.dumps({'device': name, 'torch': torch.__version__, 'rows': rows}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
