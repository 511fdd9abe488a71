"""Time and peak memory of the interpolation model per interpolated frame, per size, device and precision.

    python benchmark_model.py                                  # CPU: 854x480, float32
    python benchmark_model.py --device cuda                    # GPU: 1920x1080 and 2048x1080, float32 and float16
    python benchmark_model.py --sizes 1280x720 --model weights/softsplat.pt --json model.json
    python benchmark_model.py --model classical --sizes 854x480 3840x2160  # the training-free interpolator

One frame at t = 0.5 from a pair, the way run_a_pair.py makes it (flow, pyramids, splatting, synthesis; no file
input/output). Speed does not depend on the weights, so without a checkpoint a randomly initialized MainNet is
timed. Each configuration runs in a fresh process so that its peak memory is its own: on a GPU the peak of
PyTorch's allocator (``torch.cuda.max_memory_allocated``), on a CPU the peak resident set of the process, reported
whole and above what the process held after loading the model and the inputs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
from pathlib import Path
from typing import Dict, List, Optional

import torch

import frames
from frames import UsageError, atomic_path
from timing import median_ms

CPU_SIZES = ['854x480']
GPU_SIZES = ['1920x1080', '2048x1080']


def _rss_mib() -> float:
    with open('/proc/self/statm') as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2 ** 20


def _measure(spec: Optional[str], device_name: str, width: int, height: int, precision: str, repeats: int,
             queue) -> None:
    """Child process: load, warm up, time, and report peak memory through ``queue``."""
    from resources import return_freed_memory  # noqa: PLC0415 - imported in the child only

    return_freed_memory()  # as run_a_pair.py does
    device = torch.device(device_name)
    torch.manual_seed(0)
    if spec == 'classical':
        from classical import ClassicalInterpolator  # noqa: PLC0415
        model = ClassicalInterpolator()
    else:
        from main_net import MainNet  # noqa: PLC0415
        model = (MainNet.from_file(spec) if spec else MainNet(pwc_weights=None)).to(device).eval()
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


def measure(spec: Optional[str], device: torch.device, size: str, precision: str, repeats: int) -> Dict:
    width, height = (int(v) for v in size.split('x'))
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    process = context.Process(target=_measure, args=(spec, str(device), width, height, precision, repeats, queue))
    process.start()
    process.join()
    if process.exitcode != 0 or queue.empty():
        raise UsageError(f'the measurement of {size} {precision} on {device} failed (exit code {process.exitcode})')
    return queue.get()


def run(args: argparse.Namespace) -> int:
    from interpolator import select_device  # noqa: PLC0415

    device = select_device(args.device)
    spec = args.model  # None: the paper's model (PWC-Net flow) with random weights
    if spec not in (None, 'classical') and not Path(spec).is_file():
        raise UsageError(f'--model {spec}: no such checkpoint file')
    sizes = args.sizes or (GPU_SIZES if device.type == 'cuda' else CPU_SIZES)
    for size in sizes:
        parts = size.split('x')
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise UsageError(f'size {size!r} is not of the form WxH')
    precisions = args.precision or (['float32', 'float16'] if device.type == 'cuda' else ['float32'])
    if 'float16' in precisions and device.type != 'cuda':
        raise UsageError('float16 is measured on CUDA only')
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else \
        f'CPU ({torch.get_num_threads()} threads)'
    title = 'the classical interpolator' if spec == 'classical' else \
        f'MainNet ({"weights " + spec if spec else "random weights"})'
    print(f'{title} on {name}, torch {torch.__version__}, one frame at t = 0.5, median of {args.repeats}')
    memory = 'peak allocated (MiB)' if device.type == 'cuda' else 'peak RSS (MiB) | above loaded (MiB)'
    print(f'| size | precision | ms per frame | {memory} |')
    print('| --- | --- | ---: | ---: |' + ('' if device.type == 'cuda' else ' ---: |'))
    rows = []
    for size in sizes:
        for precision in precisions:
            row = measure(spec, device, size, precision, args.repeats)
            rows.append(row)
            extra = '' if row['above_loaded_mib'] is None else f" | {row['above_loaded_mib']:.0f}"
            print(f"| {row['size']} | {precision} | {row['ms']:.0f} | {row['peak_mib']:.0f}{extra} |", flush=True)
    if args.json:
        with atomic_path(args.json) as temporary:
            temporary.write_text(json.dumps({'device': name, 'model': spec, 'rows': rows}, indent=1))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', nargs='+', metavar='WxH',
                        help=f'frame sizes (default: {" ".join(CPU_SIZES)} on CPU, {" ".join(GPU_SIZES)} on GPU)')
    parser.add_argument('--precision', nargs='+', choices=['float32', 'float16'],
                        help='default: float32 on CPU; float32 and float16 (autocast) on GPU')
    parser.add_argument('--model', metavar='PATH', help='MainNet checkpoint (e.g. weights/softsplat.pt) or "classical" '
                                                        "(default: the paper's model, PWC-Net flow, random weights)")
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N (default: auto)')
    parser.add_argument('--repeats', type=int, default=5, help='timed frames per configuration (default: 5)')
    parser.add_argument('--json', metavar='PATH', help='also write the rows to this JSON file')
    args = parser.parse_args(argv)
    return frames.report_errors(lambda: run(args))


if __name__ == '__main__':
    sys.exit(main())
