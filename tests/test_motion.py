"""motion.py: linear and quadratic displacement to time t, the guard against implausible accelerations, and the
interpolators' use of neighbouring frames (classical and MainNet)."""

import math

import numpy as np
import pytest
import torch
from images import texture

from softmax_splatting import frames, metrics, motion
from softmax_splatting.classical import ClassicalInterpolator, blend, splat_sources
from softmax_splatting.main_net import MainNet

NO_GUARD = motion.QuadraticGuard(math.inf, math.inf, math.inf)


def fields(n=2, h=5, w=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, h, w, generator=gen) * 3, torch.randn(n, 2, h, w, generator=gen) * 0.5


def test_linear_motion_is_exactly_t_times_the_flow():
    flow, _ = fields()
    path = motion.linear(flow)
    for t in (0.0, 0.25, 0.5, 1.0):
        assert torch.equal(path.at(t), flow * t)
    assert not path.is_quadratic


def test_quadratic_motion_recovers_velocity_and_acceleration():
    """Positions v s + a s^2 at s = 1 and s = -1 are the two flows; the fit returns the trajectory itself."""
    velocity, acceleration = fields()
    flow_next, flow_prev = velocity + acceleration, -velocity + acceleration
    path = motion.quadratic(flow_next, flow_prev, guard=NO_GUARD)
    torch.testing.assert_close(path.velocity, velocity)
    torch.testing.assert_close(path.acceleration, acceleration)
    torch.testing.assert_close(path.at(0.5), velocity * 0.5 + acceleration * 0.25)
    torch.testing.assert_close(path.at(1.0), flow_next)  # it still ends at the other frame of the pair
    assert torch.count_nonzero(path.at(0.0)) == 0
    assert motion.quadratic(flow_next, None).acceleration is None  # no neighbour: linear


def test_guard_drops_implausible_accelerations_and_keeps_plausible_ones():
    velocity, acceleration = fields(seed=1)
    flow_next, flow_prev = velocity + acceleration, -velocity + acceleration
    flow_prev[0, :, 2, 3] = torch.tensor([80.0, -60.0])  # a failed flow: an acceleration beyond the motion
    path = motion.quadratic(flow_next, flow_prev, guard=motion.QuadraticGuard(max_ratio=0.5, max_pixels=2.0,
                                                                              max_error=math.inf))
    assert torch.equal(path.acceleration[0, :, 2, 3], torch.zeros(2))
    torch.testing.assert_close(path.at(0.5)[0, :, 2, 3], flow_next[0, :, 2, 3] * 0.5)  # linear there
    kept = torch.ones(2, 1, 5, 7, dtype=torch.bool)
    kept[0, 0, 2, 3] = False
    expected = (velocity * 0.5 + acceleration * 0.25)
    torch.testing.assert_close(path.at(0.5)[kept.expand_as(expected)], expected[kept.expand_as(expected)])


def test_guard_distrusts_a_neighbour_flow_that_does_not_explain_the_neighbour():
    image = torch.from_numpy(texture(24, 32, seed=2)).permute(2, 0, 1)[None].float() / 255
    neighbour = torch.roll(image, shifts=2, dims=3)  # neighbour = image moved 2 px right: its flow is +2
    flow_prev = torch.zeros(1, 2, 24, 32)
    flow_prev[:, 0] = 2.0
    flow_next = torch.zeros(1, 2, 24, 32)
    flow_next[:, 0] = -1.5
    guard = motion.QuadraticGuard(max_ratio=math.inf, max_pixels=math.inf, max_error=0.05)
    good = motion.quadratic(flow_next, flow_prev, image, neighbour, guard)
    assert good.acceleration[:, :, :, 3:-3].abs().sum() > 0  # explained (away from the wrapped border)
    wrong = motion.quadratic(flow_next, flow_prev, image, torch.flip(neighbour, dims=[2]), guard)
    assert (wrong.acceleration.abs().sum(1) == 0).float().mean() > 0.8  # not explained: mostly linear
    with pytest.raises(ValueError, match='non-negative'):
        motion.QuadraticGuard(max_ratio=-1)


def accelerating_clip(shifts, h=64, w=96, seed=5):
    """Frames of one textured scene at horizontal offsets ``shifts`` (pixels), cropped from a wider image."""
    wide = texture(h, w + 64, seed=seed)
    return [np.ascontiguousarray(wide[:, 32 + s:32 + s + w]) for s in shifts]


def test_classical_quadratic_motion_beats_linear_on_accelerating_content():
    """x(t) = 3 t^2 over five frames at t = -2, 0, 1, 2, 4 (frame step 2 around the middle): linear motion puts
    the middle frame at the midpoint of the pair (1.5 px per frame off), quadratic motion where it is."""
    position = [round(3 * t * t / 4) for t in (-2, 0, 1, 2, 4)]  # offsets 3, 0, 1, 3, 12 (rounded to pixels)
    before, one, truth, two, after = accelerating_clip(position)
    model = ClassicalInterpolator()
    tensors = [frames.to_tensor(image) for image in (before, one, two, after)]
    linear, = model.interpolate(tensors[1], tensors[2], [0.5])
    quadratic, = model.interpolate(tensors[1], tensors[2], [0.5], before=tensors[0], after=tensors[3])
    score = {name: metrics.psnr(frames.to_uint8(result)[8:-8, 16:-16], truth[8:-8, 16:-16])
             for name, result in (('linear', linear), ('quadratic', quadratic))}
    assert score['quadratic'] > score['linear'] + 3, score


def test_classical_without_neighbours_is_the_linear_blend_exactly():
    one, two = (frames.to_tensor(image) for image in accelerating_clip([0, 4]))
    model = ClassicalInterpolator()
    flow_01, flow_10 = model.flows(one, two)
    sources = splat_sources(one, two, flow_01, flow_10, model.alpha)
    for t in (0.3, 0.5):
        expected = blend(sources, flow_01 * t, flow_10 * (1.0 - t), t, model.coverage)
        assert torch.equal(model.interpolate(one, two, [t])[0], expected)
        # precomputed flows, and neighbour flows given as None, change nothing
        assert torch.equal(model.interpolate(one, two, [t], flows=(flow_01, flow_10), outer=(None, None))[0],
                           expected)


def test_classical_neighbours_must_match_the_pair():
    one, two = (frames.to_tensor(image) for image in accelerating_clip([0, 4]))
    with pytest.raises(ValueError, match='before must match the pair'):
        ClassicalInterpolator().interpolate(one, two, [0.5], before=one[:, :, :32])


def test_main_net_quadratic_paths_from_images_or_flows_agree_and_differ_from_linear():
    torch.manual_seed(0)
    model = MainNet(pwc_weights=None).eval()
    before, one, two, after = (frames.to_tensor(image) for image in accelerating_clip([3, 0, 3, 12], h=40, w=56))
    with torch.no_grad():
        linear, = model.interpolate(one, two, [0.5])
        from_images, = model.interpolate(one, two, [0.5], before=before, after=after)
        outer = (model.estimate_flow(one, before), model.estimate_flow(two, after))
        from_flows, = model.interpolate(one, two, [0.5], before=before, after=after, outer=outer)
        one_side, = model.interpolate(one, two, [0.5], before=before)
    assert from_images.shape == linear.shape == (1, 3, 40, 56)
    torch.testing.assert_close(from_images, from_flows)
    assert not torch.allclose(from_images, linear) and not torch.allclose(one_side, from_images)
