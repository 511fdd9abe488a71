"""A training-free frame interpolator: DIS optical flow plus softmax splatting (for users without trained weights).

The softmax splatting paper (Niklaus & Liu, CVPR 2020) interpolates by estimating optical flow between the two
input frames, forward-warping ("splatting") both frames to the desired time t, and letting a synthesis network
combine the warped frames (Sec. 3 and 4). Without trained weights we keep the parts that need no training:

1. Flow: OpenCV's Dense Inverse Search (Kroeger et al., ECCV 2016) in both directions (in two threads), on 8-bit
   grey images on the CPU, once per pair (all requested times reuse it).
2. Importance metric: brightness constancy, as in Sec. 3.4 of the paper, ``Z0 = -alpha * |I0 - backwarp(I1, F0->1)|``
   averaged over the colour channels (and symmetrically ``Z1`` for frame two). Where several source pixels land on
   one target, the one that is consistent with the other frame (usually the occluder in front) wins.
3. Splatting: both frames go to time t (``t * F0->1`` and ``(1 - t) * F1->0``, or along quadratic paths when the
   frames before and after the pair are given: ``motion.py``) and are merged in one softmax: every contribution
   weighs ``bilinear * exp(Z) * (1 - t)`` for frame one, ``... * t`` for frame two. A pixel that only one frame
   reaches (a disocclusion) takes that frame; where both reach it, the better matching and temporally closer frame
   dominates; at t = 0 frame two weighs nothing, so frame one comes out exactly (and frame two at t = 1).
4. Holes: pixels that neither splat covers well (coverage: the bilinear weights reaching the pixel from both frames,
   summed) are filled from their neighbourhood by push-pull interpolation (a coverage-weighted image pyramid),
   blended in by the coverage, so cracks where the flow stretches and content entering at a border get plausible
   colours instead of black.

The synthesis network of the paper is what this interpolator lacks: it is a baseline, and a tool that works out of
the box. Its parameters (DIS with its finest level at half resolution and patch stride 2, alpha = 5, coverage 1)
were chosen on the DAVIS training sequences (``tools/tune_classical.py`` documents the sets and commands), never on
the Middlebury benchmark. On DAVIS they made differences of tenths of a dB at most: the flow's failures on large
motion dominate the error. Half-resolution DIS is a choice for speed (see ``CLASSICAL_DIS``).
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
import math
from dataclasses import dataclass, fields
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from . import motion
from .pairs import check_neighbours
from .pwc import backwarp
from .softsplat import softsplat

__all__ = ['CLASSICAL_DIS', 'ClassicalInterpolator', 'DisParameters', 'OPENCV_MEDIUM_DIS', 'blend', 'check_neighbours',
           'dis_flow', 'dis_flows', 'fill_holes', 'splat_sources']

MIN_DIS_SIZE = 16  # smaller frames are padded for DIS (which needs about two patches)
DIS_MAX_PIXELS = 2048 * 1080  # the largest finest DIS level (larger frames run DIS one or more levels up)


@dataclass(frozen=True)
class DisParameters:
    """Settings of ``cv2.DISOpticalFlow`` (see OpenCV's documentation of DISOpticalFlow for each field)."""

    preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM  # the fields below override it; it sets the rest
    finest_scale: int = 0  # full resolution: sub-pixel detail matters for interpolation
    patch_size: int = 8
    patch_stride: int = 2
    gradient_descent_iterations: int = 25
    variational_refinement_iterations: int = 5
    variational_refinement_alpha: float = 20.0
    variational_refinement_delta: float = 5.0
    variational_refinement_gamma: float = 10.0
    use_mean_normalization: bool = True
    use_spatial_propagation: bool = True

    def __post_init__(self):
        """ValueError for a field of the wrong type or out of OpenCV's range (settings also come from checkpoint
        files, where a wrong value would otherwise fail inside OpenCV, or not at all)."""
        for item in fields(self):
            value, kind = getattr(self, item.name), item.type
            if kind == 'bool':
                ok = isinstance(value, bool)
            elif kind == 'int':
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                    and value >= 0
            if not ok:
                wanted = {'bool': 'true or false', 'int': 'a whole number >= 0'}.get(kind, 'a finite number >= 0')
                raise ValueError(f'DIS setting {item.name} must be {wanted}, got {value!r}')
        if self.preset not in (cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, cv2.DISOPTICAL_FLOW_PRESET_FAST,
                               cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
            raise ValueError(f'DIS setting preset must be 0, 1 or 2 (ultrafast, fast, medium), got {self.preset}')
        if not 1 <= self.patch_stride <= self.patch_size <= 64:
            raise ValueError(f'DIS settings need 1 <= patch_stride <= patch_size <= 64, got patch_size '
                             f'{self.patch_size} and patch_stride {self.patch_stride}')
        if self.finest_scale > 10:
            raise ValueError(f'DIS setting finest_scale must be at most 10, got {self.finest_scale}')

    def create(self) -> cv2.DISOpticalFlow:
        dis = cv2.DISOpticalFlow_create(self.preset)
        dis.setFinestScale(self.finest_scale)
        dis.setPatchSize(self.patch_size)
        dis.setPatchStride(self.patch_stride)
        dis.setGradientDescentIterations(self.gradient_descent_iterations)
        dis.setVariationalRefinementIterations(self.variational_refinement_iterations)
        dis.setVariationalRefinementAlpha(self.variational_refinement_alpha)
        dis.setVariationalRefinementDelta(self.variational_refinement_delta)
        dis.setVariationalRefinementGamma(self.variational_refinement_gamma)
        dis.setUseMeanNormalization(self.use_mean_normalization)
        dis.setUseSpatialPropagation(self.use_spatial_propagation)
        return dis


# The flow of the classical interpolator: DIS's finest level at half resolution (upsampled inside DIS), patch stride 2.
# Full resolution (finest_scale 0, the dataclass default, which the learned DIS-flow model records and uses) scored
# 0.06 dB higher on small-motion DAVIS training triplets and 0.14 dB on half-resolution ones, but took 0.64 s per
# 854 x 480 pair for DIS alone against 0.10 s (tools/tune_classical.py has the commands).
CLASSICAL_DIS = DisParameters(finest_scale=1)
# OpenCV's own DIS_MEDIUM preset written out, the flow of the plain baseline in baselines.py.
OPENCV_MEDIUM_DIS = DisParameters(finest_scale=1, patch_stride=3)


def fill_holes(image: torch.Tensor, confidence: torch.Tensor, overwrite: bool = False) -> torch.Tensor:
    """Push-pull fill: replace ``image`` ``[N, C, H, W]`` where ``confidence`` ``[N, 1, H, W]`` (in [0, 1]) is low.

    The push phase builds a pyramid of confidence-weighted averages (every level halves the size) until the
    coarsest level is a few pixels; the pull phase walks back up and, at each level, blends the level's own value
    with the upsampled coarser one by the level's confidence. A pixel with confidence 1 keeps its value; a hole takes
    the average of the nearest confident pixels at the scale where they first appear. ``overwrite`` lets it use
    ``image``'s memory (which then holds garbage) instead of a copy.
    """
    levels: List[Tuple[torch.Tensor, torch.Tensor]] = []
    value, weight = (image.mul_(confidence) if overwrite else image * confidence), confidence
    while True:
        levels.append((value, weight))
        h, w = value.shape[2:]
        if h <= 1 and w <= 1:
            break
        kernel = (2 if h > 1 else 1, 2 if w > 1 else 1)
        # Sums over 2x2 blocks (ceil_mode: odd sizes keep their last row/column). A summed weight above 1 is clipped:
        # one confident pixel is enough to define a coarse pixel.
        value = F.avg_pool2d(value, kernel, ceil_mode=True, divisor_override=1)
        weight = F.avg_pool2d(weight, kernel, ceil_mode=True, divisor_override=1)
        clipped = weight.clamp(max=1.0)
        value, weight = value / weight.clamp(min=1e-12) * clipped, clipped
    value, weight = levels.pop()
    filled = value / weight.clamp(min=1e-12)
    while levels:
        value, weight = levels.pop()  # finest last; each level is dropped once used
        coarse = F.interpolate(filled, size=value.shape[2:], mode='bilinear', align_corners=False)
        filled = coarse.mul_(1.0 - weight).add_(value)
        del value, weight, coarse
    return filled


class ClassicalInterpolator:
    """Training-free interpolation by DIS flow and softmax splatting; see the module docstring.

    Args:
        dis: DIS optical flow settings.
        alpha: scale of the brightness-constancy metric (per unit of mean absolute RGB difference in [0, 1]).
        coverage: splatting coverage (sum of the bilinear weights that reach a pixel from both frames) at which a
            pixel counts as fully covered; below it, the push-pull fill is blended in linearly.
        guard: where quadratic motion keeps its acceleration (``motion.QuadraticGuard``), when neighbours are given.
    """

    def __init__(self, dis: Optional[DisParameters] = None, alpha: float = 5.0, coverage: float = 1.0,
                 guard: motion.QuadraticGuard = motion.DEFAULT_GUARD):
        if not alpha >= 0.0:
            raise ValueError(f'alpha must be non-negative, got {alpha}')
        if not coverage > 0.0:
            raise ValueError(f'coverage must be positive, got {coverage}')
        self.dis = dis if dis is not None else CLASSICAL_DIS
        self.alpha = float(alpha)
        self.coverage = float(coverage)
        self.guard = guard
        self._errors = BrightnessErrors()

    takes_flow_hint = True  # estimate_flows(..., hint=): the video path passes the motion it has seen

    def flows(self, one: torch.Tensor, two: torch.Tensor, hint: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """DIS flow one -> two and two -> one, each ``[N, 2, H, W]`` float32 on the inputs' device (pixels);
        ``hint``: guesses of both (e.g. the previous pair's motion), from which DIS starts (see dis_flows)."""
        return dis_flows(one, two, self.dis, hint)

    estimate_flows = flows  # MainNet's names for the same, which the video path uses

    def estimate_flow(self, one: torch.Tensor, two: torch.Tensor) -> torch.Tensor:
        """DIS flow one -> two only (a neighbour's flow for quadratic motion)."""
        return dis_flow(one, two, self.dis)

    @torch.no_grad()
    def interpolate(self, one: torch.Tensor, two: torch.Tensor, times: Sequence[float],
                    before: Optional[torch.Tensor] = None, after: Optional[torch.Tensor] = None,
                    flows: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                    outer: Optional[Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]] = None
                    ) -> List[torch.Tensor]:
        """Frames at ``times`` between ``one`` (t = 0) and ``two`` (t = 1).

        Args:
            one, two: ``[N, 3, H, W]`` RGB, floating point in [0, 1], on one device.
            times: floats in [0, 1].
            before, after: optional frames before ``one`` and after ``two`` (same shape): with them each frame moves
                along a quadratic path (``motion.quadratic``); without one, that frame's motion is linear.
            flows: precomputed (F one->two, F two->one), ``[N, 2, H, W]`` each, instead of DIS.
            outer: precomputed (F one->before, F two->after) (either None), instead of DIS on the neighbours.

        Returns:
            One ``[N, 3, H, W]`` tensor in [0, 1] per time, with the dtype and device of ``one``.
        """
        check_frames(one, two)
        check_neighbours(one, before, after)
        times = check_times(times)
        if not times:
            return []
        flow_01, flow_10 = flows if flows is not None else self.flows(one, two)
        flow_0p, flow_1n = outer if outer is not None else (None, None)
        if flow_0p is None and before is not None:
            flow_0p = self.estimate_flow(one, before)
        if flow_1n is None and after is not None:
            flow_1n = self.estimate_flow(two, after)
        return self.synthesize(one, two, flow_01, flow_10, times, flow_0p, flow_1n, before, after)

    @torch.no_grad()
    def synthesize(self, one: torch.Tensor, two: torch.Tensor, flow_01: torch.Tensor, flow_10: torch.Tensor,
                   times: Sequence[float], flow_0p: Optional[torch.Tensor] = None,
                   flow_1n: Optional[torch.Tensor] = None, before: Optional[torch.Tensor] = None,
                   after: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
        """The frames at ``times`` from given flows ``[N, 2, H, W]`` (one -> two, two -> one; one -> before and
        two -> after for quadratic motion, each optional); see interpolate."""
        dtype = one.dtype
        one, two, flow_01, flow_10 = one.float(), two.float(), flow_01.float(), flow_10.float()
        sources = splat_sources(one, two, flow_01, flow_10, self.alpha, self._errors)
        paths = []
        for image, flow, outer, neighbour in ((one, flow_01, _float(flow_0p), _float(before)),
                                              (two, flow_10, _float(flow_1n), _float(after))):
            error = self._errors(image, neighbour, outer) if outer is not None and neighbour is not None else None
            paths.append(motion.quadratic(flow, outer, guard=self.guard, error=error))
        path_0, path_1 = paths
        return [blend(sources, path_0.at(t), path_1.at(1.0 - t), t, self.coverage).to(dtype) for t in times]


class BrightnessErrors:
    """``[N, 1, H, W]`` mean over RGB of ``|image - backwarp(other, flow)|``, remembered for the last few
    ``(image, other, flow)`` by identity. In the video path a frame's error towards a neighbour is needed twice: by
    the guard of one pair's quadratic motion and by the importance metric of the next pair, and conversion.py hands
    both the same tensors; the entries hold their tensors, so an identity is never reused while remembered."""

    def __init__(self, size: int = 4):
        self.size = size
        self.entries: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def __call__(self, image: torch.Tensor, other: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        for known_image, known_other, known_flow, error in self.entries:
            if known_image is image and known_other is other and known_flow is flow:
                return error
        error = torch.mean((image - backwarp(other, flow, padding='border')).abs_(), 1, keepdim=True)
        self.entries = (self.entries + [(image, other, flow, error)])[-self.size:]
        return error


@torch.no_grad()
def splat_sources(one: torch.Tensor, two: torch.Tensor, flow_01: torch.Tensor, flow_10: torch.Tensor,
                  alpha: float, errors: Optional[BrightnessErrors] = None) -> torch.Tensor:
    """What :func:`blend` splats, for all times: ``[2N, 5, H, W]`` (frame one's samples, then frame two's).

    Channels: colour * e^Z, e^Z and a plain one whose splat is the coverage (the sum of the bilinear weights), with
    Z = -alpha * |I0 - backwarp(I1, F0->1)| (mean over RGB; symmetrically for frame two). Z lies in [-alpha, 0], so
    exp() needs no shift. Inputs ``[N, 3, H, W]`` and ``[N, 2, H, W]`` float32. Not differentiable (a fixed input
    of the learned model); computed in place where it can, to keep 4K frames within memory. ``errors``: a
    :class:`BrightnessErrors` to take the brightness errors from (and leave them in).
    """
    n = one.shape[0]
    sources = one.new_empty((2 * n, 5) + tuple(one.shape[2:]))
    for k, (image, other, flow) in enumerate(((one, two, flow_01), (two, one, flow_10))):
        part = sources[k * n:(k + 1) * n]
        weight = part[:, 3:4]
        if errors is not None:
            weight.copy_(errors(image, other, flow))
        else:
            torch.mean((image - backwarp(other, flow, padding='border')).abs_(), 1, keepdim=True, out=weight)
        weight.mul_(-alpha).exp_()
        torch.mul(image, weight, out=part[:, :3])
        part[:, 4:5].fill_(1.0)
    return sources


def _float(tensor: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if tensor is None else tensor.float()


@torch.no_grad()
def blend(sources: torch.Tensor, shift_0: torch.Tensor, shift_1: torch.Tensor, t: Union[float, torch.Tensor],
          coverage: float = 1.0) -> torch.Tensor:
    """Both frames splatted to time ``t`` in one softmax, holes filled: ``[N, 3, H, W]`` in [0, 1].

    Args:
        sources: :func:`splat_sources` of the pair, ``[2N, 5, H, W]``.
        shift_0, shift_1: ``[N, 2, H, W]`` where frame one's and frame two's pixels are at time t, in pixels
            (linear motion: ``t * F0->1`` and ``(1 - t) * F1->0``; see ``motion.py``).
        t: a float, or a tensor broadcastable to ``[N, 1, 1, 1]`` (one time per sample), in [0, 1].
        coverage: the summed bilinear weight at which a pixel counts as fully covered.

    Every contribution weighs ``bilinear * e^Z * (1 - t)`` for frame one and ``... * t`` for frame two, so at t = 0
    frame one comes out exactly. Not differentiable; in place where it can (4K frames).
    """
    n = shift_0.shape[0]
    # one call per frame rather than both stacked: the same work, half the temporary memory
    merged = softsplat(sources[:n], shift_0, None, 'sum')
    # Coverage counts both frames fully, whatever t: a pixel that only frame two reaches (disoccluded) is reliable
    # even at small t, where its colour weight is small but still alone.
    confidence = merged[:, 4:5].clone()
    merged.mul_(1.0 - t)
    other = softsplat(sources[n:], shift_1, None, 'sum')
    confidence.add_(other[:, 4:5]).div_(coverage).clamp_(0.0, 1.0)
    merged.add_(other.mul_(t))
    del other
    denominator = merged[:, 3:4]
    confidence.masked_fill_(denominator <= 0, 0.0)
    splatted = merged[:, :3].div_(denominator.clamp(min=1e-30))
    return fill_holes(splatted, confidence, overwrite=True).clamp_(0.0, 1.0)


def _finest_level(parameters: DisParameters, h: int, w: int) -> int:
    # Above ~2 megapixels the finest level moves up (3840 x 2160 runs at 1920 x 1080 and is upsampled inside DIS):
    # DIS's buffers at full 4K resolution take ~2 GB, and motion at that size is large enough for half resolution.
    finest = parameters.finest_scale
    while (h * w) >> (2 * finest) > DIS_MAX_PIXELS:
        finest += 1
    return finest


def _pad_for_dis(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """DIS refuses images smaller than about its patch size: replicate the border (the flow is cropped after)."""
    h, w = a.shape
    pad_h, pad_w = max(0, MIN_DIS_SIZE - h), max(0, MIN_DIS_SIZE - w)
    if pad_h or pad_w:
        a = cv2.copyMakeBorder(a, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        b = cv2.copyMakeBorder(b, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
    return a, b


class _SolverPool:
    """DIS objects keep their buffers, sized to the image, between calls: reusing one saved 10 ms of a 73 ms flow
    at 854 x 480. A DIS object also keeps state from its first images (one first used on a 40 x 24 pair gave another
    flow on a 128 x 96 pair than a fresh one), so objects are reused only for images of one size and one OpenCV
    thread count, where their flows equal a fresh object's. Each is lent to one thread at a time. Objects for
    images above ``DIS_MAX_PIXELS`` are not kept: their buffers would stay allocated through the splatting that
    follows (a 3840 x 2160 pair peaked at 1.99 GB with them kept, 1.67 GB without), to save a few milliseconds of a
    5 s frame."""

    def __init__(self):
        self._free: Dict[Tuple[object, ...], List[_FlowSolver]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def solver(self, parameters: DisParameters, finest: int, size: Tuple[int, int]) -> Iterator['_FlowSolver']:
        key = (parameters, finest, size, cv2.getNumThreads())
        with self._lock:
            free = self._free.setdefault(key, [])
            solver = free.pop() if free else None
        if solver is None:
            solver = _FlowSolver(parameters, finest)
        try:
            yield solver
        finally:
            if size[0] * size[1] <= DIS_MAX_PIXELS:
                with self._lock:
                    self._free[key].append(solver)


_SOLVERS = _SolverPool()


def dis_flow(one: torch.Tensor, two: torch.Tensor, parameters: DisParameters) -> torch.Tensor:
    """DIS flow one -> two only, ``[N, 2, H, W]`` float32 on the inputs' device, in pixels (see dis_flows)."""
    grey_one, grey_two = _grey_uint8(one), _grey_uint8(two)
    h, w = grey_one[0].shape
    with _SOLVERS.solver(parameters, _finest_level(parameters, h, w), (h, w)) as solver:
        flows = [solver(*_pad_for_dis(a, b))[:h, :w] for a, b in zip(grey_one, grey_two)]
    return _flow_tensor(flows, one.device)


def dis_flows(one: torch.Tensor, two: torch.Tensor, parameters: DisParameters,
              hint: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """DIS flow one -> two and two -> one, each ``[N, 2, H, W]`` float32 on the inputs' device, in pixels.

    ``one``, ``two``: ``[N, 3, H, W]`` RGB in [0, 1]; DIS runs on their 8-bit grey versions on the CPU (no gradient).
    ``hint``: initial estimates of both flows (``[N, 2, H, W]`` each), which DIS refines from its coarsest level on
    instead of starting from zero motion. In a video the previous pair's motion is such an estimate: on the 13 DAVIS
    training sequences it raised the PSNR at t = 0.5 from 26.48 to 26.56 dB at frame step 2 (12 fps) and from 22.25
    to 22.30 dB at step 4 (6 fps), most on the fast ones (soapbox, scooter-black), at no cost; picking per pair the
    flow with the smaller warping error, or per pixel, did no better (a throwaway comparison;
    ``tools/measure_flow_hint.py`` repeats the first two).
    """
    grey_one, grey_two = _grey_uint8(one), _grey_uint8(two)
    h, w = grey_one[0].shape
    starts = [[None] * len(grey_one)] * 2
    if hint is not None and min(h, w) >= MIN_DIS_SIZE:  # (padded frames would need padded guesses)
        starts = [[np.ascontiguousarray(f.permute(1, 2, 0).detach().float().cpu().numpy()) for f in guess]
                  for guess in hint]
    finest = _finest_level(parameters, h, w)
    # The two directions run in two threads (OpenCV releases the GIL): DIS keeps only part of a second core busy,
    # and the pair took 0.10 s instead of 0.15 s at 854 x 480 on 2 cores. Peak memory grows by one DIS's buffers,
    # so 4K frames, whose buffers are the largest, run one direction after the other, as they do when OpenCV is
    # held to one thread (--threads 1, or the video path, whose stages are the parallelism: conversion.py).
    workers = 2 if h * w <= DIS_MAX_PIXELS and cv2.getNumThreads() > 1 else 1
    forward, backward = [], []
    with contextlib.ExitStack() as stack:
        solvers = [stack.enter_context(_SOLVERS.solver(parameters, finest, (h, w))) for _ in range(workers)]
        pool = stack.enter_context(ThreadPoolExecutor(workers))
        for a, b, start_ab, start_ba in zip(grey_one, grey_two, *starts):
            a, b = _pad_for_dis(a, b)
            there = pool.submit(solvers[0], a, b, start_ab)
            back = pool.submit(solvers[-1], b, a, start_ba) if workers == 2 else None
            forward.append(there.result()[:h, :w])
            backward.append((back.result() if back is not None else solvers[0](b, a, start_ba))[:h, :w])
    return _flow_tensor(forward, one.device), _flow_tensor(backward, one.device)


class _FlowSolver:
    """One direction's DIS; each thread gets its own, as DIS keeps buffers between calls."""

    def __init__(self, parameters: DisParameters, finest: int):
        self.dis = parameters.create()
        self.dis.setFinestScale(finest)

    def __call__(self, a: np.ndarray, b: np.ndarray, start: Optional[np.ndarray] = None) -> np.ndarray:
        # DIS starts from a flow given to it (of the image's size, float32 x 2); a fresh copy, as it writes into it
        return self.dis.calc(a, b, None if start is None else start.copy())


def check_frames(one: torch.Tensor, two: torch.Tensor) -> None:
    """TypeError/ValueError unless both are floating ``[N, 3, H, W]`` frames of one shape on one device."""
    for name, frame in (('one', one), ('two', two)):
        if not isinstance(frame, torch.Tensor):
            raise TypeError(f'{name} must be a torch.Tensor [N, 3, H, W], got {type(frame).__name__}')
        if frame.dim() != 4 or frame.shape[1] != 3 or min(frame.shape) == 0:
            raise ValueError(f'{name} must have shape [N, 3, H, W], got {list(frame.shape)}')
        if not frame.is_floating_point():
            raise TypeError(f'{name} must be floating point in [0, 1], got {frame.dtype}')
    if one.shape != two.shape:
        raise ValueError(f'one and two differ in shape: {list(one.shape)} vs {list(two.shape)}')
    if one.device != two.device:
        raise ValueError(f'one is on {one.device}, two on {two.device}; both must be on one device')


def check_times(times: Sequence[float]) -> List[float]:
    """The times as floats; ValueError for any outside [0, 1] (NaN included)."""
    times = [float(t) for t in times]
    for t in times:
        if not 0.0 <= t <= 1.0:
            raise ValueError(f'times must lie in [0, 1], got {t}')
    return times


def _flow_tensor(flows: List[np.ndarray], device: torch.device) -> torch.Tensor:
    """N OpenCV flows ``[H, W, 2]`` float32 -> ``[N, 2, H, W]`` on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(flows))).permute(0, 3, 1, 2).contiguous().to(device)


def _grey_uint8(frames: torch.Tensor) -> List[np.ndarray]:
    """``[N, 3, H, W]`` RGB in [0, 1] -> N contiguous ``[H, W]`` uint8 grey images (ITU-R BT.601 luma) on the CPU."""
    rgb = frames.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY) for image in rgb]
