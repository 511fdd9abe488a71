"""Measure whether DIS does better starting from the previous pair's motion (the video path's flow hint).

    python tools/measure_flow_hint.py ../shared/data/davis --step 4

For every sequence of the training split (all but make_triplets.py's test split, bmx-trees and libby), frames k
and k + step with k a multiple of step (a clip at 24 / step fps) are interpolated at t = 0.5 by the classical
interpolator (linear motion) with DIS flows computed from zero motion ("plain") and from the motion of the pair
before, as the video path guesses it ("hint": F(k -> k+s) from -F(k -> k-s), F(k+s -> k) from F(k -> k-s); here that
backward flow is computed from zero motion), and scored against frame k + step / 2 (8-bit RGB PSNR). Prints the
mean per sequence and over all pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softmax_splatting import frames, metrics  # noqa: E402
from softmax_splatting.classical import CLASSICAL_DIS, ClassicalInterpolator, dis_flows  # noqa: E402
from softmax_splatting.cli.benchmark_video import TEST_SPLIT  # noqa: E402
from softmax_splatting.errors import UsageError, report_errors  # noqa: E402
from softmax_splatting.video import IMAGE_SUFFIXES  # noqa: E402


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data', type=Path, help='a folder of DAVIS sequences')
    parser.add_argument('--step', type=int, default=4, help='frame step, even (default: 4, i.e. 6 fps)')
    args = parser.parse_args(argv)

    def run() -> int:
        if args.step < 2 or args.step % 2:
            raise UsageError(f'--step {args.step}: use an even step of at least 2 (t = 0.5 is a frame)')
        shots = sorted(p for p in args.data.iterdir() if p.is_dir() and p.name not in TEST_SPLIT) \
            if args.data.is_dir() else []
        if not shots:
            raise UsageError(f'{args.data}: no sequence folders')
        model, step = ClassicalInterpolator(), args.step
        scores: Dict[str, List[float]] = {'plain': [], 'hint': []}
        print(f'frame step {step}: PSNR at t = 0.5 (dB), DIS from zero motion / from the previous pair\'s motion')
        for shot in shots:
            images = [frames.to_tensor(frames.read_image(p))
                      for p in sorted(shot.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
            mine: Dict[str, List[float]] = {'plain': [], 'hint': []}
            for k in range(step, len(images) - step, step):
                one, two, truth = images[k], images[k + step], frames.to_uint8(images[k + step // 2])
                back, _ = dis_flows(one, images[k - step], CLASSICAL_DIS)  # the previous pair's F(k -> k-s)
                candidates = {'plain': dis_flows(one, two, CLASSICAL_DIS),
                              'hint': dis_flows(one, two, CLASSICAL_DIS, hint=(-back, back))}
                for name, flows in candidates.items():
                    frame = model.interpolate(one, two, [0.5], flows=flows)[0]
                    mine[name].append(metrics.psnr(frames.to_uint8(frame), truth))
            for name in scores:
                scores[name] += mine[name]
            if mine['plain']:
                print(f'{shot.name}: {np.mean(mine["plain"]):.2f} / {np.mean(mine["hint"]):.2f} '
                      f'({len(mine["plain"])} pairs)', flush=True)
        print(f'all: {np.mean(scores["plain"]):.3f} / {np.mean(scores["hint"]):.3f} ({len(scores["plain"])} pairs)')
        return 0

    with torch.no_grad():
        return report_errors(run)


if __name__ == '__main__':
    sys.exit(main())
