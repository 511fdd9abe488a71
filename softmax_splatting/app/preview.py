"""What the page shows beside a result, made with the project's own video writer (``video.VideoSink``).

* :func:`cross_fade`: the two images of a pair averaged, which is what a frame-rate converter without motion would
  give; the page's slider puts it beside the interpolated frame, so ghosting and sharpness are seen at a glance.
* :func:`write_loop`: a pair's frames, first image to second and back, as a short looping H.264 video.
* :func:`browser_playable` / :func:`browser_copy`: browsers play H.264, VP8, VP9 and AV1 in MP4 or WebM and little
  else; an input in another form (Matroska, AVI, ProRes, ...) gets a muted H.264 copy so that it can play beside
  its result. The conversion itself always reads the file as dropped.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..video import EncodeOptions, Source, Timeline, VideoSink, open_source

__all__ = ['browser_copy', 'browser_playable', 'cross_fade', 'write_loop', 'LOOP_SECONDS']

LOOP_SECONDS = 1.0  # one sweep from the first image to the second
PREVIEW = EncodeOptions('libx264', 23, 'yuv420p')  # a quick, small copy: it is looked at, never kept
# containers (by suffix) and the codecs that Chromium, Firefox and Safari all play in them
_PLAYABLE = {'.mp4': {'h264', 'av1', 'vp9'}, '.m4v': {'h264', 'av1', 'vp9'}, '.mov': {'h264'},
             '.webm': {'vp8', 'vp9', 'av1'}}


def cross_fade(one: np.ndarray, two: np.ndarray) -> np.ndarray:
    """The mean of two ``[H, W, 3]`` uint8 images, rounded (``[H, W, 3]`` uint8)."""
    return ((one.astype(np.uint16) + two.astype(np.uint16) + 1) // 2).astype(np.uint8)


def write_loop(images: Sequence[np.ndarray], out: Path, seconds: float = LOOP_SECONDS) -> None:
    """Write ``images`` (``[H, W, 3]`` uint8, first image, the frames between, second image) and back again, one
    sweep lasting ``seconds``, as H.264 in ``out`` (atomically)."""
    sweep = list(images) + list(images[-2:0:-1])
    rate = Fraction(max(2, round((len(images) - 1) / seconds)))
    height, width = images[0].shape[:2]
    frame_source = Source(path=out, width=width, height=height, rate=rate, time_base=1 / rate, expected=None)
    _write(out, frame_source, ((image, index) for index, image in enumerate(sweep)))


def browser_playable(path: Path) -> bool:
    """Whether browsers play ``path`` as it is (by its container's suffix and its video codec)."""
    import av  # noqa: PLC0415

    codecs = _PLAYABLE.get(path.suffix.lower())
    if not codecs:
        return False
    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            return bool(streams) and streams[0].codec_context.name in codecs
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def browser_copy(path: Path, out: Path) -> Optional[Path]:
    """A muted H.264 copy of the video ``path`` in ``out``, frame for frame at its times; None when the video cannot
    be read (the conversion then reports why, in the command line's words)."""
    from ..errors import UsageError  # noqa: PLC0415

    try:
        source = open_source(str(path))
    except UsageError:
        return None
    try:
        _write(out, source, ((frame.image, frame.pts) for frame in source.frames()))
    except UsageError:
        return None
    finally:
        source.close()
    return out


def _write(out: Path, source: Source, frames) -> None:
    sink = VideoSink(out, source, Timeline(source, factor=1), PREVIEW, audio=False)
    try:
        for image, pts in frames:
            sink.write(image, pts)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
