"""The flow utilities of pwc/: .flo files, the Middlebury colour wheel, backward warping, endpoint error and the
multi-scale training loss."""

import struct

import numpy as np
import pytest
import torch

from softmax_splatting.pwc import backwarp, endpoint_error, flow_to_color, multiscale_loss, read_flo, write_flo
from softmax_splatting.pwc.colorwheel import color_wheel
from softmax_splatting.pwc.warp import warp_features

# ------------------------------------------------------------------------------------------------ .flo ---------

def test_flo_round_trip_and_layout(tmp_path):
    flow = np.random.default_rng(0).normal(0, 5, (7, 11, 2)).astype(np.float32)
    flow[0, 0] = [1e10, 1e10]  # the "unknown" convention survives as a value
    path = tmp_path / 'a.flo'
    write_flo(path, flow)
    data = path.read_bytes()
    assert data[:4] == b'PIEH' and struct.unpack('<ii', data[4:12]) == (11, 7) and len(data) == 12 + 7 * 11 * 8
    assert struct.unpack('<ff', data[12:20]) == (1e10, 1e10)
    assert struct.unpack('<f', data[20:24])[0] == flow[0, 1, 0]  # u then v, row by row
    back = read_flo(path)
    assert back.dtype == np.float32 and back.shape == (7, 11, 2)
    np.testing.assert_array_equal(back, flow)
    assert [p.name for p in tmp_path.iterdir()] == ['a.flo']  # written atomically, nothing left behind


def test_write_flo_accepts_tensors(tmp_path):
    tensor = torch.randn(1, 2, 5, 6)
    write_flo(tmp_path / 't.flo', tensor)
    np.testing.assert_array_equal(read_flo(tmp_path / 't.flo'), tensor[0].permute(1, 2, 0).numpy())


def test_read_flo_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.flo'):
        read_flo(tmp_path / 'missing.flo')
    bad = tmp_path / 'bad.flo'
    bad.write_bytes(b'PNG\x00' + struct.pack('<ii', 2, 2) + bytes(32))
    with pytest.raises(ValueError, match=r'bad\.flo: not a Middlebury \.flo file'):
        read_flo(bad)
    short = tmp_path / 'short.flo'
    short.write_bytes(b'PIEH' + struct.pack('<ii', 4, 3) + bytes(40))
    with pytest.raises(ValueError, match='announces 4 x 3'):
        read_flo(short)
    huge = tmp_path / 'huge.flo'
    huge.write_bytes(b'PIEH' + struct.pack('<ii', -1, 3))
    with pytest.raises(ValueError, match='implausible size'):
        read_flo(huge)


def test_write_flo_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match=r'\[H, W, 2\]'):
        write_flo(tmp_path / 'x.flo', np.zeros((4, 4, 3), np.float32))
    with pytest.raises(TypeError, match='floating-point'):
        write_flo(tmp_path / 'x.flo', np.zeros((4, 4, 2), np.int32))
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------------ colour -------

def test_color_wheel_is_the_middlebury_one():
    wheel = color_wheel()
    assert wheel.shape == (55, 3)
    np.testing.assert_array_equal(wheel[0], [255, 0, 0])      # red
    np.testing.assert_array_equal(wheel[15], [255, 255, 0])   # yellow after 15 steps
    np.testing.assert_array_equal(wheel[21], [0, 255, 0])     # green after 6 more
    np.testing.assert_array_equal(wheel[25], [0, 255, 255])   # cyan after 4 more
    np.testing.assert_array_equal(wheel[36], [0, 0, 255])     # blue after 11 more
    np.testing.assert_array_equal(wheel[49], [255, 0, 255])   # magenta after 13 more


def test_flow_to_color_directions_and_saturation():
    flow = np.zeros((1, 6, 2), np.float32)
    flow[0, 1] = [1, 0]      # right
    flow[0, 2] = [-1, 0]     # left
    flow[0, 3] = [0, 1]      # down
    flow[0, 4] = [0, 0.5]    # down, half as far
    flow[0, 5] = [np.nan, 0]
    image = flow_to_color(flow)
    assert image.dtype == np.uint8 and image.shape == (1, 6, 3)
    np.testing.assert_array_equal(image[0, 0], [255, 255, 255])  # no motion: white
    np.testing.assert_array_equal(image[0, 1], [255, 0, 0])      # right: red, fully saturated
    assert image[0, 2, 0] < 10 and image[0, 2, 1] > 200 and image[0, 2, 2] > 200  # left: cyan
    assert image[0, 3, 0] == 255 and 150 < image[0, 3, 1] < 255 and image[0, 3, 2] == 0  # down: orange-yellow
    assert (image[0, 4] >= image[0, 3]).all() and image[0, 4, 2] > 100  # shorter: paler
    np.testing.assert_array_equal(image[0, 5], [0, 0, 0])      # unknown: black
    dimmed = flow_to_color(flow, max_flow=0.5)  # beyond max_flow: 75 % brightness
    np.testing.assert_array_equal(dimmed[0, 1], [191, 0, 0])


def test_flow_to_color_rejects_bad_input():
    with pytest.raises(ValueError, match=r'\[H, W, 2\]'):
        flow_to_color(np.zeros((2, 5, 5)))
    with pytest.raises(TypeError, match='numpy array'):
        flow_to_color(torch.zeros(5, 5, 2))


# ------------------------------------------------------------------------------------------------ warping ------

def test_backwarp_integer_shift_is_exact_with_zeros_outside():
    image = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).view(2, 3, 4, 5)
    flow = torch.zeros(2, 2, 4, 5, dtype=torch.float64)
    flow[:, 0] = 2.0   # sample two pixels to the right
    flow[:, 1] = -1.0  # and one up
    out = backwarp(image, flow)
    torch.testing.assert_close(out[:, :, 1:, :3], image[:, :, :-1, 2:])
    assert out[:, :, 0].eq(0).all() and out[:, :, :, 3:].eq(0).all()


def test_backwarp_border_padding_repeats_the_edge():
    image = torch.arange(4 * 5, dtype=torch.float32).view(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 1.0  # sample one pixel to the right
    out = backwarp(image, flow, padding='border')
    torch.testing.assert_close(out[..., :-1], image[..., 1:])
    torch.testing.assert_close(out[..., -1], image[..., -1])
    with pytest.raises(ValueError, match="padding must be 'zeros' or 'border'"):
        backwarp(image, flow, padding='reflect')


def test_backwarp_is_bilinear_and_differentiable():
    image = torch.rand(1, 2, 5, 6, dtype=torch.float64)
    flow = torch.full((1, 2, 5, 6), 0.25, dtype=torch.float64)
    out = backwarp(image, flow)
    expected = (0.75 * 0.75 * image[..., :-1, :-1] + 0.25 * 0.75 * image[..., :-1, 1:]
                + 0.75 * 0.25 * image[..., 1:, :-1] + 0.25 * 0.25 * image[..., 1:, 1:])
    torch.testing.assert_close(out[..., :-1, :-1], expected)
    flow = torch.randn(1, 2, 5, 6, dtype=torch.float64) * 2
    assert torch.autograd.gradcheck(backwarp, (image.requires_grad_(), flow.requires_grad_()), fast_mode=True)


def test_backwarp_checks_shapes():
    with pytest.raises(ValueError, match=r'flow must have shape \[N, 2, H, W\] = \[1, 2, 4, 4\]'):
        backwarp(torch.rand(1, 3, 4, 4), torch.rand(1, 2, 4, 5))
    with pytest.raises(TypeError, match='image must be a torch.Tensor'):
        backwarp(np.zeros((1, 3, 4, 4)), torch.rand(1, 2, 4, 4))


def test_warp_features_zeroes_partly_outside_pixels():
    features = torch.ones(1, 2, 4, 4)
    flow = torch.zeros(1, 2, 4, 4)
    flow[:, 0] = 0.5  # the last column samples half outside: its mask is 0.5, so it is zeroed
    out = warp_features(features, flow)
    assert out[..., :3].eq(1).all() and out[..., 3].eq(0).all()
    assert backwarp(features, flow)[..., 3].eq(0.5).all()


# ------------------------------------------------------------------------------------------------ EPE / loss ---

def test_endpoint_error_values_and_mask():
    gt = torch.zeros(1, 2, 2, 2)
    flow = torch.zeros(1, 2, 2, 2)
    flow[0, 0, 0, 0], flow[0, 1, 0, 0] = 3.0, 4.0  # one pixel off by 5
    assert endpoint_error(flow, gt).item() == pytest.approx(5 / 4)
    valid = torch.tensor([[[[True, False], [False, False]]]])
    assert endpoint_error(flow, gt, valid).item() == pytest.approx(5.0)
    assert endpoint_error(flow, gt, ~valid).item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match='one shape'):
        endpoint_error(flow, torch.zeros(1, 2, 2, 3))


def test_multiscale_loss_downscales_and_divides_by_20():
    gt = torch.zeros(2, 2, 64, 64)
    gt[:, 0] = 40.0  # 2 after dividing by 20
    flows = [torch.zeros(2, 2, 64 >> level, 64 >> level) for level in (6, 5, 4, 3, 2)]
    expected = sum(w * 2.0 * (64 >> level) ** 2 for w, level in zip((0.32, 0.08, 0.02, 0.01, 0.005), (6, 5, 4, 3, 2)))
    assert multiscale_loss(flows, gt).item() == pytest.approx(expected)
    exact = [torch.zeros_like(f) + torch.tensor([2.0, 0.0]).view(1, 2, 1, 1) for f in flows]
    assert multiscale_loss(exact, gt).item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match='expected 5 flows'):
        multiscale_loss(flows[:4], gt)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_backwarp_positions_stay_float32_in_low_precision(dtype):
    """A steep periodic ramp 1024 wide, image and flow in bfloat16/float16 (as features and flow are under
    autocast), warped by a sub-pixel flow: positions must be built in float32. A grid in float16 misplaces samples
    near x = 1000 by up to ~1 px, in bfloat16 by several, which moves this pattern by a large part of its period."""
    width = 1024
    x = torch.arange(width, dtype=torch.float32)
    image = torch.sin(2 * torch.pi * x / 8).view(1, 1, 1, width).expand(1, 1, 4, width).contiguous()
    flow = torch.zeros(1, 2, 4, width)
    flow[:, 0] = 0.375  # exactly representable in every dtype
    low_image, low_flow = image.to(dtype), flow.to(dtype)
    expected = backwarp(low_image.float(), low_flow.float())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        warped = backwarp(low_image, low_flow)
    assert warped.dtype == dtype
    inner = (slice(None), slice(None), slice(None), slice(0, width - 1))  # the last column samples outside
    torch.testing.assert_close(warped[inner].float(), expected[inner], rtol=0, atol=1e-2)
