"""Middlebury benchmark of a frame interpolator, following the protocol of the softmax splatting paper (Sec. 5).

For every sequence of the Middlebury optical flow "other" set that has interpolation ground truth, the interpolator
predicts the middle frame (t = 0.5) from ``frame10.png`` and ``frame11.png``; the prediction is rounded to 8 bits
and compared with ``frame10i11.png`` by PSNR and SSIM on the RGB image (metrics.py) and by Middlebury's
interpolation error (IE). The paper reports 38.42 dB PSNR for its trained model on these 12 sequences.

Examples::

    python benchmark_middlebury.py --data ../shared/data/middlebury                 # the default interpolator
    python benchmark_middlebury.py --data middlebury --model classical --json out.json
    python benchmark_middlebury.py --data middlebury --model weights/softsplat.pt --device cuda

The data is not downloaded by this tool: get the "other" sequences and their interpolation ground truth from
vision.middlebury.edu/flow and arrange one folder per sequence holding the three frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from .. import errors, files, frames, metrics
from ..errors import UsageError
from ..interpolator import Interpolator, load_interpolator
from ..resources import configure_threads, select_device
from . import options, tables

FRAME_NAMES = ('frame10.png', 'frame11.png', 'frame10i11.png')
METRICS = ('psnr', 'ssim', 'ie')
DATA_HINT = ('the data comes from vision.middlebury.edu/flow (the "other" set with interpolation ground truth: one '
             'folder per sequence holding frame10.png, frame11.png and frame10i11.png); nothing is downloaded')


def find_sequences(root: Path) -> List[Path]:
    """The sequence folders under ``root`` (sorted by name); UsageError if there are none or one lacks a frame."""
    if not root.is_dir():
        raise UsageError(f'{root}: no such folder; {DATA_HINT}')
    sequences = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith('.')),
                       key=lambda p: p.name)
    if not sequences:
        raise UsageError(f'{root}: no sequence folders; {DATA_HINT}')
    for sequence in sequences:
        missing = [name for name in FRAME_NAMES if not (sequence / name).is_file()]
        if missing:
            raise UsageError(f'{sequence}: missing {", ".join(missing)}; every sequence needs '
                             f'{", ".join(FRAME_NAMES)}')
    return sequences


def read_sequence(sequence: Path) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frame10``, ``frame11`` and the ground truth of one sequence as ``[H, W, 3]`` uint8 RGB of one size."""
    images = tuple(frames.read_image(sequence / name) for name in FRAME_NAMES)
    sizes = [f'{image.shape[1]}x{image.shape[0]}' for image in images]
    if len(set(sizes)) != 1:
        listing = ', '.join(f'{name} {size}' for name, size in zip(FRAME_NAMES, sizes))
        raise UsageError(f'{sequence}: frames differ in size ({listing})')
    return images


def evaluate(interpolator: Interpolator, sequences: List[Path],
             device: torch.device) -> Tuple[Dict[str, Dict[str, float]], float]:
    """Score every sequence; returns ``{name: {psnr, ssim, ie}}`` and the mean seconds per interpolated pair.

    The time covers ``interpolate`` alone (inputs already on ``device``), after one untimed warm-up call.
    """
    scores: Dict[str, Dict[str, float]] = {}
    seconds = []
    for index, sequence in enumerate(sequences):
        one, two, truth = read_sequence(sequence)
        one_t, two_t = frames.to_tensor(one, device), frames.to_tensor(two, device)
        if index == 0:  # warm-up, untimed: first calls compile kernels, allocate caches, load libraries
            with torch.inference_mode():
                interpolator.interpolate(one_t, two_t, [0.5])
        _synchronize(device)
        start = time.perf_counter()
        with torch.inference_mode():
            (middle,) = interpolator.interpolate(one_t, two_t, [0.5])
        _synchronize(device)
        seconds.append(time.perf_counter() - start)
        prediction = frames.to_uint8(middle)
        scores[sequence.name] = {'psnr': metrics.psnr(prediction, truth), 'ssim': metrics.ssim(prediction, truth),
                                 'ie': metrics.interpolation_error(prediction, truth)}
    return scores, float(np.mean(seconds))


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def markdown_table(scores: Dict[str, Dict[str, float]], mean: Dict[str, float]) -> str:
    return tables.table(['Sequence', 'PSNR (dB)', 'SSIM', 'IE'], [False, True, True, True],
                        [(name, f'{row["psnr"]:.2f}', f'{row["ssim"]:.4f}', f'{row["ie"]:.2f}')
                         for name, row in list(scores.items()) + [('**mean**', mean)]])


def write_json(path: Path, scores: Dict[str, Dict[str, float]], mean: Dict[str, float]) -> None:
    files.write_json(path, {'sequences': scores, 'mean': mean})


def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--data', type=Path, default=Path('middlebury'), metavar='DIR',
                        help='folder with one subfolder per sequence, each holding frame10.png, frame11.png and '
                             'frame10i11.png (default: ./middlebury)')
    options.add_model(parser)
    options.add_device(parser)
    options.add_threads(parser)
    parser.add_argument('--fp16', action='store_true',
                        help='run a trained model in float16 autocast (CUDA only)')
    parser.add_argument('--json', type=Path, default=None, metavar='PATH',
                        help='also write {"sequences": {name: {psnr, ssim, ie}}, "mean": {psnr, ssim, ie}} to PATH '
                             '(written atomically)')
    return parser


def run(args: argparse.Namespace) -> int:
    """The benchmark for parsed arguments; raises UsageError on bad input."""
    sequences = find_sequences(args.data)
    device = select_device(args.device)
    configure_threads(args.threads)
    interpolator = load_interpolator(args.model, device, fp16=args.fp16)
    scores, seconds = evaluate(interpolator, sequences, device)
    mean = {key: float(np.mean([row[key] for row in scores.values()])) for key in METRICS}
    print(markdown_table(scores, mean))
    print(f'\n{len(scores)} sequences, {seconds:.3f} s per pair on {device} '
          f'(interpolation only, after a warm-up; without reading and scoring)')
    if args.json is not None:
        write_json(args.json, scores, mean)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
