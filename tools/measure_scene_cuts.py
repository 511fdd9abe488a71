"""Measure how well ``video.scene_score`` separates cuts from motion, to choose ``--scene-threshold``'s default.

    python tools/measure_scene_cuts.py ../shared/data/davis

Each subfolder of frames is one shot. "Within" pairs are two frames of one shot ``--steps`` frames apart (step 1:
consecutive frames; steps 2 and 4 are what the same footage at a half and a quarter of its frame rate gives, fast
motion); "cut" pairs are the last frame of one shot and the first frame of every other shot (what a cut between
them would look like). A threshold works if it lies above every within score at every step and below every cut
score. The tool prints, for the scene score and for each of its two parts alone (colour distance, motion residual),
the largest within score per step, the smallest cut score, the middle of the gap if there is one, and how many
pairs the default threshold gets wrong. Then the video path's own test (``video.SceneCuts``), run over each shot as
a clip at every step and over each shot followed by another: its false and missed cuts, and how far scores jump
above the shot's recent ones within shots and at cuts (which chose its ``EXCESS``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softmax_splatting.errors import UsageError, report_errors  # noqa: E402
from softmax_splatting.frames import read_image  # noqa: E402
from softmax_splatting.video import (IMAGE_SUFFIXES, SCENE_THRESHOLD, SceneCuts, colour_distance,  # noqa: E402
                                     motion_residual, scene_score)
from softmax_splatting.video.scenes import EXCESS, HISTORY  # noqa: E402

SCORES: Dict[str, Callable] = {'scene score': scene_score, 'colour distance': colour_distance,
                               'motion residual': motion_residual}


def shots(root: Path) -> Dict[str, List[Path]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    found = {f.name: sorted(p for p in f.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) for f in folders}
    found = {name: files for name, files in found.items() if len(files) >= 2}
    if len(found) < 2:
        raise UsageError(f'{root}: needs at least two subfolders of two or more frames each')
    return found


def measure(root: Path, steps: Sequence[int] = (1, 2, 4)) -> Dict[str, object]:
    """Per score name: ``within`` {step: [scores]}, ``cuts`` [scores], ``busiest`` {step: (shot, score)}, ``gap``
    (largest within over all steps, smallest cut) and ``middle`` (None when they overlap)."""
    results = {name: {'within': {step: [] for step in steps}, 'busiest': {}, 'cuts': []} for name in SCORES}
    first, last = {}, {}
    for shot, files in shots(root).items():
        images = [read_image(path) for path in files]
        first[shot], last[shot] = images[0], images[-1]
        for step in steps:
            pairs = list(zip(images, images[step:]))
            for name, score in SCORES.items():
                values = [score(a, b) for a, b in pairs]
                results[name]['within'][step] += values
                if values and max(values) > results[name]['busiest'].get(step, ('', -1.0))[1]:
                    results[name]['busiest'][step] = (shot, max(values))
    for name, score in SCORES.items():
        result = results[name]
        result['cuts'] = [score(last[a], first[b]) for a in first for b in first if a != b]
        top = max(max(values) for values in result['within'].values() if values)
        result['gap'] = (top, min(result['cuts']))
        result['middle'] = (top + result['gap'][1]) / 2 if top < result['gap'][1] else None
    return results


def measure_video(root: Path, steps: Sequence[int] = (1, 2, 4)) -> Dict[str, object]:
    """The video path's test (``SceneCuts``: history and motion hint) run over each shot as a clip at every step,
    and over each shot followed by the first frame of every other: ``false`` {step: cuts found within shots},
    ``missed`` (cuts not found), and the ``jumps`` of scores over the mean of the shot's last scores: the largest
    within shots and the smallest at cuts."""
    found = {name: [read_image(path) for path in files] for name, files in shots(root).items()}
    false, missed, within_jump, cut_jump = {}, 0, 0.0, 1.0
    for step in steps:
        false[step] = 0
        for shot, images in found.items():
            clip = images[::step]
            test = SceneCuts(SCENE_THRESHOLD)
            for a, b in zip(clip, clip[1:]):
                history = list(test.recent)
                false[step] += test.is_cut(a, b)
                if history:
                    within_jump = max(within_jump, test.score - float(np.mean(history)))
            for other, others in found.items():
                if other == shot:
                    continue
                test = SceneCuts(SCENE_THRESHOLD)
                for a, b in zip(clip, clip[1:]):
                    test.is_cut(a, b)
                history = list(test.recent)
                missed += not test.is_cut(clip[-1], others[0])
                if history:
                    cut_jump = min(cut_jump, test.score - float(np.mean(history)))
    return {'false': false, 'missed': missed, 'jumps': (within_jump, cut_jump)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('root', type=Path, help='a folder of shots, each a subfolder of frames')
    parser.add_argument('--steps', type=int, nargs='+', default=[1, 2, 4],
                        help='frame steps of the within-shot pairs (default: 1 2 4)')
    args = parser.parse_args(argv)

    def run() -> int:
        if not args.root.is_dir():
            raise UsageError(f'{args.root}: no such folder')
        if min(args.steps) < 1:
            raise UsageError('--steps must be at least 1')
        for name, result in measure(args.root, args.steps).items():
            print(f'{name}:')
            for step, values in result['within'].items():
                if values:
                    shot, top = result['busiest'][step]
                    print(f'  within shots, step {step}: {len(values)} pairs, max {top:.3f} ({shot}), 99th '
                          f'percentile {np.percentile(values, 99):.3f}')
            cuts = np.array(result['cuts'])
            print(f'  cuts between shots: {len(cuts)} pairs, min {cuts.min():.3f}, 1st percentile '
                  f'{np.percentile(cuts, 1):.3f}')
            low, high = result['gap']
            print(f'  gap {low:.3f} .. {high:.3f}; its middle {result["middle"]:.3f}' if result['middle'] is not None
                  else f'  no threshold separates them ({low:.3f} within, {high:.3f} cut)')
            if name == 'scene score':
                false = {step: sum(v > SCENE_THRESHOLD for v in values) for step, values in result['within'].items()}
                missed = int(np.sum(cuts <= SCENE_THRESHOLD))
                print(f'  the default threshold {SCENE_THRESHOLD}: false cuts per step {false}, missed cuts {missed}')
        video_test = measure_video(args.root, args.steps)
        low, high = video_test['jumps']
        print(f'the video path\'s test (SceneCuts: motion from the pair before, and a jump of more than {EXCESS} over '
              f'the shot\'s last {HISTORY} scores):')
        print(f'  false cuts per step {video_test["false"]}, missed cuts {video_test["missed"]}; jumps within shots at '
              f'most {low:.3f}, at cuts at least {high:.3f}')
        return 0

    return report_errors(run)


if __name__ == '__main__':
    sys.exit(main())
