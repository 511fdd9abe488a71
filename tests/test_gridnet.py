"""gridnet.py: shapes, the 3x6 grid structure, input checks, and that every block takes part in the output."""

import pytest
import torch

from softmax_splatting.gridnet import GridNet


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return GridNet(in_channels=(5, 7, 9), out_channels=3)


def inputs(n=2, h=16, w=24, channels=(5, 7, 9), seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, h >> r, w >> r, generator=generator) for r, c in enumerate(channels)]


def test_output_shape(net):
    out = net(*inputs())
    assert out.shape == (2, 3, 16, 24)
    assert out.dtype == torch.float32


def test_structure_follows_the_paper():
    grid = GridNet(in_channels=(70, 128, 192))
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in grid.modules())
    assert any(isinstance(m, torch.nn.PReLU) for m in grid.modules())
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.BatchNorm2d)) for m in grid.modules())
    assert [len(row) for row in grid.lateral] == [5, 5, 5]  # six columns: five lateral steps per row
    assert [len(between) for between in grid.down] == [3, 3]  # first three columns
    assert [len(between) for between in grid.up] == [3, 3]  # last three columns
    widths = [row[0].body[1].out_channels for row in grid.lateral]
    assert widths == [32, 64, 96]
    strides = [m.stride for between in grid.down for block in between for m in block.modules()
               if isinstance(m, torch.nn.Conv2d)]
    assert strides.count((2, 2)) == 6
    assert grid.heads[0].body[0].in_channels == 70 and grid.heads[2].body[0].in_channels == 192
    assert grid.tail[-1].out_channels == 3


def test_lateral_blocks_are_residual():
    grid = GridNet(in_channels=(3, 3, 3))
    block = grid.lateral[1][2]
    torch.nn.init.zeros_(block.body[-1].weight)
    torch.nn.init.zeros_(block.body[-1].bias)
    x = torch.randn(1, 64, 4, 4)
    torch.testing.assert_close(block(x), x)


def test_every_parameter_and_every_row_input_matters(net):
    levels = [x.requires_grad_() for x in inputs(n=1)]
    net.zero_grad()
    net(*levels).square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    for level in levels:
        assert level.grad.abs().sum() > 0


@pytest.mark.parametrize('size', [(18, 24), (16, 22), (2, 4)])
def test_rejects_sizes_not_divisible_by_4(net, size):
    h, w = size
    with pytest.raises(ValueError, match='divisible by 4'):
        net(torch.zeros(1, 5, h, w), torch.zeros(1, 7, h // 2, w // 2), torch.zeros(1, 9, h // 4, w // 4))


def test_rejects_mismatched_levels(net):
    one, two, three = inputs(n=1)
    with pytest.raises(ValueError, match='level2'):
        net(one, two[:, :6], three)
    with pytest.raises(ValueError, match='level3'):
        net(one, two, three[..., :-1])
    with pytest.raises(ValueError, match='level1'):
        net(one[:, :4], two, three)
    with pytest.raises(ValueError, match='floating point on one device'):
        net(one, two.to(torch.int32), three)


def test_mixed_dtypes_run_under_autocast(net):
    """Under autocast the warped levels can differ in dtype (softsplat keeps its input's); that must work."""
    one, two, three = inputs(n=1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = net(one, two.bfloat16(), three)
    assert out.shape == (1, 3) + tuple(one.shape[-2:])


def test_constructor_checks():
    with pytest.raises(ValueError, match='three'):
        GridNet(in_channels=(3, 3))
    with pytest.raises(ValueError, match='out_channels'):
        GridNet(in_channels=(3, 3, 3), out_channels=0)
