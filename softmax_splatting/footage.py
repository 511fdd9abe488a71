"""Finding footage: the videos and frame folders below some paths, each read as one source of frames.

``make_triplets.py`` builds training triplets from whatever a user has: video files (anything FFmpeg decodes, read
through moviepy one frame at a time) and folders of numbered frames, found recursively. Benchmark data is refused
here, at the door (Middlebury's frames by name and any path that says "middlebury"), so that no training set can
contain what we measure on.
"""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import frames
from .errors import UsageError, first_line
from .files import natural_key, not_a_file

__all__ = ['IMAGE_SUFFIXES', 'VIDEO_SUFFIXES', 'Source', 'check_video', 'discover_sources']

IMAGE_SUFFIXES = frozenset(frames.IMAGE_SUFFIXES)
VIDEO_SUFFIXES = frozenset({'.mp4', '.m4v', '.mov', '.avi', '.mkv', '.webm', '.mpg', '.mpeg', '.wmv', '.flv',
                            '.ogv', '.3gp', '.ts', '.mts', '.m2ts', '.y4m', '.gif'})
BENCHMARK_FILE_NAMES = frozenset({'rubberwhale1.png', 'rubberwhale2.png'})
BENCHMARK_PATH_WORD = 'middlebury'


def _benchmark_reason(path: Path) -> Optional[str]:
    """Why ``path`` is benchmark data that must never be trained on, or None."""
    if path.name.lower() in BENCHMARK_FILE_NAMES:
        return f'{path.name} is Middlebury RubberWhale (OpenCV sample data), a benchmark frame'
    for text in (str(path), str(path.resolve())):
        if BENCHMARK_PATH_WORD in text.lower():
            return f"its path contains '{BENCHMARK_PATH_WORD}' (benchmark data)"
    return None


def _excluded(path: Path, patterns: Sequence[str]) -> bool:
    candidates = (path.name, path.as_posix(), path.resolve().as_posix())
    return any(fnmatch.fnmatch(text, pattern) for pattern in patterns for text in candidates)


@dataclass
class Source:
    """One clip: a video file (``files`` empty) or a frame folder (``files`` = its frames in order)."""

    name: str
    path: Path
    kind: str  # 'video' or 'frames'
    files: List[Path] = field(default_factory=list)

    def frame_count(self) -> Optional[int]:
        """Number of frames if known in advance (exact for folders, ffmpeg's estimate for videos)."""
        if self.kind == 'frames':
            return len(self.files)
        return None

    def iter_frames(self, wanted: Callable[[int], bool]) -> Iterator[Tuple[int, Optional[np.ndarray]]]:
        """Yield ``(index, [H, W, 3] uint8 RGB or None)`` for every frame, decoding an image only if wanted.

        A video is decoded in full (the decoder must pass every frame) but held one frame at a time.
        """
        if self.kind == 'frames':
            for index, path in enumerate(self.files):
                yield index, (frames.read_image(path) if wanted(index) else None)
            return
        yield from self._iter_video(wanted)

    def _iter_video(self, wanted: Callable[[int], bool]) -> Iterator[Tuple[int, Optional[np.ndarray]]]:
        from moviepy import VideoFileClip  # imported here: it is slow to import and only videos need it

        try:
            clip = VideoFileClip(str(self.path), audio=False)
        except Exception as error:  # moviepy raises OSError, KeyError, IndexError... for unreadable files
            raise UsageError(f'{self.path}: cannot read as a video ({first_line(error)})') from None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                for index, frame in enumerate(clip.iter_frames()):
                    # At the end of a stream moviepy may repeat the last frame with a "bytes wanted" warning
                    # (its frame count is estimated from duration x fps); a repeated frame is not a real frame.
                    if any('bytes wanted' in str(item.message) for item in caught):
                        break
                    caught.clear()
                    yield index, (np.ascontiguousarray(frame[:, :, :3], dtype=np.uint8) if wanted(index) else None)
        except UsageError:
            raise
        except Exception as error:
            raise UsageError(f'{self.path}: error while decoding the video ({first_line(error)})') from None
        finally:
            clip.close()


def check_video(path: Path) -> None:
    """Open and close a video so that an unreadable one fails before any other source is written."""
    from moviepy import VideoFileClip

    try:
        VideoFileClip(str(path), audio=False).close()
    except Exception as error:
        raise UsageError(f'{path}: cannot read as a video ({first_line(error)})') from None


def _is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _images_in(folder: Path) -> List[Path]:
    return sorted((path for path in folder.iterdir() if frames.is_image_file(path)), key=natural_key)


def _sanitize(stem: str) -> str:
    name = re.sub(r'[^A-Za-z0-9._-]+', '_', stem).strip('._')
    return name or 'source'


def discover_sources(paths: Sequence[os.PathLike], exclude: Sequence[str] = (),
                     notice: Callable[[str], None] = print) -> List[Source]:
    """Turn the positional inputs into named sources (see the module docstring for the rules).

    Benchmark data and ``exclude`` matches are skipped with a ``notice``. Raises UsageError for a missing path, a
    single image file, a folder with neither frames, frame folders nor videos, or if nothing usable is left.
    """
    found: List[Tuple[Path, str, List[Path]]] = []

    def skipped(path: Path) -> bool:
        reason = _benchmark_reason(path)
        if reason:
            notice(f'skipping {path}: {reason}; benchmark frames are never used for training')
            return True
        if _excluded(path, exclude):
            notice(f'skipping {path}: matches --exclude')
            return True
        return False

    def frame_files(folder: Path) -> List[Path]:
        kept = []
        for image in _images_in(folder):
            if not skipped(image):
                kept.append(image)
        return kept

    for raw in paths:
        path = Path(raw)
        problem = None if path.is_dir() else not_a_file(path, 'file or folder')
        if problem is not None:
            raise UsageError(f'{path}: {problem}')
        if skipped(path):
            continue
        if path.is_file():
            if path.suffix.lower() in IMAGE_SUFFIXES:
                raise UsageError(f'{path}: a single image is not a video; pass the folder holding the frames')
            found.append((path, 'video', []))
            continue
        if _images_in(path):
            if any(child.is_dir() and _images_in(child) for child in path.iterdir()):
                notice(f'{path} holds image files, so it is one frame folder; its subfolders are not read')
            files = frame_files(path)
            if files:
                found.append((path, 'frames', files))
            continue
        # A collection: one level of frame folders and videos.
        children = sorted(path.iterdir(), key=natural_key)
        members = 0
        for child in children:
            if child.name.startswith('.'):
                continue
            if child.is_dir() and _images_in(child):
                members += 1
                if skipped(child):
                    continue
                files = frame_files(child)
                if files:
                    found.append((child, 'frames', files))
            elif _is_video_file(child):
                members += 1
                if not skipped(child):
                    found.append((child, 'video', []))
        if members == 0:
            raise UsageError(f'{path}: no frames found (neither image files, nor subfolders of image files, '
                             f'nor video files)')
    if not found:
        raise UsageError('no usable inputs left after skipping benchmark data and --exclude matches')

    sources: List[Source] = []
    taken = set()
    for path, kind, files in found:
        base = _sanitize(path.stem if kind == 'video' else path.name)
        name, number = base, 1
        while name.lower() in taken:  # lower(): names must stay distinct on case-insensitive file systems
            number += 1
            name = f'{base}_{number}'
        taken.add(name.lower())
        sources.append(Source(name=name, path=path, kind=kind, files=files))
    return sources
