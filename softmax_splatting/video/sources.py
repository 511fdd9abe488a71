"""Video sources: a video file (PyAV), a folder of frames or a printf pattern, each as timed, upright RGB frames.

Why PyAV and not moviepy: frame-rate conversion as practitioners expect it (RIFE's video tools, ffmpeg's
minterpolate) needs what moviepy hides: every frame's presentation timestamp (variable-rate clips), the display
rotation and sample aspect ratio, the container's declared frame count (to tell a truncated file from a short one)
and packet-level access to the audio (copied, not re-encoded; ``sinks.py``). PyAV does all of it in process.

:func:`open_source` gives a :class:`Source`; its :meth:`Source.frames` yields :class:`Frame` (an RGB image and its
time in seconds, an exact Fraction).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from ..errors import UsageError, first_line
from ..files import natural_key
from ..files import not_a_file
from ..frames import IMAGE_SUFFIXES, MAX_PIXELS, check_size, is_image_file, read_image

__all__ = ['Frame', 'AudioStream', 'Source', 'VideoFileSource', 'ImageSequence', 'open_source', 'check_size',
           'parse_time', 'IMAGE_SUFFIXES', 'MAX_PIXELS', 'DEFAULT_SEQUENCE_FPS']

DEFAULT_SEQUENCE_FPS = Fraction(25)  # as ffmpeg's image2 demuxer


def parse_time(text: str, option: str) -> Fraction:
    """'90', '90.5', '1:30', '0:01:30.5' (as ffmpeg writes times) -> seconds, a non-negative Fraction."""
    text = str(text).strip()
    parts = text.split(':')
    try:
        if len(parts) > 3 or not all(parts) or any(p.startswith(('-', '+')) for p in parts):
            raise ValueError
        seconds = Fraction(parts[-1])
        if not all(p.isdigit() for p in parts[:-1]) or (len(parts) > 1 and seconds >= 60):
            raise ValueError
        for power, part in enumerate(reversed(parts[:-1]), start=1):
            seconds += int(part) * 60 ** power
    except (ValueError, ZeroDivisionError):
        raise UsageError(f'{option} {text}: not a time (use seconds such as 90 or 90.5, or 1:30, or 0:01:30.5)') \
            from None
    return seconds


@dataclass
class Frame:
    """One input frame: ``image`` ``[H, W, 3]`` uint8 RGB, upright (rotation metadata applied); ``time`` in seconds;
    ``pts`` in the source's ``time_base``; ``index`` its position in the input."""

    image: np.ndarray
    time: Fraction
    pts: int
    index: int


@dataclass
class AudioStream:
    codec: str
    channels: int
    rate: int
    layout: str


@dataclass
class Source:
    """What a conversion needs to know about its input; :meth:`frames` decodes it."""

    path: Path
    width: int                      # as displayed (after rotation)
    height: int
    rate: Fraction                  # the average frame rate
    time_base: Fraction
    expected: Optional[int]         # the frame count the container declares (None: unknown)
    end: Optional[Fraction] = None  # the end of the last frame in seconds, once decoded
    rotation: int = 0               # degrees counterclockwise, as the display matrix says
    sample_aspect: Fraction = Fraction(1)
    colorspace: int = 1             # FFmpeg's AVColorSpace of the input (1: BT.709, 5: BT.601)
    color_range: int = 1            # 1: limited ("MPEG"), 2: full ("JPEG")
    audio: List[AudioStream] = field(default_factory=list)
    other_streams: int = 0          # subtitles, data: not carried over
    decoded: int = 0                # frames yielded by frames() so far
    notices: List[str] = field(default_factory=list)  # one-line remarks for the user
    window: Optional[Tuple[Fraction, Optional[Fraction]]] = None  # (start, stop) in input seconds (trim)
    offset: Fraction = Fraction(0)  # with a window: the input time every time is counted from (about its start)
    offset_pts: int = 0
    reached_stop: bool = False      # decoding ended at the window's stop, not at the end of the input

    def trim(self, start: Fraction, duration: Optional[Fraction]) -> None:
        """Keep only the frames shown from ``start`` (seconds of the input) for ``duration`` (None: to the end);
        their times then count from ``start``, as with ffmpeg's -ss/-t. The audio follows (``sinks.py``)."""
        length = self.declared_length()
        if length is not None and start >= length:
            raise UsageError(f'--start {float(start):g} s: {self.path} lasts {float(length):.3f} s')
        self.window = (start, None if duration is None else start + duration)
        # times count from the first tick of the input's clock at or after start, which the audio shares
        self.offset_pts = math.ceil(start / self.time_base)
        self.offset = self.offset_pts * self.time_base
        if self.expected is not None or length is not None:
            remaining = (length if length is not None else self.expected / self.rate) - start
            if duration is not None:
                remaining = min(remaining, duration)
            self.expected = None  # no longer a count to check decoding against
            self.estimate = max(1, math.ceil(remaining * self.rate))

    def declared_length(self) -> Optional[Fraction]:
        """The input's length in seconds as its container or file count declares it (None: unknown)."""
        return None

    @property
    def total(self) -> Optional[int]:
        """Frames that :meth:`frames` will yield, as far as known before decoding (for progress bars): the declared
        count, or the declared length at the average rate."""
        if self.window is not None:
            return getattr(self, 'estimate', None)
        if self.expected is not None:
            return self.expected
        length = self.declared_length()
        return None if length is None else max(1, round(length * self.rate))

    def frames(self) -> Iterator[Frame]:
        """The frames (in the window, times counted from its start); ``end`` follows the last one yielded."""
        stop = None if self.window is None else self.window[1]
        self.decoded = 0
        for frame, frame_end in self._timed_frames(self.offset):
            if self.window is not None and frame.time < self.offset:
                continue
            if stop is not None and frame.time >= stop:
                self.reached_stop = True
                return
            if stop is not None:
                frame_end = min(frame_end, stop)
            self.end, self.decoded = frame_end - self.offset, self.decoded + 1
            yield Frame(image=frame.image, time=frame.time - self.offset, pts=frame.pts - self.offset_pts,
                        index=self.decoded - 1)
        if self.decoded == 0 and self.window is not None:
            raise UsageError(f'--start {float(self.window[0]):g} s: {self.path} has no frame from there on')

    def _timed_frames(self, start: Fraction) -> Iterator[Tuple[Frame, Fraction]]:
        """Every frame from about ``start`` on (earlier ones may come too), with the input time its display ends;
        times and pts as in the input."""
        raise NotImplementedError

    def check_complete(self) -> None:
        """Raise UsageError if decoding ended before the input's declared end (after :meth:`frames`)."""

    def close(self) -> None:
        pass


def open_source(spec: str, input_fps: Optional[Fraction] = None) -> Source:
    """A video file, a folder of image files, or a printf pattern of image files. Raises UsageError (one line)."""
    path = Path(spec)
    if '%' in path.name:
        return ImageSequence.from_pattern(path, input_fps)
    if path.is_dir():
        return ImageSequence.from_folder(path, input_fps)
    problem = not_a_file(path, 'file or folder')
    if problem is not None:
        raise UsageError(f'{path}: {problem}')
    if input_fps is not None:
        raise UsageError('--input-fps applies to folders and patterns of images; a video file has its own timing')
    return VideoFileSource.open(path)


class VideoFileSource(Source):
    """A video file decoded by PyAV; ``_container`` stays open until :meth:`close`."""

    _container = None

    @classmethod
    def open(cls, path: Path) -> 'VideoFileSource':
        import av  # noqa: PLC0415 - only videos need it

        try:
            container = av.open(str(path))
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise UsageError(f'{path}: not a readable video ({first_line(error)})') from None
        if not container.streams.video:
            container.close()
            raise UsageError(f'{path}: has no video stream')
        stream = container.streams.video[0]
        context = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        expected = stream.frames or None  # MP4/MOV index every frame; Matroska/WebM only give a duration
        declared_end = None
        if stream.duration is not None and stream.time_base:
            declared_end = Fraction((stream.start_time or 0) + stream.duration) * Fraction(stream.time_base)
        elif container.duration:
            declared_end = Fraction(container.duration, 1000000)
        audio = [AudioStream(a.codec_context.name, a.codec_context.channels, a.codec_context.sample_rate,
                             a.codec_context.layout.name) for a in container.streams.audio]
        others = len(container.streams) - len(container.streams.video) - len(container.streams.audio)
        source = cls(path=path, width=context.width, height=context.height, rate=Fraction(rate),
                     time_base=Fraction(stream.time_base), expected=expected,
                     sample_aspect=Fraction(stream.sample_aspect_ratio or 1), audio=audio, other_streams=others)
        source._container = container
        source.declared_end = declared_end
        try:  # from the header, before decoding anything (rotation does not change the area)
            check_size(context.width, context.height, path)
        except UsageError:
            container.close()
            raise
        # rotation, colours: from the first decoded frame (the display matrix is per frame in FFmpeg 7+)
        source._first = None
        source._decoder = container.decode(stream)
        try:
            first = next(source._decoder)
        except StopIteration:
            first = None
        except av.error.FFmpegError as error:
            container.close()
            raise UsageError(f'{path}: the video is truncated or damaged ({first_line(error)})') from None
        if first is None:
            container.close()
            listed = f' (its index lists {expected} frames, but their data is missing)' if expected else ''
            raise UsageError(f'{path}: no frame could be decoded{listed}; the video is truncated or damaged')
        source.rotation = int(round(first.rotation or 0)) % 360
        if source.rotation % 180:
            source.width, source.height = context.height, context.width
            source.sample_aspect = 1 / source.sample_aspect if source.sample_aspect else Fraction(1)
        source.colorspace = first.colorspace if first.colorspace in (1, 5, 6) else (
            1 if context.height >= 720 else 5)
        source.color_range = 2 if first.color_range == 2 else 1
        source._first = first
        return source

    def declared_length(self) -> Optional[Fraction]:
        return self.declared_end

    def _timed_frames(self, start: Fraction) -> Iterator[Tuple[Frame, Fraction]]:
        import av  # noqa: PLC0415

        default_duration = 1 / self.rate
        previous_pts, index = None, 0
        self.decoded_total = 0
        if start > 0:
            self._seek(start)
        damaged: List[Fraction] = []  # times of the frames decoded from damaged data
        in_damage = False
        for frame in self._decode(av):
            self.decoded_total += 1
            # FFmpeg conceals damaged data and flags that frame; the frames predicted from it, up to the next key
            # frame, carry the damage on unflagged (as seen: 300 bad bytes in a key frame spoil its 25 frames)
            in_damage = frame.is_corrupt or (in_damage and not frame.key_frame)
            pts = frame.pts if frame.pts is not None else (
                int(round(index / self.rate / self.time_base)) if previous_pts is None else None)
            if pts is None:
                pts = previous_pts + int(round(default_duration / self.time_base))
            if previous_pts is not None and pts <= previous_pts:
                continue  # a repeated timestamp shows nothing new
            duration = Fraction(frame.duration) * self.time_base if frame.duration else default_duration
            previous_pts, index = pts, index + 1
            time = pts * self.time_base
            self.absolute_end = time + duration
            if start > 0 and time + duration <= start:
                continue  # before the window: not converted to RGB
            if in_damage:
                damaged.append(time)
            yield Frame(image=self._rgb(frame), time=time, pts=pts, index=index - 1), time + duration
        if damaged:
            self.notices.append(f'warning: {self.path}: {len(damaged)} frame(s) from {float(damaged[0]):.3f} s to '
                                f'{float(damaged[-1]):.3f} s decoded from damaged data; they and the frames made '
                                f'from them show the damage as the decoder concealed it')

    def _seek(self, start: Fraction) -> None:
        """Jump to the key frame at or before ``start`` (the decoder then runs up to it, as ffmpeg's -ss does)."""
        stream = self._container.streams.video[0]
        self._container.seek(int(start / self.time_base), stream=stream, backward=True, any_frame=False)
        self._first = None
        self._decoder = self._container.decode(stream)

    def check_complete(self) -> None:
        """Raise UsageError when decoding stopped short of what the container declares: fewer frames than its index
        lists, or (without an index, or in a window) the last frame ending more than a frame interval before its
        duration (or the window's stop)."""
        if self.reached_stop:
            return
        decoded = getattr(self, 'decoded_total', 0)
        if self.window is None and self.expected is not None and decoded < self.expected:
            raise UsageError(f'{self.path}: decoded {decoded} of the {self.expected} frames the file declares; it is '
                             f'truncated or damaged (nothing was written)')
        end = getattr(self, 'absolute_end', None)
        declared = self.declared_end
        if self.window is not None and self.window[1] is not None and declared is not None:
            declared = min(declared, self.window[1])
        if (self.expected is None or self.window is not None) and declared is not None and end is not None and \
                end + 1 / self.rate < declared:
            raise UsageError(f'{self.path}: the frames end at {float(end):.3f} s but the file declares '
                             f'{float(declared):.3f} s; it is truncated or damaged (nothing was written)')

    def _decode(self, av) -> Iterator[object]:
        if self._first is not None:
            yield self._first
        try:
            yield from self._decoder
        except av.error.EOFError:
            return
        except av.error.FFmpegError as error:
            raise UsageError(f'{self.path}: the video is truncated or damaged ({first_line(error)}); nothing was '
                             f'written') from None

    def _rgb(self, frame) -> np.ndarray:
        rgb = frame.reformat(format='rgb24', src_colorspace=self.colorspace, src_color_range=self.color_range)
        image = rgb.to_ndarray()
        turns = (self.rotation // 90) % 4
        return np.ascontiguousarray(np.rot90(image, turns)) if turns else image

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class ImageSequence(Source):
    """Numbered image files, timed at ``rate`` frames per second."""

    files: List[Path] = []

    @classmethod
    def from_folder(cls, folder: Path, input_fps: Optional[Fraction]) -> 'ImageSequence':
        files = sorted((p for p in folder.iterdir() if is_image_file(p)), key=natural_key)
        if not files:
            raise UsageError(f'{folder}: no image files ({", ".join(IMAGE_SUFFIXES)}) in this folder')
        return cls._make(folder, files, input_fps)

    @classmethod
    def from_pattern(cls, pattern: Path, input_fps: Optional[Fraction]) -> 'ImageSequence':
        try:
            pattern.name % 0
        except (TypeError, ValueError):
            raise UsageError(f'{pattern}: not a printf pattern with one number (e.g. frames/%05d.png)') from None
        start = next((k for k in range(5) if (pattern.parent / (pattern.name % k)).is_file()), None)
        if start is None:
            raise UsageError(f'{pattern}: no file matches (the numbering must start at 0 to 4, as ffmpeg reads it)')
        files = []
        while (pattern.parent / (pattern.name % (start + len(files)))).is_file():
            files.append(pattern.parent / (pattern.name % (start + len(files))))
        later = _later_numbers(pattern, start + len(files))
        if later:
            raise UsageError(f'{pattern}: frame {start + len(files)} is missing but {len(later)} later frame(s) '
                             f'exist (from {min(later)}); fill the gap or renumber, so that no frames are dropped')
        return cls._make(pattern, files, input_fps)

    @classmethod
    def _make(cls, path: Path, files: List[Path], input_fps: Optional[Fraction]) -> 'ImageSequence':
        rate = input_fps or DEFAULT_SEQUENCE_FPS
        height, width = read_image(files[0]).shape[:2]
        check_size(width, height, files[0])
        source = cls(path=path, width=width, height=height, rate=rate, time_base=1 / rate, expected=len(files),
                     colorspace=1 if height >= 720 else 5)  # how an encoder will tag RGB frames of that size
        source.files = files
        if input_fps is None:
            source.notices.append(f'{path}: frames timed at {DEFAULT_SEQUENCE_FPS} fps (--input-fps sets another rate)')
        return source

    def declared_length(self) -> Optional[Fraction]:
        return len(self.files) * self.time_base

    def _timed_frames(self, start: Fraction) -> Iterator[Tuple[Frame, Fraction]]:
        first = max(0, math.floor(start / self.time_base))  # frames before the window are not read
        for index in range(first, len(self.files)):
            path = self.files[index]
            image = read_image(path)
            if image.shape[:2] != (self.height, self.width):
                raise UsageError(f'{path}: {image.shape[1]}x{image.shape[0]} differs from the first frame '
                                 f'({self.width}x{self.height})')
            yield Frame(image=image, time=index * self.time_base, pts=index, index=index), \
                (index + 1) * self.time_base


def _later_numbers(pattern: Path, first: int) -> List[int]:
    """Numbers of files matching the printf ``pattern`` that are at least ``first`` (after a gap)."""
    match = re.fullmatch(r'(.*?)%(0?)(\d*)d(.*)', pattern.name)
    if match is None or not pattern.parent.is_dir():
        return []
    head, zero, width, tail = match.groups()
    digits = r'\d{%s}' % width if zero and width else r'\d+'
    name = re.compile(re.escape(head.replace('%%', '%')) + f'({digits})' + re.escape(tail.replace('%%', '%')))
    found = (name.fullmatch(p.name) for p in pattern.parent.iterdir())
    return sorted(int(m.group(1)) for m in found if m is not None and int(m.group(1)) >= first)

