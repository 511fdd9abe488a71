"""Optical flow between two RGB images of any size with PWC-Net (Sun et al., CVPR 2018).

The network wants BGR inputs whose sides are multiples of 64 and returns flow at a quarter of that resolution, so
``estimate`` does what the published network's own demo does around it: flip RGB to BGR, resize bilinearly to the
next multiples of 64, run, upsample the flow bilinearly to H x W and rescale its x and y components by the ratio of
the sizes (a displacement of k resized pixels is k * W / W_64 original ones). Everything is a differentiable tensor
op with no host synchronisation, so a frame interpolation model can train through it (``net`` given); without
``net`` the default weights are loaded once per device, frozen, and kept.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from .network import DEFAULT_WEIGHTS, MULTIPLE, PWCNet, missing_default_weights

__all__ = ['estimate', 'default_network']

_CACHE: Dict[Tuple[str, int, str], PWCNet] = {}
_CACHE_LOCK = threading.Lock()


def default_network(device: torch.device | str = 'cpu', path: Optional[Path] = None) -> PWCNet:
    """The network with the default weights (``pwc/weights/network-default.pytorch``) on ``device``, loaded once
    and cached; its parameters do not require gradients.

    Raises:
        FileNotFoundError: the weights file is missing; the message says where to put it.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    device = torch.device(device)
    if not path.is_file():
        raise missing_default_weights(path)
    key = (str(path), path.stat().st_mtime_ns, str(device))
    with _CACHE_LOCK:
        if key not in _CACHE:
            net = PWCNet.from_file(path, map_location=device).eval()
            net.requires_grad_(False)
            _CACHE[key] = net
        return _CACHE[key]


def _check(one: object, two: object) -> None:
    for name, tensor in (('one', one), ('two', two)):
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise TypeError(f'{name} must be a floating-point torch.Tensor [N, 3, H, W]')
        if tensor.dim() != 4 or tensor.shape[1] != 3 or min(tensor.shape) == 0:
            raise ValueError(f'{name} must be non-empty [N, 3, H, W] RGB images, got shape {list(tensor.shape)}')
    if one.shape != two.shape:
        raise ValueError(f'one and two must have one shape, got {list(one.shape)} and {list(two.shape)}')
    if one.device != two.device:
        raise ValueError(f'two is on {two.device} but one is on {one.device}; both must be on one device')


def estimate(one: torch.Tensor, two: torch.Tensor, net: Optional[PWCNet] = None) -> torch.Tensor:
    """Flow from ``one`` to ``two``.

    Args:
        one, two: ``[N, 3, H, W]`` RGB in [0, 1], any size, same shape and device.
        net: the network to use (differentiable through it and the inputs; its dtype must fit the inputs'). Default:
            the frozen default weights on the inputs' device, computed in float32.

    Returns:
        ``[N, 2, H, W]`` flow in pixels of the input, channel 0 horizontal (x), channel 1 vertical (y), such that
        ``one[:, :, y, x]`` corresponds to ``two`` at ``(x + u, y + v)``. Dtype of ``one``.

    Raises:
        TypeError, ValueError: inputs of the wrong type or shape.
        FileNotFoundError: ``net`` is None and the default weights file is missing.
    """
    _check(one, two)
    dtype = one.dtype
    if net is None:
        net = default_network(one.device)
        one, two = one.float(), two.float()
    _, _, height, width = one.shape
    size = (math.ceil(height / MULTIPLE) * MULTIPLE, math.ceil(width / MULTIPLE) * MULTIPLE)
    one, two = one.flip(1), two.flip(1)  # RGB -> BGR, the published network's input
    if size != (height, width):
        one = F.interpolate(one, size=size, mode='bilinear', align_corners=False)
        two = F.interpolate(two, size=size, mode='bilinear', align_corners=False)
    flow = F.interpolate(net(one, two), size=(height, width), mode='bilinear', align_corners=False)
    flow = torch.cat([flow[:, :1] * (width / size[1]), flow[:, 1:] * (height / size[0])], 1)
    return flow.to(dtype)
