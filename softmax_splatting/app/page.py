"""The page: drop a video or two images, choose the model and the frame rate, watch it convert, compare, download.

Built with Gradio, the convention of interpolation demos, and laid out as the tools that practitioners know
(Flowframes, RIFE's GUIs) are: input and settings on top, Convert and Cancel, a status line with the frames done and
the time left, then the result beside the input (a video beside its input, the two players playing as one, see
``sync.js``; for two images a slider between their cross-fade and the interpolated frame, and a loop through the
frames) and a download button. Every request goes through ``jobs.py``, that is through the command-line tool; this
module only connects the page's controls to it. Nothing is fetched from outside: the theme uses fonts that ship
with Gradio, and the tool's launcher turns analytics off (``cli/app.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import gradio as gr

from .. import frames
from ..errors import UsageError
from ..video import MAX_FRAMES_PER_INTERVAL, SCENE_THRESHOLD
from . import jobs, preview

__all__ = ['build', 'SYNC_SCRIPT', 'STYLE']

SYNC_SCRIPT = (Path(__file__).parent / 'sync.js').read_text()
STYLE = '#status textarea { font-family: var(--font-mono); }'
_WAIT = 0.5  # seconds between status updates while a job runs
_BEFORE = 'First | second image'


def _session(request: Optional[gr.Request]) -> str:
    return getattr(request, 'session_hash', None) or 'local'


def _names(paths: Sequence[str]) -> Dict[str, str]:
    """Uploads lie in Gradio's folder as .../<hash>/<name>: the user knows them by <name>."""
    return {str(path): Path(path).name for path in paths}


def _describe_video(path: Path) -> str:
    from ..video import open_source  # noqa: PLC0415

    source = open_source(str(path))
    try:
        length = source.declared_length()
        parts = [f'{source.width}x{source.height}', f'{float(source.rate):.6g} fps']
        if source.total:
            parts.append(f'{source.total} frames' + (f' ({float(length):.2f} s)' if length else ''))
        parts.append(', '.join(f'audio {a.codec}' for a in source.audio) if source.audio else 'no audio')
        return f'{path.name}: {", ".join(parts)}'
    finally:
        source.close()


def build(board: jobs.JobBoard, models: List[Tuple[str, str]], selected: str = 'classical',
          device: str = 'auto') -> gr.Blocks:
    """The page over ``board``; ``models``: (label, ``--model`` value) offered, ``selected`` the one preselected;
    ``device``: the ``--device`` of every conversion."""
    previews = board.folder / 'previews'

    def dropped(paths: Optional[List[str]], before: Optional[List[str]]):
        """Files were dropped: say what they are (or why they cannot be converted) and show them. Files dropped
        onto earlier ones replace them when they make a request of their own (a video, two images), as in
        Flowframes; else they join them (the second image after the first)."""
        paths, before = list(paths or []), list(before or [])
        added = [path for path in paths if path not in before]
        replaced = False
        if added and len(added) < len(paths):
            try:
                jobs.classify(added)
                paths, replaced = added, True
            except UsageError:
                pass
        hide = {videos: gr.update(visible=False), images: gr.update(visible=False),
                download: gr.update(visible=False), command: '', kept: paths,
                dropped_files: paths if replaced else gr.update()}
        if not paths:
            return {status: 'Drop a video, or two images.', **hide}
        try:
            kind, inputs = jobs.classify(paths)
            if kind == 'pair':
                sizes = []
                for path in inputs:
                    image = frames.read_image(path)
                    sizes.append(f'{path.name} ({image.shape[1]}x{image.shape[0]})')
                return {status: f'two images: {sizes[0]}, then {sizes[1]}', **hide,
                        images: gr.update(visible=True), loop: None,
                        slider: gr.update(value=(str(inputs[0]), str(inputs[1])), label=_BEFORE)}
            about = _describe_video(inputs[0])
            shown = inputs[0]
            if not preview.browser_playable(shown):
                previews.mkdir(parents=True, exist_ok=True)
                shown = preview.browser_copy(inputs[0], previews / f'{len(list(previews.iterdir())):04d}.mp4')
                about += ' (shown through a copy browsers play)'
            return {status: about, **hide, videos: gr.update(visible=True),
                    source: str(shown) if shown else None, result: None}
        except UsageError as error:
            line = f'error: {error}'
            for path in paths:  # each upload lies in a folder of its own
                line = line.replace(f'{Path(path).parent}/', '')
            return {status: line, **hide}

    def convert(paths, model_value, rate_value, factor_value, fps_value, slow_value, threshold_value,
                request: gr.Request):
        """Start the job and report on it until it ends; a closed page or Cancel stops it."""
        session = _session(request)
        settings = jobs.Settings(model=model_value, rate=rate_value, factor=_integer(factor_value, 2),
                                 fps=str(fps_value or ''), slow_motion=_integer(slow_value, 4),
                                 scene_threshold=float(threshold_value), device=device)
        try:
            job = board.start(session, paths or [], settings, _names(paths or []))
        except UsageError as error:
            yield {status: f'error: {error}', bar: '', download: gr.update(visible=False)}
            return
        yield {status: job.status(), bar: _bar(job), download: gr.update(visible=False), command: _command(job),
               result: None}
        try:
            while not job.wait(_WAIT):
                yield {status: job.status(), bar: _bar(job)}
        except GeneratorExit:  # the page went away mid-conversion (or Gradio cancelled the event)
            board.cancel(session)
            raise
        if job.state != 'done':
            yield {status: job.status(), bar: ''}
            return
        if job.kind == 'video':
            yield {status: job.status(), bar: '', result: str(job.outputs[0]), videos: gr.update(visible=True),
                   images: gr.update(visible=False),
                   download: gr.update(visible=True, value=str(job.outputs[0]), label=f'Download {job.out.name}')}
            return
        extras = job.extras
        middle = f'{extras["middle"].name}, t = {job.middle_time:g}'
        yield {status: job.status(), bar: '', images: gr.update(visible=True), videos: gr.update(visible=False),
               slider: gr.update(value=(str(extras['cross_fade']), str(extras['middle'])),
                                 label=f'Cross-fade | interpolated ({middle})'),
               loop: str(extras['loop']),
               download: gr.update(visible=True, value=str(extras['download']),
                                   label=f'Download {extras["download"].name}')}

    def cancelled(request: gr.Request):
        if not board.cancel(_session(request)):
            return {status: gr.update()}
        return {status: 'cancelling'}

    def closed(request: gr.Request):
        board.forget(_session(request))

    def rate_changed(rate_value):
        return {factor: gr.update(visible=rate_value == 'factor'), fps: gr.update(visible=rate_value == 'fps'),
                slow: gr.update(visible=rate_value == 'slow motion')}

    with gr.Blocks(title='Softmax Splatting: frame interpolation', analytics_enabled=False,
                   delete_cache=(3600, 24 * 3600)) as page:
        gr.Markdown('## Softmax Splatting: frame interpolation\nDrop a video to raise its frame rate or slow it '
                    'down, or two images for the frames between them. Everything runs on this machine.')
        with gr.Row():
            with gr.Column(scale=3):
                dropped_files = gr.File(label='A video, or two images (in name order)', file_count='multiple',
                                        elem_id='input-files')
            with gr.Column(scale=2):
                model = gr.Dropdown(models, value=selected, label='Model', elem_id='model')
                rate = gr.Radio(list(jobs.RATES), value='factor', label='Frame rate', elem_id='rate',
                                info='factor: N times the frames, same duration; fps: a target rate; slow motion: '
                                     'K times the frames at the input\'s rate (the audio is dropped)')
                factor = gr.Number(2, precision=0, minimum=2, maximum=MAX_FRAMES_PER_INTERVAL, label='Factor N',
                                   info='two images: the N - 1 frames between them', elem_id='factor')
                fps = gr.Textbox('60', label='Target fps', info='e.g. 60, 59.94 or 24000/1001', visible=False,
                                 elem_id='fps')
                slow = gr.Number(4, precision=0, minimum=2, maximum=MAX_FRAMES_PER_INTERVAL, label='Slow motion K',
                                 visible=False, elem_id='slow-motion')
                threshold = gr.Slider(0, 1, value=SCENE_THRESHOLD, step=0.01, label='Scene-cut threshold',
                                      info='frames across a cut repeat instead of blending; 0: no detection',
                                      elem_id='scene-threshold')
                with gr.Row():
                    start = gr.Button('Convert', variant='primary', elem_id='convert')
                    stop = gr.Button('Cancel', variant='stop', elem_id='cancel')
        status = gr.Textbox('Drop a video, or two images.', label='Status', interactive=False, lines=1, max_lines=8,
                            elem_id='status')
        bar = gr.HTML('', elem_id='progress')
        with gr.Row(visible=False) as videos:
            source = gr.Video(label='Input', interactive=False, elem_id='source')
            result = gr.Video(label='Result', interactive=False, elem_id='result')
        with gr.Row(visible=False) as images:
            slider = gr.ImageSlider(label=_BEFORE,
                                    type='filepath', format='png', interactive=False, elem_id='slider')
            loop = gr.Video(label='First image to second and back', interactive=False, autoplay=True, loop=True,
                            elem_id='loop')
        download = gr.DownloadButton('Download', visible=False, variant='primary', elem_id='download')
        command = gr.Markdown('', elem_id='command')

        kept = gr.State([])
        shown = [status, videos, images, download, command, source, result, slider, loop, kept, dropped_files]
        dropped_files.change(dropped, [dropped_files, kept], shown, show_progress='minimal')
        rate.change(rate_changed, rate, [factor, fps, slow], queue=False, show_progress='hidden')
        start.click(convert, [dropped_files, model, rate, factor, fps, slow, threshold],
                    [status, bar, download, command, result, slider, loop, videos, images], concurrency_limit=1,
                    concurrency_id='conversion', show_progress='minimal', show_progress_on=[status])
        stop.click(cancelled, None, [status], queue=False, show_progress='hidden')
        page.unload(closed)
    return page


def _integer(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _bar(job: jobs.Job) -> str:
    if job.finished or not job.total:
        return ''
    return f'<progress value="{min(job.done, job.total)}" max="{job.total}" style="width: 100%"></progress>'


def _command(job: jobs.Job) -> str:
    return f'The same from a terminal: `{job.command()}`'
