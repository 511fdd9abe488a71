"""published/ against an independent transcription of the release's computation (tests/published_reference.py).

The same random weights, the same RGB frames (a batch of two different pairs), several times, odd and even sizes:
``PublishedNet.interpolate`` must give the release's frames within 1e-4 in float32 (the bound a reviewer applies;
we see up to about 1e-5) and to rounding in float64.

The weights are PyTorch's defaults with the flow decoders' last layers scaled so that flows are pixels long. In
float32 the importance metric is scaled to span about +-4: softmax splatting weighs colliding pixels by e^(2 Z), so
with metrics spanning +-40 (our float64 case, which also reaches the release's clip at 20) a pixel that touches a
target with a bilinear weight of 1e-12 can still win it, and the release's own frames move by up to 0.03 when its
flows move by 1e-6 px. No two float32 implementations agree to 1e-4 there; in float64 the arithmetic can be compared
exactly, and is.

Frames smaller than 33 px on a side are outside the comparison: there a level of the release's flow pyramid is one
pixel wide and its backward warp divides by zero (width - 1), giving NaN or a flat frame; ours samples such levels
exactly (tests/test_published.py covers tiny sizes).
"""

from __future__ import annotations

import pytest
import torch

import published_reference as release
from test_published import frames, lively_net

TIMES = [0.0, 0.3, 0.5, 1.0]


def _both(net, dtype, height, width):
    model = net.to(dtype)
    state = {k: v.to(dtype) for k, v in model.state_dict().items()}
    one, two = (x.to(dtype) for x in frames(2, height, width, seed=height))
    with torch.no_grad():
        ours = model.interpolate(one, two, TIMES)
    theirs = release.estimate(state, one, two, TIMES)
    return ours, theirs


@pytest.mark.parametrize('seed, height, width', [(3, 35, 33), (4, 45, 61), (3, 48, 64), (4, 75, 101)])
def test_float32_agrees_with_the_release_within_1e4(seed, height, width):
    ours, theirs = _both(lively_net(seed, metric_scale=3.0), torch.float32, height, width)
    for time, a, b in zip(TIMES, ours, theirs):
        assert a.shape == b.shape == (2, 3, height, width)
        assert torch.isfinite(b).all()
        assert (a - b).abs().max() <= 1e-4, f't={time}: {(a - b).abs().max():.2e}'
    # the comparison means something: the frames differ per time and per sample
    assert (theirs[0] - theirs[-1]).abs().max() > 0.1
    assert (theirs[1][0] - theirs[1][1]).abs().max() > 0.1


def test_float64_agrees_with_the_release_to_rounding():
    ours, theirs = _both(lively_net(3), torch.float64, 35, 47)
    for a, b in zip(ours, theirs):
        assert (a - b).abs().max() <= 1e-10


@pytest.mark.parametrize('metric_scale, low, high', [(3.0, 2.0, 20.0), (30.0, 20.0, None)])
def test_the_weights_exercise_motion_and_the_metric(metric_scale, low, high):
    """A precondition of the comparisons above: flows of pixels; metrics spanning more than +-2 in float32 and
    reaching the clip at 20 in float64 (2 Z at t = 1)."""
    net = lively_net(3, metric_scale)
    one, two = frames(2, 45, 61, seed=45)
    state = net.state_dict()
    with torch.no_grad():
        pair = net._normalise(one, two)
        forward, backward = release.flows(state, pair.one, pair.two)
        encoded = release.encode(state, pair.one), release.encode(state, pair.two)
        metric = release.softmetric(state, encoded[0], encoded[1], forward) * 2.0
    assert forward.abs().max() > 1.5 and backward.abs().max() > 1.5
    assert metric.abs().max() > low
    if high is not None:
        assert metric.abs().max() < high
