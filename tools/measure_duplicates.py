"""Measure how well ``video.duplicates.repeat_score`` tells repeated frames from real ones, to choose REPEAT_LEVEL.

    python tools/measure_duplicates.py ../shared/data/davis [--clips blackswan dog parkour camel cows]

"Real" pairs: every two consecutive frames of every subfolder (one shot each). "Repeat" pairs: for each of
``--clips``, its first ``--frames`` frames put "on twos" (each shown twice), encoded with x264 at each of
``--crf``, decoded, and every frame compared with its repeat. The level works when it lies above every repeat
score and below every real one; the tool prints both ends and how many pairs the current level gets wrong.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import List, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softmax_splatting.errors import UsageError, report_errors  # noqa: E402
from softmax_splatting.frames import read_image  # noqa: E402
from softmax_splatting.video import IMAGE_SUFFIXES  # noqa: E402
from softmax_splatting.video.duplicates import REPEAT_LEVEL, repeat_score  # noqa: E402


def shot_frames(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def on_twos(files: Sequence[Path], crf: int, folder: Path) -> List[np.ndarray]:
    """The frames, each shown twice, through x264 at ``crf`` (24 fps, yuv420p), decoded back to RGB."""
    import av  # noqa: PLC0415

    path = folder / f'twos-{crf}.mp4'
    images = [read_image(f) for f in files]
    height, width = images[0].shape[:2]
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=24)
        stream.width, stream.height, stream.pix_fmt = width - width % 2, height - height % 2, 'yuv420p'
        stream.options = {'crf': str(crf)}
        for image in images:
            for _ in range(2):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:stream.height, :stream.width]),
                                                   format='rgb24')
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format='rgb24') for frame in container.decode(video=0)]


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data', type=Path, help='a folder of shots, one subfolder of frames each')
    parser.add_argument('--clips', nargs='+', default=['blackswan', 'dog', 'parkour', 'camel', 'cows'])
    parser.add_argument('--frames', type=int, default=24, help='frames of each clip put on twos (default: 24)')
    parser.add_argument('--crf', type=int, nargs='+', default=[18, 28, 35])
    args = parser.parse_args(argv)

    def run() -> int:
        shots = sorted(p for p in args.data.iterdir() if p.is_dir()) if args.data.is_dir() else []
        if not shots:
            raise UsageError(f'{args.data}: no subfolders of frames')
        real = []
        for shot in shots:
            images = [read_image(f) for f in shot_frames(shot)]
            real += [(repeat_score(a, b), shot.name) for a, b in zip(images, images[1:])]
        lowest = min(real)
        print(f'real pairs: {len(real)}, lowest score {lowest[0]:.2f} ({lowest[1]})')
        repeats = []
        with tempfile.TemporaryDirectory() as folder:
            for clip in args.clips:
                files = shot_frames(args.data / clip)[:args.frames]
                if len(files) < 2:
                    raise UsageError(f'{args.data / clip}: fewer than two frames')
                for crf in args.crf:
                    decoded = on_twos(files, crf, Path(folder))
                    scores = [repeat_score(decoded[i], decoded[i + 1]) for i in range(0, len(decoded) - 1, 2)]
                    repeats += scores
                    print(f'{clip} on twos, x264 CRF {crf}: repeats score at most {max(scores):.2f}')
        wrong = sum(score >= REPEAT_LEVEL for score in repeats) + sum(score < REPEAT_LEVEL for score, _ in real)
        print(f'REPEAT_LEVEL {REPEAT_LEVEL:g}: {wrong} of {len(real) + len(repeats)} pairs on the wrong side; '
              f'gap {max(repeats):.2f} .. {lowest[0]:.2f}')
        return 0

    return report_errors(run)


if __name__ == '__main__':
    sys.exit(main())
