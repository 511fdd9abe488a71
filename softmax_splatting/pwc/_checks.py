"""Argument checks shared by the flow package's public functions: one message format for every bad tensor."""

from __future__ import annotations

import torch


def shape_text(tensor: torch.Tensor) -> str:
    return '[' + ', '.join(str(size) for size in tensor.shape) + ']'


def require_float_tensor(name: str, value: object) -> torch.Tensor:
    """Raise TypeError naming ``name`` unless ``value`` is a floating-point tensor; return it."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(value).__name__}')
    if not value.is_floating_point():
        raise TypeError(f'{name} must be a floating-point tensor, got {value.dtype}')
    return value
