"""Reading checkpoint files safely: ``torch.load(weights_only=True)`` with one clear error per kind of bad file.

Every checkpoint of the project (MainNet weights, training states, PWC-Net files) is read here, so that none of
them can execute code from a file and every failure reads the same way: PyTorch's own messages for a corrupt or
foreign file are long and, for a weights-only refusal, suggest turning the safety off, which is the wrong advice.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Union

import torch


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = 'cpu') -> object:
    """Load ``path`` with ``weights_only=True``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file is truncated or corrupt, or is not a checkpoint of tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: no such checkpoint file')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        reason = ('not a checkpoint of tensors: corrupt, or holding pickled objects that safe loading refuses')
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError):
        reason = 'truncated or corrupt file'
    raise ValueError(f'{path}: cannot be read as a PyTorch checkpoint ({reason})')
