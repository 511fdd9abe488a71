"""The softmax-splatting interpolation model (Niklaus & Liu, CVPR 2020, Sec. 4 and Fig. 4).

    one, two --PWC-Net--> F0->1, F1->0                       (flow both ways, Sec. 4.1)
    one, two --pyramid--> features at 1, 1/2, 1/4 resolution (3 levels: 32, 64, 96 channels)
    Z0, Z1 = importance metrics from brightness constancy     (Sec. 3.4: Z = alpha |I0 - backwarp(I1, F0->1)|,
             (optionally refined by a small U-Net)              or the refined variant)
    soft-splat [frame, level-1 features] and level-2/3 features of each frame to time t (Sec. 3)
    GridNet(warped level 1, level 2, level 3) -> frame at t    (Sec. 4.2)

Flow, pyramids and metrics do not depend on t, so :meth:`MainNet.interpolate` computes them once per pair and
only splats and synthesizes per requested time. PWC-Net is part of the model and trains with it (it can be frozen,
e.g. for the first steps of training, as the authors describe). Checkpoints keep the configuration beside the
weights, so ``MainNet.from_file`` needs nothing else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

import pwc
from checkpoints import load_checkpoint
from frames import atomic_path
from gridnet import GridNet
from softsplat import softsplat

CHECKPOINT_FORMAT = 'softsplat-mainnet'
PYRAMID_CHANNELS = (32, 64, 96)


@dataclass
class MainNetConfig:
    """What a checkpoint needs to rebuild the network. ``metric``: 'brightness' (alpha times the brightness
    constancy error) or 'unet' (that, refined by a small U-Net from the frame and the error)."""

    metric: str = 'unet'
    alpha_init: float = -1.0

    def validate(self) -> 'MainNetConfig':
        if self.metric not in ('brightness', 'unet'):
            raise ValueError(f"metric must be 'brightness' or 'unet', got {self.metric!r}")
        return self


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.PReLU(out_channels))


class FeaturePyramid(nn.Module):
    """Three levels of features (32, 64, 96 channels at 1, 1/2, 1/4 resolution), two 3x3 convs + PReLU each.

    ``forward([N, 3, H, W]) -> [[N, 32, H, W], [N, 64, H/2, W/2], [N, 96, H/4, W/4]]`` (H, W divisible by 4).
    """

    def __init__(self):
        super().__init__()
        a, b, c = PYRAMID_CHANNELS
        self.levels = nn.ModuleList([
            nn.Sequential(_conv(3, a), _conv(a, a)),
            nn.Sequential(_conv(a, b, stride=2), _conv(b, b)),
            nn.Sequential(_conv(b, c, stride=2), _conv(c, c)),
        ])

    def forward(self, image: torch.Tensor) -> List[torch.Tensor]:
        features = []
        for level in self.levels:
            image = level(image)
            features.append(image)
        return features


class MetricUNet(nn.Module):
    """A small U-Net that refines the importance metric from the frame and its brightness-constancy error.

    ``forward(image [N, 3, H, W], error [N, 1, H, W]) -> [N, 1, H, W]``, added to ``alpha * error``. The last
    convolution starts at zero, so an untrained refinement leaves the plain metric unchanged.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        self.down1 = nn.Sequential(_conv(4, width), _conv(width, width))
        self.down2 = nn.Sequential(_conv(width, 2 * width, stride=2), _conv(2 * width, 2 * width))
        self.down3 = nn.Sequential(_conv(2 * width, 4 * width, stride=2), _conv(4 * width, 4 * width))
        self.up2 = nn.Sequential(_conv(4 * width + 2 * width, 2 * width), _conv(2 * width, 2 * width))
        self.up1 = nn.Sequential(_conv(2 * width + width, width), nn.Conv2d(width, 1, 3, 1, 1))
        nn.init.zeros_(self.up1[-1].weight)
        nn.init.zeros_(self.up1[-1].bias)

    def forward(self, image: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        one = self.down1(torch.cat([image, error], 1))
        two = self.down2(one)
        three = self.down3(two)
        two = self.up2(torch.cat([_resize_like(three, two), two], 1))
        return self.up1(torch.cat([_resize_like(two, one), one], 1))


def _resize_like(tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(tensor, size=like.shape[-2:], mode='bilinear', align_corners=False)


def _downscale_flow(flow: torch.Tensor, size) -> torch.Tensor:
    """Resize a flow field to ``size`` and rescale its components to that resolution's pixels."""
    scaled = F.interpolate(flow, size=size, mode='bilinear', align_corners=False)
    return torch.stack([scaled[:, 0] * (size[1] / flow.shape[-1]), scaled[:, 1] * (size[0] / flow.shape[-2])], 1)


@dataclass
class _PairContext:
    """Everything about a frame pair that does not depend on t (all at the padded size)."""

    images: List[torch.Tensor]             # [one, two], each [N, 3, H, W]
    flows: List[List[torch.Tensor]]        # flows[f][level]: f=0 F0->1, f=1 F1->0, [N, 2, H_l, W_l]
    features: List[List[torch.Tensor]]     # features[f][level]
    metrics: List[List[torch.Tensor]]      # metrics[f][level], [N, 1, H_l, W_l]
    size: tuple                            # the caller's (H, W) before padding


class MainNet(nn.Module):
    """Frame interpolation by softmax splatting.

    Args:
        metric: 'unet' (default; the paper's refined importance metric) or 'brightness'.
        pwc_weights: a PWC-Net checkpoint to start from; 'default' loads ``pwc/weights/network-default.pytorch``
            when that file exists (random initialization otherwise); None never loads.
        alpha_init: initial value of the learned scale alpha of the brightness-constancy metric.

    Inputs are ``[N, 3, H, W]`` RGB in [0, 1], float32 (or float16 under autocast), any H and W.
    """

    def __init__(self, metric: str = 'unet', pwc_weights: Optional[Union[str, Path]] = 'default',
                 alpha_init: float = -1.0):
        super().__init__()
        self.config = MainNetConfig(metric=metric, alpha_init=alpha_init).validate()
        self.flow_net = self._make_flow_net(pwc_weights)
        self.pyramid = FeaturePyramid()
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        self.metric_unet = MetricUNet() if metric == 'unet' else None
        self.synthesis = GridNet(in_channels=tuple(2 * (c + (3 if i == 0 else 0))
                                                   for i, c in enumerate(PYRAMID_CHANNELS)), out_channels=3)

    @staticmethod
    def _make_flow_net(pwc_weights: Optional[Union[str, Path]]) -> nn.Module:
        if pwc_weights is None:
            return pwc.PWCNet()
        if pwc_weights == 'default':
            default = pwc.DEFAULT_WEIGHTS
            return pwc.PWCNet.from_file(default) if Path(default).is_file() else pwc.PWCNet()
        return pwc.PWCNet.from_file(pwc_weights)

    def set_flow_trainable(self, trainable: bool) -> None:
        """Freeze (False) or unfreeze (True) PWC-Net's parameters."""
        for parameter in self.flow_net.parameters():
            parameter.requires_grad_(trainable)

    # ---------------------------------------------------------------------------------------------- model ------

    def forward(self, one: torch.Tensor, two: torch.Tensor, t: Union[float, torch.Tensor] = 0.5) -> torch.Tensor:
        """The frame at time ``t`` (a float or an ``[N]`` tensor in [0, 1]) between ``one`` and ``two``."""
        return self._synthesize(self._prepare(one, two), t)

    def interpolate(self, one: torch.Tensor, two: torch.Tensor, times: Sequence[Union[float, torch.Tensor]]
                    ) -> List[torch.Tensor]:
        """One frame ``[N, 3, H, W]`` per entry of ``times``; flow, pyramids and metrics are computed once."""
        context = self._prepare(one, two)
        return [self._synthesize(context, t) for t in times]

    def _prepare(self, one: torch.Tensor, two: torch.Tensor) -> _PairContext:
        _check_pair(one, two)
        size = tuple(one.shape[-2:])
        one, two = _pad_to_multiple(one, 4), _pad_to_multiple(two, 4)
        n = one.shape[0]
        both = pwc.estimate(torch.cat([one, two]), torch.cat([two, one]), net=self.flow_net)
        full = [both[:n], both[n:]]
        features = self.pyramid(torch.cat([one, two]))
        features = [[level[:n] for level in features], [level[n:] for level in features]]
        images = [one, two]
        flows, metrics = [], []
        for f in (0, 1):
            sizes = [level.shape[-2:] for level in features[f]]
            flows.append([full[f]] + [_downscale_flow(full[f], s) for s in sizes[1:]])
            metric = self._metric(images[f], images[1 - f], full[f])
            metrics.append([metric] + [F.adaptive_avg_pool2d(metric, s) for s in sizes[1:]])
        return _PairContext(images, flows, features, metrics, size)

    def _metric(self, image: torch.Tensor, other: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Z = alpha * |image - backwarp(other, flow)| (mean over channels), optionally refined (Sec. 3.4)."""
        error = (image - pwc.backwarp(other, flow)).abs().mean(1, keepdim=True)
        metric = self.alpha * error
        if self.metric_unet is not None:
            metric = metric + self.metric_unet(image, error)
        return metric

    def _synthesize(self, context: _PairContext, t: Union[float, torch.Tensor]) -> torch.Tensor:
        n = context.images[0].shape[0]
        t = _as_time(t, n, context.images[0])
        warped = []
        for level in range(3):
            parts = []
            for f, scale in ((0, t), (1, 1 - t)):
                data = context.features[f][level]
                if level == 0:
                    data = torch.cat([context.images[f], data], 1)
                parts.append(softsplat(data, context.flows[f][level] * scale, context.metrics[f][level], 'soft'))
            warped.append(torch.cat(parts, 1))
        out = self.synthesis(*warped)
        height, width = context.size
        return out[:, :, :height, :width]

    # ------------------------------------------------------------------------------------------ checkpoints ----

    def save(self, path: Union[str, Path], half: bool = False) -> None:
        """Write configuration and weights to ``path`` atomically; ``half`` stores float16 (loaded as float32)."""
        state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu()
                 for k, v in self.state_dict().items()}
        payload = {'format': CHECKPOINT_FORMAT, 'version': 1, 'config': asdict(self.config), 'state_dict': state}
        with atomic_path(path) as temporary:
            torch.save(payload, temporary)

    @classmethod
    def from_file(cls, path: Union[str, Path], map_location: Union[str, torch.device] = 'cpu') -> 'MainNet':
        """Rebuild a network saved by :meth:`save`. Raises FileNotFoundError or ValueError with a clear message."""
        path = Path(path)
        payload = load_checkpoint(path)
        if not isinstance(payload, dict) or payload.get('format') != CHECKPOINT_FORMAT:
            raise ValueError(f'{path}: not a MainNet checkpoint (expected a file written by MainNet.save or '
                             f'train_and_test.py)')
        try:
            config = MainNetConfig(**payload['config']).validate()
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f'{path}: bad MainNet configuration ({error})') from None
        model = cls(metric=config.metric, pwc_weights=None, alpha_init=config.alpha_init)
        state = {k: v.float() if v.is_floating_point() else v for k, v in payload.get('state_dict', {}).items()}
        missing, unexpected = _key_mismatch(model.state_dict(), state)
        if missing or unexpected:
            raise ValueError(f'{path}: weights do not fit MainNet (missing: {_some(missing)}; '
                             f'unexpected: {_some(unexpected)})')
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise ValueError(f'{path}: weights do not fit MainNet ({_first_line(error)})') from None
        return model.to(map_location)


# ------------------------------------------------------------------------------------------------ helpers -------

def _check_pair(one: torch.Tensor, two: torch.Tensor) -> None:
    for name, image in (('one', one), ('two', two)):
        if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
            shape = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f'{name} must be a [N, 3, H, W] tensor, got {shape}')
    if one.shape != two.shape:
        raise ValueError(f'one and two must have the same shape, got {list(one.shape)} and {list(two.shape)}')


def _pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h), mode='replicate')
    return image


def _as_time(t: Union[float, torch.Tensor], n: int, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f't must be a float or an [N] = [{n}] tensor, got shape {list(t.shape)}')
    return t.view(n, 1, 1, 1)


def _key_mismatch(expected: Dict[str, torch.Tensor], given: Dict[str, torch.Tensor]):
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    return missing, unexpected


def _some(keys: List[str], limit: int = 5) -> str:
    if not keys:
        return 'none'
    more = f', ... ({len(keys)} in all)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
