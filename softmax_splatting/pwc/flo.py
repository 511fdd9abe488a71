"""Read and write optical flow in the Middlebury ``.flo`` format (Baker et al., IJCV 2011, the flow benchmark's
file format; also FlyingChairs' and Sintel's).

Layout, all little-endian: the float32 tag 202021.25 (the bytes ``PIEH``), int32 width, int32 height, then
``height * width`` pairs of float32 (u, v), row by row. Values above 1e9 mark unknown flow by convention; they are
read as they are. Headers are validated before the body is trusted, so a wrong or truncated file gives an error
naming the file instead of a garbled array, and files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torch

from ._io import write_atomically

__all__ = ['read_flo', 'write_flo', 'FLO_TAG']

FLO_TAG = 202021.25
_TAG_BYTES = b'PIEH'
_MAX_SIDE = 1 << 16  # no real flow field is wider or taller; a larger header is a corrupt file

PathLike = Union[str, os.PathLike]


def read_flo(path: PathLike) -> np.ndarray:
    """Read a ``.flo`` file as a float32 array ``[H, W, 2]`` (u = x displacement, v = y displacement, pixels).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the header is not a ``.flo`` header, or the file is shorter or longer than it announces.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: no such .flo file')
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != _TAG_BYTES:
        raise ValueError(f'{path}: not a Middlebury .flo file (expected the tag {_TAG_BYTES!r} = {FLO_TAG} in the '
                         f'first 4 bytes, got {data[:4]!r})')
    width, height = (int(v) for v in np.frombuffer(data, dtype='<i4', count=2, offset=4))
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise ValueError(f'{path}: .flo header gives an implausible size {width} x {height}')
    expected = 12 + 8 * width * height
    if len(data) != expected:
        raise ValueError(f'{path}: .flo header announces {width} x {height} (a {expected}-byte file), '
                         f'but the file has {len(data)} bytes')
    flow = np.frombuffer(data, dtype='<f4', offset=12).reshape(height, width, 2)
    return flow.astype(np.float32)  # a native-endian, writable copy


def _as_hw2(flow: object) -> np.ndarray:
    if isinstance(flow, torch.Tensor):
        tensor = flow.detach()
        if tensor.dim() == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.dim() != 3 or tensor.shape[0] != 2:
            raise ValueError(f'flow as a tensor must be [2, H, W] or [1, 2, H, W], got {list(flow.shape)}')
        return tensor.permute(1, 2, 0).to(device='cpu', dtype=torch.float32).numpy()
    if not isinstance(flow, np.ndarray):
        raise TypeError(f'flow must be a numpy array [H, W, 2] or a tensor [2, H, W], got {type(flow).__name__}')
    if flow.ndim != 3 or flow.shape[2] != 2 or min(flow.shape) == 0:
        raise ValueError(f'flow must be a non-empty array [H, W, 2], got shape {list(flow.shape)}')
    if not np.issubdtype(flow.dtype, np.floating):
        raise TypeError(f'flow must be a floating-point array, got {flow.dtype}')
    return flow


def write_flo(path: PathLike, flow: Union[np.ndarray, torch.Tensor]) -> None:
    """Write ``flow`` (``[H, W, 2]`` array, or a ``[2, H, W]`` / ``[1, 2, H, W]`` tensor) as a ``.flo`` file.

    The file appears complete or not at all (temporary file in the same folder, then renamed).
    """
    array = _as_hw2(flow)
    height, width, _ = array.shape
    if width > _MAX_SIDE or height > _MAX_SIDE:
        raise ValueError(f'flow of {width} x {height} is larger than .flo readers accept ({_MAX_SIDE} per side)')
    header = np.array([FLO_TAG], dtype='<f4').tobytes() + np.array([width, height], dtype='<i4').tobytes()
    write_atomically(path, header + np.ascontiguousarray(array, dtype='<f4').tobytes())
