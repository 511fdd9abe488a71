"""Scene cuts: how much a pair of consecutive frames looks like a cut, so that no frame is blended across one.

:func:`scene_score` is in [0, 1]: the mean of two kinds of evidence, :func:`colour_distance` (the total-variation
distance of coarse colour histograms: 0 same colours, 1 disjoint) and :func:`motion_residual` (the share of the
frame that motion-compensated warping does not explain). Either alone fails on real footage: colours change within
a shot under fast action (a 12 fps clip of it had five false cuts in twenty frames at the histogram threshold used
before), and motion blur leaves much of a fast shot unexplained. On the 15 DAVIS clips
(``tools/measure_scene_cuts.py``), pairs of one shot at frame steps 1, 2 and 4 (up to 6 fps) score at most 0.321
and the 210 cuts between different clips at least 0.402; the default threshold 0.36 is the middle of that gap.
Histograms alone left a narrower gap there (0.202 .. 0.283).

A video knows more than a pair, and :class:`SceneCuts` (the video path's test) uses it twice. The motion residual
starts from the previous pair's motion, which within a shot explains more of a fast frame: the largest score
within shots fell to 0.308 at step 4 (0.125 and 0.192 at steps 1 and 2), the smallest cut stayed at 0.400. And a cut
is a jump: its score must also exceed the mean of the shot's last three scores by ``EXCESS``. Within shots no
score rose more than 0.124 above that mean (drift-straight, step 4), while every cut rose at least 0.313 above the
shot it left; 0.22 lies between. A fast shot whose scores hover around the threshold (at 6 fps, a held-out clip
scored four false cuts in one shot on the pair scores alone) rises little from score to score, and stays one shot.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Optional, Tuple

import cv2
import numpy as np

__all__ = ['SceneCuts', 'scene_score', 'colour_distance', 'motion_residual', 'SCENE_THRESHOLD', 'EXCESS',
           'HISTORY']

SCENE_THRESHOLD = 0.36  # the middle of the measured gap (see the module docstring)
RESIDUAL_WIDTH = 128  # motion_residual's thumbnails: enough for DIS at this scale, about 2 ms per pair
RESIDUAL_BLUR = 1.0  # Gaussian sigma on the thumbnails (pixels), so that motion blur counts less as unexplained
RESIDUAL_LEVEL = 24  # grey levels (of 255) above which a warped pixel counts as unexplained
HISTORY = 3   # scores of the shot so far that a cut's score is compared with
EXCESS = 0.22  # how far a cut's score lies above their mean (see the module docstring)


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


def motion_residual(one: np.ndarray, two: np.ndarray, hint: Optional[np.ndarray] = None) -> float:
    """The share of frame ``one`` that motion from frame ``two`` does not explain, in [0, 1].

    Both ``[H, W, 3]`` uint8 frames are shrunk to slightly blurred grey thumbnails ``RESIDUAL_WIDTH`` pixels wide;
    DIS flow from one to two (OpenCV's medium preset; from ``hint``, a thumbnail flow, when given) warps two back
    onto one, and the result is the fraction of pixels whose grey level still differs by more than
    ``RESIDUAL_LEVEL``. Within a shot most of the frame is the same scene moved, so the share stays moderate even
    under fast motion; after a cut little matches.
    """
    return _residual(_thumbnail(one), _thumbnail(two), hint)[0]


def _residual(a: np.ndarray, b: np.ndarray, hint: Optional[np.ndarray]) -> Tuple[float, np.ndarray]:
    start = hint.copy() if hint is not None and hint.shape[:2] == a.shape else None
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, start)
    height, width = a.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(b, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return float(np.mean(cv2.absdiff(a, warped) > RESIDUAL_LEVEL)), flow


def scene_score(one: np.ndarray, two: np.ndarray) -> float:
    """How much two consecutive ``[H, W, 3]`` uint8 frames look like a scene cut, in [0, 1]: the mean of their
    colour distance and of the share of ``one`` that motion from ``two`` leaves unexplained (module docstring)."""
    return 0.5 * (colour_distance(one, two) + motion_residual(one, two))


class SceneCuts:
    """The scene-cut test of a video's consecutive frames, which knows the shot so far (module docstring).

    ``is_cut(one, two)`` for each new pair in order: the pair's :func:`scene_score`, its motion residual computed
    from the previous pair's motion, must exceed ``threshold`` and the mean of the shot's last ``HISTORY`` scores
    by ``EXCESS``. A cut starts a new shot; ``threshold`` 0 detects nothing.
    """

    def __init__(self, threshold: float = SCENE_THRESHOLD):
        self.threshold = threshold
        self.recent: Deque[float] = deque(maxlen=HISTORY)
        self._flow: Optional[np.ndarray] = None
        self._last: Optional[Tuple[np.ndarray, np.ndarray]] = None  # (the last frame given, its thumbnail)
        self.score = 0.0

    def is_cut(self, one: np.ndarray, two: np.ndarray) -> bool:
        if self.threshold <= 0:
            return False
        a = self._last[1] if self._last is not None and self._last[0] is one else _thumbnail(one)
        b = _thumbnail(two)
        self._last = (two, b)
        residual, flow = _residual(a, b, self._flow)
        self.score = 0.5 * (colour_distance(one, two) + residual)
        cut = self.score > self.threshold and (not self.recent or
                                               self.score - float(np.mean(self.recent)) > EXCESS)
        if cut:
            self.recent.clear()
            self._flow = None
        else:
            self.recent.append(self.score)
            self._flow = flow
        return cut
