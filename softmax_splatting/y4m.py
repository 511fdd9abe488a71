"""Reading YUV4MPEG2 (``.y4m``) clips frame by frame for the Xiph benchmark, through PyAV.

The published protocol decodes these clips with ffmpeg (``-pix_fmt rgb24``); PyAV runs that very code (FFmpeg's
y4m demuxer and swscale) in process. It replaced a reader of our own, which was 11 times slower on a 4096 x 2160
10-bit 4:2:0 frame (0.54 s against 0.047 s, a throwaway timing on this project's 2-core VM, 2026-12-07) and, with
its own chroma upsampling, differed from ffmpeg's frames by up to 113 code values at sharp colour edges (1.3 on
average). One frame is held at a time, however long the clip; frames the caller does not need are decoded (a copy,
for raw video) but not converted to RGB.

The clips carry no matrix tag, and swscale decodes untagged YUV as BT.601: the default here, so the frames are
those the published numbers were computed on. They are BT.709 material, and ``matrix='bt709'`` gives truer colours;
inputs and ground truth are decoded alike either way. The range follows the header (``XCOLORRANGE=FULL``, else
limited).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from .errors import UsageError, first_line

__all__ = ['MATRICES', 'y4m_frames']

MATRICES = {'bt601': 'ITU601', 'bt709': 'ITU709'}  # our names -> swscale's colour spaces
FULL_RANGE = 2  # FFmpeg's AVCOL_RANGE_JPEG


def y4m_frames(path: Path, matrix: str = 'bt601', needed: Optional[Callable[[int], bool]] = None
               ) -> Iterator[Optional[np.ndarray]]:
    """Each frame of the ``.y4m`` file ``path`` in order: ``[H, W, 3]`` uint8 RGB, or None for a frame that
    ``needed(index)`` rejects. UsageError (one line) for a file that is not a readable .y4m or is damaged."""
    import av  # noqa: PLC0415 - only this benchmark reads .y4m

    if matrix not in MATRICES:
        raise UsageError(f'unknown YUV matrix {matrix!r}; expected one of {", ".join(MATRICES)}')
    try:
        container = av.open(str(path), format='yuv4mpegpipe')
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise UsageError(f'{path}: not a readable .y4m video ({first_line(error)})') from None
    index = 0
    with container:
        try:
            for frame in container.decode(container.streams.video[0]):
                if needed is not None and not needed(index):
                    yield None
                else:
                    full = frame.color_range == FULL_RANGE
                    rgb = frame.reformat(format='rgb24', src_colorspace=MATRICES[matrix],
                                         src_color_range='JPEG' if full else 'MPEG')
                    yield rgb.to_ndarray()
                index += 1
        except av.error.FFmpegError as error:
            raise UsageError(f'{path}: damaged in frame {index} ({first_line(error)})') from None
