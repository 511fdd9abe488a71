"""Backward warping: sample an image at (x + u, y + v), in pixels (PWC-Net, Sun et al., CVPR 2018, Sec. 3 "Warping
layer").

``backwarp`` is the general, differentiable tool: bilinear, zeros outside. ``warp_features`` is the variant inside
PWC-Net's decoders, which additionally zeroes every pixel whose bilinear footprint is not (almost) entirely inside
the image: the published network warps an all-ones channel along and keeps only pixels where it arrives above
0.999, and its weights expect features cut off that way.

Sampling uses ``grid_sample(align_corners=False)`` with pixel centres at (2x + 1) / W - 1, which is exact for any
size, a width or height of 1 included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import require_float_tensor

__all__ = ['backwarp', 'warp_features', 'MASK_THRESHOLD']

MASK_THRESHOLD = 0.999


def _check(image: object, flow: object) -> None:
    require_float_tensor('image', image)
    require_float_tensor('flow', flow)
    if image.dim() != 4:
        raise ValueError(f'image must be 4-D [N, C, H, W], got shape {list(image.shape)}')
    n, _, h, w = image.shape
    if tuple(flow.shape) != (n, 2, h, w):
        raise ValueError(f'flow must have shape [N, 2, H, W] = [{n}, 2, {h}, {w}] to match image, '
                         f'got {list(flow.shape)}')
    if flow.device != image.device:
        raise ValueError(f'flow is on {flow.device} but image is on {image.device}; both must be on one device')


def _grid(flow: torch.Tensor) -> torch.Tensor:
    """``[N, H, W, 2]`` float32 (float64 for a float64 flow) sampling grid of grid_sample (align_corners=False) for
    positions (x + u, y + v).

    Positions are built in float32 whatever the flow's dtype and autocast: in float16 a coordinate near 1000 is only
    resolved to 0.5 px (bfloat16: 4 px), which would misplace every sample of a wide image.
    """
    _, _, h, w = flow.shape
    flow = flow.to(torch.promote_types(flow.dtype, torch.float32))
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
    gx = (2 * (xs + flow[:, 0]) + 1) / w - 1
    gy = (2 * (ys + flow[:, 1]) + 1) / h - 1
    return torch.stack([gx, gy], 3)


def backwarp(image: torch.Tensor, flow: torch.Tensor, padding: str = 'zeros') -> torch.Tensor:
    """Sample ``image`` bilinearly at every pixel plus its flow.

    Args:
        image: ``[N, C, H, W]`` floating point.
        flow: ``[N, 2, H, W]`` in pixels; channel 0 horizontal (x), channel 1 vertical (y).
        padding: what lies outside the image: ``'zeros'`` (default) or ``'border'`` (the nearest edge pixel).

    Returns:
        ``[N, C, H, W]``: ``out[:, :, y, x] = image(x + u, y + v)``, in the dtype of ``image``. Differentiable with
        respect to both inputs; no host synchronisation.
    """
    _check(image, flow)
    if padding not in ('zeros', 'border'):
        raise ValueError(f"padding must be 'zeros' or 'border', got {padding!r}")
    grid = _grid(flow)
    # grid_sample is on autocast's float32 list; outside autocast it needs one dtype, which is the grid's
    with torch.autocast(device_type=image.device.type, enabled=False):
        out = F.grid_sample(image.to(grid.dtype), grid, mode='bilinear', padding_mode=padding, align_corners=False)
    return out.to(image.dtype)


def warp_features(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``backwarp`` that also zeroes pixels whose warped all-ones mask is not above 0.999 (PWC-Net's decoders).

    ``features`` ``[N, C, H, W]``, ``flow`` ``[N, 2, H, W]`` in pixels of this level -> ``[N, C, H, W]``.
    """
    ones = features.new_ones((features.shape[0], 1) + tuple(features.shape[2:]))
    warped = backwarp(torch.cat([features, ones], 1), flow)
    keep = (warped[:, -1:] > MASK_THRESHOLD).to(warped.dtype)
    return warped[:, :-1] * keep
