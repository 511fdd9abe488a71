"""The released SoftSplat model as one interpolator: its flow and synthesis networks, its input handling, its files.

The only trained SoftSplat weights in existence are those of the authors' 2022 release (``network-l1.pytorch``,
trained with a Laplacian L1 loss, and ``network-lf.pytorch``, fine-tuned with a feature loss); their script runs
them on CUDA only. :class:`PublishedNet` holds the same two halves (``netFlow``: ``flow.FlowNet``,
``netSynthesis``: ``synthesis.Synthesis``), so its ``state_dict`` is theirs key for key, and handles the input
the way that script does:

1. pad both frames on the right and bottom to even sizes, replicating the edge (frames of any size work);
2. move them into the network's BGR channel order (our API is RGB in and out);
3. normalise both by their joint mean and standard deviation (per sample, without gradient; the release's
   population statistics of the two frames pooled), and map the network's output back with the same two numbers.

Flow, encodings and metrics are computed once per pair for any number of times (the release recomputes them per
time; the arithmetic per frame is the same). With the frames before and after the pair (``before``/``after``) or
the flows to them (``outer``), each frame moves along a quadratic path (``motion.py``) instead of ``t F``; the
video path passes the flows it has computed already. Frames come back clipped to [0, 1].

Files: a plain state_dict of tensors, as the release stores it, keys ``netFlow...``/``netSynthesis...`` or with
``module`` for ``net`` (the release's loader maps one to the other); :meth:`PublishedNet.save` writes the release's
own spelling, so its script reads our fine-tuned weights back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..files import atomic_path, load_checkpoint, non_finite, state_mismatch
from ..motion import Motion
from ..pairs import as_times, check_neighbours, check_pair, pad_to_multiple, quadratic_paths
from .flow import FlowNet
from .synthesis import PreparedPair, Synthesis

__all__ = ['PublishedNet', 'LAYOUT_PREFIXES', 'is_published_layout', 'published_keys', 'EXPECTED_TENSORS',
           'EXPECTED_PARAMETERS']

LAYOUT_PREFIXES = ('netFlow.', 'netSynthesis.')
EXPECTED_TENSORS = 278
EXPECTED_PARAMETERS = 7_668_852
MULTIPLE = 2  # the release pads to even sizes
STD_EPSILON = 1e-7
Flows = Tuple[torch.Tensor, torch.Tensor]
Outer = Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]


def published_keys(state: Mapping[str, object]) -> Dict[str, object]:
    """``state`` with the release's loader applied to its keys: every ``module`` spelled ``net``."""
    return {str(key).replace('module', 'net'): value for key, value in state.items()}


def is_published_layout(payload: object) -> bool:
    """Whether ``payload`` (what a checkpoint file holds) is a state_dict of the released model: a dict of tensors
    whose keys, in either spelling, all lie under ``netFlow.`` and ``netSynthesis.``, both present."""
    if not isinstance(payload, Mapping) or not payload:
        return False
    if not all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in payload.items()):
        return False
    keys = published_keys(payload)
    return all(key.startswith(LAYOUT_PREFIXES) for key in keys) and \
        all(any(key.startswith(prefix) for key in keys) for prefix in LAYOUT_PREFIXES)


@dataclass
class _Pair:
    """A frame pair as the networks see it, and what maps their output back: padded, BGR, normalised."""

    one: torch.Tensor        # [N, 3, H', W'] normalised BGR, H' and W' even
    two: torch.Tensor
    mean: torch.Tensor       # [N, 1, 1, 1]
    std: torch.Tensor
    size: Tuple[int, int]    # the caller's (H, W)


class PublishedNet(nn.Module):
    """The SoftSplat model of the 2022 release: ``netFlow`` (flow both ways) and ``netSynthesis``.

    Frames are ``[N, 3, H, W]`` float RGB in [0, 1], any H and W (the two of one shape); times floats or ``[N]``
    tensors in [0, 1]. ``forward(one, two, t)`` is the training path (the unclipped frame, differentiable);
    :meth:`interpolate` the inference path of every tool. Freshly built, the weights are PyTorch's defaults;
    :meth:`from_file` loads the release's files (``network-l1.pytorch``, ``network-lf.pytorch``) or our own.
    """

    def __init__(self):
        super().__init__()
        self.netFlow = FlowNet()
        self.netSynthesis = Synthesis()
        # Convolutions in channels-last layout: about twice as fast on our CPUs (oneDNN; 854 x 480 pairs, measured
        # side by side), and the layout GPUs prefer for half precision. Files are written contiguous.
        self.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------------------------------------ frames --

    def forward(self, one: torch.Tensor, two: torch.Tensor, t: Union[float, torch.Tensor] = 0.5,
                flows: Optional[Flows] = None) -> torch.Tensor:
        """The frame ``[N, 3, H, W]`` (RGB, not clipped) at time ``t`` between ``one`` and ``two``; ``flows``:
        precomputed (F0->1, F1->0) at the frames' size, used instead of the flow network's."""
        check_pair(one, two, flows)
        time, = as_times([t], one.shape[0])
        pair = self._normalise(one, two)
        flow_01, flow_10 = self._flows(pair, flows)
        prepared = self.netSynthesis.prepare(pair.one, pair.two, flow_01, flow_10)
        return self._frame(pair, prepared, flow_01, flow_10, None, self._time(time, t, one))

    def interpolate(self, one: torch.Tensor, two: torch.Tensor, times: Sequence[Union[float, torch.Tensor]],
                    flows: Optional[Flows] = None, before: Optional[torch.Tensor] = None,
                    after: Optional[torch.Tensor] = None, outer: Optional[Outer] = None) -> List[torch.Tensor]:
        """One frame ``[N, 3, H, W]`` in [0, 1] per entry of ``times``; flow, encodings and metrics once.

        ``before``/``after``: the frames before ``one`` and after ``two`` (either optional), for quadratic motion;
        ``flows``: precomputed (F0->1, F1->0); ``outer``: precomputed (F0->before, F1->after), either None; flows
        are ``[N, 2, H, W]`` in pixels at the frames' size.
        """
        check_pair(one, two, flows)
        check_neighbours(one, before, after)
        checked = as_times(times, one.shape[0])
        pair = self._normalise(one, two)
        flow_01, flow_10 = self._flows(pair, flows)
        paths = quadratic_paths(pad_to_multiple(one, MULTIPLE), pad_to_multiple(two, MULTIPLE), (flow_01, flow_10),
                                before, after, outer, self._padded_flow, MULTIPLE)
        prepared = self.netSynthesis.prepare(pair.one, pair.two, flow_01, flow_10)
        return [self._frame(pair, prepared, flow_01, flow_10, paths, self._time(time, given, one)).clamp(0.0, 1.0)
                for time, given in zip(checked, times)]

    def estimate_flows(self, one: torch.Tensor, two: torch.Tensor) -> Flows:
        """F0->1 and F1->0, each ``[N, 2, H, W]`` in pixels, by the flow network (on the normalised pair)."""
        check_pair(one, two)
        pair = self._normalise(one, two)
        height, width = pair.size
        return tuple(flow[:, :, :height, :width] for flow in self.netFlow(pair.one, pair.two))

    def estimate_flow(self, one: torch.Tensor, two: torch.Tensor) -> torch.Tensor:
        """F0->1 only, ``[N, 2, H, W]`` in pixels (a neighbour's flow for quadratic motion)."""
        check_pair(one, two)
        return self._padded_flow(one, two)[:, :, :one.shape[2], :one.shape[3]]

    def set_flow_trainable(self, trainable: bool) -> None:
        """Freeze (False) or unfreeze (True) the flow network."""
        for parameter in self.netFlow.parameters():
            parameter.requires_grad_(trainable)

    # --------------------------------------------------------------------------------------------- internals --

    @staticmethod
    def _normalise(one: torch.Tensor, two: torch.Tensor) -> _Pair:
        size = (one.shape[2], one.shape[3])
        with torch.no_grad():
            frames = [pad_to_multiple(image, MULTIPLE).flip(1) for image in (one, two)]  # RGB -> BGR
            means = [image.mean([1, 2, 3], keepdim=True) for image in frames]
            mean = (means[0] + means[1]) / 2
            variance = sum(image.var([1, 2, 3], unbiased=False, keepdim=True) + (mean - m).square()
                           for image, m in zip(frames, means)) / 2
            std = variance.sqrt()
            one, two = ((image - mean) / (std + STD_EPSILON) for image in frames)
        return _Pair(one.detach(), two.detach(), mean, std, size)

    def _flows(self, pair: _Pair, flows: Optional[Flows]) -> Flows:
        if flows is None:
            return self.netFlow(pair.one, pair.two)
        return tuple(pad_to_multiple(flow.to(pair.one), MULTIPLE) for flow in flows)

    def _padded_flow(self, one: torch.Tensor, two: torch.Tensor) -> torch.Tensor:
        pair = self._normalise(one, two)
        return self.netFlow(pair.one, pair.two, both=False)[0]

    @staticmethod
    def _time(checked: torch.Tensor, given: Union[float, torch.Tensor], like: torch.Tensor
              ) -> Union[float, torch.Tensor]:
        """A time as the release's arithmetic takes it: a Python float when one was given (so that 1 - t is
        computed as there), else ``[N, 1, 1, 1]``."""
        if not isinstance(given, torch.Tensor) or given.dim() == 0:
            return float(given)
        return checked.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1)

    def _frame(self, pair: _Pair, prepared: PreparedPair, flow_01: torch.Tensor, flow_10: torch.Tensor,
               paths: Optional[Tuple[Motion, Motion]], t: Union[float, torch.Tensor]) -> torch.Tensor:
        if paths is None:
            shift_one, shift_two = flow_01 * t, flow_10 * (1.0 - t)
        else:
            shift_one, shift_two = (path.at(s).to(flow_01.dtype) for path, s in zip(paths, (t, 1.0 - t)))
        out = self.netSynthesis.frame(prepared, shift_one, shift_two, t) * pair.std + pair.mean
        height, width = pair.size
        return out[:, :, :height, :width].flip(1)  # BGR -> RGB

    # ------------------------------------------------------------------------------------------------- files --

    def load_published_state(self, state: Mapping[str, torch.Tensor], source: str = 'state_dict') -> None:
        """Load a state_dict of the release's layout (``net`` or ``module`` keys); ValueError naming what does not
        fit (missing, unexpected, wrongly shaped, non-finite tensors) in one line."""
        state = published_keys(state)
        mismatch = state_mismatch(self.state_dict(), state)
        if mismatch:
            raise ValueError(f'{source}: weights do not fit the published SoftSplat layout ({mismatch})')
        broken = non_finite(state)
        if broken:
            more = f' and {len(broken) - 1} more' if len(broken) > 1 else ''
            raise ValueError(f'{source}: holds NaN or infinite weights ({broken[0]}{more}); use an earlier '
                             f'checkpoint')
        self.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], source: str = 'state_dict') -> 'PublishedNet':
        """A network with these weights (either key spelling), in eval mode."""
        model = cls()
        model.load_published_state(state, source)
        return model.eval()

    @classmethod
    def from_file(cls, path: Union[str, Path], map_location: Union[str, torch.device] = 'cpu') -> 'PublishedNet':
        """Load ``network-l1.pytorch``, ``network-lf.pytorch`` (or torch hub's ``softsplat-l1``/``-lf``), or a file
        of :meth:`save`, in eval mode. Raises FileNotFoundError or ValueError with a one-line message naming the
        file (truncated or corrupt, another kind of checkpoint, weights that do not fit, NaN or infinite values)."""
        path = Path(path)
        payload = load_checkpoint(path)
        if not is_published_layout(payload):
            raise ValueError(f'{path}: not a state_dict of the published SoftSplat model (expected the tensors '
                             f'netFlow.* and netSynthesis.* of network-l1/-lf.pytorch)')
        return cls.from_state_dict(payload, str(path)).to(map_location)

    def save(self, path: Union[str, Path], half: bool = False) -> None:
        """Write the weights as the release stores them (a plain state_dict, ``net`` keys), atomically; ``half``
        stores float16 (loaded back as float32)."""
        state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
                 for k, v in self.state_dict().items()}
        with atomic_path(path) as temporary:
            torch.save(state, temporary)
