"""Reference interpolators that every benchmark runs beside ours, so that each table shows what the method adds.

* ``average``: the mean of the two frames (weighted by time): what interpolation gives with no motion at all.
* ``dis-blend``: the plain flow-based baseline, twenty lines of OpenCV: DIS flow both ways with OpenCV's
  ``DISOPTICAL_FLOW_PRESET_MEDIUM`` settings, the flow at time t approximated linearly from the flow at the same pixel
  (F_t->0 = t F_1->0, F_t->1 = (1 - t) F_0->1, as Super SloMo's simplest approximation), both frames backward-warped
  to t and blended by time. It has no occlusion reasoning: where the approximation points at the wrong object, it
  blends the wrong colours; ``classical.py`` forward-warps with softmax splatting instead.

Both share the interface of :class:`interpolator.Interpolator` (``[N, 3, H, W]`` RGB in [0, 1] in and out).
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from .classical import OPENCV_MEDIUM_DIS, DisParameters, check_frames, check_times, dis_flows
from .pwc import backwarp

__all__ = ['DisBlend', 'FrameAverage']


class FrameAverage:
    """``(1 - t) * one + t * two``."""

    @torch.no_grad()
    def interpolate(self, one: torch.Tensor, two: torch.Tensor, times: Sequence[float]) -> List[torch.Tensor]:
        check_frames(one, two)
        return [torch.lerp(one, two, t) for t in check_times(times)]


class DisBlend:
    """DIS flow both ways, linear flow approximation at t, backward warping, blend by time (see the module)."""

    def __init__(self, dis: Optional[DisParameters] = None):
        self.dis = dis if dis is not None else OPENCV_MEDIUM_DIS

    @torch.no_grad()
    def interpolate(self, one: torch.Tensor, two: torch.Tensor, times: Sequence[float]) -> List[torch.Tensor]:
        check_frames(one, two)
        times = check_times(times)
        if not times:
            return []
        return self.synthesize(one, two, *dis_flows(one, two, self.dis), times)

    @torch.no_grad()
    def synthesize(self, one: torch.Tensor, two: torch.Tensor, flow_01: torch.Tensor, flow_10: torch.Tensor,
                   times: Sequence[float]) -> List[torch.Tensor]:
        """The frames at ``times`` from given flows ``[N, 2, H, W]`` (one -> two, two -> one)."""
        frames = []
        for t in times:
            from_one = backwarp(one.float(), t * flow_10, padding='border')
            from_two = backwarp(two.float(), (1.0 - t) * flow_01, padding='border')
            frames.append(torch.lerp(from_one, from_two, t).clamp_(0.0, 1.0).to(one.dtype))
        return frames
