"""Which learned model a checkpoint file holds, read once and built: our MainNet or the released SoftSplat network.

Two architectures share every tool's ``--model PATH``:

* ``mainnet``: :class:`main_net.MainNet`, our reimplementation of the paper's model; its files say so
  (``format: softsplat-mainnet``: ``final.pt``, ``best.pt``, ``weights/softsplat.pt``);
* ``published``: :class:`published.PublishedNet`, the network of the authors' 2022 release; its files are bare
  state_dicts (``network-l1.pytorch``, torch hub's ``softsplat-lf``, the ``final.pt`` of a fine-tuning run), known
  by their key layout.

A training state (``last.pt`` of softsplat-train) of either architecture gives the weights its run would publish.
Files are read with ``torch.load(weights_only=True)``; every failure is a ValueError or FileNotFoundError whose one
line names the file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, Union

import torch
from torch import nn

from .files import load_checkpoint
from .main_net import CHECKPOINT_FORMAT, TRAINING_STATE_FORMAT, MainNet, training_state_weights
from .published import PublishedNet, is_published_layout

__all__ = ['ARCHITECTURES', 'MAINNET', 'PUBLISHED', 'architecture_of', 'build', 'is_model_file', 'model_config',
           'read_model']

MAINNET, PUBLISHED = 'mainnet', 'published'
ARCHITECTURES = (MAINNET, PUBLISHED)


def architecture_of(payload: object) -> str:
    """``'published'`` for a state_dict of the released layout or a training state of one, ``'mainnet'`` for
    everything else that might be a MainNet file (whose loader then says what is wrong with it)."""
    if is_published_layout(payload):
        return PUBLISHED
    if isinstance(payload, dict) and payload.get('format') == TRAINING_STATE_FORMAT:
        config = payload.get('config')
        if isinstance(config, dict) and config.get('architecture') == PUBLISHED:
            return PUBLISHED
    return MAINNET


def read_model(path: Union[str, Path], map_location: Union[str, torch.device] = 'cpu') -> nn.Module:
    """The model in ``path`` (either architecture, a training state included), in eval mode on ``map_location``."""
    path = Path(path)
    payload = load_checkpoint(path)
    if architecture_of(payload) == MAINNET:
        return MainNet.from_payload(payload, path).to(map_location)
    if isinstance(payload, dict) and payload.get('format') == TRAINING_STATE_FORMAT:
        payload = training_state_weights(payload, path)['state_dict']
    return PublishedNet.from_state_dict(payload, str(path)).to(map_location)


def model_config(model: nn.Module) -> Dict[str, object]:
    """What a training state records of ``model``'s architecture (a resumed run must rebuild the same one)."""
    if isinstance(model, PublishedNet):
        return {'architecture': PUBLISHED}
    return dataclasses.asdict(model.config)


def build(architecture: str, **mainnet_options) -> nn.Module:
    """A new model with fresh weights: MainNet with ``mainnet_options``, or the released network (no options)."""
    if architecture == PUBLISHED:
        return PublishedNet()
    return MainNet(**mainnet_options)


def is_model_file(payload: object) -> bool:
    """Whether ``payload`` is a published model file rather than a training state (``final.pt``, ``best.pt``)."""
    return is_published_layout(payload) or (isinstance(payload, dict) and payload.get('format') == CHECKPOINT_FORMAT)
