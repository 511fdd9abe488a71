"""Training losses for frame interpolation.

The paper trains with the Laplacian-pyramid L1 loss of Niklaus & Liu's context-aware synthesis (CVPR 2018),
``sum_i 2^(i-1) |L_i(prediction) - L_i(truth)|_1`` over the levels i = 1..5 of a Laplacian pyramid: plain L1
favours blur, and weighting the coarse band-pass levels more keeps low-frequency structure while the fine levels
keep edges (softmax splatting paper, Sec. 4.3). Plain L1 is offered as the simpler alternative.
"""

from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(image: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial (Gaussian-like) blur per channel, reflect-padded. ``[N, C, H, W]``."""
    c = image.shape[1]
    kernel = _BINOMIAL.to(device=image.device, dtype=image.dtype)
    padded = F.pad(image, (2, 2, 2, 2), mode='reflect' if min(image.shape[-2:]) > 2 else 'replicate')
    padded = F.conv2d(padded, kernel.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(padded, kernel.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def laplacian_pyramid(image: torch.Tensor, levels: int = 5) -> List[torch.Tensor]:
    """Band-pass levels (finest first) and the low-pass residual last; ``levels`` tensors in all."""
    pyramid = []
    current = image
    for _ in range(levels - 1):
        low = _blur(current)
        down = low[:, :, ::2, ::2]
        up = F.interpolate(down, size=current.shape[-2:], mode='bilinear', align_corners=False)
        pyramid.append(current - up)
        current = down
        if min(current.shape[-2:]) < 2:
            break
    pyramid.append(current)
    return pyramid


def laplacian_loss(prediction: torch.Tensor, truth: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """``sum_i 2^(i-1) * mean |L_i(prediction) - L_i(truth)|`` (i = 1 the finest level). ``[N, C, H, W]`` -> scalar.

    Zero exactly when the images are equal. Means (not sums) per level keep the value independent of the size.
    """
    if prediction.shape != truth.shape:
        raise ValueError(f'prediction and truth must have the same shape, got {list(prediction.shape)} and '
                         f'{list(truth.shape)}')
    loss = prediction.new_zeros(())
    for i, (a, b) in enumerate(zip(laplacian_pyramid(prediction, levels), laplacian_pyramid(truth, levels))):
        loss = loss + (2.0 ** i) * (a - b).abs().mean()
    return loss


def l1_loss(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean absolute error. ``[N, C, H, W]`` -> scalar."""
    if prediction.shape != truth.shape:
        raise ValueError(f'prediction and truth must have the same shape, got {list(prediction.shape)} and '
                         f'{list(truth.shape)}')
    return (prediction - truth).abs().mean()


LOSSES = {'lap': laplacian_loss, 'l1': l1_loss}
