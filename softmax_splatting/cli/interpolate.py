"""Interpolate between two frames, or convert a whole video's frame rate, from the command line.

    python run_a_pair.py                                    # example_img/one.png, two.png -> out.png at t = 0.5
    python run_a_pair.py --one a.png --two b.png --out mid.png --time 0.25 0.5 0.75
    python run_a_pair.py --one b.png --two c.png --before a.png --after d.png  # quadratic paths through a and d
    python run_a_pair.py --video clip.mp4 --out slow.mp4 --factor 4
    python run_a_pair.py --video clip.mp4 --out smooth.mkv --fps 60
    python run_a_pair.py --video clip.mp4 --out slow.mp4 --slow-motion 4 --start 1:05 --duration 3
    python run_a_pair.py --video frames/%05d.png --input-fps 24 --out frames_x2/
    python run_a_pair.py --video clips/ extra.mp4 --out smooth/ --fps 60  # a batch; --resume continues a stopped run

The model is the classical interpolator (``--model classical``; see classical.py) or any MainNet checkpoint given
with ``--model PATH``. Videos (a file, a folder of frames or a printf pattern) are decoded and encoded through PyAV
(see video/ and conversion.py): each frame moves along a quadratic path through its neighbours (``--motion``;
every flow is computed once), output times follow the input's timestamps, no frame is blended across a scene cut,
short runs of repeated frames are replaced by frames along the motion (``--keep-duplicates`` keeps them), audio
is copied (trimmed with ``--start``/``--duration``; dropped in ``--slow-motion``), rotation and sample aspect ratio
are kept, and decoding, flow, synthesis and encoding overlap.
Every output is written under a temporary name and moved into place when complete, so a failure or Ctrl-C never
leaves a partial file. Bad input gets one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from fractions import Fraction
from types import SimpleNamespace
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from .. import conversion, errors, frames, video
from ..errors import UsageError
from ..files import EXAMPLE_IMAGES, natural_key
from ..footage import VIDEO_SUFFIXES
from ..interpolator import BASELINES, load_interpolator
from ..motion import MOTIONS
from ..resources import configure_threads, return_freed_memory, select_device
from ..signals import StopSignals
from ..video import MAX_REPEATS, SCENE_THRESHOLD
from ..video.segments import SEGMENT_FRAMES, fingerprint, open_resumable_sink
from . import options


def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--one', default=str(EXAMPLE_IMAGES / 'one.png'),
                        help='first frame (default: the example pair, example_img/one.png)')
    parser.add_argument('--two', default=str(EXAMPLE_IMAGES / 'two.png'),
                        help='second frame (default: example_img/two.png)')
    parser.add_argument('--out', help='output image (default: out.png) or, with --video, output video '
                                      '(default: <input name>-x<factor>.mp4, -<fps>fps.mp4 or -slowmo<K>.mp4 in '
                                      'the current folder), or a folder (existing, or ending in /) for numbered '
                                      'frames')
    parser.add_argument('--time', type=float, nargs='+', metavar='T',
                        help='time(s) in [0, 1] between the frames (default: 0.5); with several, the outputs are '
                             'named <out>-t<T><suffix>')
    parser.add_argument('--before', metavar='IMAGE', help='the frame before --one: with it, frame one moves along a '
                                                          'quadratic path instead of a straight line')
    parser.add_argument('--after', metavar='IMAGE', help='the frame after --two (the same for frame two)')
    parser.add_argument('--motion', choices=MOTIONS,
                        help='quadratic: each frame moves along a path through its neighbours (the frames before '
                             'and after; at clip ends and scene cuts, and without --before/--after, linear); '
                             'linear: straight lines between the two frames (default: quadratic, except for the '
                             'comparison models dis-blend and average, which are linear)')
    options.add_model(parser)
    options.add_device(parser)
    parser.add_argument('--fp16', action='store_true',
                        help='half precision on CUDA (a trained model: MainNet or the published weights)')
    options.add_threads(parser)
    video = parser.add_argument_group('video')
    video.add_argument('--video', metavar='IN', nargs='+',
                       help='convert a whole video: a video file, a folder of frames or a printf pattern such as '
                            'frames/%%05d.png; several, or a folder of videos, convert one after the other into the '
                            'folder --out (default: the current folder), with one progress bar and a summary')
    rate = video.add_mutually_exclusive_group()
    rate.add_argument('--factor', type=int, help='multiply the frame rate by this integer >= 2 (default: 2)')
    rate.add_argument('--fps', metavar='R', help='output frame rate, e.g. 60, 59.94 or 24000/1001 (times follow the '
                                                 'input\'s timestamps; the duration stays the same)')
    video.add_argument('--slow-motion', type=int, metavar='K',
                       help='slow motion: K times the frames, played at the input\'s frame rate (or at --fps, or at '
                            '--factor times it), so K times as long; the audio is dropped')
    video.add_argument('--start', metavar='TIME', help='convert from this time of the input on (seconds, or '
                                                       'MM:SS / HH:MM:SS.ms, as ffmpeg -ss); the output starts at 0')
    video.add_argument('--duration', metavar='TIME', help='convert this much of the input (same format, as ffmpeg -t)')
    video.add_argument('--keep-duplicates', action='store_true',
                       help='keep repeated frames as they are (default: a run of up to '
                            f'{MAX_REPEATS} frames repeating the one before them, as in animation on twos or 24p '
                            'carried in 30p, is replaced by frames along the motion around it, timing kept)')
    video.add_argument('--input-fps', metavar='R', help='frame rate of a folder or pattern of frames (default: 25)')
    video.add_argument('--scene-threshold', type=float, default=SCENE_THRESHOLD, metavar='X',
                       help=f'scene-cut threshold, in [0, 1], on the mean of the colour-histogram distance of '
                            f'consecutive frames and the share of the frame their motion does not explain; frames '
                            f'across a cut repeat the nearer side instead of blending (0: no detection; default: '
                            f'{SCENE_THRESHOLD})')
    video.add_argument('--codec', help='video encoder (default: libx264; libvpx-vp9 for .webm)')
    video.add_argument('--crf', type=int, help='constant rate factor of the encoder (default: 18)')
    video.add_argument('--pix-fmt', default='yuv420p', help='output pixel format (default: yuv420p, which players '
                                                            'everywhere accept)')
    video.add_argument('--overwrite', action='store_true',
                       help='replace an output folder of frames that already holds files (the new frames replace it '
                            'whole once all are written; without this, such a folder is refused), and start over '
                            'where an interrupted conversion of the same output kept its work')
    video.add_argument('--resume', action='store_true',
                       help='continue an interrupted conversion (Ctrl-C, SIGTERM, kill -9, power loss) from its last '
                            f'finished segment of {SEGMENT_FRAMES} frames, kept in .<out name>.partial beside the '
                            'output: the same command with --resume; the result is the uninterrupted one')
    return parser


def output_names(out: Path, times: Sequence[float]) -> List[Path]:
    if len(times) == 1:
        return [out]
    return [out.with_name(f'{out.stem}-t{t:g}{out.suffix}') for t in times]


def check_image_outputs(outputs: Sequence[Path], inputs: Sequence[Path]) -> None:
    """Refuse, before any work, image outputs that would replace an input, are folders, have no image suffix, or
    cannot be written where they would go."""
    for out in outputs:
        if out.suffix.lower() not in video.IMAGE_SUFFIXES:
            raise UsageError(f'--out {out}: use an image suffix such as .png')
        if out.is_dir():
            raise UsageError(f'--out {out} is a folder; give an image file name such as {out / "mid.png"}')
        for source in inputs:
            if out.resolve() == source.resolve() or (out.exists() and os.path.samefile(out, source)):
                raise UsageError(f'--out {out} is an input frame ({source}); choose another output')
        video.check_writable(out, out.parent)


Report = Optional[Callable[[str], None]]  # where a conversion's lines go (None: stdout and stderr, as a tool)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


@torch.no_grad()
def run_pair(args: argparse.Namespace, device: torch.device, models: Optional[dict] = None,
             report: Report = None) -> List[Path]:
    """Interpolate the pair of ``args`` and write its outputs; returns their paths. ``models`` keeps the model once
    loaded (as :func:`run_video`'s); ``report`` takes the lines the tool prints (the page, app/, shows them)."""
    one, two = frames.read_image(args.one), frames.read_image(args.two)
    if one.shape != two.shape:
        raise UsageError(f'the frames differ in size: {args.one} is {one.shape[1]}x{one.shape[0]}, '
                         f'{args.two} is {two.shape[1]}x{two.shape[0]}')
    video.check_size(one.shape[1], one.shape[0], Path(args.one))
    images = {}
    for name in ('before', 'after'):
        path = getattr(args, name)
        if path is not None:
            image = frames.read_image(path)
            if image.shape != one.shape:
                raise UsageError(f'--{name} {path} is {image.shape[1]}x{image.shape[0]}; the pair is '
                                 f'{one.shape[1]}x{one.shape[0]}')
            images[name] = image
    outputs = output_names(Path(args.out or 'out.png'), args.time)
    inputs = [Path(p) for p in (args.one, args.two, args.before, args.after) if p is not None]
    check_image_outputs(outputs, inputs)
    models = {} if models is None else models
    if 'model' not in models:
        models['model'] = load_model(args, device)
    model = models['model']
    return_freed_memory(one.shape[0] * one.shape[1])
    neighbours = {name: frames.to_tensor(image, device) for name, image in images.items()}
    results = model.interpolate(frames.to_tensor(one, device), frames.to_tensor(two, device), args.time,
                                **neighbours)
    with StopSignals() as held:  # a signal waits until every output is written, so that none is left out unsaid
        for path, result in zip(outputs, results):
            frames.write_image(path, result)
            (report or print)(f'wrote {path}')
    if held.received is not None:
        name = signal.Signals(held.received).name
        raise errors.Interrupted(f'{name} received while the outputs were written; all {len(outputs)} are complete',
                                 128 + held.received)
    return outputs


def default_video_name(args: argparse.Namespace, source: video.Source) -> str:
    """<input name>-x2.mp4, -60fps.mp4, -slowmo4.mp4 (or -x2-slowmo4.mp4 with both) in the current folder."""
    parts = []
    if args.fps:
        parts.append(f'{args.fps.replace("/", "_")}fps')
    elif args.factor or not args.slow_motion:
        parts.append(f'x{args.factor or 2}')
    if args.slow_motion:
        parts.append(f'slowmo{args.slow_motion}')
    return f'{source.path.stem}-{"-".join(parts)}.mp4'


def make_timeline(args: argparse.Namespace, source: video.Source) -> video.Timeline:
    """The output timing of --factor / --fps / --slow-motion; UsageError past MAX_FRAMES_PER_INTERVAL."""
    fps = video.parse_rate(args.fps) if args.fps else None
    slow = args.slow_motion or 1
    per_interval = (fps / source.rate if fps else (args.factor or (1 if args.slow_motion else 2))) * slow
    if per_interval > video.MAX_FRAMES_PER_INTERVAL:
        asked = ' '.join(f'--{name.replace("_", "-")} {getattr(args, name)}' for name in ('fps', 'factor',
                                                                                          'slow_motion')
                         if getattr(args, name))
        raise UsageError(f'{asked} asks for {float(per_interval):.0f} output frames per input frame of '
                         f'{source.path} ({float(source.rate):.6g} fps); at most {video.MAX_FRAMES_PER_INTERVAL}')
    factor = None if fps else (args.factor or (None if args.slow_motion else 2))
    return video.Timeline(source, factor=factor, fps=fps, slow_motion=slow)


def video_inputs(specs: Sequence[str]) -> Tuple[List[str], bool]:
    """The inputs of --video, a folder that holds videos (and no frames) standing for its videos; and whether this is
    a batch (several inputs, or such a folder)."""
    inputs: List[str] = []
    batch = len(specs) > 1
    for spec in specs:
        path = Path(spec)
        if path.is_dir() and not any(frames.is_image_file(p) for p in path.iterdir()):
            videos = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                             and not p.name.startswith('.')), key=natural_key)
            if not videos:
                raise UsageError(f'{path}: holds neither frames ({", ".join(video.IMAGE_SUFFIXES)}) nor videos '
                                 f'({", ".join(sorted(VIDEO_SUFFIXES))})')
            inputs += [str(p) for p in videos]
            batch = True
        else:
            inputs.append(spec)
    return inputs, batch


class _Shared:
    """One progress bar for a batch: each conversion enters and updates it, none closes it."""

    def __init__(self, bar):
        self.bar = bar

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def update(self, count: int) -> None:
        self.bar.update(count)

    def write(self, line: str) -> None:
        self.bar.write(line)


def run_videos(args: argparse.Namespace, device: torch.device) -> None:
    """--video: one conversion, or a batch (several inputs, or a folder of videos) into the folder --out (default:
    the current folder) with one progress bar, each output whole or absent; UsageError after it if any failed."""
    from tqdm import tqdm  # noqa: PLC0415

    inputs, batch = video_inputs(args.video)
    models: dict = {}
    if not batch:
        run_video(args, device, inputs[0], args.out, models, None)
        return
    folder = Path(args.out or '.')
    if args.out and not video.wants_folder(args.out):
        raise UsageError(f'--out {args.out}: several inputs ({len(inputs)}) need a folder for their outputs (end it '
                         f'with /)')
    named = {}
    for spec in inputs:
        name = default_video_name(args, SimpleNamespace(path=Path(spec)))
        if name in named:
            raise UsageError(f'{named[name]} and {spec} would both be written to {folder / name}; convert them in '
                             f'separate calls')
        named[name] = spec
    totals = []
    for spec in inputs:  # sizes for the one progress bar; an unreadable input fails later, in its turn
        try:
            source = video.open_source(spec, _input_fps(args))
            totals.append(source.total)
            source.close()
        except UsageError:
            totals.append(0)  # it will fail in its turn, before any frame
    total = sum(totals) if all(t is not None for t in totals) else None
    failed = []
    with tqdm(total=total, unit='frame', desc=f'{len(inputs)} videos') as bar:
        for number, (name, spec) in enumerate(named.items(), start=1):
            bar.set_description(f'{number}/{len(inputs)} {Path(spec).name}')
            try:
                run_video(args, device, spec, str(folder / name), models, _Shared(bar))
            except UsageError as error:
                print(f'error: {spec}: {error}', file=sys.stderr)
                failed.append(spec)
    if failed:
        raise UsageError(f'{len(inputs) - len(failed)} of {len(inputs)} videos converted; failed: '
                         f'{", ".join(failed)}')
    print(f'{len(inputs)} of {len(inputs)} videos converted into {folder}')


def _input_fps(args: argparse.Namespace) -> Optional[Fraction]:
    return video.parse_rate(args.input_fps, '--input-fps') if args.input_fps else None


@torch.no_grad()
def run_video(args: argparse.Namespace, device: torch.device, spec: str, out: Optional[str], models: dict,
              progress, stop: Optional[Callable[[], None]] = None, report: Report = None) -> None:
    """Convert one input into ``out`` (None: the default name); ``models`` holds the model once loaded (a batch
    loads it once); ``progress``: None for a bar of its own, or an object with ``update(frames)``, ``write(line)``
    and the context manager's methods (a batch's shared bar, the page's job). ``stop``, called often in this
    thread, may raise :class:`errors.Interrupted` to cancel the conversion (the page's Cancel; Ctrl-C and SIGTERM
    are acted on in the main thread). ``report`` takes the lines for stderr (notices), None: stderr itself."""
    from tqdm import tqdm  # noqa: PLC0415

    source = video.open_source(spec, _input_fps(args))
    try:
        if args.start is not None or args.duration is not None:
            source.trim(video.parse_time(args.start or '0', '--start'),
                        video.parse_time(args.duration, '--duration') if args.duration is not None else None)
        timeline = make_timeline(args, source)
        out = out or default_video_name(args, source)
        # Threads work from here on: Ctrl-C and SIGTERM wait for a point where the conversion can stop cleanly
        # (signals.py); one that comes while the finished output is put in place is too late to undo it.
        with StopSignals() as held:
            sink = open_resumable_sink(out, source, timeline, video.EncodeOptions(args.codec, args.crf, args.pix_fmt),
                                       fingerprint(source, output_settings(args)), overwrite=args.overwrite,
                                       resume=args.resume)
            try:
                if 'model' not in models:
                    models['model'] = load_model(args, device)
                return_freed_memory(source.width * source.height)
                if sink.frames_done:
                    (report or _stderr)(f'resuming: {sink.frames_done} frame(s) of {out} were written before')

                def check() -> None:
                    held.check()
                    if stop is not None:
                        stop()

                result = conversion.convert(
                    source, sink, timeline, models['model'], device, args.scene_threshold,
                    args.motion or 'quadratic',
                    progress or tqdm(total=source.total, unit='frame', desc=source.path.name), check,
                    duplicates=not args.keep_duplicates)
                held.check()
                sink.finish()
            except (KeyboardInterrupt, errors.Interrupted) as stop:
                sink.abort()
                kept = sink.kept()
                if not kept:
                    raise
                status = stop.status if isinstance(stop, errors.Interrupted) else 130
                name = 'interrupted' if status == 130 else f'terminated ({signal.Signals(status - 128).name})'
                raise errors.Interrupted(f'{name}; {out} is not written; {kept}', status) from None
            except BaseException:
                sink.abort()
                raise
    finally:
        source.close()
    for notice in source.notices + sink.notices:
        (report or _stderr)(notice)
    remarks = ''.join([f', {result.cuts} scene cut(s) not blended across' if result.cuts else '',
                       f', {result.repeats} repeated frame(s) replaced' if result.repeats else '',
                       f', {timeline.slow_motion}x slow motion' if timeline.slow_motion > 1 else ''])
    line = f'wrote {out}: {result.frames_in} frames in, {result.frames_out} out at {float(timeline.rate):.6g} fps' \
           f'{remarks}'
    if progress is not None:
        progress.write(line)
    else:
        print(line)


def output_settings(args: argparse.Namespace) -> dict:
    """Every option that shapes a video's output, with the model file's identity (what --resume must match)."""
    settings = {name: getattr(args, name) for name in ('factor', 'fps', 'slow_motion', 'start', 'duration',
                                                       'input_fps', 'scene_threshold', 'motion', 'keep_duplicates',
                                                       'codec', 'crf', 'pix_fmt', 'model', 'fp16')}
    model = Path(str(args.model))
    if model.is_file():
        status = model.stat()
        settings['model_file'] = [str(model.resolve()), status.st_size, status.st_mtime_ns]
    return settings


def load_model(args: argparse.Namespace, device: torch.device):
    """The interpolator, loaded once every input and output has been checked (its notices come after errors)."""
    model = load_interpolator(args.model, device, fp16=args.fp16)
    if not conversion.supports_motion(model) and args.motion == 'quadratic':  # a checkpoint of another kind
        raise UsageError(f'--motion quadratic needs an interpolator that computes flow; --model {args.model} moves '
                         f'linearly')
    return model


def check_options(args: argparse.Namespace) -> None:
    """Every check that needs no file: ranges, combinations, output names of a pair."""
    if not 0.0 <= args.scene_threshold <= 1.0:
        raise UsageError(f'--scene-threshold must lie in [0, 1], got {args.scene_threshold:g}')
    if args.factor is not None and not 2 <= args.factor <= video.MAX_FRAMES_PER_INTERVAL:
        raise UsageError(f'--factor must be from 2 to {video.MAX_FRAMES_PER_INTERVAL}, got {args.factor}')
    for option, rate in (('--fps', args.fps), ('--input-fps', args.input_fps)):
        if rate is not None:
            video.parse_rate(rate, option)
    if args.slow_motion is not None and not 2 <= args.slow_motion <= video.MAX_FRAMES_PER_INTERVAL:
        raise UsageError(f'--slow-motion must be from 2 to {video.MAX_FRAMES_PER_INTERVAL}, got {args.slow_motion}')
    if args.start is not None:
        video.parse_time(args.start, '--start')
    if args.duration is not None and video.parse_time(args.duration, '--duration') <= 0:
        raise UsageError(f'--duration {args.duration}: must be longer than 0')
    video_only = [name for name in ('factor', 'fps', 'slow_motion', 'start', 'duration', 'keep_duplicates',
                                    'input_fps', 'codec', 'crf', 'overwrite', 'resume')
                  if getattr(args, name) not in (None, False)]
    if video_only and not args.video:
        raise UsageError(f'--{video_only[0].replace("_", "-")} applies to --video')
    if args.time is not None and args.video:
        raise UsageError('--time applies to a pair; with --video, --factor or --fps choose the output frames')
    for name in ('before', 'after'):
        if getattr(args, name) is not None and args.video:
            raise UsageError(f'--{name} applies to a pair; a video gives each frame its neighbours')
        if getattr(args, name) is not None and args.motion == 'linear':
            raise UsageError(f'--{name} gives quadratic motion; --motion linear would not use it')
    if args.model in BASELINES:
        if args.motion == 'quadratic':
            raise UsageError(f'--motion quadratic needs an interpolator that computes flow (classical or a MainNet '
                             f'checkpoint); --model {args.model} moves linearly')
        if args.before or args.after:
            raise UsageError(f'--before/--after give quadratic motion, which --model {args.model} does not have')
    args.time = args.time if args.time is not None else [0.5]
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


def _terminated(number: int, _frame) -> None:
    raise errors.Interrupted('terminated (SIGTERM); nothing was written', 128 + number)


def run(args: argparse.Namespace) -> int:
    """The tool for parsed arguments; raises UsageError on bad input before writing anything."""
    configure_threads(args.threads)
    check_options(args)
    device = select_device(args.device)
    # SIGTERM (timeout, service managers) cleans up as Ctrl-C does: the exception unwinds through the sinks' abort
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        if args.video:
            run_videos(args, device)
        else:
            run_pair(args, device)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
