"""baselines.py: the comparison models (frame averaging, the plain DIS blend) and the flow settings they name."""

import cv2
import numpy as np
import pytest
import torch
from images import texture
from test_classical import psnr, translated_pair

from softmax_splatting import interpolator
from softmax_splatting.baselines import DisBlend, FrameAverage
from softmax_splatting.classical import CLASSICAL_DIS, OPENCV_MEDIUM_DIS, ClassicalInterpolator, DisParameters


def test_frame_average_is_the_time_weighted_mean():
    one, two = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    quarter, = FrameAverage().interpolate(one, two, [0.25])
    assert torch.allclose(quarter, torch.full_like(one, 0.25))
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        FrameAverage().interpolate(one, two, [1.5])


def test_dis_blend_follows_a_translation_and_keeps_the_endpoints():
    one, two, middle = translated_pair(6, -4)
    blend = DisBlend()
    at_zero, half, at_one = blend.interpolate(one, two, [0.0, 0.5, 1.0])
    torch.testing.assert_close(at_zero, one, atol=1e-5, rtol=0)
    torch.testing.assert_close(at_one, two, atol=1e-5, rtol=0)
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))  # away from the borders that enter
    assert psnr(half[inner], middle[inner]) > psnr(FrameAverage().interpolate(one, two, [0.5])[0][inner],
                                                   middle[inner]) + 10


def test_opencv_medium_settings_are_the_preset():
    image = texture(96, 128, 3)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    moved = np.roll(grey, (2, 3), axis=(0, 1))
    ours = OPENCV_MEDIUM_DIS.create().calc(grey, moved, None)
    preset = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey, moved, None)
    assert np.array_equal(ours, preset)
    assert DisBlend().dis == OPENCV_MEDIUM_DIS and ClassicalInterpolator().dis == CLASSICAL_DIS
    assert CLASSICAL_DIS != DisParameters()  # the learned DIS-flow model keeps the full-resolution default


@pytest.mark.parametrize('name, kind', [('dis-blend', DisBlend), ('average', FrameAverage)])
def test_the_tools_load_the_comparison_models_by_name(name, kind):
    assert isinstance(interpolator.load_interpolator(name, torch.device('cpu')), kind)
