"""Synthetic test images: smooth multi-scale random textures that optical flow can track."""

import cv2
import numpy as np


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB: three octaves of bicubically upsampled noise."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.float32)
    for scale, weight in ((4, 0.5), (8, 0.3), (16, 0.2)):
        coarse = rng.random((height // scale + 2, width // scale + 2, 3)).astype(np.float32)
        image += weight * cv2.resize(coarse, (width + 2 * scale, height + 2 * scale),
                                     interpolation=cv2.INTER_CUBIC)[scale:scale + height, scale:scale + width]
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
