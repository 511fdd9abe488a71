"""Duplicate frames: a frame that repeats the one before it (animation on twos, 24p carried in 30p, screen captures).

Interpolating between a frame and its repeat gives the same picture again, so the output stutters as the input
did. A conversion instead treats short runs of repeats as placeholders: it interpolates between the distinct
frames around the run, along their motion, and gives every output frame its time as before (``timeline.py``,
``skipped``). A run longer than ``MAX_REPEATS`` is a genuinely still picture and stays still.

The test (:func:`repeat_score`) is the largest mean absolute difference over 8 x 8 blocks of grey thumbnails 256
pixels wide: a repeat differs only by coding noise, spread thinly, while any real change, however small, leaves at
least one block that differs clearly. Measured (``tools/measure_duplicates.py``): the 1056 pairs of consecutive
frames of the 15 DAVIS clips score at least 14.3 (the slowest, drift-chicane); the repeats of clips made "on twos"
from five of them and encoded with x264 score at most 1.0 at CRF 18, 3.4 at CRF 28 and 5.4 at CRF 35.
``REPEAT_LEVEL`` = 10 lies between. The mean difference over the whole frame, tried first, left almost no gap
(repeats up to 1.1 at CRF 35, real pairs from 1.3). Slower motion than DAVIS has can score below the level (a pan
of one pixel at 854 pixels wide: about 8); such a frame is then made from its neighbours, which for motion that
slow is what it shows.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ['repeat_score', 'is_repeat', 'REPEAT_LEVEL', 'MAX_REPEATS']

REPEAT_LEVEL = 10.0    # grey levels (of 255): below this in every block, a frame repeats the previous one
MAX_REPEATS = 4        # a frame shown up to five times in a row is a placeholder run; longer, a still picture
THUMBNAIL_WIDTH = 256
BLOCK = 8


def _thumbnail(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    size = (min(width, THUMBNAIL_WIDTH), max(1, round(height * min(width, THUMBNAIL_WIDTH) / width)))
    return cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY).astype(np.float32)


def repeat_score(one: np.ndarray, two: np.ndarray) -> float:
    """The largest mean absolute grey difference over 8 x 8 blocks of two ``[H, W, 3]`` uint8 frames' thumbnails
    (256 pixels wide; the blocks cover the thumbnail, the last row and column of blocks cut short)."""
    difference = np.abs(_thumbnail(one) - _thumbnail(two))
    height, width = difference.shape
    rows = -(-height // BLOCK)
    columns = -(-width // BLOCK)
    padded = np.full((rows * BLOCK, columns * BLOCK), np.nan, np.float32)
    padded[:height, :width] = difference
    return float(np.nanmax(np.nanmean(padded.reshape(rows, BLOCK, columns, BLOCK), axis=(1, 3))))


def is_repeat(one: np.ndarray, two: np.ndarray) -> bool:
    """Whether frame ``two`` repeats frame ``one`` (see the module docstring)."""
    return repeat_score(one, two) < REPEAT_LEVEL
