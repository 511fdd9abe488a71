"""Procedural training data for optical flow: layered scenes with exact ground-truth flow and occlusion.

FlyingChairs (Dosovitskiy et al., ICCV 2015), on which PWC-Net is first trained (Sun et al., CVPR 2018, Sec. 4),
is a large download; this generator builds samples of the same kind on the fly: a textured background and several
textured foreground shapes (ellipses, rectangles, star-like blobs), each moving by its own random affine motion,
composited back to front into two frames. Because every layer is a texture pinned to its own coordinates, the true
flow is known exactly: a pixel p of frame one shows layer k, and that surface point is at A_k(p) in frame two, so
the flow is A_k(p) - p. A pixel is marked occluded when A_k(p) leaves the image or when any of the four pixels
around A_k(p) in frame two shows another layer; everywhere else, sampling frame two bilinearly at p + flow gives
back frame one up to interpolation error (exactly, for textures that are linear in their coordinates).

The same layers, with motions whose rotation, scaling and translation grow linearly in time, also make frame
triplets for interpolation (:func:`render_triplet`): the frame rendered at t = 0.5 is the true middle of those at
t = 0 and 1, occlusions included (``tools/synthetic_triplets.py`` writes them as training triplets).

Textures come from photographs when a folder is given (by default ``../shared/data/davis`` if it exists: real
images give real image statistics) or else from multi-octave value noise, so the generator needs no download.
Samples are a pure function of (seed, draw number), so data-loading workers and resumed training see the same data.
The Middlebury benchmark is refused as a texture source: we never train on the benchmark.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from . import frames

__all__ = ['SyntheticFlow', 'default_texture_dir', 'find_textures', 'procedural_texture', 'render_sample',
           'render_triplet']

PathLike = Union[str, os.PathLike]
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp')
FORBIDDEN = ('middlebury', 'rubberwhale')  # the benchmark, also shipped as OpenCV sample images


def default_texture_dir() -> Optional[Path]:
    """``../shared/data/davis`` relative to the repository, when it exists."""
    folder = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'davis'
    return folder if folder.is_dir() else None


def _refuse_benchmark(path: Path) -> None:
    if any(word in part.lower() for part in path.resolve().parts for word in FORBIDDEN):
        raise ValueError(f'{path}: refusing to use Middlebury benchmark images as training textures '
                         f'(the benchmark is for measuring only)')


def find_textures(folder: PathLike) -> List[Path]:
    """All images below ``folder``, sorted. Raises FileNotFoundError/ValueError if there are none or if they are
    the benchmark's."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder}: no such texture folder')
    _refuse_benchmark(folder)
    files = sorted(p for p in folder.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not p.name.startswith('.'))
    for path in files:
        _refuse_benchmark(path)
    if not files:
        raise ValueError(f'{folder}: no images ({", ".join(IMAGE_SUFFIXES)}) to use as textures')
    return files


@functools.lru_cache(maxsize=32)
def _load_photo(path: str) -> torch.Tensor:
    # The project's one reader: an unreadable or truncated photo is the user's input, a UsageError naming the file
    # (one line, also when a data-loading worker meets it), not grey fill.
    return torch.from_numpy(frames.read_image(path)).permute(2, 0, 1).contiguous()  # uint8


def procedural_texture(rng: np.random.Generator, size: int) -> torch.Tensor:
    """``[3, size, size]`` float32 in [0, 1]: value noise summed over octaves of cell size 64 down to 3 pixels, with
    a random colour mix, so there is structure at every scale the pyramid looks at."""
    total = torch.zeros(3, size, size)
    for cell in (64, 32, 16, 8, 5, 3):
        cells = size // cell + 3
        grid = torch.from_numpy(rng.random((1, 3, cells, cells), dtype=np.float32))
        up = F.interpolate(grid, size=(cells * cell, cells * cell), mode='bicubic', align_corners=False)[0]
        oy, ox = rng.integers(0, cell, 2)
        total += cell ** 0.4 * up[:, oy:oy + size, ox:ox + size]
    mix = torch.from_numpy(rng.normal(0, 1, (3, 3)).astype(np.float32)) + 2 * torch.eye(3)
    total = torch.einsum('ij,jhw->ihw', mix, total)
    low = total.amin(dim=(1, 2), keepdim=True)
    high = total.amax(dim=(1, 2), keepdim=True)
    return (total - low) / (high - low + 1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Geometry: affine maps as (2x2 matrix, translation) acting on [..., 2] point arrays (x, y)
# ---------------------------------------------------------------------------------------------------------------

def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _apply(matrix: np.ndarray, offset: np.ndarray, points: torch.Tensor) -> torch.Tensor:
    # Elementwise rather than ``points @ matrix.T``: a matmul with an inner size of 2 is several times slower.
    x, y = points[..., 0], points[..., 1]
    return torch.stack([matrix[0, 0] * x + matrix[0, 1] * y + offset[0],
                        matrix[1, 0] * x + matrix[1, 1] * y + offset[1]], -1)


def _random_motion(rng: np.random.Generator, centre: np.ndarray, max_shift: float, max_angle: float,
                   max_scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """p -> M p + o: rotation and anisotropic scaling about ``centre`` plus a translation within a disc."""
    scale = np.diag(1 + rng.uniform(-max_scale, max_scale, 2))
    matrix = _rotation(rng.uniform(-max_angle, max_angle)) @ scale
    radius, direction = max_shift * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    shift = radius * np.array([math.cos(direction), math.sin(direction)])
    return matrix, centre - matrix @ centre + shift


def _invert(matrix: np.ndarray, offset: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    inverse = np.linalg.inv(matrix)
    return inverse, -inverse @ offset


class _Shape:
    """A foreground region in frame-one coordinates: an ellipse, a rectangle or a star-like blob."""

    def __init__(self, rng: np.random.Generator, height: int, width: int):
        self.kind = rng.choice(['ellipse', 'rectangle', 'blob'])
        self.centre = rng.uniform([-0.1 * width, -0.1 * height], [1.1 * width, 1.1 * height])
        base = min(height, width)
        self.axes = rng.uniform(0.08 * base, 0.3 * base, 2)
        self.orientation = _rotation(-rng.uniform(0, math.pi))
        self.harmonics = [(k, rng.uniform(0, 0.35 / k), rng.uniform(0, 2 * math.pi)) for k in (2, 3, 5)]

    def covers(self, points: torch.Tensor) -> torch.Tensor:
        local = _apply(self.orientation, -self.orientation @ self.centre, points)
        x, y = local[..., 0] / self.axes[0], local[..., 1] / self.axes[1]
        if self.kind == 'rectangle':
            return (x.abs() <= 1) & (y.abs() <= 1)
        if self.kind == 'ellipse':
            return x * x + y * y <= 1
        angle = torch.atan2(y, x)
        radius = 1 + sum(a * torch.cos(k * angle + phase) for k, a, phase in self.harmonics)
        return x * x + y * y <= radius * radius


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------

def _sample_texture(texture: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of ``texture`` ``[3, h, w]`` at pixel coordinates ``coords`` ``[H, W, 2]`` -> ``[3, H, W]``."""
    h, w = texture.shape[1:]
    grid = torch.stack([(2 * coords[..., 0] + 1) / w - 1, (2 * coords[..., 1] + 1) / h - 1], -1)
    return F.grid_sample(texture[None], grid[None], mode='bilinear', padding_mode='reflection',
                         align_corners=False)[0]


def _pick_texture(rng: np.random.Generator, textures: Sequence[Union[Path, torch.Tensor]], base: torch.Tensor,
                  ) -> torch.Tensor:
    if not textures:
        # Per-layer variations of one procedural texture: channel order, gain, offset.
        order = torch.from_numpy(rng.permutation(3))
        gain = torch.from_numpy(rng.uniform(0.6, 1.0, (3, 1, 1)).astype(np.float32))
        offset = torch.from_numpy(rng.uniform(0, 0.4, (3, 1, 1)).astype(np.float32))
        return base[order] * gain + offset * (1 - gain)
    choice = textures[int(rng.integers(len(textures)))]
    if isinstance(choice, torch.Tensor):
        return choice
    image = _load_photo(str(choice)).float() / 255.0
    gain = torch.from_numpy(rng.uniform(0.8, 1.2, (3, 1, 1)).astype(np.float32))
    return (image * gain).clamp_(0, 1)


def render_sample(rng: np.random.Generator, height: int, width: int,
                  textures: Sequence[Union[Path, torch.Tensor]] = (), layers: Tuple[int, int] = (2, 5),
                  max_shift: Optional[float] = None) -> Dict[str, torch.Tensor]:
    """One two-frame scene.

    Args:
        rng: the source of every random choice.
        height, width: frame size.
        textures: image files or ``[3, h, w]`` float tensors in [0, 1] to texture the layers with; empty: procedural.
        layers: (fewest, most) foreground shapes.
        max_shift: largest translation of a foreground layer in pixels (background: half); default 8 % of the
            larger side.

    Returns:
        ``one``, ``two``: ``[3, H, W]`` float32 RGB in [0, 1]; ``flow``: ``[2, H, W]`` float32, frame one to frame
        two in pixels; ``occlusion``: ``[1, H, W]`` float32, 1 where the point of frame one is not visible in frame
        two (see the module docstring).
    """
    max_shift = 0.08 * max(height, width) if max_shift is None else float(max_shift)
    count = int(rng.integers(layers[0], layers[1] + 1))
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing='ij')
    pixels = torch.stack([xs, ys], -1)  # [H, W, 2]
    base = procedural_texture(rng, int(1.2 * max(height, width))) if not textures else None
    centre = np.array([(width - 1) / 2, (height - 1) / 2])

    frames = [torch.zeros(3, height, width), torch.zeros(3, height, width)]
    labels = [torch.zeros(height, width, dtype=torch.long), torch.zeros(height, width, dtype=torch.long)]
    flow = torch.zeros(height, width, 2, dtype=torch.float64)
    for layer in range(count + 1):
        shape = _Shape(rng, height, width) if layer else None
        anchor = shape.centre if shape is not None else centre
        motion = _random_motion(rng, anchor, max_shift * (1.0 if layer else 0.5), math.radians(10 if layer else 3),
                                0.1 if layer else 0.05)
        texture = _pick_texture(rng, textures, base)
        th, tw = texture.shape[1:]
        zoom = rng.uniform(0.7, 1.3)
        pin = _rotation(rng.uniform(-math.pi, math.pi)) * zoom  # frame-one coordinates -> texture coordinates
        pin_offset = np.array([tw / 2, th / 2]) + rng.uniform(-0.2, 0.2, 2) * [tw, th] - pin @ centre
        inverse = _invert(*motion)
        for index, points in enumerate((pixels, _apply(*inverse, pixels))):
            covered = shape.covers(points) if shape is not None else torch.ones(height, width, dtype=torch.bool)
            colour = _sample_texture(texture.float(), _apply(pin, pin_offset, points).float())
            frames[index] = torch.where(covered, colour, frames[index])
            labels[index] = torch.where(covered, torch.full_like(labels[index], layer), labels[index])
            if index == 0:
                flow = torch.where(covered[..., None], _apply(*motion, pixels) - pixels, flow)

    occlusion = _occlusion(pixels + flow, labels[0], labels[1])
    return {'one': frames[0].clamp(0, 1), 'two': frames[1].clamp(0, 1),
            'flow': flow.permute(2, 0, 1).float().contiguous(), 'occlusion': occlusion[None].float()}


class _LinearMotion:
    """p -> M(t) p + o(t): rotation by ``angle * t`` and anisotropic scaling by ``1 + stretch * t`` about ``centre``,
    then a translation by ``shift * t``; the identity at t = 0."""

    def __init__(self, rng: np.random.Generator, centre: np.ndarray, max_shift: float, max_angle: float,
                 max_stretch: float):
        self.centre = centre
        self.angle = rng.uniform(-max_angle, max_angle)
        self.stretch = rng.uniform(-max_stretch, max_stretch, 2)
        radius, direction = max_shift * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        self.shift = radius * np.array([math.cos(direction), math.sin(direction)])

    def inverse_at(self, t: float) -> Tuple[np.ndarray, np.ndarray]:
        """The map from frame-t pixels back to frame-0 coordinates, as (matrix, offset)."""
        matrix = _rotation(self.angle * t) @ np.diag(1 + self.stretch * t)
        return _invert(matrix, self.centre - matrix @ self.centre + self.shift * t)


def render_triplet(rng: np.random.Generator, height: int, width: int,
                   textures: Sequence[Union[Path, torch.Tensor]] = (), layers: Tuple[int, int] = (2, 5),
                   max_shift: Optional[float] = None, times: Sequence[float] = (0.0, 0.5, 1.0)) -> List[torch.Tensor]:
    """One scene rendered at several times, for frame interpolation.

    Args:
        rng, height, width, textures, layers: as :func:`render_sample`.
        max_shift: largest translation of a foreground layer from t = 0 to t = 1 in pixels (background: half);
            default 8 % of the larger side.
        times: the times to render; the default gives (first, true middle, last).

    Returns:
        one ``[3, H, W]`` float32 RGB frame in [0, 1] per time.
    """
    max_shift = 0.08 * max(height, width) if max_shift is None else float(max_shift)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing='ij')
    pixels = torch.stack([xs, ys], -1)  # [H, W, 2]
    base = procedural_texture(rng, int(1.2 * max(height, width))) if not textures else None
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    out = [torch.zeros(3, height, width) for _ in times]
    for layer in range(int(rng.integers(layers[0], layers[1] + 1)) + 1):
        shape = _Shape(rng, height, width) if layer else None
        motion = _LinearMotion(rng, shape.centre if shape is not None else centre,
                               max_shift * (1.0 if layer else 0.5), math.radians(10 if layer else 3),
                               0.1 if layer else 0.05)
        texture = _pick_texture(rng, textures, base)
        th, tw = texture.shape[1:]
        pin = _rotation(rng.uniform(-math.pi, math.pi)) * rng.uniform(0.7, 1.3)  # frame-0 -> texture coordinates
        pin_offset = np.array([tw / 2, th / 2]) + rng.uniform(-0.2, 0.2, 2) * [tw, th] - pin @ centre
        for index, t in enumerate(times):
            points = _apply(*motion.inverse_at(t), pixels)
            covered = shape.covers(points) if shape is not None else torch.ones(height, width, dtype=torch.bool)
            colour = _sample_texture(texture.float(), _apply(pin, pin_offset, points).float())
            out[index] = torch.where(covered, colour, out[index])
    return [frame.clamp(0, 1) for frame in out]


def _occlusion(targets: torch.Tensor, labels_one: torch.Tensor, labels_two: torch.Tensor) -> torch.Tensor:
    """True where a target leaves the image or one of its four bilinear neighbours in frame two shows another
    layer."""
    height, width = labels_one.shape
    tx, ty = targets[..., 0], targets[..., 1]
    outside = (tx < 0) | (tx > width - 1) | (ty < 0) | (ty > height - 1)
    x0 = tx.floor().clamp(0, width - 1).long()
    y0 = ty.floor().clamp(0, height - 1).long()
    x1, y1 = (x0 + 1).clamp(max=width - 1), (y0 + 1).clamp(max=height - 1)
    occluded = outside
    for yy in (y0, y1):
        for xx in (x0, x1):
            occluded = occluded | (labels_two[yy, xx] != labels_one)
    return occluded


# ---------------------------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------------------------

class SyntheticFlow(Dataset):
    """An (effectively endless) dataset of rendered scenes; item ``k`` (or ``(index, draw)``) is rendered from
    ``numpy.random.default_rng([seed, draw])``.

    Args:
        size: ``(height, width)`` of the frames.
        length: what ``len()`` reports (any number of draws can be rendered).
        seed: the data seed.
        textures: ``'auto'`` (``../shared/data/davis`` when present, else procedural), None (procedural), a folder
            of images, or a list of ``[3, h, w]`` float tensors in [0, 1].
        layers, max_shift: see :func:`render_sample`.
    """

    def __init__(self, size: Tuple[int, int] = (256, 256), length: int = 1_000_000, seed: int = 0,
                 textures: Union[str, PathLike, Sequence[torch.Tensor], None] = 'auto',
                 layers: Tuple[int, int] = (2, 5), max_shift: Optional[float] = None):
        height, width = size
        if height < 8 or width < 8:
            raise ValueError(f'size must be at least 8 x 8, got {height} x {width}')
        if not (0 <= layers[0] <= layers[1]):
            raise ValueError(f'layers must be (fewest, most) with 0 <= fewest <= most, got {layers}')
        self.size, self.length, self.seed = (int(height), int(width)), int(length), int(seed)
        self.layers, self.max_shift = (int(layers[0]), int(layers[1])), max_shift
        if isinstance(textures, str) and textures == 'auto':
            folder = default_texture_dir()
            self.textures: List[Union[Path, torch.Tensor]] = find_textures(folder) if folder is not None else []
        elif textures is None:
            self.textures = []
        elif isinstance(textures, (str, os.PathLike)):
            self.textures = find_textures(textures)
        else:
            self.textures = list(textures)
            for texture in self.textures:
                if not (isinstance(texture, torch.Tensor) and texture.dim() == 3 and texture.shape[0] == 3):
                    raise ValueError('textures given as a list must be [3, h, w] float tensors in [0, 1]')

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> Dict[str, torch.Tensor]:
        draw = key[1] if isinstance(key, tuple) else key
        rng = np.random.default_rng([self.seed, int(draw)])
        return render_sample(rng, *self.size, textures=self.textures, layers=self.layers, max_shift=self.max_shift)
