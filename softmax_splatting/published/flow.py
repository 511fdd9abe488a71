"""The optical flow network of the released SoftSplat model: a light six-level PWC-Net, both directions.

Niklaus & Liu (CVPR 2020, Sec. 4.1) estimate flow with a PWC-Net; the weights released in 2022 (``network-l1`` /
``network-lf``) come with a smaller variant of their own, which this module reproduces so that those files load
key for key (``netFlow.*``):

* Extractor: six levels of 16, 32, 64, 96, 128, 192 channels, each a stride-2 and a stride-1 3x3 convolution
  with LeakyReLU(0.1), so level k is at 1 / 2^k of the (even) input size.
* Decoders, coarse to fine: level 6 sees [features, cost volume]; every finer level upsamples the coarser flow
  (bilinear, both components scaled by the width ratio, as published), warps the second image's features by it
  and sees [features, cost volume, upsampled flow]. Five 3x3 convolutions (128, 128, 96, 64, 32, LeakyReLU) and a
  last one to 2 channels give the level's flow directly, not a residual; the cost volume enters without an
  activation. The level-1 flow (at half resolution) is upsampled to the input size the same way.

The cost volume is ``pwc.correlation`` (81 displacements, the mean over channels; CuPy kernels on CUDA, PyTorch
elsewhere) and the warping ``pwc.backwarp``: the published computation, not copies of it. Both directions run as
one batch (the frames' roles swapped), which is the same arithmetic per sample.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..pwc import backwarp, correlation
from ..pwc.cost_volume import DISPLACEMENTS

__all__ = ['FlowNet', 'FEATURES']

FEATURES = (16, 32, 64, 96, 128, 192)  # levels 1..6
LEVEL_NAMES = ('netFirst', 'netSecond', 'netThird', 'netFourth', 'netFifth', 'netSixth')
DECODER_CHANNELS = (128, 128, 96, 64, 32)
LEAKY_SLOPE = 0.1


def _leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=LEAKY_SLOPE, inplace=False)


def resize_flow(flow: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """``[N, 2, h, w]`` flow resized bilinearly to ``size`` = (H, W), both components times W / w (the published
    rule: the vertical one too, which differs from H / h only when the aspect ratio is not kept exactly)."""
    resized = F.interpolate(flow, size=size, mode='bilinear', align_corners=False)
    return resized / float(flow.shape[-1]) * float(size[1])


class Extractor(nn.Module):
    """``[N, 3, H, W]`` -> six feature maps, ``[N, FEATURES[k], ceil(H / 2^(k+1)), ceil(W / 2^(k+1))]``."""

    def __init__(self):
        super().__init__()
        inputs = (3,) + FEATURES[:-1]
        for name, a, b in zip(LEVEL_NAMES, inputs, FEATURES):
            self.add_module(name, nn.Sequential(nn.Conv2d(a, b, 3, 2, 1), _leaky(), nn.Conv2d(b, b, 3, 1, 1),
                                                _leaky()))

    def forward(self, image: torch.Tensor) -> List[torch.Tensor]:
        levels = []
        for name in LEVEL_NAMES:
            image = self._modules[name](image)
            levels.append(image)
        return levels


class Decoder(nn.Module):
    """One level's flow from its features, the other image's features and the coarser level's flow (or None)."""

    def __init__(self, in_channels: int):
        super().__init__()
        layers: List[nn.Module] = []
        for width in DECODER_CHANNELS:
            layers += [nn.Conv2d(in_channels, width, 3, 1, 1), _leaky()]
            in_channels = width
        layers.append(nn.Conv2d(in_channels, 2, 3, 1, 1))
        self.netMain = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, other: torch.Tensor, coarser: Optional[torch.Tensor]) -> torch.Tensor:
        if coarser is None:
            return self.netMain(torch.cat([features, correlation(features, other)], 1))
        flow = resize_flow(coarser, tuple(features.shape[-2:]))
        volume = correlation(features, backwarp(other, flow))
        return self.netMain(torch.cat([features, volume, flow], 1))


class FlowNet(nn.Module):
    """Flow both ways between two normalised BGR images of one even size.

    ``forward(one [N, 3, H, W], two [N, 3, H, W]) -> (F0->1, F1->0)``, each ``[N, 2, H, W]`` in pixels (x, y);
    with ``both=False`` only F0->1 is computed, and returned as ``(F0->1, None)``.
    """

    def __init__(self):
        super().__init__()
        self.netExtractor = Extractor()
        for level, (name, channels) in enumerate(zip(LEVEL_NAMES, FEATURES)):
            extra = 0 if level == len(FEATURES) - 1 else 2  # the coarsest level has no coarser flow
            self.add_module(name, Decoder(channels + DISPLACEMENTS + extra))

    def forward(self, one: torch.Tensor, two: torch.Tensor, both: bool = True
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        n = one.shape[0]
        pyramid = self.netExtractor(torch.cat([one, two]))
        flow = None
        for name, features in reversed(list(zip(LEVEL_NAMES, pyramid))):
            own, other = features[:n], features[n:]
            if both:  # the backward direction: the same decoder with the frames' roles swapped
                own, other = torch.cat([own, other]), torch.cat([other, own])
            flow = self._modules[name](own, other, flow)
        size = tuple(one.shape[-2:])
        flow = F.interpolate(flow, size=size, mode='bilinear', align_corners=False) * (size[1] / flow.shape[-1])
        return (flow[:n], flow[n:]) if both else (flow, None)
