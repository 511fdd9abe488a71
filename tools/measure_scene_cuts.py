"""Measure how well ``video.scene_score`` separates cuts from motion, to choose ``--scene-threshold``'s default.

    python tools/measure_scene_cuts.py ../shared/data/davis

Each subfolder of frames is one shot. "Within" scores compare consecutive frames of a shot (motion, including fast
camera pans); "cut" scores compare the last frame of one shot with the first frame of every other shot (what a cut
between them would look like). A threshold separates them if it lies above every within score and below every cut
score; the tool prints both extremes, a few percentiles, and the threshold in the middle of the gap (if any).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softmax_splatting.errors import UsageError, report_errors  # noqa: E402
from softmax_splatting.frames import read_image  # noqa: E402
from softmax_splatting.video import IMAGE_SUFFIXES, SCENE_THRESHOLD, scene_score  # noqa: E402


def shots(root: Path) -> Dict[str, List[Path]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    found = {f.name: sorted(p for p in f.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) for f in folders}
    found = {name: files for name, files in found.items() if len(files) >= 2}
    if len(found) < 2:
        raise UsageError(f'{root}: needs at least two subfolders of two or more frames each')
    return found


def measure(root: Path) -> Dict[str, object]:
    within, per_shot, first, last = [], {}, {}, {}
    for name, files in shots(root).items():
        images = [read_image(path) for path in files]
        scores = [scene_score(a, b) for a, b in zip(images, images[1:])]
        within += scores
        per_shot[name] = max(scores)
        first[name], last[name] = images[0], images[-1]
    cuts = [scene_score(last[a], first[b]) for a in first for b in first if a != b]
    gap = (max(within), min(cuts))
    return {'within': within, 'cuts': cuts, 'per_shot': per_shot, 'gap': gap,
            'middle': (gap[0] + gap[1]) / 2 if gap[0] < gap[1] else None}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('root', type=Path, help='a folder of shots, each a subfolder of frames')
    args = parser.parse_args(argv)

    def run() -> int:
        if not args.root.is_dir():
            raise UsageError(f'{args.root}: no such folder')
        result = measure(args.root)
        within, cuts = np.array(result['within']), np.array(result['cuts'])
        print(f'within shots: {len(within)} pairs, max {within.max():.3f}, 99th percentile '
              f'{np.percentile(within, 99):.3f}, median {np.median(within):.3f}')
        busiest = sorted(result['per_shot'].items(), key=lambda item: -item[1])[:3]
        print('  largest:', ', '.join(f'{name} {score:.3f}' for name, score in busiest))
        print(f'cuts between shots: {len(cuts)} pairs, min {cuts.min():.3f}, 1st percentile '
              f'{np.percentile(cuts, 1):.3f}, median {np.median(cuts):.3f}')
        if result['middle'] is None:
            print('no threshold separates them')
        else:
            print(f'gap {result["gap"][0]:.3f} .. {result["gap"][1]:.3f}; its middle {result["middle"]:.3f} '
                  f'(the default is {SCENE_THRESHOLD})')
        return 0

    return report_errors(run)


if __name__ == '__main__':
    sys.exit(main())
