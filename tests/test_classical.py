"""classical.py: the training-free interpolator on synthetic translations (no shared data needed)."""

import numpy as np
import pytest
import torch
from images import texture

from softmax_splatting.classical import ClassicalInterpolator, fill_holes


def translated_pair(dx: int, dy: int, height: int = 64, width: int = 96, margin: int = 12, seed: int = 0):
    """Frames one and two (two = one moved by (dx, dy)) and the true middle frame when dx, dy are even."""
    big = texture(height + 2 * margin, width + 2 * margin, seed).astype(np.float32) / 255

    def crop(ox: int, oy: int) -> torch.Tensor:
        window = big[margin - oy:margin - oy + height, margin - ox:margin - ox + width]
        return torch.from_numpy(np.ascontiguousarray(window)).permute(2, 0, 1)[None].float()

    return crop(0, 0), crop(dx, dy), crop(dx // 2, dy // 2)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a - b).double().square().mean().item()
    return float('inf') if mse == 0 else 10 * np.log10(1.0 / mse)


@pytest.fixture(scope='module')
def interpolator():
    return ClassicalInterpolator()


@pytest.fixture(scope='module')
def pair():
    return translated_pair(6, -4)


def test_endpoints_reproduce_the_inputs(interpolator, pair):
    one, two, _ = pair
    at_zero, at_one = interpolator.interpolate(one, two, [0.0, 1.0])
    torch.testing.assert_close(at_zero, one, atol=1e-5, rtol=0)
    torch.testing.assert_close(at_one, two, atol=1e-5, rtol=0)


def test_middle_of_a_translation(interpolator, pair):
    one, two, middle = pair
    (prediction,) = interpolator.interpolate(one, two, [0.5])
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # content entering at the borders is unknown
    assert psnr(prediction[inner], middle[inner]) > 35.0
    # far better than the blend of the inputs, which ghosts
    assert psnr(prediction[inner], middle[inner]) > psnr(((one + two) / 2)[inner], middle[inner]) + 10.0


def test_output_contract(interpolator, pair):
    one, two, _ = pair
    times = [0.25, 0.5, 0.75]
    results = interpolator.interpolate(one.double(), two.double(), times)
    assert len(results) == len(times)
    for result in results:
        assert result.shape == one.shape and result.dtype == torch.float64 and result.device == one.device
        assert result.min() >= 0.0 and result.max() <= 1.0
    assert interpolator.interpolate(one, two, []) == []


def test_batch_items_are_independent(interpolator):
    first = translated_pair(4, 2, seed=1)
    second = translated_pair(-2, 6, seed=2)
    one, two = torch.cat((first[0], second[0])), torch.cat((first[1], second[1]))
    (batched,) = interpolator.interpolate(one, two, [0.5])
    (alone,) = interpolator.interpolate(second[0], second[1], [0.5])
    torch.testing.assert_close(batched[1:], alone, atol=1e-5, rtol=0)


def test_flow_of_a_translation(interpolator, pair):
    one, two, _ = pair
    forward, backward = interpolator.flows(one, two)
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    assert forward.shape == (1, 2, 64, 96)
    torch.testing.assert_close(forward[inner].median(2).values.median(2).values, torch.tensor([[6.0, -4.0]]),
                               atol=0.3, rtol=0)
    torch.testing.assert_close(backward[inner].median(2).values.median(2).values, torch.tensor([[-6.0, 4.0]]),
                               atol=0.3, rtol=0)


def test_input_checks(interpolator, pair):
    one, two, _ = pair
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        interpolator.interpolate(one, two, [1.5])
    with pytest.raises(ValueError, match='differ in shape'):
        interpolator.interpolate(one, two[..., :-1], [0.5])
    with pytest.raises(ValueError, match=r'\[N, 3, H, W\]'):
        interpolator.interpolate(one[:, :1], two[:, :1], [0.5])
    with pytest.raises(TypeError, match='floating point'):
        interpolator.interpolate((one * 255).byte(), (two * 255).byte(), [0.5])


def test_fill_holes():
    image = torch.rand(1, 3, 20, 30)
    full = torch.ones(1, 1, 20, 30)
    torch.testing.assert_close(fill_holes(image, full), image)
    # a hole in a constant image is filled with the constant
    constant = torch.full((1, 3, 20, 30), 0.3)
    hole = full.clone()
    hole[..., 5:12, 8:20] = 0
    garbage = constant.clone()
    garbage[..., 5:12, 8:20] = 7.0
    torch.testing.assert_close(fill_holes(garbage, hole), constant)
    # a hole between a dark and a bright half takes values between them, dark near the dark side
    halves = torch.zeros(1, 1, 20, 30)
    halves[..., 15:] = 1.0
    gap = full.clone()
    gap[..., 10:20] = 0
    filled = fill_holes(halves, gap)
    assert filled.min() >= 0 and filled.max() <= 1
    assert filled[0, 0, 10, 10] < filled[0, 0, 10, 19]


def test_large_frames_run_dis_from_a_coarser_finest_level(monkeypatch):
    """Frames above DIS_MAX_PIXELS start DIS one level up (a 4K pair would otherwise need ~2 GB in DIS alone): with
    the cap lowered to a quarter of the frame, the flow is exactly that of finest_scale + 1, and it differs from the
    full-resolution one."""
    import dataclasses

    from softmax_splatting import classical

    one, two, _ = translated_pair(6, -4, height=96, width=128)
    default = classical.DisParameters()
    full = classical.dis_flows(one, two, default)
    coarser = classical.dis_flows(one, two, dataclasses.replace(default, finest_scale=default.finest_scale + 1))
    monkeypatch.setattr(classical, 'DIS_MAX_PIXELS', 96 * 128 // 4)
    capped = classical.dis_flows(one, two, default)
    for mine, reference in zip(capped, coarser):
        assert torch.equal(mine, reference)
    assert not torch.equal(capped[0], full[0])


def test_parallel_directions_give_the_flows_of_one_dis_after_the_other():
    """dis_flows runs the two directions in two threads, each with its own DIS: the flows are those of plain calls."""
    import cv2

    from softmax_splatting import classical

    one, two, _ = translated_pair(6, -4, height=96, width=128)
    forward, backward = classical.dis_flows(one, two, classical.CLASSICAL_DIS)
    grey = [cv2.cvtColor((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY)
            for x in (one, two)]
    dis = classical.CLASSICAL_DIS.create()
    assert np.array_equal(forward[0].permute(1, 2, 0).numpy(), dis.calc(grey[0], grey[1], None))
    assert np.array_equal(backward[0].permute(1, 2, 0).numpy(), dis.calc(grey[1], grey[0], None))


def test_reused_dis_objects_give_the_flow_of_a_fresh_one_whatever_came_before():
    """DIS objects are pooled between calls; one that first saw a tiny pair computes other flows on a larger pair
    (an OpenCV quirk), so the pool must never hand it out for another size."""
    import cv2

    from softmax_splatting import classical

    one, two, _ = translated_pair(6, -4, height=96, width=128)
    small = [torch.nn.functional.interpolate(x, size=(24, 40), mode='area') for x in (one, two)]
    classical.dis_flows(*small, classical.CLASSICAL_DIS)  # leaves solvers for 24 x 40 in the pool
    forward, backward = classical.dis_flows(one, two, classical.CLASSICAL_DIS)
    grey = [cv2.cvtColor((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY)
            for x in (one, two)]
    fresh = classical.CLASSICAL_DIS.create()
    fresh.setFinestScale(classical.CLASSICAL_DIS.finest_scale)
    assert np.array_equal(forward[0].permute(1, 2, 0).numpy(), fresh.calc(grey[0], grey[1], None))
    assert np.array_equal(backward[0].permute(1, 2, 0).numpy(), classical.CLASSICAL_DIS.create().calc(grey[1],
                                                                                                        grey[0], None))
