"""Video output: an encoder into a video file (.mp4, .mkv, .mov, .webm) with the input's audio, and the checks of an
output before any work.

:class:`VideoSink` writes under a temporary name and moves into place only when everything succeeded, so a failure
or a stop never leaves a partial file; ``segments.py`` builds the resumable outputs of a conversion (a video in
segments, or a folder of frames) on it. :func:`check_output` refuses, before any work, outputs that would overwrite
an input or cannot be written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, List, Optional

import cv2
import numpy as np

from ..errors import UsageError, first_line
from ..files import check_writable
from .sources import Source, VideoFileSource
from .timeline import Timeline

__all__ = ['VideoSink', 'EncodeOptions', 'check_output', 'wants_folder', 'CONTAINERS', 'CRF_RANGES']

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


class VideoSink:
    """Encodes RGB frames at given timestamps into a video file, with the input's audio; atomic.

    ``notices`` collects one-line messages for the user (audio re-encoded, size padded, streams dropped). The
    resumable sinks of ``segments.py`` use it twice over: for each segment (``fmt='nut'``, no audio, a given
    ``temporary`` path) and for the joined output (``template``: the segments' stream, whose packets :meth:`mux`
    copies without re-encoding).
    """

    def __init__(self, out: Path, source: Source, timeline: Timeline, options: EncodeOptions, *,
                 temporary: Optional[Path] = None, fmt: Optional[str] = None, audio: bool = True, template=None):
        import av  # noqa: PLC0415

        self.out, self.source, self.options = out, source, options
        self.notices: List[str] = []
        container_format, default_codec, copyable, fallback = CONTAINERS.get(out.suffix.lower(),
                                                                             (None, 'libx264', None, 'aac'))
        codec = options.codec or default_codec
        if template is None and codec not in av.codecs_available:
            raise UsageError(f'--codec {codec}: not an encoder this FFmpeg build has')
        if temporary is None:
            handle, name = tempfile.mkstemp(prefix=f'.{out.stem}.', suffix=out.suffix, dir=out.parent)
            os.close(handle)
            temporary = Path(name)
        self.temporary = temporary
        self.template = template
        try:
            self.temporary.touch()
            os.chmod(self.temporary, 0o666 & ~_umask())  # an ordinary file once renamed, not mkstemp's 0600
            self.container = av.open(str(self.temporary), 'w', format=fmt or container_format)
            if template is None:
                self._add_video(av, codec, timeline)
            else:
                self.stream = self.container.add_stream_from_template(template)
                self.stream.time_base = template.time_base
            if audio:
                self._copy_audio(av, copyable, fallback, timeline.slow_motion)
        except BaseException:
            self.abort()
            raise
        if audio and source.other_streams:
            self.notices.append(f'{source.other_streams} subtitle/data stream(s) of the input are not carried over')

    def _add_video(self, av, codec: str, timeline: Timeline) -> None:
        width, height = self.source.width, self.source.height
        try:
            fmt = av.VideoFormat(self.options.pix_fmt)
        except ValueError:
            raise UsageError(f'--pix-fmt {self.options.pix_fmt}: not a pixel format FFmpeg knows') from None
        info = av.codec.Codec(codec, 'w')
        if info.type != 'video':
            article = 'an' if info.type[0] in 'aeiou' else 'a'
            raise UsageError(f'--codec {codec}: {article} {info.type} encoder; --codec chooses the video encoder (e.g. '
                             f'libx264, libx265, libvpx-vp9); the audio is copied, or encoded as the container needs')
        supported = [f.name for f in (info.video_formats or [])]
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
        # JPEG-family encoders (mjpeg) take full-range YUV only: their preferred format is a yuvj one
        self.color_range = 2 if supported and supported[0].startswith('yuvj') else self.source.color_range
        stream.codec_context.color_range = self.color_range
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
        # No B-frames: segments encoded one after the other join only if decoding order follows display order at
        # every border (segments.py), and MP4/MOV take the track's end from the packet last in decoding order,
        # which after B-frames is not the held last frame. Costs some bitrate, not quality.
        stream.codec_context.max_b_frames = 0
        try:  # now, so that settings the encoder refuses are told before any work, not at the first frame
            stream.codec_context.open()
        except av.error.FFmpegError as error:
            raise UsageError(f'--codec {codec}: the encoder refuses these settings ({self.options.pix_fmt} at '
                             f'{even_w}x{even_h}, {float(timeline.rate):g} fps: {first_line(error)}); it takes '
                             f'--pix-fmt {", ".join(supported) or "(not listed)"}, and some encoders only standard '
                             f'frame rates') from None
        self.stream = stream

    def _copy_audio(self, av, copyable, fallback: str, slow_motion: int = 1) -> None:
        if not self.source.audio or not isinstance(self.source, VideoFileSource):
            return
        if slow_motion > 1:
            self.notices.append(f'audio: not carried over; in slow motion ({slow_motion}x) it would end '
                                f'{slow_motion}x before the picture')
            return
        window = self.source.window
        offset = self.source.offset
        stop = None if window is None else window[1]

        def inside(time) -> bool:  # a packet or frame of audio that starts inside the --start/--duration window
            return window is None or (time is not None and time >= offset and (stop is None or time < stop))

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
                    if window is not None:
                        inputs.seek(int(offset / Fraction(source_stream.time_base)), stream=source_stream)
                    shift = int(offset / Fraction(source_stream.time_base)) if window is not None else 0
                    for packet in inputs.demux(source_stream):
                        time = None if packet.pts is None else packet.pts * Fraction(packet.time_base)
                        if stop is not None and time is not None and time >= stop:
                            break
                        if packet.dts is None or not inside(time):
                            continue
                        packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
                        packet.stream = target
                        self.container.mux(packet)
            for source_stream, target, resampler in plans:
                if resampler is not None:
                    inputs.seek(0)
                    for frame in inputs.decode(source_stream):
                        if not inside(frame.time):
                            continue
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
                               dst_color_range=self.color_range)
        frame.pts, frame.time_base, frame.duration = pts, self.time_base, duration
        with self._writing():
            for packet in self.stream.encode(frame):
                self.container.mux(packet)

    def mux(self, packet) -> None:
        """Copy an encoded packet of the template's stream (its time base is rescaled to ours)."""
        packet.stream = self.stream
        with self._writing():
            self.container.mux(packet)

    def finish(self) -> None:
        with self._writing():
            if self.template is None:
                for packet in self.stream.encode(None):
                    self.container.mux(packet)
            self.container.close()
            _flush_to_disk(self.temporary)
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


def wants_folder(out: str) -> bool:
    """An output names a folder of frames when it ends with a slash or is an existing folder without a video
    suffix."""
    path = Path(out)
    return out.endswith(('/', os.sep)) or (path.is_dir() and path.suffix.lower() not in CONTAINERS)


def _flush_to_disk(path: Path) -> None:
    """fsync ``path`` (a file), so that a rename after it survives a power loss with the data."""
    with open(path, 'rb') as handle:
        os.fsync(handle.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
