"""Frames in and out: images as ``[1, 3, H, W]`` RGB tensors in [0, 1].

Every command-line tool of the project reads and writes images through here so that they agree on colour order
(OpenCV reads BGR; the project works in RGB), value range and rounding; writes are atomic (``files.atomic_path``).

A file that ends early is an error, never an image: OpenCV decodes a truncated JPEG with the missing part filled grey
and only prints libjpeg's "Premature end of JPEG file", and fails on a truncated PNG only after libpng has printed a
line of its own. :func:`read_image` therefore checks that a JPEG or PNG file is complete before decoding it (the
end-of-image marker after the last scan; the closing IEND chunk) and names the file in one line when it is not.
An image's size is read from its header (Pillow reads headers without decoding) and one beyond ``MAX_PIXELS`` is
refused before decoding: a file of a few kilobytes can declare 100000 x 100000 pixels, and a real 23000 x 23000
image takes OpenCV 17 s and 4.8 GB to decode.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Optional, Tuple, Union

import cv2
import numpy as np
import PIL.Image
import torch

from .errors import UsageError
from .files import atomic_path, not_a_file

PathLike = Union[str, os.PathLike]


JPEG_START = b'\xff\xd8\xff'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'IEND\xaeB`\x82'  # type and CRC of the empty IEND chunk that closes every PNG
# the image files every tool lists in a folder (OpenCV reads them all)
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pnm')
MAX_PIXELS = 7680 * 4320  # 8K UHD; the classical interpolator needs about 1.6 GB at 4K and grows with the area


def is_image_file(path: PathLike) -> bool:
    """Whether a folder entry is an image to read: an image suffix, a regular file, and not hidden. Hidden names
    are never images: a killed writer's temporary (``.name.ab12cd34.png``, see ``files.atomic_path``) or macOS's
    ``._name`` resource forks."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith('.') and path.is_file()


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as ``[H, W, 3]`` uint8 RGB. Raises UsageError if it is missing or not a regular file,
    truncated (JPEG, PNG), larger than ``MAX_PIXELS`` (told from its header, before decoding) or unreadable."""
    path = Path(path)
    problem = not_a_file(path, 'image file')
    if problem is not None:
        raise UsageError(f'{path}: {problem}')
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f'{path}: cannot be read ({error.strerror or error})') from None
    problem = truncation(data)
    if problem is not None:
        raise UsageError(f'{path}: {problem}')
    size = declared_size(data)
    if size is not None:
        check_size(*size, path)
    # imdecode of the bytes read once decodes exactly as imread (EXIF orientation included)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise UsageError(f'{path}: not a readable image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def declared_size(data: bytes) -> Optional[Tuple[int, int]]:
    """``(width, height)`` as an image file's header declares it, without decoding; None when Pillow does not know
    the format (OpenCV then decides). A size beyond Pillow's decompression-bomb limit (about 179 megapixels, far
    above ``MAX_PIXELS``) reads as ``(limit + 1, 1)``: Pillow refuses to report it."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', PIL.Image.DecompressionBombWarning)
        try:
            with PIL.Image.open(io.BytesIO(data)) as image:
                return image.size
        except PIL.Image.DecompressionBombError:
            return 2 * PIL.Image.MAX_IMAGE_PIXELS + 1, 1
        except Exception:  # noqa: BLE001 - any format or header Pillow cannot read is left to OpenCV
            return None


def check_size(width: int, height: int, path: PathLike) -> None:
    """UsageError for frames beyond ``MAX_PIXELS`` (before any work: they would exhaust memory part-way)."""
    if width * height > MAX_PIXELS:
        shown = f'{width}x{height} frames' if height > 1 else f'frames of more than {width // 10**6} megapixels'
        raise UsageError(f'{path}: {shown} are larger than this tool handles (at most {MAX_PIXELS / 1e6:.0f} '
                         f'megapixels, e.g. 7680x4320)')


def truncation(data: bytes) -> Optional[str]:
    """Why the bytes of a JPEG or PNG file are incomplete, or None (also for other formats, left to OpenCV).

    JPEG: the end-of-image marker must follow the start of the last scan. Entropy-coded data never holds the marker
    (0xFF bytes are stuffed), and markers inside an EXIF thumbnail come before the image's own scans, so a file cut
    anywhere in or after its last scan header fails the test, while data appended after the image does not.
    PNG: the IEND chunk must be present; it is always the last one.
    """
    if data.startswith(JPEG_START):
        scan = data.rfind(b'\xff\xda')
        if scan < 0 or data.find(b'\xff\xd9', scan + 2) < 0:
            return 'truncated JPEG file (it ends before its end-of-image marker)'
    elif data.startswith(PNG_SIGNATURE) and data.rfind(PNG_END) < 0:
        return 'truncated PNG file (it ends before its IEND chunk)'
    return None


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


def write_image(path: PathLike, image: Union[np.ndarray, torch.Tensor]) -> None:
    """Write ``[H, W, 3]`` uint8 RGB (or a frame tensor, see :func:`to_uint8`) atomically; format from the suffix."""
    if isinstance(image, torch.Tensor):
        image = to_uint8(image)
    path = Path(path)
    try:
        ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise UsageError(f'{path}: cannot write an image with suffix {path.suffix!r}')
    try:
        with atomic_path(path) as temporary:  # encoded first, so that a full disk is told apart from a bad suffix
            temporary.write_bytes(data.tobytes())
    except OSError as error:
        raise UsageError(f'{path}: cannot write ({error.strerror or error})') from None
