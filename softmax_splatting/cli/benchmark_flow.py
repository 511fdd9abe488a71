"""Time ``pwc.estimate`` on a 1024 x 436 pair (the Sintel frame size) per device and cost-volume backend.

For every backend available on the device (CPU: the PyTorch path; GPU: the CuPy kernels and the PyTorch path) it
reports the median time of a whole ``estimate`` call (resize to 1024 x 448, the network, upsampling the flow) under
``torch.no_grad()``, and of the five cost volumes alone at the sizes the network computes them, so the table shows
what the backend choice is worth. The weights do not change the time: the default weights are used when present,
else a random initialisation. Each repeat runs every case in turn, so drift in the machine's load hits all alike.

Usage: ``softsplat-benchmark flow [--device auto|cpu|cuda|cuda:N] [--sizes 1024x436 ...] [--batch-size N]
[--repeats N] [--threads N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from .. import errors, files
from ..errors import UsageError
from ..pwc.cost_volume import correlation
from ..pwc.inference import estimate
from ..pwc.network import DEFAULT_WEIGHTS, MULTIPLE, PYRAMID_CHANNELS, PWCNet
from ..timing import median_ms
from . import options, tables


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
    titles = ['device', 'correlation backend', 'size (W×H)', 'batch', '`estimate` ms (median)', '5 cost volumes ms']
    return tables.table(titles, [False, False, False, True, True, True],
                        [(r['device'], r['backend'], r['size'], r['batch'], f"{r['estimate_ms']:.1f}",
                          f"{r['correlation_ms']:.1f}") for r in rows])


def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--sizes', nargs='+', type=options.size, default=[(1024, 436)], metavar='WxH',
                        help='image sizes (default: 1024x436, the size of MPI-Sintel)')
    parser.add_argument('--batch-size', type=int, default=1, help='image pairs per call (default: 1)')
    options.add_kernel_benchmark(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    if args.batch_size <= 0:
        raise UsageError('--batch-size must be positive')
    device, repeats, name = options.kernel_benchmark_setup(args)
    print(f'pwc.estimate benchmark on {name}, torch {torch.__version__}, float32, median of {repeats}')
    rows = [row for width, height in args.sizes for row in benchmark(device, width, height, args.batch_size, repeats)]
    print(format_rows(rows))
    if args.json:
        files.write_json(Path(args.json), {'device': name, 'torch': torch.__version__, 'rows': rows})
    return 0


if __name__ == '__main__':
    sys.exit(main())
