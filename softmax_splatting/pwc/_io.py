"""File access of the flow package: safe checkpoint reading and all-or-nothing writes.

``pwc/`` is meant to work when copied out of this project on its own, so it does not use the project's
``files.atomic_path`` and ``files.load_checkpoint``; these two small functions keep the same guarantees.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union

import torch

PathLike = Union[str, Path]


def read_weights(path: PathLike, map_location: Union[str, torch.device] = 'cpu') -> object:
    """``torch.load(path, weights_only=True)``; any failure becomes ValueError naming the file."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated or corrupt archives, or pickled objects that safe loading refuses
        raise ValueError(f'{path}: cannot be read as a PyTorch checkpoint of tensors '
                         f'({type(error).__name__})') from None


def write_atomically(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, so the file is complete or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f'.{path.name}.', dir=path.parent)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
