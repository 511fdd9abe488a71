"""Where each input frame's pixels are at time t: linear motion from the pair, or quadratic motion from four frames.

Softmax splatting (Niklaus & Liu, CVPR 2020, Sec. 3) moves frame 0's pixels by ``t F0->1`` and frame 1's by
``(1 - t) F1->0``: constant velocity. A video has more than the two frames around a gap, and Xu et al., "Quadratic
Video Interpolation" (NeurIPS 2019, Sec. 3.1), fit constant acceleration through three frames instead. With the
flows from frame 0 to its neighbours, F0->1 and F0->-1, the displacement to time t is

    F0->t = (F0->1 - F0->-1) / 2 * t + (F0->1 + F0->-1) / 2 * t^2

and symmetrically for frame 1 with F1->0, F1->2 and s = 1 - t. QVI then reverses these flows to warp backward;
forward splatting uses them as they are, which is what makes the quadratic model cheap here.

A neighbour's flow can fail (occlusion, a cut, motion blur), and a failed flow turns into an acceleration nothing
real has. :func:`quadratic` therefore keeps the acceleration only where it is plausible (``QuadraticGuard``) and
falls back to the linear displacement elsewhere. The rule was chosen on the 11 DAVIS training sequences
(``tools/tune_motion.py``: 230 samples at frame step 2, 191 at step 1; mean PSNR gain over linear motion):

    quadratic, no guard                            +0.650 / +0.539 dB
    neighbour must match, mean error <= 0.05       +0.573 / +0.473
                                     <= 0.1        +0.672 / +0.558
                                     <= 0.15       +0.691 (step 2)
                                     <= 0.2        +0.692 / +0.571   (the default)
                                     <= 0.3        +0.681 (step 2)
    and |acceleration| <= 0.5 x mean flow + 2 px   +0.553 / +0.455   (0.8: +0.661, 0.9: +0.681 at step 2)

A failed neighbour flow is caught by the brightness test; every limit on the acceleration's length also cut real
curved motion and lowered the score, so it is off by default (``max_ratio = inf``). Without a neighbour (clip
ends, scene cuts, pair mode without ``--before/--after``) :func:`linear` gives exactly the constant-velocity
displacement ``t * flow``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import torch

from .pwc import backwarp

__all__ = ['Motion', 'QuadraticGuard', 'DEFAULT_GUARD', 'MOTIONS', 'linear', 'quadratic']

MOTIONS = ('linear', 'quadratic')


@dataclass(frozen=True)
class QuadraticGuard:
    """Where the acceleration of :func:`quadratic` is kept (per pixel); elsewhere the motion is linear.

    ``max_ratio``: the acceleration ``(F0->1 + F0->-1) / 2`` may be at most this times the mean length of the two
    flows, plus ``max_pixels``. The ratio is 0 for constant velocity and reaches 1 only when both flows point the
    same way (1 accepts everything); a failed flow, pointing anywhere, gives ratios near 1, and a speed change by a
    factor k along a line gives (k - 1) / (k + 1). ``max_error``: the neighbour frame, warped back along its flow,
    must match the frame within this mean absolute RGB difference (in [0, 1]): a flow that does not explain the
    neighbour is not trusted.
    """

    max_ratio: float = math.inf
    max_pixels: float = 2.0
    max_error: float = 0.2

    def __post_init__(self):
        for name in ('max_ratio', 'max_pixels', 'max_error'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'{name} must be non-negative, got {getattr(self, name)}')


DEFAULT_GUARD = QuadraticGuard()


@dataclass
class Motion:
    """The displacement of one frame's pixels after time ``s`` (its own time: 0 at the frame, 1 at the other
    frame of the pair): ``velocity * s + acceleration * s^2``, each ``[N, 2, H, W]`` in pixels (x, y).
    ``acceleration`` None is linear motion, and then ``at(s)`` is exactly ``velocity * s``."""

    velocity: torch.Tensor
    acceleration: Optional[torch.Tensor] = None

    def at(self, s: Union[float, torch.Tensor]) -> torch.Tensor:
        """Displacement ``[N, 2, H, W]`` after time ``s`` (a float, or a tensor broadcastable to [N, 1, 1, 1])."""
        shift = self.velocity * s
        if self.acceleration is not None:
            shift = shift + self.acceleration * (s * s)
        return shift

    @property
    def is_quadratic(self) -> bool:
        return self.acceleration is not None


def linear(flow: torch.Tensor) -> Motion:
    """Constant velocity along ``flow`` ``[N, 2, H, W]`` (this frame to the other frame of the pair)."""
    return Motion(flow)


def quadratic(flow_next: torch.Tensor, flow_prev: Optional[torch.Tensor], image: Optional[torch.Tensor] = None,
              neighbour: Optional[torch.Tensor] = None, guard: QuadraticGuard = DEFAULT_GUARD,
              error: Optional[torch.Tensor] = None) -> Motion:
    """Constant acceleration through three frames, where plausible; linear where not, or without a neighbour.

    Args:
        flow_next: ``[N, 2, H, W]`` flow from this frame to the other frame of the pair (time +1).
        flow_prev: flow from this frame to its neighbour on the far side (time -1), or None (linear motion).
        image, neighbour: ``[N, 3, H, W]`` this frame and that neighbour, RGB in [0, 1], for the guard's
            brightness test; without them (and without ``error``) only the length test applies.
        guard: the plausibility rule, see :class:`QuadraticGuard`.
        error: ``[N, 1, H, W]``, the brightness test's mean absolute RGB difference of ``image`` and ``neighbour``
            warped back along ``flow_prev``, when the caller has it already (then image and neighbour are unused).
    """
    if flow_prev is None:
        return linear(flow_next)
    acceleration = (flow_next + flow_prev) * 0.5
    keep = None
    if math.isfinite(guard.max_ratio):
        motion = 0.5 * (_length(flow_next) + _length(flow_prev))
        keep = _length(acceleration) <= guard.max_ratio * motion + guard.max_pixels
    if error is None and image is not None and neighbour is not None and math.isfinite(guard.max_error):
        error = (image - backwarp(neighbour.to(image.dtype), flow_prev.to(image.dtype), padding='border'))
        error = error.abs_().mean(1, keepdim=True)
    if error is not None and math.isfinite(guard.max_error):
        matched = error <= guard.max_error
        keep = matched if keep is None else keep & matched
    if keep is not None:
        acceleration *= keep  # dropped: no acceleration, and then the velocity below is flow_next (linear)
    # velocity (F0->1 - F0->-1) / 2 = F0->1 - acceleration, so that the path still ends at F0->1 at s = 1
    return Motion(flow_next - acceleration, acceleration)


def _length(flow: torch.Tensor) -> torch.Tensor:
    """``[N, 1, H, W]`` lengths of ``[N, 2, H, W]`` vectors (``hypot``: ``norm(dim=1)`` is 100x slower on CPUs)."""
    return torch.hypot(flow[:, :1], flow[:, 1:2])
