"""Choose the quadratic-motion guard (motion.py) on the DAVIS training sequences; never on Middlebury or held-out clips.

A sample is five frames of one DAVIS sequence at a frame step ``g``: the pair (i, i + 2g) is interpolated at
t = 0.5 and scored against frame i + g (8-bit RGB PSNR, ``metrics.psnr``), with frames i - 2g and i + 4g as the
neighbours that quadratic motion uses (step 1 is what doubling a 24 fps clip sees; step 2 doubles 12 fps). Every
flow is DIS as the classical interpolator computes it, once per sample; each guard then only re-synthesizes.

    python tools/tune_motion.py ../shared/data/davis --step 1 --every 4
    python tools/tune_motion.py ../shared/data/davis --step 2 --every 3

Guards are written ``ratio/pixels/error`` (``QuadraticGuard`` fields; ``inf`` disables a test), and ``none`` is
quadratic motion with no guard at all. The figures in motion.py's docstring came from (2026-12-04, 2-core Intel
Xeon VM)::

    python tools/tune_motion.py ../shared/data/davis --step 2 --every 3
    python tools/tune_motion.py ../shared/data/davis --step 1 --every 4
    python tools/tune_motion.py ../shared/data/davis --step 2 --every 3 \
        --guards inf/inf/0.15 inf/inf/0.2 inf/inf/0.3 0.8/2/0.2 0.9/2/0.2
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softmax_splatting import frames, metrics  # noqa: E402
from softmax_splatting.classical import ClassicalInterpolator  # noqa: E402
from softmax_splatting.errors import UsageError, report_errors  # noqa: E402
from softmax_splatting.motion import QuadraticGuard  # noqa: E402

HELD_OUT = ('bmx-trees', 'libby', 'car-shadow', 'goat')  # as tools/tune_classical.py
# the set the first two commands of the docstring scored; a ratio of 1 (or more) accepts every acceleration
GUARDS = ['none', '1/2/0.1', '0.5/2/0.1', '2/2/0.1', '1/2/0.05', '1/2/0.2', '1/2/inf', 'inf/inf/0.1']


def parse_guard(text: str) -> QuadraticGuard:
    if text == 'none':
        return QuadraticGuard(math.inf, math.inf, math.inf)
    try:
        ratio, pixels, error = (float(v) for v in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text}: write a guard as ratio/pixels/error, e.g. 1/2/0.1') from None
    return QuadraticGuard(ratio, pixels, error)


def sequences(root: Path, held_out: bool) -> Dict[str, List[Path]]:
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if (folder.name in HELD_OUT) != held_out:
            continue
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in ('.jpg', '.png'))
        if images:
            found[folder.name] = images
    return found


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('davis', type=Path, help='folder of DAVIS sequences (../shared/data/davis)')
    parser.add_argument('--step', type=int, default=2, help='frame step g between a sample\'s frames (default: 2)')
    parser.add_argument('--every', type=int, default=3, help='take every k-th start frame (default: 3)')
    parser.add_argument('--guards', nargs='+', default=GUARDS, help=f'guards to score (default: {" ".join(GUARDS)})')
    parser.add_argument('--held-out', action='store_true',
                        help='score the held-out sequences instead (to report, never to choose)')
    args = parser.parse_args(argv)
    return report_errors(lambda: score(args))


def score(args: argparse.Namespace) -> int:
    if not args.davis.is_dir():
        raise UsageError(f'{args.davis}: no such folder (the DAVIS sequences are in ../shared/data/davis)')
    if args.step < 1 or args.every < 1:
        raise UsageError('--step and --every must be at least 1')
    found = sequences(args.davis, args.held_out)
    if not found:
        raise UsageError(f'{args.davis}: no sequence folders of .jpg or .png frames')
    guards = {text: parse_guard(text) for text in args.guards}
    model = ClassicalInterpolator()
    scores: Dict[str, List[float]] = {'linear': [], **{g: [] for g in guards}}
    began = time.perf_counter()
    g = args.step
    for name, paths in found.items():
        for i in range(2 * g, len(paths) - 4 * g, args.every):
            before, one, truth, two, after = (frames.read_image(paths[k]) for k in
                                              (i - 2 * g, i, i + g, i + 2 * g, i + 4 * g))
            tensors = [frames.to_tensor(image) for image in (before, one, two, after)]
            before_t, one_t, two_t, after_t = tensors
            flow_01, flow_10 = model.flows(one_t, two_t)
            flow_0p, flow_1n = model.estimate_flow(one_t, before_t), model.estimate_flow(two_t, after_t)
            linear, = model.synthesize(one_t, two_t, flow_01, flow_10, [0.5])
            scores['linear'].append(metrics.psnr(frames.to_uint8(linear), truth))
            for text, guard in guards.items():
                model.guard = guard
                result, = model.synthesize(one_t, two_t, flow_01, flow_10, [0.5], flow_0p, flow_1n, before_t,
                                           after_t)
                scores[text].append(metrics.psnr(frames.to_uint8(result), truth))
        print(f'{name}: {len(scores["linear"])} samples so far ({time.perf_counter() - began:.0f} s)', flush=True)
    if not scores['linear']:
        raise UsageError(f'no sequence has the {4 * g + 1} frames a sample at step {g} needs')
    print(f'\nstep {g}, {len(scores["linear"])} samples, mean PSNR (dB):')
    for text, values in scores.items():
        gain = np.mean(values) - np.mean(scores['linear'])
        worse = np.mean(np.array(values) < np.array(scores['linear']) - 0.5) * 100
        print(f'  {text:14s} {np.mean(values):.3f}  ({gain:+.3f} vs linear; {worse:.0f}% of samples >0.5 dB worse)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
