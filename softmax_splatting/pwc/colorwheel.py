"""Optical flow as a colour image, with the Middlebury colour wheel (Baker et al., IJCV 2011, Fig. 4 / Sec. 2.3).

Hue encodes direction and saturation the magnitude relative to the largest one shown: white is no motion, pure
colours the largest motion (rightward red, downward yellow-orange, leftward cyan, upward blue-violet). The wheel
interpolates 55 colours along red-yellow-green-cyan-blue-magenta segments of 15, 6, 4, 11, 13 and 6 steps, chosen by
the benchmark's authors to make equal angles look about equally different. Using that exact wheel keeps our figures
comparable with the flow pictures of papers and benchmark pages. Unknown flow (non-finite, or above 1e9 in either
component, the ``.flo`` convention) is drawn black.
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np

__all__ = ['flow_to_color', 'color_wheel']

_SEGMENTS = (('RY', 15), ('YG', 6), ('GC', 4), ('CB', 11), ('BM', 13), ('MR', 6))
UNKNOWN_FLOW = 1e9


@functools.lru_cache(maxsize=1)
def color_wheel() -> np.ndarray:
    """The 55 wheel colours as float ``[55, 3]`` RGB in [0, 255], starting at red and turning through yellow."""
    rows = []
    for name, steps in _SEGMENTS:
        ramp = np.floor(255 * np.arange(steps) / steps)
        rising, falling, full = ramp, 255 - ramp, np.full(steps, 255.0)
        zero = np.zeros(steps)
        rows.append({'RY': (full, rising, zero), 'YG': (falling, full, zero), 'GC': (zero, full, rising),
                     'CB': (zero, falling, full), 'BM': (rising, zero, full), 'MR': (full, zero, falling)}[name])
    return np.concatenate([np.stack(channels, 1) for channels in rows], 0)


def flow_to_color(flow: np.ndarray, max_flow: Optional[float] = None) -> np.ndarray:
    """Colour-code a flow field.

    Args:
        flow: ``[H, W, 2]`` float array, (u, v) in pixels.
        max_flow: the magnitude drawn fully saturated; default: the largest known magnitude in ``flow``.
            Larger magnitudes are drawn at 75 % brightness, as in the benchmark's code.

    Returns:
        ``[H, W, 3]`` uint8 RGB.
    """
    if not isinstance(flow, np.ndarray):
        raise TypeError(f'flow must be a numpy array [H, W, 2], got {type(flow).__name__}')
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f'flow must be an array [H, W, 2], got shape {list(flow.shape)}')
    if max_flow is not None and not (np.isfinite(max_flow) and max_flow > 0):
        raise ValueError(f'max_flow must be a positive number, got {max_flow!r}')
    u, v = (flow[..., k].astype(np.float64) for k in (0, 1))
    unknown = ~np.isfinite(u) | ~np.isfinite(v) | (np.abs(u) > UNKNOWN_FLOW) | (np.abs(v) > UNKNOWN_FLOW)
    u, v = np.where(unknown, 0.0, u), np.where(unknown, 0.0, v)
    radius = np.sqrt(u * u + v * v)
    if max_flow is None:
        max_flow = float(radius.max()) if radius.size else 0.0
    scale = 1.0 / (max_flow + np.finfo(np.float64).eps)
    u, v, radius = u * scale, v * scale, radius * scale

    wheel = color_wheel()
    count = wheel.shape[0]
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; -1 and 1 both mean rightward, i.e. red at either end
    position = (angle + 1) / 2 * (count - 1)
    k0 = np.floor(position).astype(np.int64)
    k1 = (k0 + 1) % count
    fraction = (position - k0)[..., None]
    color = ((1 - fraction) * wheel[k0] + fraction * wheel[k1]) / 255.0
    inside = (radius <= 1)[..., None]
    color = np.where(inside, 1 - radius[..., None] * (1 - color), color * 0.75)
    color[unknown] = 0.0
    return np.floor(255 * color).astype(np.uint8)
