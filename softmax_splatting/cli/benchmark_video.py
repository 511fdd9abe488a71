"""The video path as users meet it, against ffmpeg's minterpolate: speed, and quality on held-out footage.

    python benchmark_video.py                          # speed: DAVIS blackswan at 854x480 and 1920x1080, 2x the rate
    python benchmark_video.py --frames 10 --sizes 854x480 --model classical
    python benchmark_video.py --quality                # quality: the DAVIS test split at half its frame rate, rebuilt

**Speed.**
The clips are made from real footage (``../shared/data/davis/blackswan`` when present, else ``example_img`` pans):
``--frames`` frames encoded losslessly at each size, so decoding costs both tools the same. Each tool doubles the
frame rate into an .mp4 (libx264, CRF 18); the time is the whole conversion (decoding, interpolation, encoding)
divided by the output frames. minterpolate runs with its motion-compensated settings
(``mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1``), the ones its users pick for quality, and with ``-threads``
matching ours. ffmpeg is the binary that imageio-ffmpeg ships with moviepy.

**Quality** (``--quality``): every other frame of each held-out DAVIS sequence (the test split of
``make_triplets.py``: bmx-trees and libby, 24 fps; ``--split train`` the others) is dropped, the rest (12 fps) is
written as a frame folder and doubled back to 24 fps through the real video path (``run_a_pair.py --video
DIR/%05d.png --input-fps 12 --factor 2 --out DIR/``: decoding, scene cuts, motion, encoding to frames), and every
rebuilt frame that lies between two kept frames is scored against the dropped original (8-bit RGB PSNR and SSIM,
``metrics.py``). ``--step 4`` keeps every fourth frame (6 fps, fast motion) and rebuilds with ``--factor 4``. The same is done for
``--motion quadratic`` and ``linear`` (classical interpolator), ``--model dis-blend``, and ffmpeg's minterpolate
(motion-compensated settings as above; its output frame 2k + 1 is the one between kept frames k and k + 1, checked
by its frame 2k matching kept frame k; it writes 2N - 3 frames for N, so every run is scored on the frames all of
them wrote), each with the seconds per output frame of its whole run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .. import errors, files, frames
from ..errors import UsageError
from ..files import EXAMPLE_IMAGES, SHARED_DATA
from ..resources import configure_threads
from . import options, tables

DAVIS = SHARED_DATA / 'davis' / 'blackswan'
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
    one = frames.read_image(EXAMPLE_IMAGES / 'one.png')
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
    # The interpolator runs as `python -m`, so the package must be importable from its folder, installed or not.
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [package_root, os.environ.get('PYTHONPATH')]))
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': path})
    if result.returncode != 0:
        raise UsageError(f'{Path(command[0]).name} failed: {result.stderr.strip().splitlines()[-1:]}')
    return time.perf_counter() - began


def count_frames(path: Path) -> int:
    import av  # noqa: PLC0415
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


QUALITY_RUNS = {  # name: run_a_pair.py options, or None for ffmpeg's minterpolate
    'quadratic': ['--model', 'classical', '--motion', 'quadratic'],
    'linear': ['--model', 'classical', '--motion', 'linear'],
    'dis-blend': ['--model', 'dis-blend'],
    'minterpolate': None,
}
TEST_SPLIT = ('bmx-trees', 'libby')


def rebuild(name: str, options_: Optional[List[str]], folder: Path, out: Path, threads: int,
            step: int = 2) -> Tuple[float, int]:
    """Multiply the frame rate of the frame folder ``folder`` (24 / ``step`` fps) by ``step`` into ``out``; returns
    (seconds, output frames)."""
    rate = f'24/{step}'
    if options_ is None:
        out.mkdir()
        command = [ffmpeg_exe(), '-hide_banner', '-loglevel', 'error', '-y', '-threads', str(threads),
                   '-framerate', rate, '-i', str(folder / '%05d.png'), '-vf', MINTERPOLATE.format(fps=24),
                   '-start_number', '1', str(out / '%06d.png')]
    else:
        command = [sys.executable, '-m', 'softmax_splatting.cli.interpolate', '--video', str(folder / '%05d.png'),
                   '--input-fps', rate, '--factor', str(step), '--out', str(out) + '/', '--threads', str(threads)]
        command += options_
    seconds = timed(command)
    return seconds, len(list(out.glob('*.png')))


def run_quality(args: argparse.Namespace, threads: int) -> int:
    from .. import metrics  # noqa: PLC0415 - scikit-image, only for this mode

    root = args.data
    step = args.step
    if args.sequences:
        sequences = args.sequences
    elif args.split == 'test':
        sequences = list(TEST_SPLIT)
    else:
        sequences = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in TEST_SPLIT) \
            if root.is_dir() else []
    missing = [name for name in sequences if not (root / name).is_dir()]
    if missing:
        raise UsageError(f'--data {root}: no sequence folder {", ".join(missing)} (the DAVIS frames are in '
                         f'../shared/data/davis)')
    runs = {name: QUALITY_RUNS[name] for name in args.runs}
    rows: List[Dict[str, object]] = []
    print(f'{step - 1} of every {step} frames dropped (24 -> {24 / step:g} fps) and rebuilt, {threads} threads; '
          f'PSNR / SSIM of the rebuilt frames, seconds per output frame')
    print(tables.header(['sequence', 'frames scored'] + list(runs), [False, True] + [True] * len(runs)))
    totals = {name: {'psnr': [], 'ssim': [], 'seconds': 0.0, 'frames': 0} for name in runs}
    with tempfile.TemporaryDirectory() as work:
        for sequence in sequences:
            paths = sorted(p for p in (root / sequence).iterdir() if p.suffix.lower() in ('.jpg', '.png'))
            if args.frames:
                paths = paths[:args.frames]
            if len(paths) < 2 * step + 1:
                raise UsageError(f'{root / sequence}: needs at least {2 * step + 1} frames')
            kept = Path(work) / sequence
            kept.mkdir()
            originals = [frames.read_image(p) for p in paths]
            for k, image in enumerate(originals[::step]):
                frames.write_image(kept / f'{k:05d}.png', image)
            last_kept = (len(originals) - 1) // step * step
            truth = {k: originals[k] for k in range(1, last_kept) if k % step}  # between two kept frames
            results = {}
            for name, options_ in runs.items():
                out = Path(work) / f'{sequence}-{name}'
                seconds, count = rebuild(name, options_, kept, out, threads, step)
                rebuilt = sorted(out.glob('*.png'))
                # every tool must put kept frame j at output step * j (minterpolate's are near-lossless copies)
                if metrics.psnr(frames.read_image(rebuilt[step]), originals[step]) < 35:
                    raise UsageError(f'{name}: output frame {step} of {sequence} is not kept frame 1; the frames are '
                                     f'not aligned as this benchmark assumes')
                results[name] = (seconds, count, rebuilt)
            # minterpolate stops one interval short (2N - 3 frames for N at step 2): all are scored on the frames
            # all of them wrote
            common = [k for k in truth if k < min(count for _, count, _ in results.values())]
            cells = [sequence, str(len(common))]
            for name, (seconds, count, rebuilt) in results.items():
                scores = [(metrics.psnr(frames.read_image(rebuilt[k]), truth[k]),
                           metrics.ssim(frames.read_image(rebuilt[k]), truth[k])) for k in common]
                psnr, ssim = (float(np.mean(values)) for values in zip(*scores))
                totals[name]['psnr'] += [s[0] for s in scores]
                totals[name]['ssim'] += [s[1] for s in scores]
                totals[name]['seconds'] += seconds
                totals[name]['frames'] += count
                rows.append({'sequence': sequence, 'run': name, 'psnr': psnr, 'ssim': ssim, 'frames': count,
                             'scored': len(common), 's_per_frame': seconds / count})
                cells.append(f'{psnr:.2f} / {ssim:.3f} ({seconds / count:.2f} s)')
            print(tables.row(cells), flush=True)
    cells = ['all', str(len(totals[next(iter(runs))]['psnr']))]
    for name, total in totals.items():
        cells.append(f'{np.mean(total["psnr"]):.2f} / {np.mean(total["ssim"]):.3f} '
                     f'({total["seconds"] / total["frames"]:.2f} s)')
        rows.append({'sequence': 'all', 'run': name, 'psnr': float(np.mean(total['psnr'])),
                     'ssim': float(np.mean(total['ssim'])), 'frames': total['frames'],
                     's_per_frame': total['seconds'] / total['frames']})
    print(tables.row(cells))
    if args.json:
        files.write_json(args.json, {'threads': threads, 'mode': 'quality', 'rows': rows})
    return 0


def run(args: argparse.Namespace) -> int:
    if args.quality:
        if args.frames is not None and args.frames < 3:
            raise UsageError('--frames must be at least 3')
        return run_quality(args, configure_threads(args.threads))
    args.frames = 24 if args.frames is None else args.frames
    if args.frames < 2 or args.repeats < 1:
        raise UsageError('--frames must be at least 2 and --repeats at least 1')
    threads = configure_threads(args.threads)  # and the same count for both tools
    images = source_frames(args.frames)
    rows: List[Dict[str, object]] = []
    print(f'2x frame rate, {args.frames} input frames, {threads} threads; seconds per output frame (median of '
          f'{args.repeats})')
    print(tables.header(['size', f'softsplat ({args.model or "default"})', 'ffmpeg minterpolate', 'ratio'],
                        [False, True, True, True]))
    with tempfile.TemporaryDirectory() as folder:
        for width, height in args.sizes:
            size = f'{width}x{height}'
            clip = Path(folder) / f'clip-{size}.mkv'
            make_clip(clip, images, width, height)
            ours_out, theirs_out = Path(folder) / f'ours-{size}.mp4', Path(folder) / f'theirs-{size}.mp4'
            ours_cmd = [sys.executable, '-m', 'softmax_splatting.cli.interpolate', '--video', str(clip),
                        '--out', str(ours_out), '--factor', '2', '--threads', str(threads)]
            ours_cmd += ['--model', args.model] if args.model else []
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
            print(tables.row([size, f'{a:.3f} s ({ours_frames} frames)', f'{b:.3f} s ({theirs_frames} frames)',
                              f'{a / b:.2f}x']), flush=True)
    if args.json:
        files.write_json(args.json, {'threads': threads, 'rows': rows})
    return 0


def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--sizes', nargs='+', type=options.size, default=[(854, 480), (1920, 1080)],
                        metavar='WxH',
                        help='clip sizes (default: 854x480 1920x1080)')
    parser.add_argument('--frames', type=int, help='input frames per clip (default: 24); with --quality, the first '
                                                   'frames of each sequence (default: all)')
    quality = parser.add_argument_group('quality (--quality)')
    quality.add_argument('--quality', action='store_true',
                         help='rebuild dropped frames of held-out DAVIS sequences and score them (see above)')
    quality.add_argument('--data', type=Path, default=SHARED_DATA / 'davis',
                         help='folder of DAVIS sequences (default: ../shared/data/davis)')
    quality.add_argument('--sequences', nargs='+', metavar='NAME',
                         help='sequences to rebuild (default: those of --split)')
    quality.add_argument('--split', choices=('test', 'train'), default='test',
                         help=f'test: the held-out sequences of make_triplets.py ({" ".join(TEST_SPLIT)}, the '
                              f'default); train: all the others (for tuning)')
    quality.add_argument('--step', type=int, default=2, choices=range(2, 9), metavar='K',
                         help='keep every K-th frame (24 / K fps) and rebuild the others with --factor K (2 to 8; '
                              'default: 2; 4 is 6 fps, fast motion)')
    quality.add_argument('--runs', nargs='+', choices=list(QUALITY_RUNS), default=list(QUALITY_RUNS),
                         help='what to compare (default: all)')
    parser.add_argument('--model', help='passed to run_a_pair.py --model (default: its default)')
    options.add_repeats(parser, 3, 'tool and size (default: 3)')
    options.add_threads(parser)
    options.add_json(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
