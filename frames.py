"""Frames in and out: images as ``[1, 3, H, W]`` RGB tensors in [0, 1], atomic writes, and the error our tools report.

Every command-line tool of the project reads and writes images through here so that they agree on colour order
(OpenCV reads BGR; the project works in RGB), value range and rounding, and so that no tool leaves a half-written
file behind: outputs go to a temporary name in the same folder and are renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Union

import cv2
import numpy as np
import torch

PathLike = Union[str, os.PathLike]


class UsageError(Exception):
    """A problem with the user's input (missing file, wrong sizes, bad option): reported as one line, exit 2."""


class Interrupted(Exception):
    """A tool stopped on a signal after cleaning up: its message is printed as one line, ``status`` is the exit
    status (128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str, status: int = 130):
        super().__init__(message)
        self.status = status


def report_errors(run: Callable[[], int]) -> int:
    """Run a command-line tool's body: a UsageError becomes one ``error: ...`` line on stderr and exit status 2;
    Ctrl-C one ``interrupted`` line and 130 (an :class:`Interrupted` its own line and status)."""
    try:
        return run()
    except UsageError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(str(stop), file=sys.stderr)
        return stop.status
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as ``[H, W, 3]`` uint8 RGB. Raises UsageError if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f'{path}: no such file')
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UsageError(f'{path}: not a readable image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_tensor(image: np.ndarray, device: Union[str, torch.device] = 'cpu') -> torch.Tensor:
    """``[H, W, 3]`` uint8 RGB -> ``[1, 3, H, W]`` float32 in [0, 1] on ``device``."""
    # decoders (e.g. moviepy) hand out read-only buffers, which torch.from_numpy would have to alias
    tensor = torch.from_numpy(np.require(image, requirements=('C', 'W'))).permute(2, 0, 1).unsqueeze(0)
    return tensor.to(device=device, dtype=torch.float32).div_(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """``[1, 3, H, W]`` or ``[3, H, W]`` float in [0, 1] -> ``[H, W, 3]`` uint8 RGB (rounded, clipped)."""
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f'expected one frame [1, 3, H, W], got {list(tensor.shape)}')
        tensor = tensor[0]
    array = tensor.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(array)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success, delete it on failure.

    The temporary name keeps the destination's suffix, from which tools infer the format (``.png``, ``.mp4``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f'.{path.stem}.', suffix=path.suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; the result should be an ordinary file
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_image(path: PathLike, image: Union[np.ndarray, torch.Tensor]) -> None:
    """Write ``[H, W, 3]`` uint8 RGB (or a frame tensor, see :func:`to_uint8`) atomically; format from the suffix."""
    if isinstance(image, torch.Tensor):
        image = to_uint8(image)
    path = Path(path)
    with atomic_path(path) as temporary:
        if not cv2.imwrite(str(temporary), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise UsageError(f'{path}: cannot write an image with suffix {path.suffix!r}')
