"""Choose the frame interpolator for the command-line tools: a trained model's file or the classical one.

The paper's interpolator (Niklaus & Liu, CVPR 2020: flow, feature pyramid, softmax splatting, GridNet synthesis) only
works with trained weights. A fresh clone has none, so every tool (run_a_pair.py, benchmark_middlebury.py,
benchmark_xiph.py) falls back to the training-free :class:`classical.ClassicalInterpolator` and says so, rather than
failing: ``--model`` accepts the path of a model file (a MainNet checkpoint, or the released SoftSplat weights
``network-l1/-lf.pytorch``: ``models.py`` tells them apart by what they hold), the word ``classical``, or a
comparison model of ``baselines.py``
(``dis-blend``, ``average``); without it, ``weights/softsplat.pt`` is used when present and declared the default
(``CHECKPOINT_IS_DEFAULT``: only once it beats the classical interpolator), else the classical one.

All kinds share one duck-typed interface, :class:`Interpolator`: ``interpolate(one, two, times)`` takes
``[N, 3, H, W]`` float RGB in [0, 1] and a sequence of times in [0, 1] and returns one ``[N, 3, H, W]`` tensor per
time. The networks are imported only when a file is loaded, so the classical path needs nothing but OpenCV.

Half precision (``fp16=True``) runs the network under ``torch.autocast`` in float16 and returns float32 frames. It
is accepted only for a trained model on a CUDA device: on a CPU, or with the classical interpolator (whose flow is
computed by OpenCV on 8-bit images), it would be slower or meaningless, so it is rejected with a UsageError instead
of being silently ignored.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, Protocol, Sequence

import torch

from .errors import UsageError
from .files import not_a_file

__all__ = ['BASELINES', 'CLASSICAL', 'DEFAULT_CHECKPOINT', 'Interpolator', 'PUBLISHED_NAMES', 'load_interpolator',
           'published_weights']

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / 'weights' / 'softsplat.pt'
CLASSICAL = 'classical'
# The comparison models of baselines.py, by name: what flow without occlusion reasoning, and no flow at all, give.
BASELINES = ('dis-blend', 'average')
# The shipped checkpoint becomes the default only once it measurably beats the classical interpolator on the DAVIS
# test split and on Middlebury (weights/README.md keeps the table); until then it is opt-in with --model.
CHECKPOINT_IS_DEFAULT = False
# The released SoftSplat weights by the names its run.py gives them (``--model l1|lf``): looked for in weights/, then
# where torch hub keeps what that script downloaded; never downloaded here.
PUBLISHED_NAMES = ('l1', 'lf')
PUBLISHED_URL = 'http://content.sniklaus.com/softsplat/network-{}.pytorch'


class Interpolator(Protocol):
    """Anything that interpolates frames: ``[N, 3, H, W]`` float RGB in [0, 1] in, one such tensor per time out.

    The classical interpolator and both networks also take ``before``/``after`` (the neighbouring frames, for
    quadratic motion), precomputed ``flows`` and ``outer`` flows, and have ``estimate_flows(one, two)``; the
    comparison models of ``baselines.py`` do not (``conversion.supports_motion`` tells them apart)."""

    def interpolate(self, one: torch.Tensor, two: torch.Tensor, times: Sequence[float]) -> List[torch.Tensor]:
        ...


class _Autocast:
    """Runs a CUDA interpolator under float16 autocast; frames come back in the dtype of the input."""

    def __init__(self, inner: Interpolator):
        self.inner = inner

    def interpolate(self, one: torch.Tensor, two: torch.Tensor, times: Sequence[float],
                    **neighbours) -> List[torch.Tensor]:
        with torch.autocast(device_type='cuda', dtype=torch.float16):
            results = self.inner.interpolate(one, two, times, **neighbours)
        return [result.to(one.dtype) for result in results]

    def estimate_flows(self, one: torch.Tensor, two: torch.Tensor):
        with torch.autocast(device_type='cuda', dtype=torch.float16):
            return tuple(flow.float() for flow in self.inner.estimate_flows(one, two))


def load_interpolator(spec: Optional[str], device: torch.device, fp16: bool = False) -> Interpolator:
    """Return the interpolator that ``spec`` names, ready for inputs on ``device``.

    Args:
        spec: None (``DEFAULT_CHECKPOINT`` if that file exists and ``CHECKPOINT_IS_DEFAULT``, else the classical
            interpolator, with a one-line notice on stderr), ``'classical'``, a comparison model of ``BASELINES``
            (``'dis-blend'``, ``'average'``), ``'l1'``/``'lf'`` (the published SoftSplat weights where
            :func:`published_weights` finds them), or the path of a model file: a MainNet checkpoint or the
            published weights (``network-l1.pytorch``, ``network-lf.pytorch``, or a fine-tuned file of that layout).
        device: where the inputs will live; a checkpoint is loaded onto it.
        fp16: run a trained model in float16 autocast (CUDA only).

    Raises:
        UsageError: a one-line message (naming the path) if the checkpoint is missing or cannot be loaded, or if
            ``fp16`` is asked for where it does not apply.
    """
    device = torch.device(device)
    if spec is None:
        present = Path(DEFAULT_CHECKPOINT).is_file()
        if present and CHECKPOINT_IS_DEFAULT:
            spec = str(DEFAULT_CHECKPOINT)
        elif present:
            print(f'using the training-free classical interpolator; {_shown(DEFAULT_CHECKPOINT)} is a preview of the '
                  f'learned model (--model {_shown(DEFAULT_CHECKPOINT)})', file=sys.stderr)
            spec = CLASSICAL
        else:
            print(f'no trained weights at {_shown(DEFAULT_CHECKPOINT)}; using the training-free classical '
                  f'interpolator (--model {CLASSICAL})', file=sys.stderr)
            spec = CLASSICAL
    if spec in (CLASSICAL,) + BASELINES:
        if fp16:
            raise UsageError(f'--fp16 applies to a trained model on CUDA, not to --model {spec} '
                             f'(it has no network)')
        from . import baselines, classical  # noqa: PLC0415 - only these paths need OpenCV's DIS
        return {CLASSICAL: classical.ClassicalInterpolator, 'dis-blend': baselines.DisBlend,
                'average': baselines.FrameAverage}[spec]()
    if fp16 and device.type != 'cuda':
        raise UsageError(f'--fp16 needs a CUDA device; the model would run on {device}')
    path = published_weights(spec) if spec in PUBLISHED_NAMES else Path(spec)
    return _load_checkpoint(path, device, fp16)


def published_candidates(name: str) -> List[Path]:
    """Where ``--model l1|lf`` looks, in order: ``weights/network-NAME.pytorch``, then torch hub's copy
    (``$TORCH_HOME/hub/checkpoints/softsplat-NAME``, the name the release's script saves it under)."""
    return [DEFAULT_CHECKPOINT.parent / f'network-{name}.pytorch',
            Path(torch.hub.get_dir()) / 'checkpoints' / f'softsplat-{name}']


def published_weights(name: str) -> Path:
    """The file of the published weights ``name`` ('l1' or 'lf'); UsageError saying where to put it if absent."""
    candidates = published_candidates(name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UsageError(f'--model {name}: the published weights network-{name}.pytorch are not on this machine, and '
                     f'nothing is downloaded: get them from {PUBLISHED_URL.format(name)} and put them at '
                     f'{_shown(candidates[0])} (or {candidates[1]}, where torch hub keeps them), or give their path')


def _load_checkpoint(path: Path, device: torch.device, fp16: bool) -> Interpolator:
    problem = not_a_file(path, 'checkpoint file')
    if problem is not None:
        raise UsageError(f'{path}: {problem} (give a MainNet checkpoint or the published SoftSplat weights, or '
                         f'--model {CLASSICAL} for the training-free interpolator)')
    try:
        from . import models  # noqa: PLC0415 - heavy, and not needed by the classical path
        model = models.read_model(path, map_location=device)
    except Exception as error:  # any failure to load is the user's file or setup: report it in one line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        # the models' own messages already start with the path; do not name it twice.
        message = reason if str(path) in reason else f'{path}: cannot load the model file: {reason}'
        raise UsageError(message) from None
    return _Autocast(model) if fp16 else model


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it (shorter messages), else absolute."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
