"""Seconds per output frame of ``run_a_pair.py --video`` against ffmpeg's minterpolate, on the same clips, one run.

    python benchmark_video.py                          # DAVIS blackswan at 854x480 and 1920x1080, 2x the frame rate
    python benchmark_video.py --frames 10 --sizes 854x480 --model classical

The clips are made from real footage (``../shared/data/davis/blackswan`` when present, else ``example_img`` pans):
``--frames`` frames encoded losslessly at each size, so decoding costs both tools the same. Each tool doubles the
frame rate into an .mp4 (libx264, CRF 18); the time is the whole conversion (decoding, interpolation, encoding)
divided by the output frames. minterpolate runs with its motion-compensated settings
(``mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1``), the ones its users pick for quality, and with ``-threads``
matching ours. ffmpeg is the binary that imageio-ffmpeg ships with moviepy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2

import frames
from frames import UsageError, atomic_path
from resources import available_cores

DAVIS = Path(__file__).resolve().parent.parent / 'shared' / 'data' / 'davis' / 'blackswan'
EXAMPLE = Path(__file__).resolve().parent / 'example_img'
MINTERPOLATE = 'minterpolate=fps={fps}:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1'


def ffmpeg_exe() -> str:
    import imageio_ffmpeg  # noqa: PLC0415 - comes with moviepy
    return imageio_ffmpeg.get_ffmpeg_exe()


def source_frames(count: int) -> List:
    """``count`` RGB frames of real footage (DAVIS blackswan if present, else the example pair panned)."""
    if DAVIS.is_dir():
        paths = sorted(DAVIS.glob('*.jpg'))[:count]
        if len(paths) == count:
            return [frames.read_image(p) for p in paths]
    one = frames.read_image(EXAMPLE / 'one.png')
    return [cv2.warpAffine(one, cv2.getRotationMatrix2D((0, 0), 0, 1.0 + 0.002 * k), one.shape[1::-1],
                           borderMode=cv2.BORDER_REFLECT) for k in range(count)]


def make_clip(path: Path, images: List, width: int, height: int, fps: int = 24) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for k, image in enumerate(images):
            resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if width < image.shape[1]
                                 else cv2.INTER_CUBIC)
            frames.write_image(Path(folder) / f'{k:05d}.png', resized)
        subprocess.run([ffmpeg_exe(), '-hide_banner', '-loglevel', 'error', '-y', '-framerate', str(fps), '-i',
                        str(Path(folder) / '%05d.png'), '-c:v', 'libx264', '-qp', '0', '-pix_fmt', 'yuv444p',
                        str(path)], check=True)


def timed(command: Sequence[str]) -> float:
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise UsageError(f'{Path(command[0]).name} failed: {result.stderr.strip().splitlines()[-1:]}')
    return time.perf_counter() - began


def count_frames(path: Path) -> int:
    import av  # noqa: PLC0415
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def run(args: argparse.Namespace) -> int:
    threads = args.threads or available_cores()
    images = source_frames(args.frames)
    rows: List[Dict[str, object]] = []
    print(f'2x frame rate, {args.frames} input frames, {threads} threads; seconds per output frame (median of '
          f'{args.repeats})')
    print('| size | softsplat (' + (args.model or 'default') + ') | ffmpeg minterpolate | ratio |')
    print('| --- | ---: | ---: | ---: |')
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            width, height = (int(v) for v in size.split('x'))
            clip = Path(folder) / f'clip-{size}.mkv'
            make_clip(clip, images, width, height)
            ours_out, theirs_out = Path(folder) / f'ours-{size}.mp4', Path(folder) / f'theirs-{size}.mp4'
            ours_cmd = [sys.executable, str(Path(__file__).resolve().parent / 'run_a_pair.py'), '--video', str(clip),
                        '--out', str(ours_out), '--factor', '2', '--threads', str(threads)] + \
                       (['--model', args.model] if args.model else [])
            theirs_cmd = [ffmpeg_exe(), '-hide_banner', '-loglevel', 'error', '-y', '-threads', str(threads), '-i',
                          str(clip), '-vf', MINTERPOLATE.format(fps=48), '-c:v', 'libx264', '-crf', '18',
                          '-pix_fmt', 'yuv420p', str(theirs_out)]
            ours, theirs = [], []
            for _ in range(args.repeats):  # interleaved, so both see the same machine load
                ours.append(timed(ours_cmd))
                theirs.append(timed(theirs_cmd))
            ours_frames, theirs_frames = count_frames(ours_out), count_frames(theirs_out)
            a = sorted(ours)[len(ours) // 2] / ours_frames
            b = sorted(theirs)[len(theirs) // 2] / theirs_frames
            rows.append({'size': size, 'ours_s_per_frame': a, 'ours_frames': ours_frames,
                         'minterpolate_s_per_frame': b, 'minterpolate_frames': theirs_frames})
            print(f'| {size} | {a:.3f} s ({ours_frames} frames) | {b:.3f} s ({theirs_frames} frames) | '
                  f'{a / b:.2f}x |', flush=True)
    if args.json:
        with atomic_path(args.json) as temporary:
            temporary.write_text(json.dumps({'threads': threads, 'rows': rows}, indent=1))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', nargs='+', default=['854x480', '1920x1080'], metavar='WxH',
                        help='clip sizes (default: 854x480 1920x1080)')
    parser.add_argument('--frames', type=int, default=24, help='input frames per clip (default: 24)')
    parser.add_argument('--model', help='passed to run_a_pair.py --model (default: its default)')
    parser.add_argument('--threads', type=int, help='threads for both tools (default: the available cores)')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs per tool and size (default: 3)')
    parser.add_argument('--json', metavar='PATH', help='also write the rows to this JSON file')
    args = parser.parse_args(argv)

    def checked() -> int:
        if args.frames < 2 or args.repeats < 1:
            raise UsageError('--frames must be at least 2 and --repeats at least 1')
        for size in args.sizes:
            parts = size.split('x')
            if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
                raise UsageError(f'size {size!r} is not of the form WxH')
        return run(args)

    return frames.report_errors(checked)


if __name__ == '__main__':
    sys.exit(main())
