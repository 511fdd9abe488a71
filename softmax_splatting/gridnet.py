"""The synthesis network of softmax splatting: a GridNet with three rows and six columns (Niklaus & Liu, Sec. 4).

After the frames and their feature pyramids have been splatted to time t, a GridNet (Fourure et al., BMVC 2017,
"Residual Conv-Deconv Grid Network for Semantic Segmentation") turns the warped representations into the output
frame. The grid is a lattice of streams: row r works at 1 / 2**r of the input resolution with 32, 64 or 96 channels,
and information moves along a row through residual lateral blocks and between rows through downsampling blocks
(first half of the columns) and upsampling blocks (second half). Every position of the grid may therefore combine
fine detail with coarse context, and the residual rows give a short path from the input to the output.

As in the paper, every row takes its own input (the warped representations at that pyramid level) instead of only
the first row, and the upsampling blocks use bilinear interpolation followed by convolutions rather than transposed
convolutions, which avoids checkerboard artifacts. PReLU is the activation throughout.

Layout, with ``L`` a lateral block, ``D`` a downsampling and ``U`` an upsampling block, ``h`` the per-row input
head and ``o`` the output head::

    in1 -h- (0,0) -L- (0,1) -L- (0,2) -L- (0,3) -L- (0,4) -L- (0,5) -o- out   32 channels, H x W
              D         D         D         U         U         U
    in2 -h- (1,0) -L- (1,1) -L- (1,2) -L- (1,3) -L- (1,4) -L- (1,5)           64 channels, H/2 x W/2
              D         D         D         U         U         U
    in3 -h- (2,0) -L- (2,1) -L- (2,2) -L- (2,3) -L- (2,4) -L- (2,5)           96 channels, H/4 x W/4

A position adds what reaches it: its row's input head or lateral block, plus the block from the row above (first
three columns, computed top to bottom) or from the row below (last three columns, computed bottom to top).
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ['GridNet', 'ROW_CHANNELS', 'COLUMNS']

ROW_CHANNELS: Tuple[int, int, int] = (32, 64, 96)
COLUMNS = 6


def _conv(channels_in: int, channels_out: int, stride: int = 1) -> torch.nn.Conv2d:
    return torch.nn.Conv2d(channels_in, channels_out, kernel_size=3, stride=stride, padding=1)


class _Lateral(torch.nn.Module):
    """Residual block along a row: ``x + conv(PReLU(conv(PReLU(x))))``, same size and width."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.PReLU(channels, 0.25), _conv(channels, channels),
                                        torch.nn.PReLU(channels, 0.25), _conv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Head(torch.nn.Module):
    """Maps a row's input (any number of channels) to the row's width: conv, PReLU, conv.

    No residual connection: the widths differ, and the input is raw warped data, not a stream of the grid.
    """

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.body = torch.nn.Sequential(_conv(channels_in, channels_out), torch.nn.PReLU(channels_out, 0.25),
                                        _conv(channels_out, channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Down(torch.nn.Module):
    """From row r to row r + 1: PReLU, stride-2 conv (halves the size), PReLU, conv."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.PReLU(channels_in, 0.25), _conv(channels_in, channels_out, 2),
                                        torch.nn.PReLU(channels_out, 0.25), _conv(channels_out, channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Up(torch.nn.Module):
    """From row r + 1 to row r: bilinear x2 (no transposed conv: no checkerboard), PReLU, conv, PReLU, conv."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.PReLU(channels_in, 0.25), _conv(channels_in, channels_out),
                                        torch.nn.PReLU(channels_out, 0.25), _conv(channels_out, channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode='bilinear', align_corners=False)
        return self.body(x)


class GridNet(torch.nn.Module):
    """Three-row, six-column GridNet that synthesizes a frame from a three-level pyramid of warped inputs.

    Args:
        in_channels: channels of the input of each row ``(c1, c2, c3)`` (full, half, quarter resolution). The
            default fits the paper's setup: both frames splatted to time t, with their 32-, 64- and 96-channel
            feature pyramids and, at full resolution, the frames themselves (2 * (3 + 32), 2 * 64, 2 * 96).
        out_channels: channels of the output (3 for an RGB frame).
    """

    def __init__(self, in_channels: Sequence[int] = (2 * (3 + 32), 2 * 64, 2 * 96), out_channels: int = 3):
        super().__init__()
        in_channels = tuple(int(c) for c in in_channels)
        if len(in_channels) != len(ROW_CHANNELS) or min(in_channels) < 1:
            raise ValueError(f'in_channels must be three positive channel counts (one per row), got {in_channels}')
        if int(out_channels) < 1:
            raise ValueError(f'out_channels must be positive, got {out_channels}')
        self.in_channels = in_channels
        self.out_channels = int(out_channels)
        rows = range(len(ROW_CHANNELS))
        width = ROW_CHANNELS
        self.heads = torch.nn.ModuleList(_Head(in_channels[r], width[r]) for r in rows)
        # lateral[r][j] leads from column j to column j + 1 of row r.
        self.lateral = torch.nn.ModuleList(
            torch.nn.ModuleList(_Lateral(width[r]) for _ in range(COLUMNS - 1)) for r in rows)
        # down[r][j] leads from (r, j) to (r + 1, j); up[r][j] from (r + 1, half + j) to (r, half + j).
        half = COLUMNS // 2
        self.down = torch.nn.ModuleList(
            torch.nn.ModuleList(_Down(width[r], width[r + 1]) for _ in range(half)) for r in rows[:-1])
        self.up = torch.nn.ModuleList(
            torch.nn.ModuleList(_Up(width[r + 1], width[r]) for _ in range(half)) for r in rows[:-1])
        self.tail = torch.nn.Sequential(torch.nn.PReLU(width[0], 0.25), _conv(width[0], width[0]),
                                        torch.nn.PReLU(width[0], 0.25), _conv(width[0], self.out_channels))

    def forward(self, level1: torch.Tensor, level2: torch.Tensor, level3: torch.Tensor) -> torch.Tensor:
        """Synthesize ``[N, out_channels, H, W]`` from ``[N, c1, H, W]``, ``[N, c2, H/2, W/2]``, ``[N, c3, H/4, W/4]``.

        All inputs are floating point on one device (their dtypes may differ under autocast); H and W must be
        divisible by 4.
        """
        inputs = self._check(level1, level2, level3)
        half = COLUMNS // 2
        rows = len(ROW_CHANNELS)
        state: List[torch.Tensor] = []
        for r in range(rows):  # first column: each row's input, plus what comes down from above
            x = self.heads[r](inputs[r])
            state.append(x if r == 0 else x + self.down[r - 1][0](state[r - 1]))
        for j in range(1, COLUMNS):
            if j < half:  # downsampling columns, top to bottom
                for r in range(rows):
                    x = self.lateral[r][j - 1](state[r])
                    state[r] = x if r == 0 else x + self.down[r - 1][j](state[r - 1])
            else:  # upsampling columns (including the first one, j == half), bottom to top
                for r in reversed(range(rows)):
                    x = self.lateral[r][j - 1](state[r])
                    state[r] = x if r == rows - 1 else x + self.up[r][j - half](state[r + 1])
        return self.tail(state[0])

    def _check(self, *levels: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        first = levels[0]
        if not isinstance(first, torch.Tensor) or first.dim() != 4:
            raise ValueError(f'level1 must be a 4-D tensor [N, C, H, W], got '
                             f'{tuple(first.shape) if isinstance(first, torch.Tensor) else type(first).__name__}')
        n, _, h, w = first.shape
        if h % 4 or w % 4 or h == 0 or w == 0:
            raise ValueError(f'GridNet needs a height and width divisible by 4 (two halvings); got {h}x{w} - '
                             f'pad the input, e.g. to {(h + 3) // 4 * 4}x{(w + 3) // 4 * 4}')
        for r, (level, channels) in enumerate(zip(levels, self.in_channels)):
            expected = (n, channels, h >> r, w >> r)
            if not isinstance(level, torch.Tensor) or tuple(level.shape) != expected:
                got = tuple(level.shape) if isinstance(level, torch.Tensor) else type(level).__name__
                raise ValueError(f'level{r + 1} must have shape [N, C, H, W] = {list(expected)}, got {got}')
            # dtypes may differ under autocast (softsplat returns its input's dtype), so only the device must agree
            if level.device != first.device or not level.is_floating_point():
                raise ValueError(f'level{r + 1} is {level.dtype} on {level.device}, level1 is {first.dtype} on '
                                 f'{first.device}; all levels must be floating point on one device')
        return levels
