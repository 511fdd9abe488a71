"""Interpolate between two frames, or raise a whole video's frame rate, from the command line.

    python run_a_pair.py                                    # example_img/one.png, two.png -> out.png at t = 0.5
    python run_a_pair.py --one a.png --two b.png --out mid.png --time 0.25 0.5 0.75
    python run_a_pair.py --video clip.mp4 --out slow.mp4 --factor 4

The model is the trained MainNet checkpoint in ``weights/`` when present, else the training-free classical
interpolator (``--model classical``; see classical.py), or any checkpoint given with ``--model PATH``.
Videos are streamed through moviepy/ffmpeg: two decoded frames are held at a time, so memory does not grow with
the video's length; the audio track is copied. Every output is written under a temporary name and renamed when
complete, so a failure never leaves a partial file. Bad input gets one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

import torch

import frames
from frames import UsageError, atomic_path
from interpolator import load_interpolator, select_device

EXAMPLE = Path(__file__).resolve().parent / 'example_img'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog=__doc__.split('\n\n', 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--one', default=str(EXAMPLE / 'one.png'), help='first frame (default: example_img/one.png)')
    parser.add_argument('--two', default=str(EXAMPLE / 'two.png'), help='second frame (default: example_img/two.png)')
    parser.add_argument('--out', help='output image (default: out.png) or, with --video, output video '
                                      '(default: <input name>-x<factor>.mp4 in the current folder)')
    parser.add_argument('--time', type=float, nargs='+', default=[0.5], metavar='T',
                        help='time(s) in [0, 1] between the frames (default: 0.5); with several, the outputs are '
                             'named <out>-t<T><suffix>')
    parser.add_argument('--model', help='MainNet checkpoint PATH, or "classical" for the training-free '
                                        'interpolator (default: weights/softsplat.pt if present, else classical)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N (default: cuda if available)')
    parser.add_argument('--fp16', action='store_true', help='half precision on CUDA (MainNet only)')
    parser.add_argument('--video', metavar='IN', help='interpolate a whole video instead of a pair')
    parser.add_argument('--factor', type=int, default=2, help='with --video: frame-rate multiplier >= 2 '
                                                              '(default: 2)')
    return parser


def output_names(out: Path, times: Sequence[float]) -> List[Path]:
    if len(times) == 1:
        return [out]
    return [out.with_name(f'{out.stem}-t{t:g}{out.suffix}') for t in times]


@torch.no_grad()
def run_pair(args: argparse.Namespace, model, device: torch.device) -> None:
    one, two = frames.read_image(args.one), frames.read_image(args.two)
    if one.shape != two.shape:
        raise UsageError(f'the frames differ in size: {args.one} is {one.shape[1]}x{one.shape[0]}, '
                         f'{args.two} is {two.shape[1]}x{two.shape[0]}')
    out = Path(args.out or 'out.png')
    if out.suffix.lower() not in ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp'):
        raise UsageError(f'--out {out}: use an image suffix such as .png')
    results = model.interpolate(frames.to_tensor(one, device), frames.to_tensor(two, device), args.time)
    for path, result in zip(output_names(out, args.time), results):
        frames.write_image(path, result)
        print(f'wrote {path}')


def video_output(args: argparse.Namespace) -> Path:
    """Check the video options before any work; return the output path."""
    source = Path(args.video)
    if not source.is_file():
        raise UsageError(f'{source}: no such file')
    if args.factor < 2:
        raise UsageError(f'--factor must be at least 2, got {args.factor}')
    out = Path(args.out or f'{source.stem}-x{args.factor}.mp4')
    if out.suffix.lower() not in ('.mp4', '.mov', '.mkv', '.webm', '.avi'):
        raise UsageError(f'--out {out}: use a video suffix such as .mp4')
    return out


@torch.no_grad()
def run_video(args: argparse.Namespace, model, device: torch.device) -> None:
    from moviepy import VideoFileClip  # noqa: PLC0415 - heavy import, only for videos
    from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    source, out = Path(args.video), video_output(args)
    try:
        clip = VideoFileClip(str(source))
    except Exception as error:  # moviepy raises OSError, KeyError, IndexError... for unreadable files
        raise UsageError(f'{source}: not a readable video ({str(error).strip().splitlines()[0]})') from None
    times = [k / args.factor for k in range(1, args.factor)]
    with clip, atomic_path(out) as temporary, tempfile.TemporaryDirectory() as scratch:
        audio = Path(scratch) / 'audio.m4a'
        has_audio = clip.audio is not None
        if has_audio:
            clip.audio.write_audiofile(str(audio), codec='aac', logger=None)
        total = clip.n_frames if getattr(clip, 'n_frames', None) else int(round(clip.duration * clip.fps))
        writer = FFMPEG_VideoWriter(str(temporary), clip.size, clip.fps * args.factor, codec='libx264',
                                    audiofile=str(audio) if has_audio else None, audio_codec='aac',
                                    pixel_format='yuv420p', ffmpeg_params=['-crf', '17'])
        try:
            previous = None
            written = 0
            for frame in tqdm(clip.iter_frames(dtype='uint8'), total=total, unit='frame', desc=source.name):
                current = frames.to_tensor(frame, device)
                if previous is not None:
                    writer.write_frame(frames.to_uint8(previous))
                    for result in model.interpolate(previous, current, times):
                        writer.write_frame(frames.to_uint8(result))
                previous = current
                written += 1
            if previous is None:
                raise UsageError(f'{source}: the video has no frames')
            for _ in range(args.factor):  # the last frame holds for a whole input frame, keeping the duration
                writer.write_frame(frames.to_uint8(previous))
        finally:
            writer.close()
    print(f'wrote {out} ({written} frames in, {written * args.factor} out, {clip.fps * args.factor:g} fps)')


def run(args: argparse.Namespace) -> int:
    """The tool for parsed arguments; raises UsageError on bad input before writing anything."""
    for t in args.time:
        if not 0.0 <= t <= 1.0:
            raise UsageError(f'--time values must lie in [0, 1], got {t:g}')
    if not args.video:
        names = output_names(Path(args.out or 'out.png'), args.time)
        for index, name in enumerate(names):
            if name in names[:index]:
                first = args.time[names.index(name)]
                raise UsageError(f'--time {first} and {args.time[index]} would both be written to {name}; give '
                                 f'each time once')
    device = select_device(args.device)
    if args.video:
        video_output(args)
    model = load_interpolator(args.model, device, fp16=args.fp16)
    if args.video:
        run_video(args, model, device)
    else:
        run_pair(args, model, device)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return frames.report_errors(lambda: run(args))


if __name__ == '__main__':
    sys.exit(main())
