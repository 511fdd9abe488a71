"""PWC-Net (Sun et al., CVPR 2018): pyramid, warping and cost volume, laid out to load the published PyTorch
checkpoint ``network-default.pytorch`` unchanged.

Architecture (Sec. 3 of the paper; the channel counts and the details below are those the checkpoint's weights
were trained with, which is why they are fixed here rather than configurable):

* Feature pyramid (Sec. 3 "Feature pyramid extractor"): six levels of 16, 32, 64, 96, 128, 196 channels, each three
  3x3 convolutions, the first with stride 2, LeakyReLU(0.1) after each. Inputs are BGR in [0, 1].
* Optical flow estimators at levels 6 -> 2 (Sec. 3 "Optical flow estimator"). Level 6 sees LeakyReLU(cost volume)
  of the two level-6 features. Levels 5..2 upsample the coarser flow and the coarser estimator's features with 4x4
  stride-2 transposed convolutions (features -> 2 channels), warp the second image's features by the upsampled flow
  times 20 / 2^l (the flow is kept in full-resolution pixels / 20 at every level, so this converts it to the level's
  pixels: 0.625, 1.25, 2.5, 5.0 for l = 5, 4, 3, 2), and see cat[LeakyReLU(cost volume), first features, upsampled
  flow, upsampled features]. Each estimator is a DenseNet-style block: five 3x3 convolutions (128, 128, 96, 64, 32
  outputs) whose outputs are concatenated in front of their inputs, then a 3x3 convolution to the 2-channel flow.
* Context network (Sec. 3 "Context network"): 3x3 convolutions with dilations 1, 2, 4, 8, 16, 1 and a final
  convolution to 2 channels, on the level-2 estimator's features; its output is added to the level-2 flow. The sum
  times 20 is the flow at 1/4 resolution in full-resolution pixels.

Attribute names (``netExtractor.netOne.0``, ``netSix.netUpflow``, ``netRefiner.netMain.12``, ...) reproduce the
checkpoint's state_dict layout; the file itself spells ``net`` as ``module`` (``moduleExtractor.moduleOne.0.weight``),
which :meth:`PWCNet.from_file` and :meth:`PWCNet.save` translate. Every part is an ordinary differentiable module,
so the network can be trained or fine-tuned (see ``cli/train_flow.py``).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._io import read_weights, write_atomically
from .cost_volume import DISPLACEMENTS, correlation
from .loss import FLOW_SCALE
from .warp import warp_features

__all__ = ['PWCNet', 'CheckpointError', 'DEFAULT_WEIGHTS', 'to_file_layout', 'to_net_layout']

PathLike = Union[str, os.PathLike]

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / 'weights' / 'network-default.pytorch'
PYRAMID_CHANNELS = (16, 32, 64, 96, 128, 196)  # levels 1..6
DENSE_CHANNELS = (128, 128, 96, 64, 32)
LEVEL_NAMES = {1: 'One', 2: 'Two', 3: 'Thr', 4: 'Fou', 5: 'Fiv', 6: 'Six'}
LEAKY_SLOPE = 0.1
MULTIPLE = 64  # six stride-2 levels


class CheckpointError(ValueError):
    """A weights file that is not a PWC-Net checkpoint of the published layout."""


def _leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=LEAKY_SLOPE, inplace=False)


class Extractor(nn.Module):
    """The feature pyramid: ``[N, 3, H, W]`` -> six feature maps, level l of shape ``[N, C_l, H / 2^l, W / 2^l]``."""

    def __init__(self):
        super().__init__()
        previous = 3
        for level, channels in enumerate(PYRAMID_CHANNELS, start=1):
            setattr(self, f'net{LEVEL_NAMES[level]}', nn.Sequential(
                nn.Conv2d(previous, channels, 3, stride=2, padding=1), _leaky(),
                nn.Conv2d(channels, channels, 3, stride=1, padding=1), _leaky(),
                nn.Conv2d(channels, channels, 3, stride=1, padding=1), _leaky()))
            previous = channels

    def forward(self, image: torch.Tensor) -> List[torch.Tensor]:
        features = []
        for level in range(1, 7):
            image = getattr(self, f'net{LEVEL_NAMES[level]}')(image)
            features.append(image)
        return features


def _decoder_inputs(level: int) -> int:
    if level == 6:
        return DISPLACEMENTS
    return DISPLACEMENTS + PYRAMID_CHANNELS[level - 1] + 2 + 2


def _decoder_outputs(level: int) -> int:
    return _decoder_inputs(level) + sum(DENSE_CHANNELS)


class Decoder(nn.Module):
    """The optical flow estimator of one pyramid level (6 is the coarsest)."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level
        # The coarser flow is in full-resolution pixels / 20; this level's pixels are 2^level full-resolution ones.
        self.warp_scale = FLOW_SCALE / 2 ** level
        if level < 6:
            self.netUpflow = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1)
            self.netUpfeat = nn.ConvTranspose2d(_decoder_outputs(level + 1), 2, 4, stride=2, padding=1)
        channels = _decoder_inputs(level)
        for index, width in enumerate(DENSE_CHANNELS, start=1):
            setattr(self, f'net{LEVEL_NAMES[index]}', nn.Sequential(nn.Conv2d(channels, width, 3, padding=1),
                                                                    _leaky()))
            channels += width
        self.netSix = nn.Sequential(nn.Conv2d(channels, 2, 3, padding=1))

    def forward(self, one: torch.Tensor, two: torch.Tensor, previous: Optional[Tuple[torch.Tensor, torch.Tensor]],
                backend: Optional[str] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``one``, ``two``: this level's features; ``previous``: the coarser (flow, features) or None at level 6.
        Returns this level's flow ``[N, 2, h, w]`` (full-resolution pixels / 20) and dense features."""
        if previous is None:
            x = F.leaky_relu(correlation(one, two, backend=backend), LEAKY_SLOPE)
        else:
            flow, features = self.netUpflow(previous[0]), self.netUpfeat(previous[1])
            volume = correlation(one, warp_features(two, flow * self.warp_scale), backend=backend)
            x = torch.cat([F.leaky_relu(volume, LEAKY_SLOPE), one, flow, features], 1)
        for index in range(1, 6):
            x = torch.cat([getattr(self, f'net{LEVEL_NAMES[index]}')(x), x], 1)
        return self.netSix(x), x


class Refiner(nn.Module):
    """The context network: dilated convolutions on the level-2 features -> a 2-channel flow residual."""

    def __init__(self):
        super().__init__()
        layers: List[nn.Module] = []
        channels = _decoder_outputs(2)
        for width, dilation in zip((128, 128, 128, 96, 64, 32), (1, 2, 4, 8, 16, 1)):
            layers += [nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation), _leaky()]
            channels = width
        layers.append(nn.Conv2d(channels, 2, 3, padding=1))
        self.netMain = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.netMain(features)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint layouts
# ---------------------------------------------------------------------------------------------------------------

def missing_default_weights(path: Path) -> FileNotFoundError:
    """The error for absent default weights: where to put them, and that nothing is downloaded."""
    return FileNotFoundError(f'PWC-Net weights not found at {path}. Put the published PyTorch PWC-Net checkpoint '
                             f'"network-default.pytorch" there (see pwc/weights/README.md) or pass a network or '
                             f'path explicitly; nothing is downloaded automatically.')


_FILE_PART = re.compile(r'^module(?=[A-Z])')
_NET_PART = re.compile(r'^net(?=[A-Z])')


def to_net_layout(key: str) -> str:
    """``moduleExtractor.moduleOne.0.weight`` -> ``netExtractor.netOne.0.weight`` (names of this module)."""
    return '.'.join(_FILE_PART.sub('net', part) for part in key.split('.'))


def to_file_layout(key: str) -> str:
    """``netExtractor.netOne.0.weight`` -> ``moduleExtractor.moduleOne.0.weight`` (names of the published file)."""
    return '.'.join(_NET_PART.sub('module', part) for part in key.split('.'))


def _unwrap(loaded: object, path: Path) -> Dict[str, torch.Tensor]:
    """The state_dict inside a loaded file: a plain one, or our training checkpoint's ``'model'`` entry."""
    if isinstance(loaded, Mapping) and not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        for key in ('model', 'state_dict'):
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in loaded.items()):
        raise CheckpointError(f'{path}: not a PWC-Net checkpoint (expected a state_dict of tensors, '
                              f'got {type(loaded).__name__})')
    state = dict(loaded)
    if state and all(k.startswith('module.') for k in state):  # saved from nn.DataParallel
        state = {k[len('module.'):]: v for k, v in state.items()}
    return {to_net_layout(k): v for k, v in state.items()}


# ---------------------------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------------------------

class PWCNet(nn.Module):
    """PWC-Net with the published network's layout.

    ``PWCNet()`` is randomly initialised (PyTorch's defaults); :meth:`from_file` loads trained weights. ``backend``
    chooses the cost volume's backend (see :func:`pwc.cost_volume.correlation`); None follows the environment.
    """

    def __init__(self, backend: Optional[str] = None):
        super().__init__()
        self.backend = backend
        self.netExtractor = Extractor()
        self.netTwo = Decoder(2)
        self.netThr = Decoder(3)
        self.netFou = Decoder(4)
        self.netFiv = Decoder(5)
        self.netSix = Decoder(6)
        self.netRefiner = Refiner()

    @staticmethod
    def check_inputs(one: object, two: object) -> None:
        """Raise TypeError/ValueError unless both are floating ``[N, 3, H, W]`` of one shape, H and W multiples of
        64 (the pyramid halves six times)."""
        for name, tensor in (('one', one), ('two', two)):
            if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                raise TypeError(f'{name} must be a floating-point torch.Tensor')
            if tensor.dim() != 4 or tensor.shape[1] != 3 or tensor.shape[0] == 0:
                raise ValueError(f'{name} must be [N, 3, H, W] BGR images, got shape {list(tensor.shape)}')
            if tensor.shape[2] % MULTIPLE or tensor.shape[3] % MULTIPLE or min(tensor.shape[2:]) == 0:
                raise ValueError(f'{name} must have a height and width that are positive multiples of {MULTIPLE}, '
                                 f'got {tensor.shape[2]} x {tensor.shape[3]}; pwc.estimate resizes any size')
        if one.shape != two.shape:
            raise ValueError(f'one and two must have one shape, got {list(one.shape)} and {list(two.shape)}')

    def forward(self, one: torch.Tensor, two: torch.Tensor,
                return_levels: bool = False) -> Union[torch.Tensor, List[torch.Tensor]]:
        """Flow from ``one`` to ``two``.

        Args:
            one, two: ``[N, 3, H, W]`` BGR in [0, 1], H and W multiples of 64, any floating dtype of the weights.
            return_levels: see Returns.

        Returns:
            By default the final flow ``[N, 2, H / 4, W / 4]`` in full-resolution pixels (the published network's
            output: the refined level-2 flow times 20). With ``return_levels=True``, the list of the five level
            estimates for training, levels 6, 5, 4, 3, 2, each ``[N, 2, H / 2^l, W / 2^l]`` in full-resolution
            pixels / 20; the level-2 entry is the refined one (flow + context network), the paper's level-2 output.
        """
        self.check_inputs(one, two)
        # One pass over both images: same weights, half the launches.
        pyramid = [level.chunk(2) for level in self.netExtractor(torch.cat([one, two]))]
        levels, previous = [], None
        for level, decoder in ((6, self.netSix), (5, self.netFiv), (4, self.netFou), (3, self.netThr),
                               (2, self.netTwo)):
            previous = decoder(*pyramid[level - 1], previous, self.backend)
            levels.append(previous[0])
        levels[-1] = levels[-1] + self.netRefiner(previous[1])
        return levels if return_levels else levels[-1] * FLOW_SCALE

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def load_checkpoint_state(self, state: Mapping[str, torch.Tensor], source: str = 'state_dict') -> None:
        """Load a state_dict in either key style, with an error listing missing/unexpected/mismatched keys; weights
        with NaN or infinite values are refused."""
        state = {to_net_layout(k): v for k, v in state.items()}
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        mismatched = [f'{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})' for k in own
                      if k in state and state[k].shape != own[k].shape]
        if missing or unexpected or mismatched:
            def listing(title: str, keys: List[str]) -> str:
                shown = ', '.join(keys[:8]) + (f', ... ({len(keys)} in all)' if len(keys) > 8 else '')
                return f'\n  {title} ({len(keys)}): {shown}' if keys else ''
            raise CheckpointError(f'{source} does not match the PWC-Net layout of network-default.pytorch'
                                  + listing('missing keys', missing) + listing('unexpected keys', unexpected)
                                  + listing('wrong shapes', mismatched))
        # weights of a run that diverged would give NaN flow, and every frame made with it black
        broken = [k for k in own if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all())]
        if broken:
            more = f' and {len(broken) - 1} more' if len(broken) > 1 else ''
            raise CheckpointError(f'{source} holds NaN or infinite weights ({broken[0]}{more}), written by a '
                                  f'training run that diverged; use an earlier checkpoint')
        self.load_state_dict(state)

    @classmethod
    def from_file(cls, path: Optional[PathLike] = None, map_location: Union[str, torch.device] = 'cpu',
                  backend: Optional[str] = None) -> 'PWCNet':
        """Load a checkpoint: the published ``network-default.pytorch`` (``module…`` keys), a state_dict with this
        module's ``net…`` keys, or a training checkpoint of ``softsplat-train-flow`` (its ``'model'`` entry).

        ``path`` defaults to ``pwc/weights/network-default.pytorch``. Loads with ``torch.load(weights_only=True)``.

        Raises:
            FileNotFoundError: the file does not exist (for the default path, the message says where to put it).
            CheckpointError (a ValueError): the file is not such a checkpoint (the message lists missing,
                unexpected and wrongly shaped keys) or holds NaN or infinite weights.
        """
        path = Path(path) if path is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            if path.resolve() == DEFAULT_WEIGHTS.resolve():
                raise missing_default_weights(path)
            raise FileNotFoundError(f'{path}: no such PWC-Net weights file')
        try:
            loaded = read_weights(path, map_location=map_location)
        except ValueError as error:
            raise CheckpointError(str(error)) from None
        net = cls(backend=backend)
        net.load_checkpoint_state(_unwrap(loaded, path), source=str(path))
        return net.to(map_location)

    def file_state_dict(self) -> Dict[str, torch.Tensor]:
        """The state_dict with the published file's ``module…`` key names."""
        return {to_file_layout(k): v.detach().cpu() for k, v in self.state_dict().items()}

    def save(self, path: PathLike) -> None:
        """Write the weights in the layout of ``network-default.pytorch`` (``module…`` keys), atomically."""
        buffer = io.BytesIO()
        torch.save(self.file_state_dict(), buffer)
        write_atomically(path, buffer.getvalue())
