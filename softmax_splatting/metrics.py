"""Image quality of interpolated frames, computed the way the published benchmarks compute it.

Frame interpolation papers, the softmax splatting paper included (Sec. 5), score the 8-bit output frame against the
8-bit ground truth: the network's float output is rounded to uint8 first, exactly as it would be saved. All
functions here therefore take ``[H, W, 3]`` uint8 RGB arrays (as :func:`frames.read_image` and
:func:`frames.to_uint8` give them) and refuse anything else, so that a float image in [0, 1] cannot be scored
against a data range of 255 by mistake.

* PSNR: ``10 log10(255^2 / MSE)`` with the MSE over all pixels and the three channels; ``inf`` for identical images.
* SSIM: scikit-image's ``structural_similarity`` on the 8-bit RGB images with ``data_range=255`` and
  ``channel_axis=2`` (SSIM per channel, then averaged), its default 7x7 uniform window and sample covariance.
  These are the library's defaults, kept so that anyone with scikit-image reproduces the numbers; the Gaussian
  11x11 variant of Wang et al. gives slightly different values, so compare SSIM only across one setting.
* Interpolation error (IE): the root-mean-square of the 8-bit difference as Middlebury defines it (Baker et al.,
  "A Database and Evaluation Methodology for Optical Flow", IJCV 2011, Sec. 4.1): for colour images the per-pixel
  difference is the L2 norm of the RGB difference vector, so ``IE = sqrt(mean over pixels of |dRGB|^2)``, which is
  ``sqrt(3)`` times the RMS over individual channel values.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

__all__ = ['psnr', 'ssim', 'interpolation_error']


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> None:
    for name, image in (('pred', pred), ('gt', gt)):
        if not isinstance(image, np.ndarray):
            raise TypeError(f'{name} must be a numpy array [H, W, 3] uint8, got {type(image).__name__}')
        if image.dtype != np.uint8:
            raise TypeError(f'{name} must be uint8 (8-bit images, data range 255), got {image.dtype}; '
                            f'convert with frames.to_uint8')
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'{name} must have shape [H, W, 3], got {list(image.shape)}')
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt differ in size: {list(pred.shape)} vs {list(gt.shape)}')


def _squared_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    difference = pred.astype(np.float64) - gt.astype(np.float64)
    return difference * difference


def psnr(pred_uint8: np.ndarray, gt_uint8: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of ``[H, W, 3]`` uint8 images (data range 255); ``inf`` if identical."""
    _check_pair(pred_uint8, gt_uint8)
    mse = float(_squared_error(pred_uint8, gt_uint8).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0 ** 2 / mse)


def ssim(pred_uint8: np.ndarray, gt_uint8: np.ndarray) -> float:
    """Structural similarity of ``[H, W, 3]`` uint8 images: mean of per-channel SSIM, 7x7 window, range 255.

    Both sides must be at least 7 pixels high and wide (the window).
    """
    _check_pair(pred_uint8, gt_uint8)
    if min(pred_uint8.shape[:2]) < 7:
        raise ValueError(f'SSIM needs images of at least 7x7 pixels (its window), got '
                         f'{pred_uint8.shape[0]}x{pred_uint8.shape[1]}')
    return float(structural_similarity(pred_uint8, gt_uint8, data_range=255, channel_axis=2))


def interpolation_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Middlebury's interpolation error of ``[H, W, 3]`` uint8 images: ``sqrt(mean_pixels(|dRGB|^2))``, 8-bit units."""
    _check_pair(pred, gt)
    return math.sqrt(float(_squared_error(pred, gt).sum(axis=2).mean()))
