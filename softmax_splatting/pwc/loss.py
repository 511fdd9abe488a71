"""Endpoint error and PWC-Net's multi-scale training loss (Sun et al., CVPR 2018, Sec. 4 "Training loss").

The endpoint error (EPE) is the Euclidean distance between estimated and true flow vectors, averaged over pixels;
it is the standard flow metric and the per-pixel term of the training loss. The loss supervises the estimate of
every pyramid level l = 6..2 against the ground truth downscaled to that level's size and divided by 20 (the
network works in full-resolution pixels / 20 at every level), weighted by 0.32, 0.08, 0.02, 0.01, 0.005 and summed
over the pixels of the level, as the paper writes it: coarse levels have few pixels, so the weights roughly
balance the levels. Downscaling averages the ground truth over each level pixel's footprint (area resampling),
which is the mean motion the coarse estimate is asked to represent.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

__all__ = ['endpoint_error', 'multiscale_loss', 'LEVEL_WEIGHTS', 'FLOW_SCALE']

LEVEL_WEIGHTS = (0.32, 0.08, 0.02, 0.01, 0.005)  # levels 6, 5, 4, 3, 2
FLOW_SCALE = 20.0


def endpoint_error(flow: torch.Tensor, gt: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean endpoint error.

    Args:
        flow: ``[N, 2, H, W]`` estimated flow.
        gt: ``[N, 2, H, W]`` true flow, same units.
        valid: optional ``[N, 1, H, W]`` or ``[N, H, W]`` mask (bool or 0/1): average only over these pixels.

    Returns:
        A 0-d tensor in the dtype of ``flow`` (NaN when ``valid`` selects no pixel). Differentiable.
    """
    for name, tensor in (('flow', flow), ('gt', gt)):
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise TypeError(f'{name} must be a floating-point torch.Tensor')
        if tensor.dim() != 4 or tensor.shape[1] != 2:
            raise ValueError(f'{name} must be [N, 2, H, W], got shape {list(tensor.shape)}')
    if flow.shape != gt.shape:
        raise ValueError(f'flow and gt must have one shape, got {list(flow.shape)} and {list(gt.shape)}')
    error = torch.linalg.vector_norm(flow - gt, dim=1)  # [N, H, W]
    if valid is None:
        return error.mean()
    if not isinstance(valid, torch.Tensor):
        raise TypeError(f'valid must be a torch.Tensor or None, got {type(valid).__name__}')
    if valid.dim() == 4 and valid.shape[1] == 1:
        valid = valid[:, 0]
    if valid.shape != error.shape:
        raise ValueError(f'valid must be [N, 1, H, W] or [N, H, W] = {list(error.shape)}, got {list(valid.shape)}')
    weight = valid.to(error.dtype)
    return (error * weight).sum() / weight.sum()


def multiscale_loss(flows: Sequence[torch.Tensor], gt: torch.Tensor,
                    weights: Sequence[float] = LEVEL_WEIGHTS) -> torch.Tensor:
    """PWC-Net's loss: ``sum_l weights[l] * sum_pixels |flows[l] - gt_l / 20|_2``, averaged over the batch.

    Args:
        flows: the network's estimates from level 6 to level 2 (``PWCNet.forward(..., return_levels=True)``),
            each ``[N, 2, H_l, W_l]`` in full-resolution pixels / 20.
        gt: ``[N, 2, H, W]`` ground-truth flow in pixels at the input resolution.
        weights: one weight per entry of ``flows``.

    Returns:
        A 0-d tensor.
    """
    if len(flows) != len(weights):
        raise ValueError(f'expected {len(weights)} flows (levels 6..2), got {len(flows)}')
    total = gt.new_zeros(())
    for flow, weight in zip(flows, weights):
        target = F.interpolate(gt, size=flow.shape[2:], mode='area') / FLOW_SCALE
        total = total + weight * torch.linalg.vector_norm(flow - target, dim=1).sum() / gt.shape[0]
    return total
