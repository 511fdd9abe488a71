"""An independent transcription of the 2022 release's computation, to check ``published/`` against.

Written from the facts of the release's ``run.py`` (its ``estimate``, ``Network``, ``Flow``, ``Synthesis``,
``backwarp``), its ``softsplat.py`` (``soft`` mode) and its ``correlation.py``, as plain functions over a state_dict:
no module of ``softmax_splatting`` is imported, so a shared mistake would have to be made twice. It keeps the
release's order of work where ours differs: the two flow directions one after the other, everything recomputed per
time, the grid's columns written out. The splatting and the cost volume are naive loops over displacements and
corners, slow but short. Frames are RGB ``[N, 3, H, W]`` in [0, 1] as our API takes them; the release's BGR order
is applied inside, as its script reads files with BGR channels.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F

State = Dict[str, torch.Tensor]

FLOW_LEVELS = ('netFirst', 'netSecond', 'netThird', 'netFourth', 'netFifth', 'netSixth')


# ----------------------------------------------------------------------------------------------- primitives --

def conv(state: State, key: str, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    weight = state[key + '.weight']
    return F.conv2d(x, weight, state.get(key + '.bias'), stride=stride, padding=weight.shape[-1] // 2)


def prelu(state: State, key: str, x: torch.Tensor) -> torch.Tensor:
    return F.prelu(x, state[key + '.weight'])


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


def backwarp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The release's backward warp: a [-1, 1] grid through pixel centres at the corners, align_corners=True."""
    n, _, h, w = flow.shape
    xs = torch.linspace(-1.0, 1.0, w, dtype=flow.dtype).view(1, 1, w).expand(n, h, w)
    ys = torch.linspace(-1.0, 1.0, h, dtype=flow.dtype).view(1, h, 1).expand(n, h, w)
    gx = xs + flow[:, 0] / ((image.shape[3] - 1.0) / 2.0)
    gy = ys + flow[:, 1] / ((image.shape[2] - 1.0) / 2.0)
    return F.grid_sample(image, torch.stack([gx, gy], 3), mode='bilinear', padding_mode='zeros',
                         align_corners=True)


def cost_volume(one: torch.Tensor, two: torch.Tensor) -> torch.Tensor:
    """81 channels, displacement (dx, dy) in [-4, 4]^2 at channel (dy + 4) * 9 + (dx + 4): the channel mean of
    one * two shifted, two zero outside."""
    h, w = one.shape[2:]
    padded = F.pad(two, [4, 4, 4, 4])
    costs = []
    for dy in range(-4, 5):
        for dx in range(-4, 5):
            shifted = padded[:, :, 4 + dy:4 + dy + h, 4 + dx:4 + dx + w]
            costs.append((one * shifted).mean(1))
    return torch.stack(costs, 1)


def splat_sum(values: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Forward warping by summation: every source pixel adds itself to the four pixels around x + F, bilinearly
    weighted; targets outside the image are dropped."""
    n, c, h, w = values.shape
    out = values.new_zeros(n, c, h * w)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype), torch.arange(w, dtype=flow.dtype), indexing='ij')
    tx, ty = xs + flow[:, 0], ys + flow[:, 1]  # [N, H, W]
    x0, y0 = tx.floor(), ty.floor()
    for cx, cy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        px, py = x0 + cx, y0 + cy
        weight = (1.0 - (tx - px).abs()) * (1.0 - (ty - py).abs())
        inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        index = (py.clamp(0, h - 1) * w + px.clamp(0, w - 1)).long()
        for b in range(n):
            keep = inside[b].reshape(-1)
            contribution = (values[b] * weight[b]).reshape(c, -1)[:, keep]
            out[b].index_add_(1, index[b].reshape(-1)[keep], contribution)
    return out.view(n, c, h, w)


def softmax_splat(values: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
    """The release's ``soft`` mode: splat [values * e^Z, e^Z] and divide by the second plus 1e-7."""
    summed = splat_sum(torch.cat([values * metric.exp(), metric.exp()], 1), flow)
    return summed[:, :-1] / (summed[:, -1:] + 0.0000001)


def resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False)


# --------------------------------------------------------------------------------------------------- flow --

def flow_features(state: State, image: torch.Tensor) -> List[torch.Tensor]:
    levels = []
    for name in FLOW_LEVELS:
        key = 'netFlow.netExtractor.' + name
        image = leaky(conv(state, key + '.2', leaky(conv(state, key + '.0', image, stride=2))))
        levels.append(image)
    return levels


def flow_decoder(state: State, name: str, one: torch.Tensor, two: torch.Tensor, previous) -> torch.Tensor:
    h, w = one.shape[2:]
    if previous is None:
        x = torch.cat([one, cost_volume(one, two)], 1)
    else:
        up = resize(previous, h, w) / float(previous.shape[3]) * float(w)
        x = torch.cat([one, cost_volume(one, backwarp(two, up)), up], 1)
    for index in (0, 2, 4, 6, 8):
        x = leaky(conv(state, f'netFlow.{name}.netMain.{index}', x))
    return conv(state, f'netFlow.{name}.netMain.10', x)


def flows(state: State, one: torch.Tensor, two: torch.Tensor):
    h, w = one.shape[2:]
    features_one, features_two = flow_features(state, one), flow_features(state, two)
    forward = backward = None
    for level in reversed(range(6)):
        name = FLOW_LEVELS[level]
        forward = flow_decoder(state, name, features_one[level], features_two[level], forward)
        backward = flow_decoder(state, name, features_two[level], features_one[level], backward)
    return tuple(resize(f, h, w) * (float(w) / float(f.shape[3])) for f in (forward, backward))


# ---------------------------------------------------------------------------------------------- synthesis --

def residual(state: State, key: str, x: torch.Tensor, pre_activation: bool) -> torch.Tensor:
    main = key + '.netMain'
    if pre_activation:  # relu-conv-relu-conv
        y = conv(state, main + '.3', prelu(state, main + '.2', conv(state, main + '.1', prelu(state, main + '.0', x))))
    else:  # conv-relu-conv
        y = conv(state, main + '.2', prelu(state, main + '.1', conv(state, main + '.0', x)))
    shortcut = key + '.netShortcut.weight'
    return y + (F.conv2d(x, state[shortcut]) if shortcut in state else x)


def downsample(state: State, key: str, x: torch.Tensor) -> torch.Tensor:
    main = key + '.netMain'
    x = conv(state, main + '.1', prelu(state, main + '.0', x), stride=2)
    return conv(state, main + '.3', prelu(state, main + '.2', x))


def upsample(state: State, key: str, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    main = key + '.netMain'
    x = F.interpolate(x, scale_factor=2.0, mode='bilinear', align_corners=False)
    x = conv(state, main + '.2', prelu(state, main + '.1', x))
    x = conv(state, main + '.4', prelu(state, main + '.3', x))
    return x[:, :, :like.shape[2], :like.shape[3]]  # the release pads away one row/column when they differ


def encode(state: State, image: torch.Tensor) -> List[torch.Tensor]:
    outputs, x = [], image
    for name, stride in (('netOne', 1), ('netTwo', 2), ('netThr', 2)):
        key = 'netSynthesis.netEncode.' + name
        x = prelu(state, key + '.1', conv(state, key + '.0', x, stride=stride))
        x = prelu(state, key + '.3', conv(state, key + '.2', x))
        outputs.append(x)
    return [torch.cat([image, outputs[0]], 1)] + outputs[1:]


def softmetric(state: State, enc_one: List[torch.Tensor], enc_two: List[torch.Tensor],
               flow: torch.Tensor) -> torch.Tensor:
    key = 'netSynthesis.netSoftmetric.'
    error = (enc_one[0] - backwarp(enc_two[0], flow)).abs().mean(1, keepdim=True)
    column = [torch.cat([conv(state, key + 'netInput', enc_one[0][:, 0:3]), conv(state, key + 'netError', error)], 1)]
    for row in range(3):
        column.append(downsample(state, f'{key}{row}x0 - {row + 1}x0', column[-1]))
    for row in (3, 2, 1, 0):
        column[row] = residual(state, f'{key}{row}x0 - {row}x1', column[row], True)
        if row != 3:
            column[row] = column[row] + upsample(state, f'{key}{row + 1}x1 - {row}x1', column[row + 1], column[row])
    return residual(state, key + 'netOutput', column[0], False)


def synthesis(state: State, one: torch.Tensor, two: torch.Tensor, forward: torch.Tensor, backward: torch.Tensor,
              time: float) -> torch.Tensor:
    key = 'netSynthesis.'
    enc_one, enc_two = encode(state, one), encode(state, two)
    metric_one = softmetric(state, enc_one, enc_two, forward) * 2.0 * time
    metric_two = softmetric(state, enc_two, enc_one, backward) * 2.0 * (1.0 - time)
    forward, backward = forward * time, backward * (1.0 - time)

    warped = []
    for level, name in enumerate(('netOne', 'netTwo', 'netThr')):
        if level != 0:
            h, w = enc_one[level].shape[2:]
            metric_one, metric_two = resize(metric_one, h, w), resize(metric_two, h, w)
            forward = resize(forward, h, w) * (float(w) / float(forward.shape[3]))
            backward = resize(backward, h, w) * (float(w) / float(backward.shape[3]))
        both = torch.cat([
            softmax_splat(torch.cat([enc_one[level], metric_one], 1), forward, metric_one.neg().clip(-20.0, 20.0)),
            softmax_splat(torch.cat([enc_two[level], metric_two], 1), backward, metric_two.neg().clip(-20.0, 20.0)),
        ], 1)
        warped.append(residual(state, key + 'netWarp.' + name, both, False))

    column = [warped[0], None, None]
    column[1] = warped[1] + downsample(state, key + '0x0 - 1x0', column[0])
    column[2] = warped[2] + downsample(state, key + '1x0 - 2x0', column[1])
    for col in (1, 2):
        for row in (0, 1, 2):
            column[row] = residual(state, f'{key}{row}x{col - 1} - {row}x{col}', column[row], True)
            if row != 0:
                column[row] = column[row] + downsample(state, f'{key}{row - 1}x{col} - {row}x{col}', column[row - 1])
    for col in (3, 4, 5):
        for row in (2, 1, 0):
            column[row] = residual(state, f'{key}{row}x{col - 1} - {row}x{col}', column[row], True)
            if row != 2:
                column[row] = column[row] + upsample(state, f'{key}{row + 1}x{col} - {row}x{col}', column[row + 1],
                                                     column[row])
    return residual(state, key + 'netOutput', column[0], False)


# ------------------------------------------------------------------------------------------------ estimate --

def estimate(state: State, one: torch.Tensor, two: torch.Tensor, times: Sequence[float]) -> List[torch.Tensor]:
    """The release's ``estimate`` for RGB frames ``[N, 3, H, W]``: frames in [0, 1] at each time, ``[N, 3, H, W]``.

    ``state``: the release's keys (``net`` spelling), tensors of the frames' dtype.
    """
    h, w = one.shape[2:]
    pad = [0, (2 - w % 2) % 2, 0, (2 - h % 2) % 2]
    with torch.no_grad():
        one, two = (F.pad(x.flip(1), pad, mode='replicate') for x in (one, two))
        means = [x.mean([1, 2, 3], keepdim=True) for x in (one, two)]
        mean = (means[0] + means[1]) / 2.0
        std = ((sum(x.std([1, 2, 3], unbiased=False, keepdim=True).square() + (mean - m).square()
                    for x, m in zip((one, two), means))) / 2.0).sqrt()
        one, two = (one - mean) / (std + 0.0000001), (two - mean) / (std + 0.0000001)
        forward, backward = flows(state, one, two)
        frames = [synthesis(state, one, two, forward, backward, float(t)) * std + mean for t in times]
    return [frame[:, :, :h, :w].flip(1).clip(0.0, 1.0) for frame in frames]

