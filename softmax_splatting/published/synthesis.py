"""The synthesis half of the released SoftSplat model: encoder, importance metric, splatting, GridNet.

Niklaus & Liu (CVPR 2020, Sec. 3-4, Fig. 4), as the 2022 release builds it (``netSynthesis.*`` of its weights):

* ``Encoder`` (``netEncode``): three levels of 32, 64, 96 channels (3x3 convolutions and PReLU, stride 2 into
  levels two and three); level one is returned with the image in front of it (3 + 32 channels), so the frame is
  splatted together with its finest features.
* ``MetricNet`` (``netSoftmetric``): the importance metric Z (Sec. 3.4) from the frame and its brightness-constancy
  error |E0 - backwarp(E1, F0->1)| over the level-one tensors, refined by a four-row U-Net (16, 32, 64, 96).
* ``Splatting`` (``netWarp``): at each level, softmax splatting of [features, Z] by the flow scaled to time t,
  with exp(clip(-Z, -20, 20)) as weights (the release's clip, and its sign: a larger Z loses), both frames, then a
  residual block to 32, 64 or 96 channels. Coarser levels take the metric and the flow resized from the level
  above (a cascade, as published), the flow scaled by the width ratio.
* The grid (Sec. 4.2, GridNet of Fourure et al.): three rows (32, 64, 96 channels), six columns; the first three
  columns also go down the rows, the last three up; a residual block to 3 channels gives the frame.

The metric depends on t only by its scale (``2 t`` for frame one, ``2 (1 - t)`` for frame two), so
:meth:`Synthesis.prepare` computes encodings and metrics once and :meth:`Synthesis.frame` only splats and
synthesizes per time. Splatting is our ``softsplat`` (CuPy kernels on CUDA, PyTorch elsewhere), whose ``soft`` mode
is the published formula with its 1e-7.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..pwc import backwarp
from ..softsplat import softsplat

__all__ = ['Synthesis', 'PreparedPair']

ROWS = (32, 64, 96)          # the grid's and the encoder's channels per level
METRIC_ROWS = (16, 32, 64, 96)
METRIC_LIMIT = 20.0
Time = Union[float, torch.Tensor]  # a float, or a tensor broadcastable to [N, 1, 1, 1]


def _conv(a: int, b: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(a, b, 3, stride, 1, bias=False)


def _prelu(channels: int) -> nn.PReLU:
    return nn.PReLU(num_parameters=channels, init=0.25)


def _crop_like(tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Drop the extra last row/column an upsampling of an odd-sized level adds."""
    return tensor[:, :, :like.shape[2], :like.shape[3]]


class Residual(nn.Module):
    """Two 3x3 convolutions a -> b -> c and a skip (identity, or a 1x1 convolution when a != c).

    ``pre_activation``: PReLU, conv, PReLU, conv (the grid's lateral blocks); else conv, PReLU, conv.
    """

    def __init__(self, channels: Tuple[int, int, int], pre_activation: bool):
        super().__init__()
        a, b, c = channels
        first: List[nn.Module] = [_prelu(a)] if pre_activation else []
        self.netMain = nn.Sequential(*first, _conv(a, b), _prelu(b), _conv(b, c))
        self.netShortcut = None if a == c else nn.Conv2d(a, c, 1, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.netMain(x) + (x if self.netShortcut is None else self.netShortcut(x))


class Down(nn.Module):
    """To the next row of a grid: PReLU, stride-2 conv, PReLU, conv."""

    def __init__(self, channels: Tuple[int, int, int]):
        super().__init__()
        a, b, c = channels
        self.netMain = nn.Sequential(_prelu(a), _conv(a, b, 2), _prelu(b), _conv(b, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.netMain(x)


class Up(nn.Module):
    """To the previous row: bilinear x2, PReLU, conv, PReLU, conv."""

    def __init__(self, channels: Tuple[int, int, int]):
        super().__init__()
        a, b, c = channels
        self.netMain = nn.Sequential(nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False), _prelu(a),
                                     _conv(a, b), _prelu(b), _conv(b, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.netMain(x)


def _edge(row: int, column: int, to_row: int, to_column: int) -> str:
    """The published name of a grid edge, e.g. '0x0 - 1x0'."""
    return f'{row}x{column} - {to_row}x{to_column}'


class Encoder(nn.Module):
    """``[N, 3, H, W]`` -> ``[[N, 35, H, W] (image and level one), [N, 64, H/2, W/2], [N, 96, H/4, W/4]]``."""

    def __init__(self):
        super().__init__()
        a, b, c = ROWS
        self.netOne = nn.Sequential(_conv(3, a), _prelu(a), _conv(a, a), _prelu(a))
        self.netTwo = nn.Sequential(_conv(a, b, 2), _prelu(b), _conv(b, b), _prelu(b))
        self.netThr = nn.Sequential(_conv(b, c, 2), _prelu(c), _conv(c, c), _prelu(c))

    def forward(self, image: torch.Tensor) -> List[torch.Tensor]:
        one = self.netOne(image)
        two = self.netTwo(one)
        return [torch.cat([image, one], 1), two, self.netThr(two)]


class MetricNet(nn.Module):
    """The importance metric ``[N, 1, H, W]`` of frame A from both encodings and the flow A -> B."""

    def __init__(self):
        super().__init__()
        self.netInput = _conv(3, 12)
        self.netError = _conv(1, 4)
        for row, channels in enumerate(METRIC_ROWS):
            self.add_module(_edge(row, 0, row, 1), Residual((channels,) * 3, pre_activation=True))
        for row in range(len(METRIC_ROWS) - 1):
            a, b = METRIC_ROWS[row], METRIC_ROWS[row + 1]
            self.add_module(_edge(row, 0, row + 1, 0), Down((a, b, b)))
        for row in reversed(range(1, len(METRIC_ROWS))):
            a, b = METRIC_ROWS[row], METRIC_ROWS[row - 1]
            self.add_module(_edge(row, 1, row - 1, 1), Up((a, b, b)))
        self.netOutput = Residual((METRIC_ROWS[0], METRIC_ROWS[0], 1), pre_activation=False)

    def forward(self, encoded_a: Sequence[torch.Tensor], encoded_b: Sequence[torch.Tensor],
                flow: torch.Tensor) -> torch.Tensor:
        error = (encoded_a[0] - backwarp(encoded_b[0], flow)).abs().mean(1, keepdim=True)
        rows = [torch.cat([self.netInput(encoded_a[0][:, :3]), self.netError(error)], 1)]
        for row in range(len(METRIC_ROWS) - 1):
            rows.append(self._modules[_edge(row, 0, row + 1, 0)](rows[-1]))
        last = len(rows) - 1
        for row in range(last, -1, -1):
            rows[row] = self._modules[_edge(row, 0, row, 1)](rows[row])
            if row < last:
                rows[row] = rows[row] + _crop_like(self._modules[_edge(row + 1, 1, row, 1)](rows[row + 1]), rows[row])
        return self.netOutput(rows[0])


class Splatting(nn.Module):
    """Both frames' encodings softmax-splatted to time t, level by level, and merged by a residual block each."""

    def __init__(self):
        super().__init__()
        inputs = [2 * (channels + 1) for channels in ROWS]
        inputs[0] += 2 * 3  # level one carries the image
        for name, a, c in zip(('netOne', 'netTwo', 'netThr'), inputs, ROWS):
            self.add_module(name, Residual((a, c, c), pre_activation=False))

    def forward(self, encoded_a: Sequence[torch.Tensor], encoded_b: Sequence[torch.Tensor],
                metric_a: torch.Tensor, metric_b: torch.Tensor, shift_a: torch.Tensor,
                shift_b: torch.Tensor) -> List[torch.Tensor]:
        """``shift_a``/``shift_b``: each frame's displacement to time t, ``[N, 2, H, W]`` at level one."""
        warped = []
        for level, merge in enumerate((self.netOne, self.netTwo, self.netThr)):
            if level > 0:  # each level resizes what the level above used, as published
                size = tuple(encoded_a[level].shape[-2:])
                metric_a, metric_b = (F.interpolate(m, size=size, mode='bilinear', align_corners=False)
                                      for m in (metric_a, metric_b))
                shift_a, shift_b = (F.interpolate(s, size=size, mode='bilinear', align_corners=False)
                                    * (float(size[1]) / float(s.shape[-1])) for s in (shift_a, shift_b))
            warped.append(merge(torch.cat([_splat(encoded_a[level], metric_a, shift_a),
                                           _splat(encoded_b[level], metric_b, shift_b)], 1)))
        return warped


def _splat(features: torch.Tensor, metric: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return softsplat(torch.cat([features, metric], 1), shift, metric.neg().clip(-METRIC_LIMIT, METRIC_LIMIT), 'soft')


@dataclass
class PreparedPair:
    """What does not depend on t: both frames' encodings and their unscaled importance metrics."""

    encoded_one: List[torch.Tensor]
    encoded_two: List[torch.Tensor]
    metric_one: torch.Tensor  # [N, 1, H, W]
    metric_two: torch.Tensor


class Synthesis(nn.Module):
    """The frame at time t from two normalised BGR frames of one even size and their flows both ways.

    ``forward(one, two, flow_01, flow_10, t) -> [N, 3, H, W]`` (normalised BGR, like the inputs). ``t``: a float, or
    an ``[N, 1, 1, 1]`` tensor. Flows are ``[N, 2, H, W]`` in pixels.
    """

    def __init__(self):
        super().__init__()
        self.netEncode = Encoder()
        self.netSoftmetric = MetricNet()
        self.netWarp = Splatting()
        last = 5
        for row, channels in enumerate(ROWS):
            for column in range(last):
                self.add_module(_edge(row, column, row, column + 1), Residual((channels,) * 3, pre_activation=True))
        for column in (0, 1, 2):
            for row in range(len(ROWS) - 1):
                a, b = ROWS[row], ROWS[row + 1]
                self.add_module(_edge(row, column, row + 1, column), Down((a, b, b)))
        for column in (3, 4, 5):
            for row in reversed(range(1, len(ROWS))):
                a, b = ROWS[row], ROWS[row - 1]
                self.add_module(_edge(row, column, row - 1, column), Up((a, b, b)))
        self.netOutput = Residual((ROWS[0], ROWS[0], 3), pre_activation=False)

    def forward(self, one: torch.Tensor, two: torch.Tensor, flow_01: torch.Tensor, flow_10: torch.Tensor,
                t: Time) -> torch.Tensor:
        pair = self.prepare(one, two, flow_01, flow_10)
        return self.frame(pair, flow_01 * t, flow_10 * (1.0 - t), t)

    def prepare(self, one: torch.Tensor, two: torch.Tensor, flow_01: torch.Tensor,
                flow_10: torch.Tensor) -> PreparedPair:
        encoded_one, encoded_two = self.netEncode(one), self.netEncode(two)
        return PreparedPair(encoded_one, encoded_two, self.netSoftmetric(encoded_one, encoded_two, flow_01),
                            self.netSoftmetric(encoded_two, encoded_one, flow_10))

    def frame(self, pair: PreparedPair, shift_one: torch.Tensor, shift_two: torch.Tensor, t: Time) -> torch.Tensor:
        """The frame at ``t``, frame one moved by ``shift_one`` and frame two by ``shift_two`` (``t F0->1`` and
        ``(1 - t) F1->0`` for linear motion)."""
        metric_one = pair.metric_one * 2.0 * t
        metric_two = pair.metric_two * 2.0 * (1.0 - t)
        warped = self.netWarp(pair.encoded_one, pair.encoded_two, metric_one, metric_two, shift_one, shift_two)
        return self.netOutput(self._grid(warped)[0])

    def _grid(self, rows: List[torch.Tensor]) -> List[torch.Tensor]:
        rows = list(rows)
        for row in range(1, len(rows)):  # column 0: the warped levels, each joined by the row above
            rows[row] = rows[row] + self._modules[_edge(row - 1, 0, row, 0)](rows[row - 1])
        for column in (1, 2):  # down the rows
            for row in range(len(rows)):
                rows[row] = self._modules[_edge(row, column - 1, row, column)](rows[row])
                if row > 0:
                    rows[row] = rows[row] + self._modules[_edge(row - 1, column, row, column)](rows[row - 1])
        for column in (3, 4, 5):  # up the rows
            for row in reversed(range(len(rows))):
                rows[row] = self._modules[_edge(row, column - 1, row, column)](rows[row])
                if row < len(rows) - 1:
                    up = self._modules[_edge(row + 1, column, row, column)](rows[row + 1])
                    rows[row] = rows[row] + _crop_like(up, rows[row])
        return rows
