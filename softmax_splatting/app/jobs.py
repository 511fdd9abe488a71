"""The page's conversions: one request, the command line it stands for, run in a thread and in a folder of its own.

The page adds no conversion of its own. A request (the dropped files and the settings) becomes the argument list
of ``softsplat-interpolate`` (:func:`video_arguments`, :func:`pair_arguments`), which the tool's own parser and
checks read, and the tool's ``run_video`` / ``run_pair`` do the work; so the page writes what the command line
writes, audio included, and refuses what it refuses with the same one-line messages. What the page adds is how it
is watched and stopped: a :class:`Job` counts the frames done and estimates the time left, and its Cancel is checked
between the conversion's steps (``run_video``'s ``stop``). Every job writes into a folder of its own, which is
removed whole when the job fails or is cancelled, so nothing is left behind but finished results, and those only
until the page closes (:class:`JobBoard`).

Nothing here imports Gradio: ``page.py`` lays out the page over it, and the tests run it without a browser.
"""

from __future__ import annotations

import itertools
import shlex
import shutil
import sys
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence, Tuple

from .. import frames
from ..cli import interpolate
from ..errors import Interrupted, UsageError, first_line
from ..files import atomic_path, natural_key
from ..interpolator import CLASSICAL, DEFAULT_CHECKPOINT, PUBLISHED_NAMES, published_candidates
from ..video import MAX_FRAMES_PER_INTERVAL, SCENE_THRESHOLD
from . import preview

__all__ = ['Settings', 'Job', 'JobBoard', 'RATES', 'classify', 'model_choices', 'pair_arguments', 'video_arguments']

RATES = ('factor', 'fps', 'slow motion')  # how the output's frames are chosen: --factor, --fps or --slow-motion
CHECKPOINT_SUFFIXES = ('.pt', '.pth', '.pytorch', '.ckpt')
_POLL = 0.2  # seconds between looks at a job that is being waited for


@dataclass
class Settings:
    """What the page asks: the model (``--model``), how the frame rate changes and the scene-cut threshold."""

    model: str = CLASSICAL
    rate: str = 'factor'            # one of RATES
    factor: int = 2                 # --factor; for two images: factor N gives the N - 1 frames between them
    fps: str = '60'                 # --fps
    slow_motion: int = 4            # --slow-motion
    scene_threshold: float = SCENE_THRESHOLD
    device: str = 'auto'            # --device, as the app was started


def model_choices(weights: Path = DEFAULT_CHECKPOINT.parent, extra: Optional[str] = None) -> List[Tuple[str, str]]:
    """(label, ``--model`` value) of every interpolator the page offers: the classical one, each checkpoint in
    ``weights`` (MainNet files and the published SoftSplat weights, told apart when loaded) and the published weights
    where ``--model l1|lf`` finds them; ``extra``, a path given to the app, comes first after the classical one."""
    choices = [('classical (training-free)', CLASSICAL)]
    if extra is not None and extra != CLASSICAL:
        choices.append((f'{Path(extra).name} (given with --model)', str(extra)))
    seen = {str(Path(extra).resolve())} if extra is not None and extra != CLASSICAL else set()
    found = sorted((p for p in weights.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES
                    and not p.name.startswith('.')), key=natural_key) if weights.is_dir() else []
    for name in PUBLISHED_NAMES:
        found += [path for path in published_candidates(name)[1:] if path.is_file()]
    for path in found:
        if str(path.resolve()) in seen:
            continue
        seen.add(str(path.resolve()))
        if path.name.startswith('network-') or path.name.startswith('softsplat-'):
            kind = 'published SoftSplat weights'
        elif path.resolve() == DEFAULT_CHECKPOINT.resolve():
            kind = 'learned preview, MainNet'
        else:
            kind = 'checkpoint'
        choices.append((f'{path.name} ({kind})', str(path)))
    return choices


def classify(paths: Sequence[str]) -> Tuple[str, List[Path]]:
    """('video', [file]) or ('pair', [first, second]) for the dropped files (two images in name order); UsageError
    for anything else."""
    files = [Path(p) for p in paths]
    images = [p for p in files if p.suffix.lower() in frames.IMAGE_SUFFIXES]
    if not files:
        raise UsageError('drop a video, or two images')
    if len(files) == 1 and not images:
        return 'video', files
    if len(files) == 2 and len(images) == 2:
        return 'pair', sorted(files, key=natural_key)
    if len(images) == 1 and len(files) == 1:
        raise UsageError(f'{files[0].name} is one image; drop two images (the frames to interpolate between), or a '
                         f'video')
    names = ', '.join(p.name for p in files[:4]) + (', ...' if len(files) > 4 else '')
    raise UsageError(f'{len(files)} files dropped ({names}); drop one video, or two images')


def _model_arguments(settings: Settings) -> List[str]:
    return ['--model', settings.model] + (['--device', settings.device] if settings.device != 'auto' else [])


def video_arguments(video: Path, out: Optional[Path], settings: Settings) -> List[str]:
    """``softsplat-interpolate`` arguments converting ``video`` into ``out`` (None: the tool's default name) as
    ``settings`` ask."""
    rate = {'factor': ['--factor', str(settings.factor)], 'fps': ['--fps', str(settings.fps).strip()],
            'slow motion': ['--slow-motion', str(settings.slow_motion)]}
    if settings.rate not in rate:
        raise UsageError(f'the frame rate is chosen by one of {", ".join(RATES)}, not {settings.rate!r}')
    return ['--video', str(video), *(['--out', str(out)] if out is not None else []), *rate[settings.rate],
            *_model_arguments(settings), '--scene-threshold', f'{settings.scene_threshold:g}']


def pair_times(factor: int) -> List[float]:
    """The times of the ``factor - 1`` frames between two images, as ``--factor`` spaces a video's."""
    if not 2 <= factor <= MAX_FRAMES_PER_INTERVAL:
        raise UsageError(f'--factor must be from 2 to {MAX_FRAMES_PER_INTERVAL}, got {factor}')
    return [step / factor for step in range(1, factor)]


def pair_arguments(one: Path, two: Path, out: Path, settings: Settings) -> List[str]:
    """``softsplat-interpolate`` arguments for the frames between two images (``settings.factor``)."""
    if settings.rate != 'factor':
        raise UsageError(f'{settings.rate} applies to a video; two images take the factor (factor N: the N - 1 '
                         f'frames between them)')
    return ['--one', str(one), '--two', str(two), '--out', str(out),
            '--time', *(f'{t:.6g}' for t in pair_times(int(settings.factor))), *_model_arguments(settings)]


def shown_command(arguments: Sequence[str], names: Dict[str, str]) -> str:
    """The command line a job stands for, with the uploads' own names and its output's name."""
    return shlex.join(['softsplat-interpolate'] + [names.get(argument, argument) for argument in arguments])


class Job:
    """One conversion in a thread of its own, writing into ``folder`` (removed whole unless the job succeeds).

    ``state``: 'running', then 'done', 'failed' or 'cancelled'; ``message`` the last line (the tool's ``wrote ...``
    line, or ``error: ...``), ``outputs`` what it wrote, and for a pair ``extras``: the preview files. The job is
    also the progress object that ``run_video`` updates (``update``, ``write``, and the context manager's methods).
    """

    def __init__(self, kind: str, inputs: Sequence[Path], settings: Settings, folder: Path, models: 'ModelCache',
                 names: Optional[Dict[str, str]] = None):
        self.kind, self.inputs, self.settings, self.folder = kind, [Path(p) for p in inputs], settings, folder
        self.models = models
        self.names = dict(names or {})  # full path -> what the user knows it as (upload names, output names)
        for path in self.inputs:
            self.names.setdefault(str(path), path.name)
        self.state = 'running'
        self.message = 'starting'
        self.outputs: List[Path] = []
        self.extras: Dict[str, Path] = {}
        self.middle_time = 0.5  # a pair: the time of the frame the page compares with the cross-fade
        self.log: List[str] = []
        self.notices: List[str] = []  # what the command line would print on stderr beside its last line
        self.done = 0
        self.total: Optional[int] = None
        self.started: Optional[float] = None  # when the first frame came
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name='page-job', daemon=True)
        self.arguments = self._arguments()

    def _arguments(self) -> List[str]:
        """The tool's arguments (UsageError for a request it could never take); then the job's folder is made."""
        if self.kind == 'video':
            source = self.inputs[0]
            # the name the command line would give it, from its own options
            named = interpolate.build_parser().parse_args(video_arguments(source, None, self.settings))
            out = self.folder / interpolate.default_video_name(named, SimpleNamespace(path=source))
            arguments = video_arguments(source, out, self.settings)
        else:
            out = self.folder / f'{self.inputs[0].stem}-interpolated.png'
            arguments = pair_arguments(self.inputs[0], self.inputs[1], out, self.settings)
        self.names.setdefault(str(out), out.name)
        self.out = out
        self.folder.mkdir(parents=True)
        return arguments

    def command(self) -> str:
        return shown_command(self.arguments, self.names)

    def start(self) -> 'Job':
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the job has ended (True) or ``timeout`` seconds have passed (False)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def finished(self) -> bool:
        return self.state != 'running'

    # the progress protocol of run_video
    def __enter__(self) -> 'Job':
        return self

    def __exit__(self, *_) -> bool:
        return False

    def update(self, count: int) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.done += count

    def write(self, line: str) -> None:
        self.log.append(self.shown(line))

    def _stop(self) -> None:
        if self._cancel.is_set():
            raise Interrupted('cancelled', 130)

    def shown(self, text: str) -> str:
        """``text`` with the folders of uploads and results left out: names as the user knows them."""
        for path, name in sorted(self.names.items(), key=lambda item: -len(item[0])):
            text = text.replace(path, name)
        return text.replace(f'{self.folder}/', '')

    def status(self) -> str:
        """One line: the frames done and the time left while running; else the outcome, then the tool's notices
        (a line each)."""
        if self.state != 'running':
            return '\n'.join([self.message] + self.notices)
        if self.kind == 'pair':
            return 'interpolating the frames between the two images'
        if self.done == 0:
            return 'loading the model and the first frames'
        name = self.names.get(str(self.inputs[0]), self.inputs[0].name)
        if self.total:
            done = min(self.done, self.total)
            line = f'converting {name}: {done} of {self.total} frames'
            if self.done >= 2 and self.started is not None:
                left = (time.monotonic() - self.started) / self.done * max(self.total - self.done, 0)
                line += f', {_clock(left)} left'
            return line
        return f'converting {name}: {self.done} frames'

    def _run(self) -> None:
        try:
            args = interpolate.build_parser().parse_args(self.arguments)
            interpolate.check_options(args)
            device = interpolate.select_device(args.device)
            models = self.models.models_for(args.model, str(device))
            if self.kind == 'video':
                self.total = _total_frames(self.inputs[0])
                interpolate.run_video(args, device, args.video[0], args.out, models, self, stop=self._stop,
                                      report=self.write)
                self.outputs = [self.out]
            else:
                self.outputs = interpolate.run_pair(args, device, models, report=self.write)
                self._stop()
                self._pair_extras(args.time)
            self._stop()
            self.message = self.log[-1] if self.log else f'wrote {self.out.name}'
            if self.kind == 'video':  # the tool's remarks on stderr (audio dropped, damaged frames, ...)
                self.notices = self.log[:-1]
            if self.kind == 'pair' and len(self.outputs) > 1:
                self.message = f'wrote {len(self.outputs)} frames between the two images, {self.outputs[0].name} to ' \
                               f'{self.outputs[-1].name}; {self.extras["download"].name} holds them'
            self.state = 'done'
        except Interrupted:
            self._discard('cancelled; nothing was kept')
            self.state = 'cancelled'
        except UsageError as error:
            self._discard(self.shown(f'error: {error}'))
            self.state = 'failed'
        except Exception as error:  # noqa: BLE001 - a fault of ours: the page says so, the terminal has the details
            traceback.print_exc(file=sys.stderr)
            self._discard(f'error: the conversion failed unexpectedly ({self.shown(first_line(error))}); the '
                          f'terminal that runs the page has the details')
            self.state = 'failed'

    def _discard(self, message: str) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.outputs, self.extras = [], {}
        self.message = message

    def _pair_extras(self, times: Sequence[float]) -> None:
        """What the page shows of a pair: the cross-fade of the two images beside the middle frame, a loop from the
        first image to the second and back, and one file to download (the frame, or a zip of the frames)."""
        one, two = frames.read_image(self.inputs[0]), frames.read_image(self.inputs[1])
        nearest = min(range(len(times)), key=lambda index: abs(times[index] - 0.5))
        middle, self.middle_time = self.outputs[nearest], times[nearest]
        fade = self.folder / 'cross-fade.png'
        frames.write_image(fade, preview.cross_fade(one, two))
        self.extras['cross_fade'], self.extras['middle'] = fade, middle
        sequence = [one] + [frames.read_image(path) for path in self.outputs] + [two]
        self._stop()
        loop = self.folder / 'loop.mp4'
        preview.write_loop(sequence, loop)
        self.extras['loop'] = loop
        if len(self.outputs) == 1:
            self.extras['download'] = self.outputs[0]
            return
        archive = self.out.with_suffix('.zip')
        with atomic_path(archive) as temporary, zipfile.ZipFile(temporary, 'w') as bundle:
            for path in self.outputs:
                bundle.write(path, path.name)
        self.extras['download'] = archive


def _total_frames(path: Path) -> Optional[int]:
    from ..video import open_source  # noqa: PLC0415

    try:
        source = open_source(str(path))
    except UsageError:
        return None  # the conversion itself reports it
    try:
        return source.total
    finally:
        source.close()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f'{hours}:{rest // 60:02d}:{rest % 60:02d}' if hours else f'{rest // 60}:{rest % 60:02d}'


class ModelCache:
    """The model of the last job, kept for the next one with the same ``--model`` and device (loading a network
    takes seconds); another model replaces it, so that only one is held in memory."""

    def __init__(self):
        self._key: Optional[Tuple[str, str]] = None
        self._models: dict = {}

    def models_for(self, model: Optional[str], device: str) -> dict:
        if self._key != (model, device):
            self._key, self._models = (model, device), {}
        return self._models


class JobBoard:
    """Every page session's current job, in the app's work folder: a session's new job replaces its last one (whose
    files go), one that closes takes its job with it, and :meth:`close` cancels all and removes the folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.models = ModelCache()
        self._jobs: Dict[str, Job] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def start(self, session: str, paths: Sequence[str], settings: Settings,
              names: Optional[Dict[str, str]] = None) -> Job:
        """Start the job of ``paths`` (a video, or two images) for ``session``; UsageError before any work for a
        request the tool would refuse on its face (files, rate for a pair)."""
        kind, inputs = classify(paths)
        self.forget(session)
        with self._lock:
            folder = self.folder / 'jobs' / f'{next(self._numbers):04d}'
            job = Job(kind, inputs, settings, folder, self.models, names)
            self._jobs[session] = job
        return job.start()

    def job(self, session: str) -> Optional[Job]:
        return self._jobs.get(session)

    def cancel(self, session: str) -> bool:
        """Cancel ``session``'s running job; False when none runs."""
        job = self._jobs.get(session)
        if job is None or job.finished:
            return False
        job.cancel()
        return True

    def forget(self, session: str) -> None:
        """Cancel ``session``'s job and remove its files (the session closed, or starts another)."""
        with self._lock:
            job = self._jobs.pop(session, None)
        if job is not None:
            job.cancel()
            job.wait()
            shutil.rmtree(job.folder, ignore_errors=True)

    def running(self) -> int:
        return sum(not job.finished for job in list(self._jobs.values()))

    def close(self) -> int:
        """Cancel every job, wait for each to end, remove the work folder; returns how many were running."""
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        running = sum(not job.finished for job in jobs)
        for job in jobs:
            job.cancel()
        for job in jobs:
            job.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
        return running
