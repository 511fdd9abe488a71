"""Resumable output: a conversion keeps its finished work beside the output, so a stopped run continues.

Output frames are written in segments of at least ``SEGMENT_FRAMES`` frames, each ending where a frame pair begins;
the conversion says where pairs begin (:meth:`mark`), so the same input and settings always give the same segments.
A video's segments are encoded one after the other into NUT files (FFmpeg's own container, which keeps our time
base exactly) in the work folder ``.NAME.partial/`` beside the output; a frame folder's frames go straight into
``.NAME.partial/frames/``. After each segment ``state.json`` records it, written atomically and flushed to disk
with the segment. At the end the segments are joined without re-encoding, with the input's audio, into the output
(a frame folder is moved into place), and the work folder is removed.

A stopped run (Ctrl-C, SIGTERM, kill -9, a power loss) leaves its finished segments. The same command with
``--resume`` checks that the input and every setting that shapes the output are unchanged (:func:`fingerprint`),
and the conversion runs again over the input but synthesizes and encodes only the pairs after the last finished
segment (``conversion.py``): decoding, the scene and repeat tests and the flows at the border are recomputed, no
frame is made twice, and the result is the uninterrupted run's, frame for frame. Without ``--resume`` such a
folder is refused (``--overwrite`` starts over), so that no finished work is thrown away unasked.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np

from ..errors import UsageError, first_line
from .sinks import CONTAINERS, EncodeOptions, VideoSink, _flush_to_disk, _umask, check_output, wants_folder
from .sources import ImageSequence, Source
from .timeline import Timeline

__all__ = ['SegmentedVideoSink', 'ResumableFolderSink', 'WorkFolder', 'open_resumable_sink', 'fingerprint',
           'SEGMENT_FRAMES', 'STATE_FORMAT']

SEGMENT_FRAMES = 120  # about 5 s at 24 fps; at most a few minutes of CPU work lost at 4K when a run is killed
STATE_FORMAT = 'softsplat-conversion-1'
STATE_NAME = 'state.json'
LOCK_NAME = 'lock'


def fingerprint(source: Source, settings: Dict[str, object]) -> Dict[str, object]:
    """What an interrupted conversion must share with its resumption: the input's identity (path, size and time of
    the file, or of every frame file) and ``settings`` (every option that shapes the output)."""
    files = list(source.files) if isinstance(source, ImageSequence) else [source.path]
    digest = hashlib.sha256()
    for path in files:
        status = path.stat()
        digest.update(f'{path.resolve()}\0{status.st_size}\0{status.st_mtime_ns}\n'.encode())
    return {'input': str(source.path.resolve()), 'files': digest.hexdigest(), 'settings': settings}


def _differences(old: Dict[str, object], new: Dict[str, object]) -> List[str]:
    """What differs between two fingerprints, in words (empty when nothing does)."""
    new = json.loads(json.dumps(new))  # as it would be read back
    if old == new:
        return []
    if old.get('input') != new['input'] or old.get('files') != new['files']:
        return ['the input']
    before, after = old.get('settings') or {}, new['settings']
    return [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)] or ['the format']


@dataclass
class Segment:
    name: str        # file (video) or '' (frames, which lie in frames/)
    pairs: int       # pairs begun before the segment's end (the next segment starts with this pair's frames)
    frames: int      # output frames in the segment
    last_duration: int  # the last frame's duration in the timeline's time base (NUT keeps only the frame rate's)
    final: bool = False  # the last segment: every frame is written, only the join is left


class WorkFolder:
    """``.NAME.partial/`` beside ``out`` with ``state.json``: the fingerprint and the finished segments."""

    def __init__(self, out: Path, stamp: Dict[str, object], resume: bool, overwrite: bool):
        self.out = out
        self.path = out.parent / f'.{out.name}.partial'
        self.segments: List[Segment] = []
        self.stamp = stamp
        self.resumed = False
        try:
            self.path.mkdir(parents=True)
            os.chmod(self.path, 0o777 & ~_umask())
            found = False
        except FileExistsError:
            found = True
        self._lock()
        try:
            self._open(found, resume, overwrite)
        except BaseException:
            self.release()
            raise

    def _open(self, found: bool, resume: bool, overwrite: bool) -> None:
        out = self.out
        state = self._read() if found else None
        if state is not None and not state['segments']:
            found = False  # a run stopped before finishing a segment: nothing to keep
        if found and (resume or not overwrite):
            done = sum(segment['frames'] for segment in state['segments']) if state else 0
            if not resume:
                raise UsageError(f'--out {out}: an interrupted conversion of it kept {done} finished frame(s) in '
                                 f'{self.path}; add --resume to continue it, or --overwrite to start over')
            if state is None:
                raise UsageError(f'--resume: {self.path} holds no readable state of a conversion; remove it (or '
                                 f'use --overwrite) to start over')
            changed = _differences(state['fingerprint'], self.stamp)
            if changed:
                raise UsageError(f'--resume: {self.path} was made from other settings ({", ".join(changed)} '
                                 f'changed); run with the same ones, or --overwrite to start over')
            self.segments = [Segment(**segment) for segment in state['segments']]
            self.resumed = True
            self._tidy()
        else:
            self._tidy()  # --overwrite: an interrupted run's work is discarded
            self.save()

    def _lock(self) -> None:
        """Hold an exclusive lock on the work folder while this process writes the output (released on exit, also
        after kill -9): a second conversion into the same output is refused instead of mixing its frames in."""
        self._lock_file = open(self.path / LOCK_NAME, 'a+')  # noqa: SIM115 - held until the process ends
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise UsageError(f'--out {self.out}: another conversion is writing it now (its work is in {self.path})') \
                from None

    @property
    def pairs_done(self) -> int:
        return self.segments[-1].pairs if self.segments else 0

    @property
    def frames_done(self) -> int:
        return sum(segment.frames for segment in self.segments)

    @property
    def complete(self) -> bool:
        return bool(self.segments) and self.segments[-1].final

    def _read(self) -> Optional[Dict[str, object]]:
        try:
            state = json.loads((self.path / STATE_NAME).read_text())
            if state.get('format') != STATE_FORMAT or not isinstance(state.get('segments'), list):
                return None
            for segment in state['segments']:
                Segment(**segment)
            return state
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def _tidy(self) -> None:
        """Remove what a stopped run left beyond its last finished segment (a half-written segment, a join)."""
        keep = {STATE_NAME, LOCK_NAME} | ({'frames'} | {segment.name for segment in self.segments}
                                          if self.segments else set())
        for path in self.path.iterdir():
            if path.name not in keep:
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    def save(self) -> None:
        state = {'format': STATE_FORMAT, 'fingerprint': self.stamp,
                 'segments': [segment.__dict__ for segment in self.segments]}
        temporary = self.path / f'.{STATE_NAME}.tmp'
        temporary.write_text(json.dumps(state, indent=1))
        _flush_to_disk(temporary)
        os.replace(temporary, self.path / STATE_NAME)
        _flush_folder(self.path)

    def commit(self, segment: Segment) -> None:
        self.segments.append(segment)
        self.save()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()

    def release(self) -> None:
        """Give up the lock (the finished segments stay for --resume)."""
        self._lock_file.close()


def _flush_folder(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class _Resumable:
    """What both resumable sinks share: segments closed at pair starts, finished work kept on a stop."""

    work: WorkFolder

    def __init__(self):
        self.notices: List[str] = []
        self.frames = 0         # frames of the open segment
        self.last_duration = 1

    @property
    def pairs_done(self) -> int:
        """Pairs whose frames all lie in finished segments: the conversion skips them."""
        return self.work.pairs_done

    @property
    def frames_done(self) -> int:
        return self.work.frames_done

    @property
    def complete(self) -> bool:
        """Every frame is written (a run stopped while joining): the conversion writes nothing more."""
        return self.work.complete

    def mark(self, pair: int) -> None:
        """Pair number ``pair`` begins (its frames come next): the open segment ends here once it is long enough."""
        if self.frames >= SEGMENT_FRAMES:
            self._close(pair)

    def _close(self, pairs: int, final: bool = False) -> None:
        raise NotImplementedError

    def kept(self) -> str:
        """After a stop: what is kept for --resume, as words for the user ('' when nothing is)."""
        if not self.work.segments:
            return ''
        return f'{self.work.frames_done} finished frame(s) are kept in {self.work.path}; run the same command ' \
               f'with --resume to continue'


class SegmentedVideoSink(_Resumable):
    """A video output written as NUT segments in the work folder, joined into ``out`` by :meth:`finish`."""

    def __init__(self, out: Path, source: Source, timeline: Timeline, options: EncodeOptions, work: WorkFolder):
        super().__init__()
        self.out, self.source, self.timeline, self.work = out, source, timeline, work
        codec = options.codec or CONTAINERS[out.suffix.lower()][1]
        self.options = EncodeOptions(codec, options.crf, options.pix_fmt)
        self.segment: Optional[VideoSink] = None
        # every option is checked now, against the real container, before any work
        probe_folder = work.path / '.probe'
        probe_folder.mkdir(exist_ok=True)
        try:
            probe = VideoSink(out, source, timeline, options, temporary=probe_folder / out.name, audio=False)
            probe.abort()
            self.notices += probe.notices
        finally:
            shutil.rmtree(probe_folder, ignore_errors=True)

    def write(self, image: np.ndarray, pts: int, duration: int = 1) -> None:
        if self.segment is None:
            number = len(self.work.segments)
            name = f'segment-{number:05d}.nut'
            self.segment = VideoSink(self.work.path / name, self.source, self.timeline, self.options,
                                     temporary=self.work.path / f'.{name}.tmp', fmt='nut', audio=False)
        self.segment.write(image, pts, duration)
        self.frames += 1
        self.last_duration = duration

    def _close(self, pairs: int, final: bool = False) -> None:
        if self.segment is None:
            return
        self.segment.finish()  # flushed to disk, then renamed into place
        self.work.commit(Segment(self.segment.out.name, pairs, self.frames, self.last_duration, final))
        self.segment, self.frames = None, 0

    def finish(self) -> None:
        import av  # noqa: PLC0415

        if not self.work.complete:
            self._close(self.work.pairs_done, final=True)
        if not self.work.segments:
            raise UsageError(f'{self.out}: no frame was written')
        joined = None
        try:
            first = av.open(str(self.work.path / self.work.segments[0].name))
            try:
                joined = VideoSink(self.out, self.source, self.timeline, self.options,
                                   temporary=self.work.path / f'joined{self.out.suffix}',
                                   template=first.streams.video[0])
            finally:
                first.close()
            self.notices += joined.notices
            for segment in self.work.segments:
                with av.open(str(self.work.path / segment.name)) as container:
                    packets = [p for p in container.demux(container.streams.video[0]) if p.dts is not None]
                    if packets:
                        packets[-1].duration = int(round(segment.last_duration * self.timeline.time_base
                                                         / packets[-1].time_base))
                    for packet in packets:
                        joined.mux(packet)
            joined.finish()
        except av.error.FFmpegError as error:
            if joined is not None:
                joined.abort()
            raise UsageError(f'{self.out}: joining the segments failed ({first_line(error)}); nothing was '
                             f'written') from None
        except BaseException:
            if joined is not None:
                joined.abort()
            raise
        self.work.remove()

    def abort(self) -> None:
        if self.segment is not None:
            self.segment.abort()
            self.segment = None
        if self.work.segments:
            self.work.release()
        else:
            self.work.remove()


class ResumableFolderSink(_Resumable):
    """Numbered PNGs written into the work folder's ``frames/``, which replaces ``out`` whole at the end."""

    def __init__(self, out: Path, work: WorkFolder):
        super().__init__()
        self.out, self.work = out, work
        self.folder = work.path / 'frames'
        self.folder.mkdir(exist_ok=True)
        os.chmod(self.folder, 0o777 & ~_umask())
        done = work.frames_done
        for path in self.folder.iterdir():  # frames after the last finished segment are made again
            if not (path.suffix == '.png' and path.stem.isdigit() and int(path.stem) <= done):
                path.unlink()
        self.count = done
        self.written: List[Path] = []

    def write(self, image: np.ndarray, pts: int, duration: int = 1) -> None:
        self.count += 1
        path = self.folder / f'{self.count:06d}.png'
        ok, data = cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        try:
            if not ok:
                raise OSError('the PNG encoder failed')
            path.write_bytes(data.tobytes())
        except OSError as error:
            raise UsageError(f'{self.out}: cannot write frame {self.count} ({first_line(error)}); nothing was '
                             f'written') from None
        self.written.append(path)
        self.frames += 1

    def _close(self, pairs: int, final: bool = False) -> None:
        if not self.frames:
            return
        for path in self.written:
            _flush_to_disk(path)
        _flush_folder(self.folder)
        self.work.commit(Segment('', pairs, self.frames, 1, final))
        self.written, self.frames = [], 0

    def finish(self) -> None:
        if not self.work.complete:
            self._close(self.work.pairs_done, final=True)
        if self.out.exists():
            old = self.work.path / 'previous'
            os.replace(self.out, old)
        os.replace(self.folder, self.out)
        self.work.remove()

    def abort(self) -> None:
        if self.work.segments:
            self.work.release()
        else:
            self.work.remove()


def open_resumable_sink(out: str, source: Source, timeline: Timeline, options: EncodeOptions,
                        stamp: Dict[str, object], overwrite: bool = False, resume: bool = False):
    """The sink for ``out`` (a video file, or a folder for one ending in a slash or naming a folder), checked before
    any work. ``stamp``: :func:`fingerprint` of this conversion; ``resume``: continue the finished segments of an
    interrupted run of the same conversion; ``overwrite``: replace a frame folder that holds files, and (without
    ``resume``) discard an interrupted run's segments."""
    folder = wants_folder(out)
    path = Path(out)
    check_output(path, source, folder, overwrite)
    work = WorkFolder(path, stamp, resume, overwrite)
    try:
        return ResumableFolderSink(path, work) if folder else SegmentedVideoSink(path, source, timeline, options, work)
    except BaseException:
        work.release() if work.resumed else work.remove()
        raise
