"""The softmax-splatting interpolation model (Niklaus & Liu, CVPR 2020, Sec. 4 and Fig. 4).

    one, two --flow--> F0->1, F1->0                          (both ways, Sec. 4.1: PWC-Net, or DIS on a CPU)
    one, two --pyramid--> features at 1, 1/2, 1/4 resolution (3 levels: 32, 64, 96 channels)
    Z0, Z1 = importance metrics from brightness constancy     (Sec. 3.4: Z = alpha |I0 - backwarp(I1, F0->1)|,
             (optionally refined by a small U-Net)              or the refined variant)
    soft-splat [frame, level-1 features] and level-2/3 features of both frames to time t (Sec. 3)
    GridNet(warped level 1, level 2, level 3) -> frame at t    (Sec. 4.2)

Flow, pyramids and metrics do not depend on t, so :meth:`MainNet.interpolate` computes them once per pair and
only splats and synthesizes per requested time. Given the frames before and after the pair (or their flows),
each frame moves along a quadratic path instead of a straight one (``motion.py``; inference only; training is
linear). Both frames travel through each level's splatting in one call (stacked on the batch), so a time step
costs three ``softsplat`` calls.

The importance metric starts as the published demo sets it, Z = -20 |I0 - backwarp(I1, F)| (colour in [0, 1],
mean over channels), and is clipped to [-20, 20] as there. One alpha serves both directions and every level: the
two directions are the same computation with the frames' roles swapped (and temporal reversal makes them the same
distribution in training), and the coarser levels take the average-pooled metric of the finest one, as the paper
describes. The clip keeps every sample's metrics within a span of 40, where ``softsplat`` needs one exponential per
pixel (no per-target maximum pass).

Two choices beyond the paper, both recorded in the checkpoint:

* ``flow='dis'``: OpenCV's DIS optical flow (the settings of ``classical.py``) instead of PWC-Net, for training and
  inference on a CPU. Everything after the flow is the paper's.
* ``residual=True``: GridNet predicts a correction to the training-free frame of ``classical.py`` (softmax splatting
  with a fixed metric plus hole filling), which it also receives as three more input channels at full resolution;
  its last convolution starts at zero, so an untrained model reproduces the classical interpolator exactly.

PWC-Net is part of the model and trains with it (it can be frozen, e.g. for the first steps of training). Checkpoints
keep the configuration beside the weights, so ``MainNet.from_file`` needs nothing else.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import classical, motion, pwc
from .errors import first_line
from .files import atomic_path, load_checkpoint, state_mismatch
from .gridnet import GridNet
from .pairs import as_times, check_neighbours, check_pair, pad_to_multiple, quadratic_paths
from .softsplat import softsplat

CHECKPOINT_FORMAT = 'softsplat-mainnet'
# The training state train_and_test.py writes (last.pt): MainNet.from_file takes its weights, as final.pt holds them.
TRAINING_STATE_FORMAT = 'softsplat-training'
PYRAMID_CHANNELS = (32, 64, 96)
METRIC_LIMIT = 20.0  # the published demo's clip of the importance metric
FLOWS = ('pwc', 'dis')


@dataclass
class MainNetConfig:
    """What a checkpoint needs to rebuild the network.

    ``metric``: 'brightness' (alpha times the brightness-constancy error) or 'unet' (that, refined by a small U-Net
    from the frame and the error). ``flow``: 'pwc' or 'dis'; ``dis``: the DIS settings (``classical.DisParameters``
    fields) a 'dis' model was trained with. ``residual``: GridNet corrects the classical frame, made with
    ``classical_alpha`` and ``classical_coverage``.
    """

    metric: str = 'unet'
    alpha_init: float = -20.0
    flow: str = 'pwc'
    residual: bool = False
    dis: Dict[str, object] = field(default_factory=lambda: asdict(classical.DisParameters()))
    classical_alpha: float = 5.0
    classical_coverage: float = 1.0

    def validate(self) -> 'MainNetConfig':
        if self.metric not in ('brightness', 'unet'):
            raise ValueError(f"metric must be 'brightness' or 'unet', got {self.metric!r}")
        if self.flow not in FLOWS:
            raise ValueError(f"flow must be 'pwc' or 'dis', got {self.flow!r}")
        known = {f.name for f in fields(classical.DisParameters)}
        if not isinstance(self.dis, dict) or set(self.dis) - known:
            raise ValueError(f'dis must be a dict of DisParameters fields, got {self.dis!r}')
        classical.DisParameters(**self.dis)  # ValueError for a value of the wrong type or range
        if not isinstance(self.residual, bool):
            raise ValueError(f'residual must be true or false, got {self.residual!r}')
        for name, lowest, inclusive in (('alpha_init', None, True), ('classical_alpha', 0.0, True),
                                        ('classical_coverage', 0.0, False)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f'{name} must be a finite number, got {value!r}')
            if lowest is not None and (value < lowest or (value == lowest and not inclusive)):
                raise ValueError(f'{name} must be {">=" if inclusive else ">"} {lowest:g}, got {value!r}')
        return self

    @property
    def dis_parameters(self) -> classical.DisParameters:
        return classical.DisParameters(**self.dis)


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
    """Everything about a frame pair that does not depend on t, at the padded size, both frames stacked on the
    batch (frame one's N samples, then frame two's)."""

    data: List[torch.Tensor]               # per level: [2N, C_l, H_l, W_l] (level 1: the frames and features)
    flows: List[torch.Tensor]              # per level: [2N, 2, H_l, W_l], F0->1 then F1->0 (velocities, quadratic)
    accelerations: Optional[List[torch.Tensor]]  # per level, quadratic motion only: [2N, 2, H_l, W_l]
    metrics: List[torch.Tensor]            # per level: [2N, 1, H_l, W_l]
    classical: Optional[torch.Tensor]      # residual models: classical.splat_sources, [2N, 5, H, W]
    size: Tuple[int, int]                  # the caller's (H, W) before padding


class MainNet(nn.Module):
    """Frame interpolation by softmax splatting.

    Args:
        metric: 'unet' (default; the paper's refined importance metric) or 'brightness'.
        pwc_weights: a PWC-Net checkpoint to start from; 'default' loads ``pwc/weights/network-default.pytorch``
            when that file exists (random initialization otherwise); None never loads. Ignored with ``flow='dis'``.
        alpha_init: initial value of the learned scale alpha of the brightness-constancy metric (published: -20).
        flow: 'pwc' (the paper) or 'dis' (OpenCV DIS with ``classical.DisParameters()``, not trainable).
        residual: synthesize a correction to the classical interpolator's frame (see the module docstring).

    Inputs are ``[N, 3, H, W]`` RGB in [0, 1], float32 (or float16/bfloat16 under autocast), any H and W; times lie
    in [0, 1]. ``pretrained_flow`` tells whether PWC-Net weights were loaded (False for a random PWC-Net and for DIS).
    """

    def __init__(self, metric: str = 'unet', pwc_weights: Optional[Union[str, Path]] = 'default',
                 alpha_init: float = -20.0, flow: str = 'pwc', residual: bool = False,
                 config: Optional[MainNetConfig] = None):
        super().__init__()
        if config is None:
            config = MainNetConfig(metric=metric, alpha_init=alpha_init, flow=flow, residual=residual)
        self.config = config.validate()
        self.pretrained_flow = False
        self.flow_net = self._make_flow_net(pwc_weights) if self.config.flow == 'pwc' else None
        self.pyramid = FeaturePyramid()
        self.alpha = nn.Parameter(torch.tensor(float(self.config.alpha_init)))
        self.metric_unet = MetricUNet() if self.config.metric == 'unet' else None
        in_channels = [2 * (c + (3 if i == 0 else 0)) for i, c in enumerate(PYRAMID_CHANNELS)]
        if self.config.residual:
            in_channels[0] += 3
        self.synthesis = GridNet(in_channels=tuple(in_channels), out_channels=3)
        if self.config.residual:
            last = self.synthesis.tail[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        # Convolutions in channels-last layout: 1.4-1.6x faster training steps on our CPUs (oneDNN), and the layout
        # GPUs prefer for half precision. Checkpoints are written contiguous.
        self.to(memory_format=torch.channels_last)

    def _make_flow_net(self, pwc_weights: Optional[Union[str, Path]]) -> nn.Module:
        if pwc_weights is None:
            return pwc.PWCNet()
        if pwc_weights == 'default':
            default = pwc.DEFAULT_WEIGHTS
            if not Path(default).is_file():
                return pwc.PWCNet()
            pwc_weights = default
        self.pretrained_flow = True
        return pwc.PWCNet.from_file(pwc_weights)

    def set_flow_trainable(self, trainable: bool) -> None:
        """Freeze (False) or unfreeze (True) PWC-Net's parameters (nothing to do for DIS flow)."""
        if self.flow_net is not None:
            for parameter in self.flow_net.parameters():
                parameter.requires_grad_(trainable)

    # ---------------------------------------------------------------------------------------------- model ------

    def forward(self, one: torch.Tensor, two: torch.Tensor, t: Union[float, torch.Tensor] = 0.5,
                flows: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        """The frame at time ``t`` (a float or an ``[N]`` tensor in [0, 1]) between ``one`` and ``two``.

        ``flows``: optional precomputed (F0->1, F1->0), each ``[N, 2, H, W]`` in pixels, used instead of the
        model's own flow estimate (training with cached DIS flow).
        """
        times = as_times([t], one.shape[0] if isinstance(one, torch.Tensor) else 0)
        return self._synthesize(self._prepare(one, two, flows), times[0])

    def interpolate(self, one: torch.Tensor, two: torch.Tensor, times: Sequence[Union[float, torch.Tensor]],
                    flows: Optional[Tuple[torch.Tensor, torch.Tensor]] = None, before: Optional[torch.Tensor] = None,
                    after: Optional[torch.Tensor] = None,
                    outer: Optional[Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]] = None
                    ) -> List[torch.Tensor]:
        """One frame ``[N, 3, H, W]`` per entry of ``times``; flow, pyramids and metrics are computed once.

        ``before``/``after``: the frames before ``one`` and after ``two`` (optional; with one, that frame moves along
        a quadratic path). ``flows``: precomputed (F0->1, F1->0); ``outer``: precomputed (F0->before, F1->after),
        either None; each ``[N, 2, H, W]`` in pixels.
        """
        times = as_times(times, one.shape[0] if isinstance(one, torch.Tensor) else 0)
        context = self._prepare(one, two, flows, before, after, outer)
        return [self._synthesize(context, t) for t in times]

    def estimate_flows(self, one: torch.Tensor, two: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """F0->1 and F1->0, each ``[N, 2, H, W]`` in pixels, by the model's flow estimator."""
        if self.flow_net is None:
            return classical.dis_flows(one, two, self.config.dis_parameters)
        n = one.shape[0]
        both = pwc.estimate(torch.cat([one, two]), torch.cat([two, one]), net=self.flow_net)
        return both[:n], both[n:]

    def estimate_flow(self, one: torch.Tensor, two: torch.Tensor) -> torch.Tensor:
        """F0->1 only, ``[N, 2, H, W]`` in pixels (a neighbour's flow for quadratic motion)."""
        if self.flow_net is None:
            return classical.dis_flow(one, two, self.config.dis_parameters)
        return pwc.estimate(one, two, net=self.flow_net)

    def _prepare(self, one: torch.Tensor, two: torch.Tensor, flows: Optional[Tuple[torch.Tensor, torch.Tensor]],
                 before: Optional[torch.Tensor] = None, after: Optional[torch.Tensor] = None,
                 outer: Optional[Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]] = None) -> _PairContext:
        check_pair(one, two, flows)
        check_neighbours(one, before, after)
        size = tuple(one.shape[-2:])
        one, two = pad_to_multiple(one, 4), pad_to_multiple(two, 4)
        if flows is None:
            flows = self.estimate_flows(one, two)
        else:
            flows = tuple(pad_to_multiple(flow.to(one), 4) for flow in flows)
        paths = self._paths(one, two, flows, before, after, outer)
        images = torch.cat([one, two])
        full = torch.cat([flows[0].to(images.dtype), flows[1].to(images.dtype)])
        features = self.pyramid(images)
        sizes = [level.shape[-2:] for level in features]
        metric = self._metric(images, torch.cat([two, one]), full)
        data = [torch.cat([images, features[0]], 1)] + features[1:]
        accelerations = None
        if paths is not None:
            full = torch.cat([paths[0].velocity, paths[1].velocity]).to(images.dtype)
            zeros = torch.zeros_like(paths[0].velocity)
            acceleration = torch.cat([p.acceleration if p.is_quadratic else zeros for p in paths]).to(images.dtype)
            accelerations = [acceleration] + [_downscale_flow(acceleration, s) for s in sizes[1:]]
        level_flows = [full] + [_downscale_flow(full, s) for s in sizes[1:]]
        metrics = [metric] + [F.adaptive_avg_pool2d(metric, s) for s in sizes[1:]]
        base = None
        if self.config.residual:
            with torch.no_grad():
                base = classical.splat_sources(one.float(), two.float(), flows[0].float(), flows[1].float(),
                                               self.config.classical_alpha)
        return _PairContext(data, level_flows, accelerations, metrics, base, size)

    def _paths(self, one: torch.Tensor, two: torch.Tensor, flows: Tuple[torch.Tensor, torch.Tensor],
               before: Optional[torch.Tensor], after: Optional[torch.Tensor],
               outer: Optional[Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]]
               ) -> Optional[Tuple[motion.Motion, motion.Motion]]:
        """Both frames' quadratic paths at the padded size, or None when neither has a neighbour (linear)."""
        return quadratic_paths(one, two, flows, before, after, outer, self.estimate_flow, 4)

    def _metric(self, image: torch.Tensor, other: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Z = clip(alpha * |image - backwarp(other, flow)| (+ U-Net refinement), -20, 20) (Sec. 3.4)."""
        error = (image - pwc.backwarp(other, flow)).abs().mean(1, keepdim=True)
        metric = self.alpha * error
        if self.metric_unet is not None:
            metric = metric + self.metric_unet(image, error)
        return metric.clamp(-METRIC_LIMIT, METRIC_LIMIT)

    def _synthesize(self, context: _PairContext, t: torch.Tensor) -> torch.Tensor:
        n = context.data[0].shape[0] // 2
        t = t.to(device=context.data[0].device, dtype=torch.float32).view(n, 1, 1, 1)
        scale = torch.cat([t, 1 - t])  # frame one moves by t F0->1, frame two by (1 - t) F1->0
        accelerations = context.accelerations or [None] * len(context.flows)
        shifts = []
        for flow, acceleration in zip(context.flows, accelerations):
            shift = flow * scale.to(flow.dtype)
            if acceleration is not None:  # quadratic paths: velocity s + acceleration s^2, s = t or 1 - t
                shift = shift + acceleration * (scale * scale).to(flow.dtype)
            shifts.append(shift)
        warped = []
        for data, shift, metric in zip(context.data, shifts, context.metrics):
            splatted = softsplat(data, shift, metric, 'soft')
            warped.append(torch.cat([splatted[:n], splatted[n:]], 1))
        if context.classical is None:
            out = self.synthesis(*warped)
        else:
            shift = shifts[0].float()
            with torch.no_grad():
                base = classical.blend(context.classical, shift[:n], shift[n:], t, self.config.classical_coverage)
            warped[0] = torch.cat([warped[0], base.to(warped[0].dtype)], 1)
            out = base + self.synthesis(*warped).float()
        height, width = context.size
        return out[:, :, :height, :width]

    # ------------------------------------------------------------------------------------------ checkpoints ----

    def save(self, path: Union[str, Path], half: bool = False) -> None:
        """Write configuration and weights to ``path`` atomically; ``half`` stores float16 (loaded as float32)."""
        state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
                 for k, v in self.state_dict().items()}
        payload = {'format': CHECKPOINT_FORMAT, 'version': 2, 'config': asdict(self.config), 'state_dict': state}
        with atomic_path(path) as temporary:
            torch.save(payload, temporary)

    @classmethod
    def from_file(cls, path: Union[str, Path], map_location: Union[str, torch.device] = 'cpu') -> 'MainNet':
        """Rebuild a network saved by :meth:`save` (``final.pt``, ``best.pt`` of train_and_test.py), or the network
        of a training state of train_and_test.py (``last.pt``: the moving average of the weights when it keeps one,
        as ``final.pt`` would hold them), in eval mode. Raises FileNotFoundError or ValueError with a clear one-line
        message naming the file."""
        path = Path(path)
        return cls.from_payload(load_checkpoint(path), path).to(map_location)

    @classmethod
    def from_payload(cls, payload: object, path: Union[str, Path]) -> 'MainNet':
        """:meth:`from_file` for what ``files.load_checkpoint(path)`` returned (the file is read once)."""
        path = Path(path)
        if isinstance(payload, dict) and payload.get('format') == TRAINING_STATE_FORMAT:
            payload = training_state_weights(payload, path)
        if not isinstance(payload, dict) or payload.get('format') != CHECKPOINT_FORMAT:
            raise ValueError(f'{path}: {_foreign(payload)}, not a MainNet checkpoint (expected final.pt, best.pt or '
                             f'last.pt of train_and_test.py, or a file of MainNet.save)')
        config = payload.get('config')
        if not isinstance(config, dict):
            raise ValueError(f'{path}: bad MainNet checkpoint: no configuration (the "config" entry of the network\'s '
                             f'settings is missing)')
        unknown = sorted(set(config) - {f.name for f in fields(MainNetConfig)})
        if unknown:
            raise ValueError(f'{path}: bad MainNet configuration: unknown settings {", ".join(map(str, unknown))} '
                             f'(written by another version of this project?)')
        try:
            config = MainNetConfig(**config).validate()
        except (TypeError, ValueError) as error:
            raise ValueError(f'{path}: bad MainNet configuration: {first_line(error)}') from None
        model = cls(pwc_weights=None, config=config)
        given = payload.get('state_dict')
        if not isinstance(given, dict) or not all(isinstance(v, torch.Tensor) for v in given.values()):
            raise ValueError(f'{path}: bad MainNet checkpoint: no weights (the "state_dict" entry of tensors is '
                             f'missing)')
        state = {k: v.float() if v.is_floating_point() else v for k, v in given.items()}
        mismatch = state_mismatch(model.state_dict(), state)
        if mismatch:
            raise ValueError(f'{path}: weights do not fit MainNet ({mismatch})')
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            reason = ' '.join(line.strip() for line in str(error).splitlines() if line.strip())
            raise ValueError(f'{path}: weights do not fit MainNet ({reason[:300]})') from None
        return model.eval()


# ------------------------------------------------------------------------------------------------ helpers -------

def training_state_weights(payload: Dict[str, object], path: Path) -> Dict[str, object]:
    """The model checkpoint inside a training state of train_and_test.py: its configuration and the weights it
    publishes (the EMA's when it keeps one, else the model's), as ``{'format', 'config', 'state_dict'}``."""
    ema = payload.get('ema')
    if isinstance(ema, dict):  # an AveragedModel: 'module.'-prefixed weights and buffers, and its count
        weights = {k[len('module.'):]: v for k, v in ema.items() if k.startswith('module.')}
    else:
        weights = payload.get('model')
    if not isinstance(weights, dict):
        raise ValueError(f'{path}: a training state of train_and_test.py without model weights (damaged?)')
    return {'format': CHECKPOINT_FORMAT, 'config': payload.get('config'), 'state_dict': weights}


def _foreign(payload: object) -> str:
    """What a checkpoint that is not MainNet's holds, in a few words, for the error message."""
    if not isinstance(payload, dict):
        return f'holds a {type(payload).__name__}'
    if isinstance(payload.get('format'), str):
        return f'a checkpoint of format {payload["format"]!r}'
    if payload and all(isinstance(k, str) and k.replace('module', 'net').startswith(('netFlow.', 'netSynthesis.'))
                       for k in payload):
        return 'the weights of the published SoftSplat model (every --model PATH loads them as they are)'
    if {'model', 'optimizer', 'step'} <= set(payload):
        return 'a training checkpoint of softsplat-train-flow (PWC-Net)'
    keys = [k for k in payload if isinstance(k, str)]
    if keys and all(isinstance(payload[k], torch.Tensor) for k in keys) and \
            any(k.startswith(('moduleExtractor', 'netExtractor')) for k in keys):
        return 'PWC-Net weights (give them to train_and_test.py with --init)'
    return 'an unknown checkpoint'
