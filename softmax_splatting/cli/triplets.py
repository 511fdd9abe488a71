"""Build frame-interpolation training triplets in the Vimeo90k layout from videos and folders of frames.

The softmax splatting paper (Niklaus & Liu, CVPR 2020) trains on the Vimeo-90k triplets (51,312 training triplets of
448 x 256 pixels, each three consecutive frames; the network sees frames one and three and must produce frame two).
This tool makes the same kind of data from any footage, so that our training loader reads one layout whatever the
source::

    OUT/sequences/<source>/<index>/im1.png, im2.png, im3.png    (im1.jpg ... with --format jpg)
    OUT/tri_trainlist.txt, OUT/tri_testlist.txt                 (lines "<source>/<index>", e.g. "blackswan/0001")
    OUT/make_triplets.json                                      (the options and the per-source counts of the run)

Inputs (positional, any mix):

* a video file: anything ffmpeg decodes, read through moviepy one frame at a time (never the whole video);
* a frame folder: a folder holding image files, taken in natural sort order (``frame2`` before ``frame10``);
* a collection: a folder holding no image files itself is expanded one level, each subfolder with images and each
  video file inside it being one source (so ``data/davis`` with its 15 sequence folders just works).

Each source is named after its file stem or folder name (characters other than letters, digits, ``.``, ``_`` and
``-`` become ``_``); a repeated name gets ``_2``, ``_3``, ... in input order.

Triplets: frames ``s, s + stride, s + 2 * stride`` for ``s = 0, step, 2 * step, ...``; by default ``step`` is
``2 * stride + 1``, so successive triplets share no frame. Every frame is resized, keeping its aspect ratio, until it
covers the target size (INTER_AREA when shrinking, INTER_LINEAR when enlarging), then centre-cropped to it
(448 x 256 by default, as Vimeo-90k). Triplet indices count the written triplets of a source (0001, 0002, ...).

Filtering, on the resized frames and 8-bit values (0-255), with d(a, b) the mean absolute difference over pixels
and channels and h(a, b) the total-variation distance (0 = same, 1 = disjoint) of 8 x 8 x 8-bin RGB histograms:

* static: ``d(im1, im3) < --min-motion`` (default 2.0): nothing to learn from.
* scene cut (or flash, or a frame drop/duplicate): either of
  - an asymmetric jump: ``max(d12, d23) > --cut-ratio * max(min(d12, d23), 1)`` and
    ``max(d12, d23) - min(d12, d23) > --cut-min-jump`` (defaults 3.0 and 8.0). Within one shot the two halves of
    a triplet move alike (on DAVIS the ratio stays below 2.5 with the floor of 1), while a cut makes one half a
    jump to different content and the other half ordinary motion. The absolute margin keeps small asymmetries of
    nearly static footage (d = 1 vs 4) from counting;
  - a colour-distribution change: ``max(h12, h23) > --cut-hist`` (default 0.25). Motion moves content but hardly
    changes its colour histogram (on DAVIS h stays below 0.09, even for fast camera motion with MADs above 50),
    so this catches cuts between fast-moving shots that the ratio test misses.
  Check: the 15 DAVIS sequences concatenated into one video give, with ``--step 1``, exactly the 28 triplets that
  span its 14 cuts flagged and no other. No absolute MAD limit is used: fast camera motion on textured scenes
  reaches MADs of 50+ (DAVIS drift-straight) and is exactly the large motion training needs. A cut between two
  similar-looking, fast-moving shots can pass both tests; check the output of unknown footage.

Benchmark frames never become training data: files named ``rubberwhale1.png`` / ``rubberwhale2.png`` (OpenCV's copy
of Middlebury RubberWhale) and anything whose path contains ``middlebury`` are skipped, always, with a notice.
``--exclude PATTERN`` skips more (shell pattern matched against names and full paths).

Split: ``tri_testlist.txt`` gets whole sources, never part of one: ``--test-sources NAME ...`` or a seeded random
``--test-fraction`` of the sources that gave triplets (at least one source each side when there are two or more).
The list files describe the sources of this run only.

A run changes OUT whole or not at all. Its triplets, lists and summary are written into a hidden folder beside their
targets (``OUT/.make_triplets-partial``, or ``.OUT.make_triplets-partial`` next to an OUT that does not exist yet)
and moved into place only once everything is written, with Ctrl-C and SIGTERM held back for those few renames; an
interrupted or failed run removes that folder and leaves OUT as it was (no list naming a deleted triplet, no source
rebuilt at one size beside another still at the old one). An existing non-empty source folder is refused unless
``--overwrite``, which replaces that source's folder (and drops the DIS flows that training cached for its old
triplets, ``OUT/flow_cache/*/<source>``). A hidden folder left by a run that was killed outright is removed by the
next; two runs must not write into one OUT at the same time.

Example: ``python make_triplets.py ../shared/data/davis --out /tmp/davis_triplets --format jpg --quality 95``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from .. import errors, files, frames
from ..errors import Interrupted, UsageError
from ..footage import Source, check_video, discover_sources
from ..signals import StopSignals, terminate_as_interrupt
from . import options

__all__ = ['Criteria', 'resize_cover_crop', 'triplet_stats', 'classify_triplet',
           'choose_test_sources', 'build_source', 'build_triplets', 'check_targets', 'commit', 'staging_folder',
           'write_lists', 'main']

HISTOGRAM_BINS = 8


# ---------------------------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Criteria:
    """Thresholds of the static and scene-cut tests (see the module docstring); differences on the 0-255 scale."""

    min_motion: float = 2.0
    cut_ratio: float = 3.0
    cut_min_jump: float = 8.0
    cut_hist: float = 0.25


# ---------------------------------------------------------------------------------------------------------------
# Image operations
# ---------------------------------------------------------------------------------------------------------------

def resize_cover_crop(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``[H, W, 3]`` uint8 -> ``[height, width, 3]``: scale (aspect kept) to cover the size, then centre-crop."""
    in_height, in_width = image.shape[:2]
    scale = max(width / in_width, height / in_height)
    # Rounding may fall a pixel short of the target on the covering side; never let it.
    new_width = max(width, int(round(in_width * scale)))
    new_height = max(height, int(round(in_height * scale)))
    if (new_width, new_height) != (in_width, in_height):
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        image = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
    top = (new_height - height) // 2
    left = (new_width - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width])


def _histogram(image: np.ndarray) -> np.ndarray:
    """Joint RGB histogram of ``[H, W, 3]`` uint8, ``HISTOGRAM_BINS ** 3`` bins, normalized to sum 1."""
    hist = cv2.calcHist([image], [0, 1, 2], None, [HISTOGRAM_BINS] * 3, [0, 256] * 3).ravel()
    return hist / max(float(hist.sum()), 1.0)


def triplet_stats(one: np.ndarray, two: np.ndarray, three: np.ndarray) -> Dict[str, float]:
    """Differences used by the filters for three ``[H, W, 3]`` uint8 frames of one size.

    Returns ``d12, d23, d13`` (mean absolute difference, 0-255 scale) and ``h12, h23`` (histogram total-variation
    distance in [0, 1]).
    """
    a, b, c = (image.astype(np.int16) for image in (one, two, three))
    hists = [_histogram(image) for image in (one, two, three)]
    return {
        'd12': float(np.abs(a - b).mean()),
        'd23': float(np.abs(b - c).mean()),
        'd13': float(np.abs(a - c).mean()),
        'h12': 0.5 * float(np.abs(hists[0] - hists[1]).sum()),
        'h23': 0.5 * float(np.abs(hists[1] - hists[2]).sum()),
    }


def classify_triplet(stats: Dict[str, float], criteria: Criteria) -> str:
    """``'static'``, ``'cut'`` or ``'keep'`` for the output of :func:`triplet_stats` (cuts are tested first)."""
    jump = max(stats['d12'], stats['d23'])
    calm = min(stats['d12'], stats['d23'])
    if jump > criteria.cut_ratio * max(calm, 1.0) and jump - calm > criteria.cut_min_jump:
        return 'cut'
    if max(stats['h12'], stats['h23']) > criteria.cut_hist:
        return 'cut'
    if stats['d13'] < criteria.min_motion:
        return 'static'
    return 'keep'


# ---------------------------------------------------------------------------------------------------------------
# Split
# ---------------------------------------------------------------------------------------------------------------

def choose_test_sources(names: Sequence[str], test_fraction: float = 0.1,
                        test_sources: Optional[Sequence[str]] = None, seed: int = 0) -> List[str]:
    """The names of the sources that go to the test list; the rest are training sources.

    ``test_sources`` (explicit names) wins; otherwise ``round(test_fraction * len(names))`` names drawn with
    ``random.Random(seed)`` from the sorted names, at least one on each side when ``0 < test_fraction < 1`` and
    there are two or more sources. Deterministic for a given set of names and seed.
    """
    if test_sources is not None:
        unknown = sorted(set(test_sources) - set(names))
        if unknown:
            raise UsageError(f'--test-sources: no source named {", ".join(unknown)} gave triplets '
                             f'(sources: {", ".join(sorted(names)) or "none"})')
        return sorted(set(test_sources))
    if not 0.0 <= test_fraction <= 1.0:
        raise UsageError(f'--test-fraction {test_fraction} is not between 0 and 1')
    ordered = sorted(names)
    count = int(round(test_fraction * len(ordered)))
    if 0.0 < test_fraction < 1.0 and len(ordered) >= 2:
        count = min(max(count, 1), len(ordered) - 1)
    random.Random(seed).shuffle(ordered)
    return sorted(ordered[:count])


# ---------------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class SourceResult:
    """Counts for one source."""

    name: str
    path: str
    frames: int = 0
    written: int = 0
    static: int = 0
    cut: int = 0
    indices: List[str] = field(default_factory=list)


def _write_frame(path: Path, image: np.ndarray, quality: int) -> None:
    if path.suffix == '.png':
        frames.write_image(path, image)
        return
    with files.atomic_path(path) as temporary:
        if not cv2.imwrite(str(temporary), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise UsageError(f'{path}: cannot write a JPEG image')


def _write_triplet(folder: Path, triplet: Sequence[np.ndarray], extension: str, quality: int) -> None:
    """Write im1..im3 into a hidden folder beside ``folder`` and rename it into place (all three or nothing)."""
    partial = folder.with_name(f'.partial-{folder.name}')
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        for number, image in enumerate(triplet, start=1):
            _write_frame(partial / f'im{number}.{extension}', image, quality)
        os.replace(partial, folder)
    finally:
        if partial.exists():
            shutil.rmtree(partial)


def _triplet_start(index: int, offset: int, step: int) -> Optional[int]:
    start = index - offset
    return start if start >= 0 and start % step == 0 else None


def build_source(source: Source, out: Path, size: Tuple[int, int], stride: int, step: int, criteria: Criteria,
                 extension: str = 'png', quality: int = 95, max_triplets: int = 0,
                 progress: bool = True) -> SourceResult:
    """Write the triplets of one source under ``out/sequences/<name>/`` and return its counts."""
    result = SourceResult(name=source.name, path=str(source.path))
    offsets = (0, stride, 2 * stride)

    def wanted(index: int) -> bool:
        return any(_triplet_start(index, offset, step) is not None for offset in offsets)

    folder = out / 'sequences' / source.name
    buffer: Dict[int, np.ndarray] = {}
    bar = tqdm(total=source.frame_count(), desc=source.name, unit='frame', disable=not progress, leave=False,
               file=sys.stderr)
    try:
        for index, image in source.iter_frames(wanted):
            result.frames = index + 1
            bar.update(1)
            if image is None:
                continue
            buffer[index] = resize_cover_crop(image, *size)
            start = _triplet_start(index, 2 * stride, step)
            if start is None:
                continue
            triplet = [buffer[start], buffer[start + stride], buffer[index]]
            # Later triplets start at start + step or after: older frames are never needed again.
            for key in [key for key in buffer if key < start + step]:
                del buffer[key]
            verdict = classify_triplet(triplet_stats(*triplet), criteria)
            if verdict == 'static':
                result.static += 1
                continue
            if verdict == 'cut':
                result.cut += 1
                continue
            result.written += 1
            label = f'{result.written:04d}'
            _write_triplet(folder / label, triplet, extension, quality)
            result.indices.append(label)
            if max_triplets and result.written >= max_triplets:
                break
    finally:
        bar.close()
    if result.frames == 0:
        raise UsageError(f'{source.path}: no frames')
    return result


def check_targets(sources: Sequence[Source], out: Path, overwrite: bool) -> None:
    """Refuse a source whose folder under ``out`` exists and is not empty, unless ``overwrite``."""
    for source in sources:
        folder = out / 'sequences' / source.name
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            if not overwrite:
                raise UsageError(f'{folder} already exists and is not empty; pass --overwrite to replace it '
                                 f'or choose another --out')


def build_triplets(sources: Sequence[Source], out: Path, size: Tuple[int, int] = (448, 256), stride: int = 1,
                   step: Optional[int] = None, criteria: Criteria = Criteria(), extension: str = 'png',
                   quality: int = 95, max_triplets: int = 0, overwrite: bool = False,
                   progress: bool = True, notice: Callable[[str], None] = print) -> List[SourceResult]:
    """Write the triplets of every source (see :func:`build_source`); checks the output folders first.

    Writes into ``out`` directly; the tool builds into a staging folder and moves the result in whole
    (:func:`staged_run`).
    """
    step = step or 2 * stride + 1
    check_targets(sources, out, overwrite)
    for source in sources:
        if source.kind == 'video':
            check_video(source.path)
    results = []
    for source in sources:
        folder = out / 'sequences' / source.name
        if overwrite and folder.exists():
            if folder.is_dir():
                shutil.rmtree(folder)
            else:
                folder.unlink()
        result = build_source(source, out, size, stride, step, criteria, extension, quality, max_triplets,
                              progress)
        if result.frames < 2 * stride + 1:
            notice(f'{source.name}: only {result.frames} frame(s), fewer than one triplet needs '
                   f'({2 * stride + 1} with --stride {stride})')
        results.append(result)
    return results


STAGING = '.make_triplets-partial'


def staging_folder(out: Path) -> Path:
    """Where a run into ``out`` is built: inside it when it exists (the renames stay on its file system), else
    beside it, to be renamed into ``out`` itself."""
    return out / STAGING if out.is_dir() else out.with_name(f'.{out.name}{STAGING}')


def commit(stage: Path, out: Path, names: Sequence[str]) -> None:
    """Move a finished run from ``stage`` into ``out``: the sources ``names`` (their old folders and cached flows go
    to ``stage/replaced``, which the caller deletes), then the lists and the summary. Call with the stop signals held
    back, so that no Ctrl-C falls between two renames."""
    if stage.parent != out:  # a new OUT: one rename
        os.rename(stage, out)
        return
    replaced = stage / 'replaced'
    replaced.mkdir()
    (out / 'sequences').mkdir(exist_ok=True)
    for name in names:
        target, new = out / 'sequences' / name, stage / 'sequences' / name
        if target.exists() or target.is_symlink():
            os.rename(target, replaced / f'sequences-{name}')
        if new.exists():
            os.rename(new, target)
        # flows cached by training for the old triplets of this name would be served for the new ones
        caches = out / 'flow_cache'
        for tag in (sorted(caches.iterdir()) if caches.is_dir() else []):
            if (tag / name).exists():
                os.rename(tag / name, replaced / f'flow_cache-{tag.name}-{name}')
    for name in ('tri_trainlist.txt', 'tri_testlist.txt', 'make_triplets.json'):
        os.replace(stage / name, out / name)


def _write_text(path: Path, text: str) -> None:
    with files.atomic_path(path) as temporary:
        temporary.write_text(text, encoding='utf-8')


def write_lists(out: Path, results: Sequence[SourceResult], test_names: Sequence[str]) -> Tuple[int, int]:
    """Write ``tri_trainlist.txt`` and ``tri_testlist.txt``; returns their line counts."""
    test = set(test_names)
    train_lines = [f'{r.name}/{label}' for r in results if r.name not in test for label in r.indices]
    test_lines = [f'{r.name}/{label}' for r in results if r.name in test for label in r.indices]
    _write_text(out / 'tri_trainlist.txt', ''.join(line + '\n' for line in train_lines))
    _write_text(out / 'tri_testlist.txt', ''.join(line + '\n' for line in test_lines))
    return len(train_lines), len(test_lines)


def _summary_table(results: Sequence[SourceResult], test_names: Sequence[str]) -> str:
    test = set(test_names)
    width = max([len('source')] + [len(r.name) for r in results])
    lines = [f'{"source":<{width}}  {"split":>5}  {"frames":>6}  {"written":>7}  {"static":>6}  {"cut":>4}']
    for r in results:
        split = 'test' if r.name in test else ('train' if r.written else '-')
        lines.append(f'{r.name:<{width}}  {split:>5}  {r.frames:>6}  {r.written:>7}  {r.static:>6}  {r.cut:>4}')
    total = lambda attribute: sum(getattr(r, attribute) for r in results)  # noqa: E731
    lines.append(f'{"total":<{width}}  {"":>5}  {total("frames"):>6}  {total("written"):>7}  '
                 f'{total("static"):>6}  {total("cut"):>4}')
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------

def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('inputs', nargs='+', metavar='PATH',
                        help='video files, frame folders, or folders of frame folders / videos')
    parser.add_argument('--out', required=True, metavar='DIR', help='output folder (sequences/ and the lists)')
    parser.add_argument('--size', type=options.size, default='448x256', metavar='WxH',
                        help='triplet frame size after cover-resize and centre crop (default 448x256, Vimeo-90k)')
    parser.add_argument('--stride', type=int, default=1,
                        help='frame step inside a triplet: frames s, s+stride, s+2*stride (default 1)')
    parser.add_argument('--step', type=int, default=None,
                        help='frames between the starts of successive triplets (default 2*stride+1: '
                             'no shared frames)')
    parser.add_argument('--format', choices=('png', 'jpg'), default='png',
                        help='png (lossless, as Vimeo-90k) or jpg (compact for transfer); files im1.<format>...')
    parser.add_argument('--quality', type=int, default=95, help='JPEG quality 1-100 for --format jpg (default 95)')
    parser.add_argument('--min-motion', type=float, default=Criteria.min_motion,
                        help='skip a triplet as static if the mean absolute difference of im1 and im3 (0-255) '
                             'is below this (default %(default)s; 0 keeps all)')
    parser.add_argument('--cut-ratio', type=float, default=Criteria.cut_ratio,
                        help='scene cut if one half of the triplet differs this many times more than the other '
                             '(default %(default)s) ...')
    parser.add_argument('--cut-min-jump', type=float, default=Criteria.cut_min_jump,
                        help='... and by at least this much mean absolute difference (default %(default)s)')
    parser.add_argument('--cut-hist', type=float, default=Criteria.cut_hist,
                        help='scene cut if the RGB histogram distance (0-1) of im1/im2 or im2/im3 exceeds this '
                             '(default %(default)s)')
    split = parser.add_mutually_exclusive_group()
    split.add_argument('--test-fraction', type=float, default=0.1,
                       help='fraction of the sources (whole sources) drawn for tri_testlist.txt (default 0.1)')
    split.add_argument('--test-sources', nargs='+', metavar='NAME',
                       help='put exactly these sources (names as in the summary) in tri_testlist.txt')
    parser.add_argument('--seed', type=int, default=0, help='seed of the --test-fraction draw (default 0)')
    parser.add_argument('--exclude', action='append', default=[], metavar='PATTERN',
                        help='skip files/folders whose name or path matches this shell pattern (repeatable); '
                             'rubberwhale1/2.png and paths containing "middlebury" are always skipped')
    parser.add_argument('--max-per-source', type=int, default=0, metavar='N',
                        help='write at most N triplets per source (default 0: no limit)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing non-empty sequences/<source> folders of the sources of this run')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    return parser


def _notice(message: str) -> None:
    print(f'note: {message}', file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run the tool for parsed arguments; raises UsageError for bad input."""
    size = args.size
    if min(size) < 8:
        raise UsageError(f'--size {size[0]}x{size[1]}: width and height must be at least 8 pixels')
    if args.stride < 1:
        raise UsageError(f'--stride must be at least 1, got {args.stride}')
    if args.step is not None and args.step < 1:
        raise UsageError(f'--step must be at least 1, got {args.step}')
    if not 1 <= args.quality <= 100:
        raise UsageError(f'--quality must be between 1 and 100, got {args.quality}')
    if args.max_per_source < 0:
        raise UsageError(f'--max-per-source must be 0 or more, got {args.max_per_source}')
    for name in ('min_motion', 'cut_ratio', 'cut_min_jump', 'cut_hist'):
        if getattr(args, name) < 0:
            raise UsageError(f'--{name.replace("_", "-")} must not be negative')
    if not 0.0 <= args.test_fraction <= 1.0:
        raise UsageError(f'--test-fraction must be between 0 and 1, got {args.test_fraction}')
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f'--out {out}: exists and is not a folder')
    files.check_writable(out, out if out.is_dir() else out.parent)
    criteria = Criteria(args.min_motion, args.cut_ratio, args.cut_min_jump, args.cut_hist)
    step = args.step or 2 * args.stride + 1

    began = time.monotonic()
    sources = discover_sources(args.inputs, args.exclude, notice=_notice)
    check_targets(sources, out, args.overwrite)  # before any work
    stage = staging_folder(out)
    if stage.exists():  # left by a run that was killed outright
        shutil.rmtree(stage)
    committed = False
    try:
        results = build_triplets(sources, stage, size, args.stride, step, criteria, args.format, args.quality,
                                 args.max_per_source, False, progress=not args.no_progress, notice=_notice)
        productive = [r.name for r in results if r.written]
        if not productive:
            raise UsageError('no triplets were written: every triplet was static or a cut, or the inputs are too '
                             'short (see --min-motion, --cut-*, --stride)')
        test_names = choose_test_sources(productive, args.test_fraction, args.test_sources, args.seed)
        train_count, test_count = write_lists(stage, results, test_names)
        elapsed = time.monotonic() - began
        record = {
            'options': {'inputs': [str(path) for path in args.inputs], 'size': list(size), 'stride': args.stride,
                        'step': step, 'format': args.format,
                        'quality': args.quality if args.format == 'jpg' else None,
                        'criteria': criteria.__dict__, 'test_fraction': args.test_fraction,
                        'test_sources': args.test_sources, 'seed': args.seed, 'exclude': args.exclude,
                        'max_per_source': args.max_per_source},
            'sources': {r.name: {'path': r.path, 'frames': r.frames, 'written': r.written, 'static': r.static,
                                 'cut': r.cut, 'split': 'test' if r.name in test_names else 'train'}
                        for r in results},
            'train_triplets': train_count, 'test_triplets': test_count, 'seconds': round(elapsed, 1),
        }
        _write_text(stage / 'make_triplets.json', json.dumps(record, indent=2) + '\n')
        with StopSignals() as held:  # a signal now waits until OUT is whole again
            commit(stage, out, [source.name for source in sources])
            committed = True
            if stage.exists():  # the replaced folders
                shutil.rmtree(stage)
    except (KeyboardInterrupt, Interrupted) as stop:
        status = stop.status if isinstance(stop, Interrupted) else 130
        raise Interrupted(f'{stop if isinstance(stop, Interrupted) else "interrupted"}; {out} is as it was (this '
                          f'run\'s triplets were not kept)', status) from None
    finally:
        if not committed and stage.exists():
            shutil.rmtree(stage, ignore_errors=True)

    print(_summary_table(results, test_names))
    print(f'{train_count} training and {test_count} test triplets ({len(test_names)} test source(s): '
          f'{", ".join(test_names) or "none"}) in {out} [{elapsed:.1f} s]')
    if held.received is not None:
        raise Interrupted(f'{signal.Signals(held.received).name}: received while {out} was being completed; it is '
                          f'complete', 128 + held.received)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    with terminate_as_interrupt():  # SIGTERM unwinds as Ctrl-C does: the staging folder is removed
        return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
