"""Frame triplets for training and testing (paper Sec. 4.3): the Vimeo90k layout, from Vimeo90k or any footage.

A root holds ``sequences/<a>/<b>/im1.png, im2.png, im3.png`` (``.jpg`` also read) and the lists
``tri_trainlist.txt`` / ``tri_testlist.txt``; ``make_triplets.py`` writes that layout from any video. The dataset
reads several roots as one, crops and augments (flips, temporal reversal; optionally transpositions and channel
order), and for the DIS-flow model serves both flows of every triplet from a cache computed once, transformed
together with the frames.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from . import frames
from .classical import ClassicalInterpolator, DisParameters, dis_flows
from .errors import UsageError
from .files import atomic_path

__all__ = ['AUGMENTATIONS', 'LIST_FILES', 'TripletDataset', 'flow_cache_tag', 'read_list', 'triplet_paths']

LIST_FILES = {'train': 'tri_trainlist.txt', 'test': 'tri_testlist.txt'}
AUGMENTATIONS = ('basic', 'strong')


def read_list(root: Path, split: str) -> List[str]:
    """The triplet names (``<a>/<b>``) of a split; raises UsageError when the list is missing or empty."""
    path = root / LIST_FILES[split]
    if not path.is_file():
        raise UsageError(f'{path}: no such list file (expected the Vimeo90k triplet layout: sequences/<a>/<b>/'
                         f'im1.png..im3.png with {LIST_FILES["train"]} and {LIST_FILES["test"]})')
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise UsageError(f'{path}: the list is empty')
    return names


def triplet_paths(root: Path, name: str) -> List[Path]:
    folder = root / 'sequences' / name
    paths = []
    for index in (1, 2, 3):
        candidates = [folder / f'im{index}{suffix}' for suffix in ('.png', '.jpg', '.jpeg')]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise UsageError(f'{folder}: im{index}.png (or .jpg) is missing')
        paths.append(found)
    return paths


def flow_cache_tag(parameters: DisParameters) -> str:
    """The cache folder name of one DIS setting: flows computed with other settings are never reused."""
    text = json.dumps(dataclasses.asdict(parameters), sort_keys=True)
    return 'dis-' + hashlib.sha256(text.encode()).hexdigest()[:12]


class TripletDataset(Dataset):
    """Frame triplets as ``(one, middle, two)``, each ``[3, H, W]`` float32 RGB in [0, 1], from one or more roots.

    With ``flows`` (DIS settings), items also carry both DIS flows of the pair, ``flow_01`` and ``flow_10``
    (``[2, H, W]`` float32, pixels), computed once on the whole frames and cached in
    ``ROOT/flow_cache/<settings>/<name>.npy`` (crops, flips and temporal reversal transform frames and flows
    together), and the classical interpolator's MSE on the whole middle frame (a scalar, the ``relmse`` reference).

    Items are addressed by ``(index, epoch)`` (see :class:`EpochTagged`) so that augmentation is drawn from a
    generator seeded by ``(seed, epoch, index)``: identical across worker counts, processes and resumed runs.
    ``crop`` None keeps the whole frame. ``augment``: False (validation, test), True or ``'basic'`` (horizontal and
    vertical flips, temporal reversal), or ``'strong'``: basic, then a transposition (x and y swapped; square frames
    or crops only, so with flips all eight rotations and reflections of the square) and a random order of the RGB
    channels, for small training sets whose few scenes a network would otherwise learn by heart. The basic draws come
    first, so ``'basic'`` runs are unchanged by the option's existence.
    """

    def __init__(self, roots: Union[Path, Sequence[Path]], split: str, crop: Optional[Tuple[int, int]],
                 augment: Union[bool, str], seed: int = 0, limit: Optional[int] = None,
                 flows: Optional[DisParameters] = None):
        roots = [Path(roots)] if isinstance(roots, (str, os.PathLike)) else [Path(r) for r in roots]
        if augment not in (False, True) + AUGMENTATIONS:
            raise ValueError(f'augment must be False, True or one of {AUGMENTATIONS}, got {augment!r}')
        self.crop, self.seed, self.flows = crop, seed, flows
        self.augment = 'basic' if augment is True else augment
        self.items = [(root, name) for root in roots for name in read_list(root, split)][:limit]

    def check_files(self) -> None:
        """UsageError naming the first triplet that lacks one of its three frames (file names only, nothing read)."""
        for root, name in self.items:
            triplet_paths(root, name)

    def __len__(self) -> int:
        return len(self.items)

    def flow_path(self, index: int) -> Path:
        root, name = self.items[index]
        return root / 'flow_cache' / flow_cache_tag(self.flows) / f'{name}.npy'

    def cached_flows(self, index: int, images: Sequence[np.ndarray]) -> np.ndarray:
        """``[H, W, 4]`` float32: F0->1 (x, y) then F1->0 (x, y) of frames one and three, cached on disk."""
        path = self.flow_path(index)
        flows = _load_array(path, images[0].shape[:2] + (4,))
        if flows is None:
            one, two = frames.to_tensor(images[0]), frames.to_tensor(images[2])
            forward, backward = dis_flows(one, two, self.flows)
            flows = torch.cat([forward, backward], 1)[0].permute(1, 2, 0).contiguous().numpy()
            _save_array(path, flows)
        return flows

    def reference_mse(self, index: int, images: Sequence[np.ndarray], flows: np.ndarray) -> float:
        """The classical interpolator's MSE on the whole middle frame (the ``relmse`` loss's reference), cached."""
        path = self.flow_path(index).with_suffix('.classical-mse.npy')
        cached = _load_array(path, (1,))
        if cached is not None:
            return float(cached[0])
        one, middle, two = (frames.to_tensor(image) for image in images[:3])
        flow = torch.from_numpy(flows).permute(2, 0, 1).unsqueeze(0)
        guess = ClassicalInterpolator().synthesize(one, two, flow[:, :2], flow[:, 2:], [0.5])[0]
        mse = max(float((frames.to_tensor(frames.to_uint8(guess)) - middle).square().mean()), 1e-8)
        _save_array(path, np.array([mse], np.float32))
        return mse

    def __getitem__(self, key) -> Tuple[torch.Tensor, ...]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        root, name = self.items[index]
        paths = triplet_paths(root, name)
        images = [frames.read_image(path) for path in paths]
        for path, image in zip(paths[1:], images[1:]):
            if image.shape != images[0].shape:  # a crop would cut the frames apart silently, misaligned
                raise UsageError(f'{path}: {image.shape[1]}x{image.shape[0]}, but {paths[0].name} of the triplet is '
                                 f'{images[0].shape[1]}x{images[0].shape[0]}; the three frames must have one size')
        reference = None
        if self.flows is not None:
            images.append(self.cached_flows(index, images))
            reference = self.reference_mse(index, images, images[3])
        rng = np.random.default_rng([self.seed, epoch, index])
        if self.crop is not None:
            height, width = images[0].shape[:2]
            crop_w, crop_h = self.crop
            if height < crop_h or width < crop_w:
                raise UsageError(f'{name}: frames of {width}x{height} are smaller than --crop {crop_w}x{crop_h}')
            y, x = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
            images = [image[y:y + crop_h, x:x + crop_w] for image in images]
        if self.augment:
            # Flows change sign along a flipped axis; reversal swaps the two flows (F0->1 becomes F1->0).
            if rng.random() < 0.5:
                images = [image[:, ::-1] for image in images]
                if self.flows is not None:
                    images[3] = images[3] * np.array([-1, 1, -1, 1], np.float32)
            if rng.random() < 0.5:
                images = [image[::-1] for image in images]
                if self.flows is not None:
                    images[3] = images[3] * np.array([1, -1, 1, -1], np.float32)
            if rng.random() < 0.5:  # temporal reversal: the middle frame of a reversed clip is the same
                images[:3] = images[2::-1]
                if self.flows is not None:
                    images[3] = images[3][..., [2, 3, 0, 1]]
        if self.augment == 'strong':
            height, width = images[0].shape[:2]
            if rng.random() < 0.5 and height == width:  # swapping x and y swaps each flow's two components
                images = [image.transpose(1, 0, 2) for image in images]
                if self.flows is not None:
                    images[3] = images[3][..., [1, 0, 3, 2]]
            order = rng.permutation(3)  # flows describe motion, not colour: they stay
            images[:3] = [image[..., order] for image in images[:3]]
        tensors = tuple(frames.to_tensor(image)[0] for image in images[:3])
        if self.flows is not None:
            flows = torch.from_numpy(np.ascontiguousarray(images[3])).permute(2, 0, 1).contiguous()
            tensors += (flows[:2], flows[2:], torch.tensor(reference, dtype=torch.float32))
        return tensors


def _load_array(path: Path, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """A cached array of the expected shape, or None (missing or damaged: computed again)."""
    if not path.is_file():
        return None
    try:
        array = np.load(path)
    except (OSError, ValueError):
        return None
    return array if array.shape == shape else None


def _save_array(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, 'wb') as handle:
            np.save(handle, array)
