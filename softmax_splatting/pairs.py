"""What every learned interpolator does with a frame pair before its network sees it: check it, pad it, read its
times, and find each frame's path to time t.

Both learned models (``main_net.MainNet``, our reimplementation of the paper's Fig. 4, and ``published.PublishedNet``,
the released 2022 model) take ``[N, 3, H, W]`` RGB frames of any size, pad them on the right and bottom to the
multiple their pyramids need (replicating the edge, as the published inference does), and accept times as floats or
``[N]`` tensors in [0, 1]. With the frames before and after the pair (or the flows to them), each frame moves along
a quadratic path through its neighbours instead of a straight line (``motion.py``; inference only). These rules live
here once so that the two models cannot drift apart.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from . import motion

__all__ = ['as_times', 'check_neighbours', 'check_pair', 'pad_to_multiple', 'quadratic_paths']

Flows = Tuple[torch.Tensor, torch.Tensor]
Outer = Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]


def check_pair(one: torch.Tensor, two: torch.Tensor, flows: Optional[Flows] = None) -> None:
    """ValueError unless ``one`` and ``two`` are ``[N, 3, H, W]`` tensors of one shape and ``flows``, when given,
    two ``[N, 2, H, W]`` tensors (F0->1, F1->0)."""
    for name, image in (('one', one), ('two', two)):
        if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
            shape = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f'{name} must be a [N, 3, H, W] tensor, got {shape}')
    if one.shape != two.shape:
        raise ValueError(f'one and two must have the same shape, got {list(one.shape)} and {list(two.shape)}')
    if flows is not None:
        n, _, h, w = one.shape
        if len(flows) != 2 or any(not isinstance(f, torch.Tensor) or tuple(f.shape) != (n, 2, h, w) for f in flows):
            raise ValueError(f'flows must be two [N, 2, H, W] = [{n}, 2, {h}, {w}] tensors (F0->1, F1->0)')


def check_neighbours(one: torch.Tensor, before: Optional[torch.Tensor], after: Optional[torch.Tensor]) -> None:
    """TypeError/ValueError unless each neighbour given is a floating frame of ``one``'s shape and device."""
    for name, frame in (('before', before), ('after', after)):
        if frame is None:
            continue
        if not isinstance(frame, torch.Tensor) or not frame.is_floating_point():
            raise TypeError(f'{name} must be a floating torch.Tensor [N, 3, H, W] in [0, 1]')
        if frame.shape != one.shape or frame.device != one.device:
            raise ValueError(f'{name} must match the pair: {list(one.shape)} on {one.device}, got '
                             f'{list(frame.shape)} on {frame.device}')


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """``[N, C, H, W]`` padded on the right and bottom, edge replicated, to a multiple of ``multiple``."""
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h), mode='replicate')
    return image


def as_times(times: Sequence[Union[float, torch.Tensor]], n: int) -> List[torch.Tensor]:
    """Each time as an ``[N]`` float32 tensor; raises ValueError for a shape other than [] or [N], or a value
    outside [0, 1]."""
    result = []
    for t in times:
        t = torch.as_tensor(t, dtype=torch.float32).detach()
        if t.dim() == 0:
            t = t.expand(n)
        if tuple(t.shape) != (n,):
            raise ValueError(f't must be a float or an [N] = [{n}] tensor, got shape {list(t.shape)}')
        if not bool(((t >= 0) & (t <= 1)).all()):
            raise ValueError(f't must lie in [0, 1], got {t.tolist() if t.numel() > 1 else float(t[0])}')
        result.append(t)
    return result


def quadratic_paths(one: torch.Tensor, two: torch.Tensor, flows: Flows, before: Optional[torch.Tensor],
                    after: Optional[torch.Tensor], outer: Optional[Outer],
                    estimate_flow: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], multiple: int
                    ) -> Optional[Tuple[motion.Motion, motion.Motion]]:
    """Both frames' quadratic paths at the padded size, or None when neither has a neighbour (linear motion).

    ``one``, ``two`` and ``flows`` (F0->1, F1->0) are already padded to ``multiple``; ``before``/``after`` (the frames
    around the pair) and ``outer`` (F0->before, F1->after, either None) are at the caller's size and padded here. A
    missing outer flow is estimated by ``estimate_flow(frame, neighbour)`` on the padded frames.
    """
    flow_0p, flow_1n = outer if outer is not None else (None, None)
    before = pad_to_multiple(before, multiple) if before is not None else None
    after = pad_to_multiple(after, multiple) if after is not None else None
    if flow_0p is None and before is not None:
        flow_0p = estimate_flow(one, before)
    if flow_1n is None and after is not None:
        flow_1n = estimate_flow(two, after)
    if flow_0p is None and flow_1n is None:
        return None
    flow_0p, flow_1n = (None if f is None else pad_to_multiple(f.float().to(one.device), multiple)
                        for f in (flow_0p, flow_1n))
    with torch.no_grad():
        return (motion.quadratic(flows[0].float(), flow_0p, one.float(), _float(before)),
                motion.quadratic(flows[1].float(), flow_1n, two.float(), _float(after)))


def _float(tensor: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if tensor is None else tensor.float()
