"""metrics.py: PSNR, SSIM and interpolation error on 8-bit RGB, checked against values computed by hand."""

import math

import numpy as np
import pytest

from softmax_splatting import metrics


def textured(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_identical_images_are_perfect():
    image = textured()
    assert metrics.psnr(image, image.copy()) == math.inf
    assert metrics.ssim(image, image.copy()) == pytest.approx(1.0)
    assert metrics.interpolation_error(image, image.copy()) == 0.0


def test_uniform_offset_of_one_level():
    gt = np.full((8, 10, 3), 100, np.uint8)
    pred = gt + np.uint8(1)
    # MSE is 1 in every channel: PSNR = 10 log10(255^2); the RGB difference per pixel is (1, 1, 1), |.| = sqrt(3).
    assert metrics.psnr(pred, gt) == pytest.approx(20 * math.log10(255))
    assert metrics.interpolation_error(pred, gt) == pytest.approx(math.sqrt(3))


def test_single_pixel_error():
    gt = textured(16, 20, seed=1)
    pred = gt.copy()
    pred[3, 4, 1] = gt[3, 4, 1] ^ 0x80  # a change of exactly 128 levels
    difference = abs(int(pred[3, 4, 1]) - int(gt[3, 4, 1]))
    assert difference == 128
    mse = difference ** 2 / (16 * 20 * 3)
    assert metrics.psnr(pred, gt) == pytest.approx(10 * math.log10(255 ** 2 / mse))
    assert metrics.interpolation_error(pred, gt) == pytest.approx(math.sqrt(difference ** 2 / (16 * 20)))


def test_no_wraparound_of_uint8_differences():
    gt = np.zeros((8, 8, 3), np.uint8)
    pred = np.full((8, 8, 3), 255, np.uint8)
    assert metrics.psnr(pred, gt) == pytest.approx(0.0)
    assert metrics.interpolation_error(pred, gt) == pytest.approx(255 * math.sqrt(3))


def test_ssim_of_constant_images_has_closed_form():
    # Without variance SSIM reduces to its luminance term (2 m1 m2 + C1) / (m1^2 + m2^2 + C1), C1 = (0.01 * 255)^2.
    first, second = np.full((16, 16, 3), 100, np.uint8), np.full((16, 16, 3), 140, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 140 + c1) / (100 ** 2 + 140 ** 2 + c1)
    assert metrics.ssim(first, second) == pytest.approx(expected, rel=1e-6)


def test_ssim_decreases_with_noise_and_is_symmetric():
    gt = textured(32, 32, seed=2)
    rng = np.random.default_rng(3)
    mild = np.clip(gt.astype(int) + rng.integers(-5, 6, gt.shape), 0, 255).astype(np.uint8)
    strong = np.clip(gt.astype(int) + rng.integers(-60, 61, gt.shape), 0, 255).astype(np.uint8)
    assert 1.0 > metrics.ssim(mild, gt) > metrics.ssim(strong, gt)
    assert metrics.ssim(mild, gt) == pytest.approx(metrics.ssim(gt, mild))


@pytest.mark.parametrize('function', [metrics.psnr, metrics.ssim, metrics.interpolation_error])
def test_rejects_float_images_and_size_mismatch(function):
    image = textured()
    with pytest.raises(TypeError, match='uint8'):
        function(image.astype(np.float32) / 255, image)
    with pytest.raises(ValueError, match='differ in size'):
        function(image, image[:-1])
    with pytest.raises(ValueError, match=r'\[H, W, 3\]'):
        function(image[..., 0], image[..., 0])
