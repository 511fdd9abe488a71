"""The options that several tools share, spelled and parsed one way everywhere, and the parser that reports them.

``--device auto|cpu|cuda|cuda:N``, ``--threads N`` (1 to 4 per usable core), ``--model PATH|classical`` and sizes
written ``WxH`` (width first, as video tools write them: ``1920x1080``). Each tool adds them through these functions
so that the names, the formats and the error messages cannot drift apart.
"""

from __future__ import annotations

import argparse
import re
from typing import NoReturn, Optional, Tuple

import torch

from ..cupy_launch import import_cupy
from ..errors import UsageError
from ..frames import MAX_PIXELS
from ..resources import available_cores, configure_threads, select_device

__all__ = ['Parser', 'add_device', 'add_json', 'add_kernel_benchmark', 'add_model', 'add_repeats', 'add_threads',
           'kernel_benchmark_setup', 'size', 'threads']


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors: the tools report them as one line and exit 2, like every
    other bad input, instead of argparse's usage block. Parse inside ``errors.report_errors``.

    ``Parser(doc)`` takes a tool's module docstring: its first paragraph describes the tool in ``--help``, the rest
    follows the options.
    """

    def __init__(self, doc: str):
        description, _, epilog = doc.partition('\n\n')
        super().__init__(description=description, epilog=epilog or None,
                         formatter_class=argparse.RawDescriptionHelpFormatter)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f'{message} (see {self.prog} --help)')


def size(text: str) -> Tuple[int, int]:
    """argparse type: ``'1920x1080'`` -> ``(1920, 1080)``, width then height, both positive and at most
    ``frames.MAX_PIXELS`` in all (what every reader accepts)."""
    match = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', text)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a size WIDTHxHEIGHT, e.g. 448x256')
    width, height = int(match.group(1)), int(match.group(2))
    if width * height > MAX_PIXELS:
        raise argparse.ArgumentTypeError(f'{text!r} is larger than the tools handle (at most '
                                         f'{MAX_PIXELS / 1e6:.0f} megapixels, e.g. 7680x4320)')
    return width, height


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--device', default='auto', metavar='DEVICE',
                        help='auto (CUDA when available), cpu, cuda or cuda:N (default: auto)')


THREADS_PER_CORE = 4  # the most --threads per usable core: more only wait on each other (resources.py)


def threads(text: str) -> int:
    """argparse type of ``--threads``: an integer from 1 to ``THREADS_PER_CORE`` times the usable cores."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'invalid int value: {text!r}') from None
    limit = THREADS_PER_CORE * available_cores()
    if not 1 <= count <= limit:
        raise argparse.ArgumentTypeError(f'{count} is not between 1 and {limit} ({THREADS_PER_CORE} for each of the '
                                         f'{available_cores()} usable cores; more only wait on each other)')
    return count


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--threads', type=threads, default=None, metavar='N',
                        help=f'CPU threads of PyTorch and OpenCV, at most {THREADS_PER_CORE} per usable core '
                             f'(default: OMP_NUM_THREADS, else the usable cores)')


def add_repeats(parser: argparse.ArgumentParser, default: Optional[int], what: str) -> None:
    parser.add_argument('--repeats', type=int, default=default, metavar='N', help=f'timed runs per {what}')


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--json', metavar='PATH', help='also write the results to this JSON file (atomically)')


def add_model(parser: argparse.ArgumentParser, what: str = 'the interpolator') -> None:
    parser.add_argument('--model', default=None, metavar='PATH|classical',
                        help=f'{what}: a model file (a MainNet checkpoint, or the published SoftSplat weights '
                             f'network-l1/-lf.pytorch, which "l1" and "lf" find in weights/ or torch hub\'s cache), '
                             f'"classical" for the training-free interpolator, or a comparison model: "dis-blend" '
                             f'(DIS flow, backward warping, no occlusion handling) or "average" (no motion) (default: '
                             f'weights/softsplat.pt once it is declared the default, else classical)')


def add_kernel_benchmark(parser: argparse.ArgumentParser) -> None:
    """The options of the benchmarks of our CUDA kernels, read by :func:`kernel_benchmark_setup`."""
    add_device(parser)
    add_repeats(parser, None, 'case (default: 5 on a CPU, 20 on a GPU)')
    add_threads(parser)
    add_json(parser)


def kernel_benchmark_setup(args: argparse.Namespace) -> Tuple[torch.device, int, str]:
    """Device, repeats and a label (GPU name, or CPU and thread count) for a benchmark of our CUDA kernels.

    Reads ``args.device``, ``args.threads`` and ``args.repeats`` (None: 5 on a CPU, 20 on a GPU); a GPU run compares
    the CuPy kernels, so it needs CuPy.
    """
    if args.repeats is not None and args.repeats <= 0:
        raise UsageError('--repeats must be positive')
    threads = configure_threads(args.threads)
    device = select_device(args.device)
    if device.type == 'cuda' and import_cupy()[0] is None:
        raise UsageError(f'the GPU benchmark compares the CuPy kernels and needs CuPy ({import_cupy()[1]}); '
                         f'pip install -r requirements-cuda.txt')
    repeats = args.repeats or (20 if device.type == 'cuda' else 5)
    label = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {threads} threads'
    return device, repeats, label
