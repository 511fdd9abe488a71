"""Training losses for frame interpolation.

The paper trains with the Laplacian-pyramid L1 loss of Niklaus & Liu's context-aware synthesis (CVPR 2018),
``sum_i 2^(i-1) ||L_i(prediction) - L_i(truth)||_1`` over the levels i = 1..5 of a Laplacian pyramid (softmax
splatting paper, Sec. 4.3). The norm is a sum over each level's pixels, so a coarse level, with a quarter of the
pixels of the level above it, counts half as much per unit of error there despite its weight of 2: the loss stays
dominated by fine detail, which is what keeps results sharp. We divide the whole sum by the finest level's element
count so that the value does not depend on the crop size; the levels' relative weights are the paper's.

Alternatives: plain L1; ``logmse``, the per-sample log of the mean squared error (i.e. -PSNR up to a constant),
averaged over the batch; and ``relmse``, each crop's squared error relative to the classical interpolator's error on
its whole frame (see :func:`relative_mse_loss`). For a correction network whose last layer starts at zero (our
DIS-flow model starts from the training-free result), a CPU prototype (``../shared/notes/cpu-training.md``) learned
with ``logmse`` and not with the Laplacian loss: its gradient is scaled by 1 / MSE per sample, so nearly-right
samples still pull.
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


def _check_shapes(prediction: torch.Tensor, truth: torch.Tensor) -> None:
    if prediction.shape != truth.shape:
        raise ValueError(f'prediction and truth must have the same shape, got {list(prediction.shape)} and '
                         f'{list(truth.shape)}')


def laplacian_terms(prediction: torch.Tensor, truth: torch.Tensor, levels: int = 5) -> List[torch.Tensor]:
    """Each level's term ``2^(i-1) ||L_i(prediction) - L_i(truth)||_1 / numel(finest)``, finest first."""
    _check_shapes(prediction, truth)
    finest = float(prediction.numel())
    pairs = zip(laplacian_pyramid(prediction, levels), laplacian_pyramid(truth, levels))
    return [(2.0 ** i) * (a - b).abs().sum() / finest for i, (a, b) in enumerate(pairs)]


def laplacian_loss(prediction: torch.Tensor, truth: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """The paper's Laplacian-pyramid L1 loss (the sum of :func:`laplacian_terms`). ``[N, C, H, W]`` -> scalar.

    Zero exactly when the images are equal; for a difference in the finest band only, it equals the mean absolute
    difference.
    """
    return torch.stack(laplacian_terms(prediction, truth, levels)).sum()


def l1_loss(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean absolute error. ``[N, C, H, W]`` -> scalar."""
    _check_shapes(prediction, truth)
    return (prediction - truth).abs().mean()


def log_mse_loss(prediction: torch.Tensor, truth: torch.Tensor, floor: float = 1e-8) -> torch.Tensor:
    """Batch mean of ``log(MSE_n + floor)`` per sample: -PSNR / (10 / ln 10) up to a constant. -> scalar.

    ``floor`` (an MSE of 1e-8 is 80 dB) keeps the loss finite for a perfect prediction.
    """
    _check_shapes(prediction, truth)
    mse = (prediction - truth).square().flatten(1).mean(1)
    return torch.log(mse + floor).mean()


def relative_mse_loss(prediction: torch.Tensor, truth: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Batch mean of ``MSE_n / reference_n``: each crop's squared error relative to a per-sample ``reference``
    ``[N]`` (training uses the classical interpolator's MSE on the whole frame the crop comes from). -> scalar.

    The validation score is the mean PSNR of whole frames, i.e. the mean of -log(MSE_frame); its gradient weighs
    a frame's errors by 1 / MSE_frame. Per-crop log-MSE weighs them by 1 / MSE_crop instead, which hands most of the
    gradient to near-static crops whose only error is compression noise (62% of it to the 16% of our training crops
    above 35 dB); plain MSE hands 90% of it to the hardest third. Dividing by the frame's reference MSE keeps the
    frame-level weighting at any crop.
    """
    _check_shapes(prediction, truth)
    mse = (prediction - truth).square().flatten(1).mean(1)
    return (mse / reference.to(mse).clamp_min(1e-8)).mean()


LOSSES = {'lap': laplacian_loss, 'l1': l1_loss, 'logmse': log_mse_loss, 'relmse': relative_mse_loss}
REFERENCE_LOSSES = {'relmse'}  # these take a third argument, the per-sample reference MSE
