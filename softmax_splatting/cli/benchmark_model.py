"""Time and peak memory of the interpolation model per interpolated frame, per size, device and precision.

    python benchmark_model.py                                  # CPU: 854x480, float32
    python benchmark_model.py --device cuda                    # GPU: 1920x1080 and 2048x1080, float32 and float16
    python benchmark_model.py --sizes 1280x720 --model weights/softsplat.pt --json model.json
    python benchmark_model.py --model classical --sizes 854x480 3840x2160  # the training-free interpolator
    python benchmark_model.py --architecture published --sizes 854x480 1920x1080  # the released network

One frame at t = 0.5 from a pair, the way run_a_pair.py makes it (flow, pyramids, splatting, synthesis; no file
input/output). Speed does not depend on the weights, so without a model file a randomly initialized network is
timed: MainNet (the paper's model as we build it, PWC-Net flow), or with ``--architecture published`` the network of
the authors' 2022 release (``published/``), which is what its files ``network-l1/-lf.pytorch`` would run. Each configuration runs in a fresh process so that its peak memory is its own: on a GPU the peak of
PyTorch's allocator (``torch.cuda.max_memory_allocated``), on a CPU the peak resident set of the process, reported
whole and above what the process held after loading the model and the inputs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
from typing import Dict, List, Optional, Tuple

import torch

from .. import errors, files
from ..errors import UsageError
from ..interpolator import BASELINES, CLASSICAL, PUBLISHED_NAMES, load_interpolator, published_weights
from ..resources import configure_threads, select_device
from ..timing import median_ms
from . import options, tables

NAMED = (CLASSICAL,) + BASELINES  # the interpolators without weights
CPU_SIZES = ['854x480']
GPU_SIZES = ['1920x1080', '2048x1080']


def _rss_mib() -> float:
    with open('/proc/self/statm') as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2 ** 20


def _measure(spec: Optional[str], architecture: str, device_name: str, width: int, height: int, precision: str,
             repeats: int, threads: int, queue) -> None:
    """Child process: load, warm up, time, and report peak memory through ``queue``."""
    from ..resources import configure_threads, return_freed_memory  # noqa: PLC0415 - imported in the child only

    configure_threads(threads)
    return_freed_memory(width * height)  # as run_a_pair.py does
    device = torch.device(device_name)
    torch.manual_seed(0)
    if spec is not None:
        model = load_interpolator(spec, device)
    else:
        from .. import models  # noqa: PLC0415
        options = {'pwc_weights': None} if architecture == models.MAINNET else {}
        model = models.build(architecture, **options).to(device).eval()
    generator = torch.Generator().manual_seed(1)
    one = torch.rand(1, 3, height, width, generator=generator).to(device)
    two = torch.roll(one, shifts=(3, 5), dims=(2, 3))
    half = precision == 'float16'

    def frame() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=half):
            model.interpolate(one, two, [0.5])

    baseline = _rss_mib()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    ms, = median_ms([frame], device, repeats, warmup=1)
    if device.type == 'cuda':
        peak, above = torch.cuda.max_memory_allocated(device) / 2 ** 20, None
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        above = peak - baseline
    queue.put({'size': f'{width}x{height}', 'precision': precision, 'ms': ms, 'peak_mib': peak,
               'above_loaded_mib': above})


def measure(spec: Optional[str], device: torch.device, size: Tuple[int, int], precision: str, repeats: int,
            threads: int, architecture: str = 'mainnet') -> Dict:
    width, height = size
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    arguments = (spec, architecture, str(device), width, height, precision, repeats, threads, queue)
    process = context.Process(target=_measure, args=arguments)
    process.start()
    process.join()
    if process.exitcode != 0 or queue.empty():
        raise UsageError(f'the measurement of {width}x{height} {precision} on {device} failed '
                         f'(exit code {process.exitcode})')
    return queue.get()


def run(args: argparse.Namespace) -> int:
    device = select_device(args.device)
    threads = configure_threads(args.threads)
    spec = args.model  # None: a network of --architecture with random weights
    if spec in PUBLISHED_NAMES:
        spec = str(published_weights(spec))
    problem = None if spec in (None,) + NAMED else files.not_a_file(spec, 'checkpoint file')
    if problem is not None:
        raise UsageError(f'--model {spec}: {problem}')
    if spec is not None and args.architecture is not None:
        raise UsageError('--architecture chooses the network timed with random weights; a --model file brings its '
                         'own')
    architecture = args.architecture or 'mainnet'
    sizes = args.sizes or [options.size(size) for size in (GPU_SIZES if device.type == 'cuda' else CPU_SIZES)]
    precisions = args.precision or (['float32', 'float16'] if device.type == 'cuda' else ['float32'])
    if 'float16' in precisions and device.type != 'cuda':
        raise UsageError('float16 is measured on CUDA only')
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else \
        f'CPU ({threads} threads)'
    title = f'--model {spec}' if spec is not None else \
        f'{"the published network" if architecture == "published" else "MainNet"} (random weights)'
    print(f'{title} on {name}, torch {torch.__version__}, one frame at t = 0.5, median of {args.repeats}')
    memory = ['peak allocated (MiB)'] if device.type == 'cuda' else ['peak RSS (MiB)', 'above loaded (MiB)']
    print(tables.header(['size', 'precision', 'ms per frame'] + memory, [False, False] + [True] * (1 + len(memory))))
    rows = []
    for size in sizes:
        for precision in precisions:
            row = measure(spec, device, size, precision, args.repeats, threads, architecture)
            rows.append(row)
            extra = [] if row['above_loaded_mib'] is None else [f"{row['above_loaded_mib']:.0f}"]
            cells = [row['size'], precision, f"{row['ms']:.0f}", f"{row['peak_mib']:.0f}"] + extra
            print(tables.row(cells), flush=True)
    if args.json:
        files.write_json(args.json, {'device': name, 'model': spec or f'{architecture} (random weights)', 'rows': rows})
    return 0


def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--sizes', nargs='+', type=options.size, metavar='WxH',
                        help=f'frame sizes (default: {" ".join(CPU_SIZES)} on CPU, {" ".join(GPU_SIZES)} on GPU)')
    parser.add_argument('--precision', nargs='+', choices=['float32', 'float16'],
                        help='default: float32 on CPU; float32 and float16 (autocast) on GPU')
    parser.add_argument('--model', metavar='PATH|classical',
                        help='a model file (a MainNet checkpoint such as weights/softsplat.pt, or the published '
                             'network-l1/-lf.pytorch; "l1"/"lf" find those), "classical", "dis-blend" or "average" '
                             '(default: a network of --architecture with random weights)')
    parser.add_argument('--architecture', choices=['mainnet', 'published'], default=None,
                        help='without --model, the network timed with random weights: mainnet (the paper\'s model '
                             'as this project builds it, PWC-Net flow; default) or published (the authors\' 2022 '
                             'release)')
    options.add_device(parser)
    options.add_threads(parser)
    options.add_json(parser)
    options.add_repeats(parser, 5, 'configuration (default: 5)')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
