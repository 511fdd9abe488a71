"""The FlyingChairs dataset (Dosovitskiy et al., ICCV 2015) in its release folder format, for users who have it.

PWC-Net is first trained on FlyingChairs (Sun et al., CVPR 2018, Sec. 4). The release holds ``NNNNN_img1.ppm``,
``NNNNN_img2.ppm`` and ``NNNNN_flow.flo`` per sample and a split file ``FlyingChairs_train_val.txt`` with one line
per sample, ``1`` for training and ``2`` for validation. The split file is looked for in the data folder and its
parent (the release keeps it beside ``data/``); without it every sample is a training sample. Random crops are a
pure function of (seed, draw number), like the synthetic generator's samples, so resumed training continues with
the same data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import UsageError
from .frames import read_image
from .pwc.flo import read_flo

__all__ = ['FlyingChairs', 'SPLIT_FILE']

PathLike = Union[str, os.PathLike]
SPLIT_FILE = 'FlyingChairs_train_val.txt'
_SPLITS = {'train': '1', 'val': '2'}


class FlyingChairs(Dataset):
    """Samples ``{'one', 'two': [3, H, W] RGB float32 in [0, 1], 'flow': [2, H, W] float32}``.

    Args:
        root: the folder with the ``*_img1.ppm`` / ``*_img2.ppm`` / ``*_flow.flo`` files.
        split: ``'train'``, ``'val'`` or ``'all'``.
        crop: ``(height, width)`` of random crops, or None for whole images.
        seed: the crop seed.

    Raises:
        UsageError: the folder is missing or holds no complete samples, the split file does not match, or the
            requested split is empty.
    """

    def __init__(self, root: PathLike, split: str = 'train', crop: Optional[Tuple[int, int]] = None, seed: int = 0):
        root = Path(root)
        if split not in ('train', 'val', 'all'):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        if not root.is_dir():
            raise UsageError(f'{root}: no such FlyingChairs folder')
        firsts = sorted(root.glob('*_img1.ppm'))
        samples = []
        for first in firsts:
            stem = first.name[:-len('_img1.ppm')]
            second, flow = root / f'{stem}_img2.ppm', root / f'{stem}_flow.flo'
            if not (second.is_file() and flow.is_file()):
                raise UsageError(f'{root}: sample {stem} is incomplete (needs {stem}_img1.ppm, {stem}_img2.ppm and '
                                 f'{stem}_flow.flo)')
            samples.append((first, second, flow))
        if not samples:
            raise UsageError(f'{root}: no FlyingChairs samples (*_img1.ppm, *_img2.ppm, *_flow.flo)')
        self.split_file = next((p for p in (root / SPLIT_FILE, root.parent / SPLIT_FILE) if p.is_file()), None)
        if split != 'all' and self.split_file is not None:
            marks = self.split_file.read_text().split()
            if len(marks) != len(samples) or any(m not in ('1', '2') for m in marks):
                raise UsageError(f'{self.split_file}: expected {len(samples)} lines of 1 (train) or 2 (val), one per '
                                 f'sample in {root}, got {len(marks)} lines')
            samples = [s for s, mark in zip(samples, marks) if mark == _SPLITS[split]]
        elif split == 'val':
            raise UsageError(f'{root}: no {SPLIT_FILE} here or in the parent folder, so there is no validation split')
        if not samples:
            raise UsageError(f'{root}: the {split!r} split is empty')
        self.samples: List[Tuple[Path, Path, Path]] = samples
        self.crop, self.seed = crop, int(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> Dict[str, torch.Tensor]:
        index, draw = key if isinstance(key, tuple) else (key, key)
        first, second, flow_path = self.samples[index]
        one = torch.from_numpy(read_image(first)).permute(2, 0, 1).float() / 255.0
        two = torch.from_numpy(read_image(second)).permute(2, 0, 1).float() / 255.0
        flow = torch.from_numpy(read_flo(flow_path)).permute(2, 0, 1).contiguous()
        if one.shape != two.shape or one.shape[1:] != flow.shape[1:]:
            raise UsageError(f'{first}: images and flow of sample {index} differ in size')
        if self.crop is not None:
            height, width = self.crop
            full_h, full_w = one.shape[1:]
            if height > full_h or width > full_w:
                raise UsageError(f'crop {height}x{width} is larger than the FlyingChairs image {full_h}x{full_w}')
            rng = np.random.default_rng([self.seed, int(draw)])
            y, x = int(rng.integers(full_h - height + 1)), int(rng.integers(full_w - width + 1))
            one, two, flow = (t[:, y:y + height, x:x + width].contiguous() for t in (one, two, flow))
        return {'one': one, 'two': two, 'flow': flow}
