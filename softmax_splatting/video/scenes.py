"""Scene cuts: how much a pair of consecutive frames looks like a cut, so that no frame is blended across one.

:func:`scene_score` is in [0, 1]: the mean of two kinds of evidence, :func:`colour_distance` (the total-variation
distance of coarse colour histograms: 0 same colours, 1 disjoint) and :func:`motion_residual` (the share of the
frame that motion-compensated warping does not explain). Either alone fails on real footage: colours change within
a shot under fast action (a 12 fps clip of it had five false cuts in twenty frames at the histogram threshold used
before), and motion blur leaves much of a fast shot unexplained. On the 15 DAVIS clips
(``tools/measure_scene_cuts.py``), pairs of one shot at frame steps 1, 2 and 4 (up to 6 fps) score at most 0.321
and the 210 cuts between different clips at least 0.402; the default threshold 0.36 is the middle of that gap.
Histograms alone left a narrower gap there (0.202 .. 0.283).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ['scene_score', 'colour_distance', 'motion_residual', 'SCENE_THRESHOLD']

SCENE_THRESHOLD = 0.36  # the middle of the measured gap (see the module docstring)
RESIDUAL_WIDTH = 128  # motion_residual's thumbnails: enough for DIS at this scale, about 2 ms per pair
RESIDUAL_BLUR = 1.0  # Gaussian sigma on the thumbnails (pixels), so that motion blur counts less as unexplained
RESIDUAL_LEVEL = 24  # grey levels (of 255) above which a warped pixel counts as unexplained


def _histogram(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (160, 90), interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([small], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3).ravel()
    return hist / max(float(hist.sum()), 1.0)


def colour_distance(one: np.ndarray, two: np.ndarray) -> float:
    """Total-variation distance of the 8 x 8 x 8-bin RGB histograms of two ``[H, W, 3]`` uint8 frames, in [0, 1]
    (computed on 160 x 90 thumbnails; the aspect ratio does not matter to a histogram)."""
    return 0.5 * float(np.abs(_histogram(one) - _histogram(two)).sum())


def _thumbnail(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    scale = min(1.0, RESIDUAL_WIDTH / width)
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    grey = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return cv2.GaussianBlur(grey, (0, 0), RESIDUAL_BLUR)


def motion_residual(one: np.ndarray, two: np.ndarray) -> float:
    """The share of frame ``one`` that motion from frame ``two`` does not explain, in [0, 1].

    Both ``[H, W, 3]`` uint8 frames are shrunk to slightly blurred grey thumbnails ``RESIDUAL_WIDTH`` pixels wide;
    DIS flow from one to two (OpenCV's medium preset) warps two back onto one, and the result is the fraction of
    pixels whose grey level still differs by more than ``RESIDUAL_LEVEL``. Within a shot most of the frame is the
    same scene moved, so the share stays moderate even under fast motion; after a cut little matches.
    """
    a, b = _thumbnail(one), _thumbnail(two)
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
    height, width = a.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(b, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return float(np.mean(cv2.absdiff(a, warped) > RESIDUAL_LEVEL))


def scene_score(one: np.ndarray, two: np.ndarray) -> float:
    """How much two consecutive ``[H, W, 3]`` uint8 frames look like a scene cut, in [0, 1]: the mean of their
    colour distance and of the share of ``one`` that motion from ``two`` leaves unexplained (module docstring)."""
    return 0.5 * (colour_distance(one, two) + motion_residual(one, two))
