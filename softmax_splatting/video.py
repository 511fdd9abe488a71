"""Video in and out for frame-rate conversion: decoding with timestamps, scene cuts, output timing, encoding.

``run_a_pair.py --video`` is built on this module. It reads and writes containers through PyAV (FFmpeg's libraries,
shipped in its wheels) rather than moviepy, because frame-rate conversion as practitioners expect it (RIFE's video
tools, ffmpeg's minterpolate) needs what moviepy hides: every frame's presentation timestamp (variable-rate clips),
the display rotation and sample aspect ratio, the container's declared frame count (to tell a truncated file from a
short one), and packet-level access to the audio so that it is copied, not re-encoded. PyAV does all of it in
process, without parsing an ffmpeg binary's text output.

Pieces, in the order a conversion uses them:

* Sources (:func:`open_source`): a video file, a folder of frames, or a printf pattern (``frames/%05d.png``), each
  yielding :class:`Frame` (an upright RGB image with its time in seconds, an exact Fraction).
* :func:`scene_score`: how much a frame pair looks like a cut, in [0, 1]: the mean of two kinds of evidence,
  :func:`colour_distance` (the total-variation distance of coarse colour histograms: 0 same colours, 1 disjoint)
  and :func:`motion_residual` (the share of the frame that motion-compensated warping does not explain). Either
  alone fails on real footage: colours change within a shot under fast action (a 12 fps clip of it had five false
  cuts in twenty frames at the histogram threshold used before), and motion blur leaves much of a fast shot
  unexplained. On the 15 DAVIS clips (``tools/measure_scene_cuts.py``), pairs of one shot at frame steps 1, 2 and
  4 (up to 6 fps) score at most 0.321 and the 210 cuts between different clips at least 0.402; the default
  threshold 0.36 is the middle of that gap. Histograms alone left a narrower gap there (0.202 .. 0.283).
* :class:`Timeline`: which output frames fall between two input frames and at which fraction t of the interval.
  ``factor`` k: each interval split in k, (N - 1) k + 1 frames, the last one held as long as the input's last frame
  (so the durations match). ``fps`` R: frames at the multiples of 1/R from the first input time to the input's end.
  Both follow the input's timestamps, so a variable-rate clip lands right.
* Sinks: :class:`VideoSink` (.mp4, .mkv, .mov, .webm) and :class:`FolderSink` (numbered PNGs). Both write under a
  temporary name and move into place only when everything succeeded.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

from .errors import UsageError, first_line
from .files import natural_key
from .frames import read_image

__all__ = ['Frame', 'Source', 'open_source', 'scene_score', 'colour_distance', 'motion_residual', 'Timeline',
           'VideoSink', 'FolderSink', 'open_sink', 'check_output', 'check_writable', 'check_size', 'parse_rate',
           'SCENE_THRESHOLD', 'CONTAINERS']

SCENE_THRESHOLD = 0.36  # the middle of the measured gap (see the module docstring)
RESIDUAL_WIDTH = 128  # motion_residual's thumbnails: enough for DIS at this scale, about 2 ms per pair
RESIDUAL_BLUR = 1.0  # Gaussian sigma on the thumbnails (pixels), so that motion blur counts less as unexplained
RESIDUAL_LEVEL = 24  # grey levels (of 255) above which a warped pixel counts as unexplained
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
DEFAULT_SEQUENCE_FPS = Fraction(25)  # as ffmpeg's image2 demuxer

# Output containers: FFmpeg muxer, default video encoder, audio codecs that are copied as they are, and the encoder
# used when the input's audio codec cannot go into the container.
CONTAINERS = {
    '.mp4': ('mp4', 'libx264', {'aac', 'mp3', 'ac3', 'eac3', 'alac', 'opus', 'flac'}, 'aac'),
    '.mov': ('mov', 'libx264', {'aac', 'mp3', 'ac3', 'eac3', 'alac', 'pcm_s16le', 'pcm_s24le', 'pcm_f32le'}, 'aac'),
    '.mkv': ('matroska', 'libx264', None, 'aac'),  # None: Matroska takes any audio codec
    '.webm': ('webm', 'libvpx-vp9', {'opus', 'vorbis'}, 'libopus'),
}
CRF_RANGES = {'libx264': 51, 'libx265': 51, 'libvpx-vp9': 63, 'libsvtav1': 63}  # --crf from 0 to this
CRF_CODECS = set(CRF_RANGES)
MAX_PIXELS = 7680 * 4320  # 8K UHD; the classical interpolator needs about 1.4 GB at 4K and grows with the area
MAX_FRAMES_PER_INTERVAL = 256  # --factor, or --fps over the input's rate: beyond this no user means it
MAX_FPS = Fraction(1000)


def parse_rate(text: str, option: str = '--fps') -> Fraction:
    """'60', '59.94', '24000/1001' -> a positive Fraction (59.94 and 29.97 mean the NTSC rates 60000/1001, ...)."""
    text = str(text).strip()
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f'{option} {text}: not a frame rate (use 60, 59.94 or 24000/1001)') from None
    if rate <= 0:
        raise UsageError(f'{option} {text}: the frame rate must be positive')
    for ntsc in (24, 30, 60, 120, 240):
        if '/' not in text and abs(float(rate) - ntsc * 1000 / 1001) < 0.006:
            return Fraction(ntsc * 1000, 1001)
    return rate


# ---------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------

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

    def frames(self) -> Iterator[Frame]:
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
    if not path.is_file():
        raise UsageError(f'{path}: no such file or folder')
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
        if first is not None:
            source.rotation = int(round(first.rotation or 0)) % 360
            if source.rotation % 180:
                source.width, source.height = context.height, context.width
                source.sample_aspect = 1 / source.sample_aspect if source.sample_aspect else Fraction(1)
            source.colorspace = first.colorspace if first.colorspace in (1, 5, 6) else (
                1 if context.height >= 720 else 5)
            source.color_range = 2 if first.color_range == 2 else 1
            source._first = first
        try:
            check_size(source.width, source.height, path)
        except UsageError:
            container.close()
            raise
        return source

    def frames(self) -> Iterator[Frame]:
        import av  # noqa: PLC0415

        default_duration = 1 / self.rate
        previous_pts, index = None, 0
        self.decoded_total = 0
        for frame in self._decode(av):
            self.decoded_total += 1
            pts = frame.pts if frame.pts is not None else (
                int(round(index / self.rate / self.time_base)) if previous_pts is None else None)
            if pts is None:
                pts = previous_pts + int(round(default_duration / self.time_base))
            if previous_pts is not None and pts <= previous_pts:
                continue  # a repeated timestamp shows nothing new
            image = self._rgb(frame)
            duration = Fraction(frame.duration) * self.time_base if frame.duration else default_duration
            self.end = pts * self.time_base + duration
            previous_pts, index, self.decoded = pts, index + 1, index + 1
            yield Frame(image=image, time=pts * self.time_base, pts=pts, index=index - 1)

    def check_complete(self) -> None:
        """Raise UsageError when decoding stopped short of what the container declares: fewer frames than its index
        lists, or (without an index) the last frame ending more than a frame interval before its duration."""
        decoded = getattr(self, 'decoded_total', 0)
        if self.expected is not None and decoded < self.expected:
            raise UsageError(f'{self.path}: decoded {decoded} of the {self.expected} frames the file declares; it is '
                             f'truncated or damaged (nothing was written)')
        if self.expected is None and self.declared_end is not None and self.end is not None and \
                self.end + 1 / self.rate < self.declared_end:
            raise UsageError(f'{self.path}: the frames end at {float(self.end):.3f} s but the file declares '
                             f'{float(self.declared_end):.3f} s; it is truncated or damaged (nothing was written)')

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
        files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                       key=natural_key)
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

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            image = read_image(path)
            if image.shape[:2] != (self.height, self.width):
                raise UsageError(f'{path}: {image.shape[1]}x{image.shape[0]} differs from the first frame '
                                 f'({self.width}x{self.height})')
            self.end, self.decoded = (index + 1) * self.time_base, index + 1
            yield Frame(image=image, time=index * self.time_base, pts=index, index=index)


# ---------------------------------------------------------------------------------------------------------------
# Scene cuts and timing
# ---------------------------------------------------------------------------------------------------------------

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


def check_size(width: int, height: int, path: Path) -> None:
    """UsageError for frames beyond ``MAX_PIXELS`` (before any work: they would exhaust memory part-way)."""
    if width * height > MAX_PIXELS:
        raise UsageError(f'{path}: {width}x{height} frames are larger than this tool handles (at most '
                         f'{MAX_PIXELS / 1e6:.0f} megapixels, e.g. 7680x4320)')


def _histogram(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (160, 90), interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([small], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3).ravel()
    return hist / max(float(hist.sum()), 1.0)


def colour_distance(one: np.ndarray, two: np.ndarray) -> float:
    """Total-variation distance of the 8 x 8 x 8-bin RGB histograms of two ``[H, W, 3]`` uint8 frames, in [0, 1]
    (computed on 160 x 90 thumbnails; the aspect ratio does not matter to a histogram)."""
    return 0.5 * float(np.abs(_histogram(one) - _histogram(two)).sum())


def _thumbnail(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    scale = min(1.0, RESIDUAL_WIDTH / width)
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    grey = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return cv2.GaussianBlur(grey, (0, 0), RESIDUAL_BLUR)


def motion_residual(one: np.ndarray, two: np.ndarray) -> float:
    """The share of frame ``one`` that motion from frame ``two`` does not explain, in [0, 1].

    Both ``[H, W, 3]`` uint8 frames are shrunk to slightly blurred grey thumbnails ``RESIDUAL_WIDTH`` pixels wide;
    DIS flow from one to two (OpenCV's medium preset) warps two back onto one, and the result is the fraction of
    pixels whose grey level still differs by more than ``RESIDUAL_LEVEL``. Within a shot most of the frame is the
    same scene moved, so the share stays moderate even under fast motion; after a cut little matches.
    """
    a, b = _thumbnail(one), _thumbnail(two)
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
    height, width = a.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(b, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return float(np.mean(cv2.absdiff(a, warped) > RESIDUAL_LEVEL))


def scene_score(one: np.ndarray, two: np.ndarray) -> float:
    """How much two consecutive ``[H, W, 3]`` uint8 frames look like a scene cut, in [0, 1]: the mean of their
    colour distance and of the share of ``one`` that motion from ``two`` leaves unexplained (module docstring)."""
    return 0.5 * (colour_distance(one, two) + motion_residual(one, two))


class Timeline:
    """Output times of a conversion, interval by interval, in the output time base ``time_base``.

    ``between(one, two)`` lists ``(pts, t)`` for the output frames from ``one.time`` (included) to ``two.time``
    (excluded), t being the fraction of the interval (0: frame one itself); ``tail(last, end)`` the frames from the
    last input frame to the input's end, all showing the last frame, with the duration of the last one.
    """

    def __init__(self, source: Source, factor: Optional[int] = None, fps: Optional[Fraction] = None):
        if (factor is None) == (fps is None):
            raise ValueError('give exactly one of factor and fps')
        self.factor, self.fps = factor, fps
        if factor is not None:
            self.time_base = source.time_base / factor
            self.rate = source.rate * factor
        else:
            self.time_base = 1 / fps
            self.rate = fps
        self._next = None  # fps: the next output index j (time j / fps)

    def between(self, one: Frame, two: Frame) -> List[Tuple[int, float]]:
        if self.factor is not None:
            step = two.pts - one.pts
            return [(one.pts * self.factor + m * step, m / self.factor) for m in range(self.factor)]
        if self._next is None:
            self._next = math.ceil(one.time * self.fps)
        out = []
        while self._next / self.fps < two.time:
            t = (self._next / self.fps - one.time) / (two.time - one.time)
            out.append((self._next, float(t)))
            self._next += 1
        return out

    def tail(self, last: Frame, end: Fraction) -> Tuple[List[int], int]:
        """Output pts showing the last frame, and the duration (in ``time_base``) of the final one."""
        if self.factor is not None:
            pts = last.pts * self.factor
            return [pts], max(1, int(round((end - last.time) / self.time_base)))
        if self._next is None:
            self._next = math.ceil(last.time * self.fps)
        out = []
        while self._next / self.fps < end or not out:
            out.append(self._next)
            self._next += 1
        return out, 1


# ---------------------------------------------------------------------------------------------------------------
# Sinks
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class EncodeOptions:
    codec: Optional[str] = None
    crf: Optional[int] = None
    pix_fmt: str = 'yuv420p'


def check_output(out: Path, source: Source, folder: bool, overwrite: bool = False) -> None:
    """Refuse, before any work, an output that would overwrite the input (a file, a frame of it, or the folder that
    holds its frames), a frame folder that already holds files (unless ``overwrite``), a video path that is a
    folder, an unknown container suffix, or a place that cannot be written."""
    inputs = [source.path] + list(getattr(source, 'files', []))
    for candidate in inputs:
        if out.exists() and candidate.exists() and os.path.samefile(out, candidate):
            raise UsageError(f'--out {out} is the input; choose another output')
    if folder:
        if out.exists() and not out.is_dir():
            raise UsageError(f'--out {out}: it is a file, not a folder')
        frame_folders = {f.parent.resolve() for f in getattr(source, 'files', [])}
        if out.resolve() in frame_folders:
            raise UsageError(f'--out {out} is the folder of the input frames; write the frames to another folder')
        target = out.resolve()
        for candidate in inputs:  # replacing the folder whole would delete an input inside it
            if target in candidate.resolve().parents:
                raise UsageError(f'--out {out} holds the input {candidate}; write the frames to another folder')
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            count = sum(1 for _ in out.iterdir())
            raise UsageError(f'--out {out} already holds {count} file(s); choose a new folder, or add --overwrite '
                             f'to replace it (the new frames replace it whole, once they are all written)')
    else:
        if out.is_dir():
            raise UsageError(f'--out {out} is a folder; give a video file name ({", ".join(CONTAINERS)}), or end '
                             f'the folder name with / to write numbered frames into it')
        if out.suffix.lower() not in CONTAINERS:
            raise UsageError(f'--out {out}: unknown video suffix {out.suffix or "(none)"}; use one of '
                             f'{", ".join(CONTAINERS)}, or a folder (ending in /) for numbered frames')
    check_writable(out, out if folder and out.is_dir() else out.parent)


def check_writable(out: Path, parent: Path) -> None:
    """UsageError unless ``out`` can be created in ``parent`` (or in its nearest existing ancestor, which must be a
    folder): a real write is tried, since permission bits do not tell (root, read-only file systems)."""
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f'--out {out}: {existing} is not a folder')
    try:
        probe = tempfile.NamedTemporaryFile(dir=existing, prefix='.write-test-')
        probe.close()
    except OSError as error:
        raise UsageError(f'--out {out}: cannot write in {existing} ({error.strerror or error})') from None


class VideoSink:
    """Encodes RGB frames at given timestamps into a video file, with the input's audio; atomic.

    ``notices`` collects one-line messages for the user (audio re-encoded, size padded, streams dropped).
    """

    def __init__(self, out: Path, source: Source, timeline: Timeline, options: EncodeOptions):
        import av  # noqa: PLC0415

        self.out, self.source, self.options = out, source, options
        self.notices: List[str] = []
        fmt, default_codec, copyable, fallback = CONTAINERS[out.suffix.lower()]
        codec = options.codec or default_codec
        if codec not in av.codecs_available:
            raise UsageError(f'--codec {codec}: not an encoder this FFmpeg build has')
        handle, temporary = tempfile.mkstemp(prefix=f'.{out.stem}.', suffix=out.suffix, dir=out.parent)
        os.close(handle)
        self.temporary = Path(temporary)
        os.chmod(self.temporary, 0o666 & ~_umask())  # an ordinary file once renamed, not mkstemp's 0600
        try:
            self.container = av.open(str(self.temporary), 'w', format=fmt)
            self._add_video(av, codec, timeline)
            self._copy_audio(av, copyable, fallback)
        except BaseException:
            self.abort()
            raise
        if source.other_streams:
            self.notices.append(f'{source.other_streams} subtitle/data stream(s) of the input are not carried over')

    def _add_video(self, av, codec: str, timeline: Timeline) -> None:
        width, height = self.source.width, self.source.height
        try:
            fmt = av.VideoFormat(self.options.pix_fmt)
        except ValueError:
            raise UsageError(f'--pix-fmt {self.options.pix_fmt}: not a pixel format FFmpeg knows') from None
        supported = [f.name for f in (av.codec.Codec(codec, 'w').video_formats or [])]
        if supported and self.options.pix_fmt not in supported:
            raise UsageError(f'--pix-fmt {self.options.pix_fmt}: {codec} cannot encode it (it takes '
                             f'{", ".join(supported)})')
        # Subsampled chroma needs even sizes: repeat the last row/column, never stretch.
        even_w = width + (width % 2) * (fmt.chroma_width(2) == 1)
        even_h = height + (height % 2) * (fmt.chroma_height(2) == 1)
        if (even_w, even_h) != (width, height):
            self.notices.append(f'{width}x{height} is odd: padded to {even_w}x{even_h} by repeating the edge, as '
                                f'{self.options.pix_fmt} needs even sizes (--pix-fmt yuv444p keeps {width}x{height})')
        self.size = (even_w, even_h)
        try:
            stream = self.container.add_stream(codec, rate=timeline.rate)
        except ValueError as error:  # e.g. H.264 into WebM
            raise UsageError(f'--codec {codec}: cannot go into {self.out.suffix} ({first_line(error)})') from None
        stream.width, stream.height = even_w, even_h
        stream.pix_fmt = self.options.pix_fmt
        # the muxer may change the stream's time base when it writes the header (Matroska: 1 ms); frames keep ours
        self.time_base = timeline.time_base
        stream.time_base = timeline.time_base
        stream.codec_context.time_base = timeline.time_base
        stream.codec_context.colorspace = self.source.colorspace
        stream.codec_context.color_range = self.source.color_range
        if self.source.sample_aspect != 1:
            stream.codec_context.sample_aspect_ratio = self.source.sample_aspect
        options = {}
        if codec in CRF_CODECS:
            crf = self.options.crf if self.options.crf is not None else 18
            if not 0 <= crf <= CRF_RANGES[codec]:
                raise UsageError(f'--crf {crf}: {codec} takes 0 (lossless or best) to {CRF_RANGES[codec]}')
            options['crf'] = str(crf)
            if codec == 'libvpx-vp9':
                options['b'] = '0'
        elif self.options.crf is not None:
            raise UsageError(f'--crf applies to {", ".join(sorted(CRF_CODECS))}, not to {codec}')
        stream.options = options
        # packets carry their frame's duration, so that the last frame can be held as long as the input's last one
        stream.codec_context.flags |= av.codec.context.Flags.frame_duration
        if self.out.suffix.lower() in ('.mp4', '.mov'):
            # MP4/MOV take the track's end from the packet last in decoding order; after B-frames that is not the
            # held last frame, and the output would end one output frame early. Costs some bitrate, not quality.
            stream.codec_context.max_b_frames = 0
        self.stream = stream

    def _copy_audio(self, av, copyable, fallback: str) -> None:
        if not self.source.audio or not isinstance(self.source, VideoFileSource):
            return
        with av.open(str(self.source.path)) as inputs:
            plans = []
            for stream in inputs.streams.audio:
                name = stream.codec_context.name
                if copyable is None or name in copyable:
                    plans.append((stream, self.container.add_stream_from_template(stream), None))
                else:
                    encoder = self.container.add_stream(fallback, rate=self._rate_for(fallback, stream))
                    encoder.layout = stream.codec_context.layout
                    plans.append((stream, encoder, av.AudioResampler(
                        format=encoder.codec_context.codec.audio_formats[0].name, layout=stream.layout,
                        rate=encoder.codec_context.sample_rate)))
                    self.notices.append(f'audio: {name} cannot go into {self.out.suffix}; re-encoded to {fallback} '
                                        f'({stream.codec_context.channels} channels, '
                                        f'{encoder.codec_context.sample_rate} Hz)')
            for source_stream, target, resampler in plans:
                if resampler is None:
                    for packet in inputs.demux(source_stream):
                        if packet.dts is None:
                            continue
                        packet.stream = target
                        self.container.mux(packet)
            for source_stream, target, resampler in plans:
                if resampler is not None:
                    inputs.seek(0)
                    for frame in inputs.decode(source_stream):
                        frame.pts = None
                        for converted in resampler.resample(frame):
                            self.container.mux(target.encode(converted))
                    for converted in resampler.resample(None):
                        self.container.mux(target.encode(converted))
                    self.container.mux(target.encode(None))

    @staticmethod
    def _rate_for(codec: str, stream) -> int:
        rate = stream.codec_context.sample_rate
        if codec == 'libopus' and rate not in (8000, 12000, 16000, 24000, 48000):
            return 48000
        return rate

    def write(self, image: np.ndarray, pts: int, duration: int = 1) -> None:
        import av  # noqa: PLC0415

        width, height = self.size
        if image.shape[1] != width or image.shape[0] != height:
            image = cv2.copyMakeBorder(image, 0, height - image.shape[0], 0, width - image.shape[1],
                                       cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format='rgb24')
        frame = frame.reformat(format=self.options.pix_fmt, dst_colorspace=self.source.colorspace,
                               dst_color_range=self.source.color_range)
        frame.pts, frame.time_base, frame.duration = pts, self.time_base, duration
        with self._writing():
            for packet in self.stream.encode(frame):
                self.container.mux(packet)

    def finish(self) -> None:
        with self._writing():
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            self.container.close()
            os.replace(self.temporary, self.out)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """A failed write (a full disk, a vanished folder) as one line naming the output."""
        import av  # noqa: PLC0415

        try:
            yield
        except (OSError, av.error.FFmpegError) as error:
            raise UsageError(f'{self.out}: cannot write the video ({first_line(error)}); nothing was written') \
                from None

    def abort(self) -> None:
        container = getattr(self, 'container', None)
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - already failing; the temporary file is removed below
                pass
        if self.temporary.exists():
            self.temporary.unlink()


class FolderSink:
    """Writes frames as numbered PNGs (``000001.png``, ...) into a hidden folder beside ``out``, which replaces
    ``out`` whole at the end (an existing ``out`` has been allowed by :func:`check_output`): a folder never mixes
    two runs' frames, and an interrupted run leaves the old one as it was."""

    def __init__(self, out: Path):
        self.out = out
        self.notices: List[str] = []
        parent = out.parent
        parent.mkdir(parents=True, exist_ok=True)
        self.temporary = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=parent))
        os.chmod(self.temporary, 0o777 & ~_umask())  # an ordinary folder once renamed, not mkdtemp's 0700
        self.count = 0

    def write(self, image: np.ndarray, pts: int, duration: int = 1) -> None:
        self.count += 1
        path = self.temporary / f'{self.count:06d}.png'
        ok, data = cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        try:
            if not ok:
                raise OSError('the PNG encoder failed')
            path.write_bytes(data.tobytes())
        except OSError as error:
            raise UsageError(f'{self.out}: cannot write frame {self.count} ({first_line(error)}); nothing was '
                             f'written') from None

    def finish(self) -> None:
        if not self.out.exists():
            os.replace(self.temporary, self.out)
            return
        old = Path(tempfile.mkdtemp(prefix=f'.{self.out.name}.old.', dir=self.out.parent))
        os.replace(self.out, old / 'previous')
        os.replace(self.temporary, self.out)
        shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.temporary, ignore_errors=True)


def wants_folder(out: str) -> bool:
    """An output names a folder of frames when it ends with a slash or is an existing folder without a video
    suffix."""
    path = Path(out)
    return out.endswith(('/', os.sep)) or (path.is_dir() and path.suffix.lower() not in CONTAINERS)


def open_sink(out: str, source: Source, timeline: Timeline, options: EncodeOptions, overwrite: bool = False):
    """A :class:`FolderSink` for ``out`` ending in a slash (or naming a folder), else a :class:`VideoSink`;
    ``overwrite`` lets a frame folder that holds files be replaced (whole, at the end)."""
    folder = wants_folder(out)
    path = Path(out)
    check_output(path, source, folder, overwrite)
    return FolderSink(path) if folder else VideoSink(path, source, timeline, options)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
