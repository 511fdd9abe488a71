"""The Xiph 4K benchmark of the softmax splatting paper: PSNR and SSIM on eight Netflix clips, resized and cropped.

Protocol (Niklaus & Liu, CVPR 2020, the "Xiph" columns of its evaluation, introduced there for high-resolution
footage; the details below follow the authors' public evaluation script, ``benchmark_xiph.py`` of
github.com/sniklaus/softmax-splatting, as facts; no code is taken from it):

* Clips: the first 100 frames of BoxingPractice, Crosswalk, DrivingPOV, FoodMarket, FoodMarket2, RitualDance,
  SquareAndTimelapse and Tango, 4096 x 2160, 60 fps, 10-bit 4:2:0 (Netflix open content from media.xiph.org).
* Frames: of the first N = 100 frames, 0-based 0 ... 99, every odd frame i = 1, 3, ..., 97 is interpolated at
  t = 0.5 from frames i - 1 and i + 1 and compared with frame i: 49 frames per clip. In the script's 1-based file
  names (ffmpeg ``-vframes 100`` to 001.png ... 100.png, then ``range(2, 99, 2)``) these are frames 2, 4, ..., 98
  from their neighbours 1 & 3, ..., 97 & 99; the last frame (1-based 100) is never used. ``--frames N`` shortens
  a run the same way: targets ``range(1, N - 1, 2)``.
* Categories: "resized" scales the two inputs and the ground truth to 2048 x 1080 with ``cv2.INTER_AREA``;
  "cropped" takes the central 2048 x 1080 region of each (rows 540-1619, columns 1024-3071 of 4096 x 2160).
  Both start from the same 8-bit RGB frames.
* Scores: the prediction is rounded to 8 bits (:func:`frames.to_uint8`) and scored with :func:`metrics.psnr` and
  :func:`metrics.ssim`. A clip's score is the mean over its frames; a category's score the mean over all frames of
  all clips, which equals the mean of the clip means since every clip contributes the same number of frames.

Inputs (``--data DIR``), looked for per clip in this order:

1. ``DIR/<Clip>/``: a folder of frames (sorted image files, natural order), e.g. extracted with ffmpeg;
2. a ``.y4m`` file in DIR whose name contains the clip name as a word, e.g.
   ``Netflix_BoxingPractice_4096x2160_60fps_10bit_420.y4m`` or ``BoxingPractice.y4m`` (``FoodMarket`` does not
   match ``FoodMarket2``);
3. ``DIR/<Clip>-001.png`` ...: the flat layout the public script's ffmpeg command writes.

Nothing is downloaded; a missing clip is an error that says where it comes from.

Y4M files are read frame by frame through PyAV (``y4m.py``: FFmpeg's decoder, as the published protocol's ffmpeg;
BT.601 by default, as it decodes these untagged clips; ``--matrix bt709`` for truer colours).

Output: a Markdown table on stdout (per clip and the mean, PSNR in dB and SSIM), progress and per-clip lines on
stderr, and with ``--json PATH`` (written atomically) ``{"clips": {clip: {"resized": {"psnr", "ssim"},
"cropped": {...}}}, "mean": {"resized": {...}, "cropped": {...}}, "settings": {...}}`` (an infinite PSNR, i.e.
identical frames, is written as null).

Usage: ``python benchmark_xiph.py --data xiph/ [--model PATH|classical] [--device auto|cpu|cuda] [--fp16]
[--clips Tango ...] [--frames 100] [--json results.json]``; ``--resize-to WxH`` / ``--crop-to WxH`` change the
2048 x 1080 targets (for tests and small machines; the protocol's numbers need the defaults). ``--motion
quadratic`` lets each input move along its path through the inputs of the neighbouring targets (i - 3, i + 3),
beyond the protocol, which interpolates from the two inputs alone.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .. import errors, files, frames
from ..errors import UsageError
from ..files import natural_key
from ..interpolator import load_interpolator
from ..metrics import psnr, ssim
from ..motion import MOTIONS
from ..resources import configure_threads, select_device
from ..y4m import MATRICES, y4m_frames
from . import options, tables

__all__ = ['CLIPS', 'CATEGORIES', 'protocol_targets', 'find_clip', 'prepare', 'evaluate_clip', 'run_benchmark',
           'main']

CLIPS = ('BoxingPractice', 'Crosswalk', 'DrivingPOV', 'FoodMarket', 'FoodMarket2', 'RitualDance',
         'SquareAndTimelapse', 'Tango')
CATEGORIES = ('resized', 'cropped')
PROTOCOL_SIZE = (2048, 1080)  # width, height of both categories
PROTOCOL_FRAMES = 100
XIPH_URL = 'https://media.xiph.org/video/derf/{collection}/Netflix_{clip}_4096x2160_60fps_10bit_420.y4m'


def _collection(clip: str) -> str:
    """The Netflix open-content production a clip is from (its folder on media.xiph.org)."""
    return 'Chimera' if clip == 'DrivingPOV' else 'ElFuente'


# ---------------------------------------------------------------------------------------------------------------
# Clips
# ---------------------------------------------------------------------------------------------------------------


def _clip_word(clip: str) -> 're.Pattern[str]':
    # The clip name as a word: letters/digits may not continue it, so FoodMarket does not match FoodMarket2.
    return re.compile(rf'(?<![A-Za-z0-9]){re.escape(clip)}(?![A-Za-z0-9])', re.IGNORECASE)


@dataclass
class ClipSource:
    """Where one clip's frames are: a .y4m file or a list of image files."""

    clip: str
    path: Path
    images: Optional[List[Path]] = None  # None for a .y4m file

    def describe(self) -> str:
        return f'{self.path} ({len(self.images)} images)' if self.images is not None else str(self.path)

    def iter_frames(self, count: int, matrix: str = 'bt601',
                    needed: Optional[Callable[[int], bool]] = None) -> Iterator[Tuple[int, Optional[np.ndarray]]]:
        """``(index, [H, W, 3] uint8 RGB)`` for the first ``count`` frames, one at a time; frames that ``needed``
        rejects come as ``(index, None)`` without being decoded. UsageError if the clip has fewer frames."""
        produced = 0
        if self.images is not None:
            for index, path in enumerate(self.images[:count]):
                yield index, (frames.read_image(path) if needed is None or needed(index) else None)
                produced += 1
        else:
            frames_ = y4m_frames(self.path, matrix, needed)
            try:
                for frame in frames_:
                    yield produced, frame
                    produced += 1
                    if produced == count:
                        break
            finally:
                frames_.close()
        if produced < count:
            raise UsageError(f'{self.clip}: {self.describe()} has only {produced} frame(s); the protocol needs '
                             f'{count} (--frames)')


def find_clip(data: Path, clip: str) -> Optional[ClipSource]:
    """Locate ``clip`` in ``data`` (folder, then .y4m, then flat ``<Clip>-NNN`` images); None if absent.

    Raises UsageError if several .y4m files match.
    """
    for child in sorted(data.iterdir()):
        if child.is_dir() and child.name.lower() == clip.lower():
            images = sorted((p for p in child.iterdir() if frames.is_image_file(p)), key=natural_key)
            if images:
                return ClipSource(clip, child, images)
    word = _clip_word(clip)
    videos = sorted(p for p in data.iterdir() if p.is_file() and p.suffix.lower() == '.y4m' and word.search(p.stem))
    if len(videos) > 1:
        raise UsageError(f'{clip}: several .y4m files in {data} match: {", ".join(p.name for p in videos)}; '
                         f'keep one')
    if videos:
        return ClipSource(clip, videos[0])
    flat = re.compile(rf'{re.escape(clip)}-\d+$', re.IGNORECASE)
    images = sorted((p for p in data.iterdir()
                     if frames.is_image_file(p) and flat.match(p.stem)), key=natural_key)
    if images:
        return ClipSource(clip, data / f'{clip}-*', images)
    return None


def _missing_message(data: Path, missing: Sequence[str]) -> str:
    example = missing[0]
    return (f'Xiph clip(s) not found in {data}: {", ".join(missing)}. Expected per clip a folder '
            f'{data}/<Clip>/ of frames, a .y4m whose name contains the clip name (as published: '
            f'Netflix_<Clip>_4096x2160_60fps_10bit_420.y4m) or {data}/<Clip>-001.png .... They are Netflix open '
            f'content (El Fuente; DrivingPOV from Chimera) at media.xiph.org, e.g. '
            f'{XIPH_URL.format(collection=_collection(example), clip=example)}; this tool downloads nothing')


# ---------------------------------------------------------------------------------------------------------------
# Protocol
# ---------------------------------------------------------------------------------------------------------------

def protocol_targets(count: int = PROTOCOL_FRAMES) -> List[int]:
    """0-based indices of the frames to interpolate among the first ``count``: 1, 3, ..., each from i - 1, i + 1."""
    return list(range(1, count - 1, 2))


def prepare(image: np.ndarray, category: str, size: Tuple[int, int]) -> np.ndarray:
    """One ``[H, W, 3]`` uint8 frame as the category sees it: resized (INTER_AREA) or centre-cropped to ``size``."""
    width, height = size
    if category == 'resized':
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width])


@dataclass
class ClipScores:
    """Per-frame scores of one clip: ``scores[category]['psnr' | 'ssim']`` lists, in target order."""

    clip: str
    scores: Dict[str, Dict[str, List[float]]]
    targets: List[int]
    seconds: float


def evaluate_clip(source: ClipSource, interpolator: object, device: torch.device, count: int,
                  sizes: Dict[str, Tuple[int, int]], matrix: str = 'bt601', progress: bool = True,
                  motion: str = 'linear') -> ClipScores:
    """Interpolate the protocol's targets of one clip and score them in every category of ``sizes``.

    ``motion='quadratic'`` also hands the interpolator the frames i - 3 and i + 3 (the inputs of the neighbouring
    targets), where the clip has them. Frames stream through: a target is scored once its last frame has arrived,
    and at most the four inputs around it and its ground truth are held.
    """
    began = time.monotonic()
    targets = protocol_targets(count)
    reach = 3 if motion == 'quadratic' else 1
    scores = {category: {'psnr': [], 'ssim': []} for category in sizes}
    bar = tqdm(total=len(targets), desc=source.clip, unit='frame', disable=not progress, leave=False,
               file=sys.stderr)
    needed = {target + offset for target in targets for offset in range(-reach, reach + 1, 2)} | set(targets)
    held: Dict[int, np.ndarray] = {}
    pending = list(targets)

    def score(target: int) -> None:
        for category, size in sizes.items():
            one, two, gt = (prepare(held[k], category, size) for k in (target - 1, target + 1, target))
            neighbours = {name: frames.to_tensor(prepare(held[k], category, size), device)
                          for name, k in (('before', target - 3), ('after', target + 3))
                          if reach == 3 and k in held}
            with torch.no_grad():
                estimate = interpolator.interpolate(frames.to_tensor(one, device), frames.to_tensor(two, device),
                                                    [0.5], **neighbours)[0]
            predicted = frames.to_uint8(estimate)
            scores[category]['psnr'].append(psnr(predicted, gt))
            scores[category]['ssim'].append(ssim(predicted, gt))
        bar.update(1)
        for k in [k for k in held if k < target + 1 - reach]:  # nothing later needs them
            del held[k]

    try:
        for index, image in source.iter_frames(count, matrix, needed.__contains__):
            if image is None:
                continue
            if index == 0:
                _check_size(source, image, sizes)
            held[index] = image
            while pending and min(pending[0] + reach, count - 1) <= index:  # its last frame is here
                score(pending.pop(0))
        for target in pending:  # the clip ended: score what is left with the frames it has
            score(target)
    finally:
        bar.close()
    return ClipScores(source.clip, scores, targets, time.monotonic() - began)


def _check_size(source: ClipSource, image: np.ndarray, sizes: Dict[str, Tuple[int, int]]) -> None:
    if 'cropped' in sizes:
        width, height = sizes['cropped']
        if image.shape[0] < height or image.shape[1] < width:
            raise UsageError(f'{source.clip}: frames of {image.shape[1]}x{image.shape[0]} are smaller than the '
                             f'crop {width}x{height} (--crop-to)')


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _finite(value: float) -> Optional[float]:
    """JSON has no inf/nan: identical frames (PSNR inf) are written as null."""
    return round(value, 6) if math.isfinite(value) else None


def summarize(results: Sequence[ClipScores]) -> Dict[str, object]:
    """The JSON document: per clip and per category (mean over all frames of all clips) PSNR and SSIM."""
    categories = list(results[0].scores) if results else []
    clips = {r.clip: {c: {m: _finite(_mean(r.scores[c][m])) for m in ('psnr', 'ssim')} for c in categories}
             for r in results}
    mean = {c: {m: _finite(_mean([v for r in results for v in r.scores[c][m]])) for m in ('psnr', 'ssim')}
            for c in categories}
    return {'clips': clips, 'mean': mean}


def markdown_table(summary: Dict[str, object]) -> str:
    """The summary as a Markdown table: one row per clip and a mean row."""
    categories = list(summary['mean'])
    titles = ['Clip'] + [f'{c} {score}' for c in categories for score in ('PSNR', 'SSIM')]

    def cells(name: str, entry: Dict[str, Dict[str, Optional[float]]]) -> List[str]:
        out = [name]
        for c in categories:
            value_psnr, value_ssim = entry[c]['psnr'], entry[c]['ssim']
            out.append('inf' if value_psnr is None else f'{value_psnr:.2f}')
            out.append('-' if value_ssim is None else f'{value_ssim:.4f}')
        return out

    rows = [cells(clip, entry) for clip, entry in summary['clips'].items()] + [cells('**Mean**', summary['mean'])]
    return tables.table(titles, [False] + [True] * (len(titles) - 1), rows)


def run_benchmark(sources: Sequence[ClipSource], interpolator: object, device: torch.device, count: int,
                  sizes: Dict[str, Tuple[int, int]], matrix: str = 'bt601', progress: bool = True,
                  motion: str = 'linear') -> Tuple[Dict[str, object], List[ClipScores]]:
    """Evaluate every clip; returns the :func:`summarize` document and the per-frame scores."""
    results = []
    for source in sources:
        result = evaluate_clip(source, interpolator, device, count, sizes, matrix, progress, motion)
        results.append(result)
        parts = [f'{c} {_mean(result.scores[c]["psnr"]):.2f} dB / {_mean(result.scores[c]["ssim"]):.4f}'
                 for c in sizes]
        print(f'{source.clip}: {"; ".join(parts)} ({len(result.targets)} frames, {result.seconds:.0f} s)',
              file=sys.stderr)
    return summarize(results), results


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------

def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--data', required=True, metavar='DIR',
                        help='folder holding the clips (.y4m files, <Clip>/ frame folders or <Clip>-NNN.png)')
    parser.add_argument('--clips', nargs='+', metavar='CLIP',
                        help=f'evaluate only these clips (default: all eight: {", ".join(CLIPS)})')
    parser.add_argument('--frames', type=int, default=PROTOCOL_FRAMES, metavar='N',
                        help='use the first N frames: interpolate the odd 0-based frames 1, 3, ... below N-1 from '
                             'their neighbours (default 100, the protocol: 49 frames)')
    parser.add_argument('--categories', nargs='+', choices=CATEGORIES, default=list(CATEGORIES),
                        help='which categories to run (default: both)')
    options.add_model(parser)
    options.add_device(parser)
    options.add_threads(parser)
    parser.add_argument('--fp16', action='store_true', help='float16 autocast (trained model on CUDA only)')
    parser.add_argument('--motion', choices=MOTIONS, default='linear',
                        help='linear: from the two inputs, as the protocol does (default); quadratic: each input '
                             'also moves along its path through the frames 3 before and after the target')
    parser.add_argument('--matrix', choices=sorted(MATRICES), default='bt601',
                        help='YUV->RGB matrix for .y4m input (default bt601, as ffmpeg decodes these untagged clips '
                             'for the published protocol; bt709 for truer colours)')
    parser.add_argument('--resize-to', type=options.size, default='2048x1080', metavar='WxH',
                        help='size of the "resized" category (default 2048x1080, the protocol)')
    parser.add_argument('--crop-to', type=options.size, default='2048x1080', metavar='WxH',
                        help='size of the central "cropped" region (default 2048x1080, the protocol)')
    parser.add_argument('--json', metavar='PATH', help='also write the scores as JSON (atomically)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for parsed arguments; raises UsageError for bad input."""
    data = Path(args.data)
    if not data.is_dir():
        raise UsageError(f'--data {data}: no such folder (it should hold the Xiph clips)')
    if args.frames < 3:
        raise UsageError(f'--frames must be at least 3 (one target and its two neighbours), got {args.frames}')
    canonical = {clip.lower(): clip for clip in CLIPS}
    clips = []
    for name in args.clips or CLIPS:
        if name.lower() not in canonical:
            raise UsageError(f'--clips: unknown clip {name!r}; the Xiph benchmark has {", ".join(CLIPS)}')
        if canonical[name.lower()] not in clips:
            clips.append(canonical[name.lower()])
    sizes = {}
    for category in CATEGORIES:
        if category in args.categories:
            width, height = args.resize_to if category == 'resized' else args.crop_to
            if width < 8 or height < 8:
                raise UsageError(f'--resize-to / --crop-to {width}x{height}: both sides must be at least 8')
            sizes[category] = (width, height)

    sources, missing = [], []
    for clip in clips:
        source = find_clip(data, clip)
        if source is None:
            missing.append(clip)
        else:
            sources.append(source)
    if missing:
        raise UsageError(_missing_message(data, missing))
    if args.json:
        json_path = Path(args.json)
        if json_path.is_dir():
            raise UsageError(f'--json {json_path}: is a folder')

    device = select_device(args.device)
    configure_threads(args.threads)
    interpolator = load_interpolator(args.model, device, args.fp16)
    if args.motion == 'quadratic' and not hasattr(interpolator, 'estimate_flows'):
        raise UsageError(f'--motion quadratic needs an interpolator that computes flow; --model {args.model} moves '
                         f'linearly')
    targets = protocol_targets(args.frames)
    print(f'Xiph benchmark: {len(sources)} clip(s), first {args.frames} frames, {len(targets)} target frame(s) each '
          f'(0-based {targets[0]}..{targets[-1]} step 2), categories {", ".join(sizes)}, model '
          f'{args.model or "default"} on {device}', file=sys.stderr)
    if args.frames != PROTOCOL_FRAMES or any(size != PROTOCOL_SIZE for size in sizes.values()):
        print('note: --frames / --resize-to / --crop-to differ from the protocol; the scores are not comparable '
              'with the paper', file=sys.stderr)

    summary, _ = run_benchmark(sources, interpolator, device, args.frames, sizes, args.matrix,
                               progress=not args.no_progress, motion=args.motion)
    print(markdown_table(summary))
    if args.json:
        document = dict(summary)
        document['settings'] = {'model': args.model or 'default', 'interpolator': type(interpolator).__name__,
                                'device': str(device), 'fp16': args.fp16, 'motion': args.motion,
                                'frames': args.frames, 'targets': targets, 'matrix': args.matrix,
                                'sizes': {c: list(s) for c, s in sizes.items()},
                                'sources': {s.clip: s.describe() for s in sources}}
        files.write_json(Path(args.json), document)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
