"""The Xiph 4K benchmark of the softmax splatting paper: PSNR and SSIM on eight Netflix clips, resized and cropped.

Protocol (Niklaus & Liu, CVPR 2020, the "Xiph" columns of its evaluation, introduced there for high-resolution
footage; the details below follow the authors' public evaluation script, ``benchmark_xiph.py`` of
github.com/sniklaus/softmax-splatting, as facts; no code is taken from it):

* Clips: the first 100 frames of BoxingPractice, Crosswalk, DrivingPOV, FoodMarket, FoodMarket2, RitualDance,
  SquareAndTimelapse and Tango, 4096 x 2160, 60 fps, 10-bit 4:2:0 (Netflix open content from media.xiph.org).
* Frames: of the first N = 100 frames, 0-based 0 ... 99, every odd frame i = 1, 3, ..., 97 is interpolated at
  t = 0.5 from frames i - 1 and i + 1 and compared with frame i: 49 frames per clip. In the script's 1-based file
  names (ffmpeg ``-vframes 100`` to 001.png ... 100.png, then ``range(2, 99, 2)``) these are frames 2, 4, ..., 98
  from their neighbours 1 & 3, ..., 97 & 99; the last frame (1-based 100) is never used. ``--frames N`` shortens
  a run the same way: targets ``range(1, N - 1, 2)``.
* Categories: "resized" scales the two inputs and the ground truth to 2048 x 1080 with ``cv2.INTER_AREA``;
  "cropped" takes the central 2048 x 1080 region of each (rows 540-1619, columns 1024-3071 of 4096 x 2160).
  Both start from the same 8-bit RGB frames.
* Scores: the prediction is rounded to 8 bits (:func:`frames.to_uint8`) and scored with :func:`metrics.psnr` and
  :func:`metrics.ssim`. A clip's score is the mean over its frames; a category's score the mean over all frames of
  all clips, which equals the mean of the clip means since every clip contributes the same number of frames.

Inputs (``--data DIR``), looked for per clip in this order:

1. ``DIR/<Clip>/``: a folder of frames (sorted image files, natural order), e.g. extracted with ffmpeg;
2. a ``.y4m`` file in DIR whose name contains the clip name as a word, e.g.
   ``Netflix_BoxingPractice_4096x2160_60fps_10bit_420.y4m`` or ``BoxingPractice.y4m`` (``FoodMarket`` does not
   match ``FoodMarket2``);
3. ``DIR/<Clip>-001.png`` ...: the flat layout the public script's ffmpeg command writes.

Nothing is downloaded; a missing clip is an error that says where it comes from.

Y4M is read by a small streaming reader (:class:`Y4MReader`), because one 4K 10-bit frame is 26.5 MB and a clip
many GB: header tags W, H, F, I, A, C and the ``XCOLORRANGE`` extension; colour spaces 420jpeg / 420 / 420paldv
(chroma centred; paldv's vertical offsets are ignored), 420mpeg2 (chroma co-sited horizontally), 420p9...420p16,
422[pN] (co-sited horizontally), 444[pN], 444alpha (alpha ignored) and mono[N]; samples above 8 bits are
little-endian uint16. Frames are decoded one at a time, only those the protocol uses (the others are skipped by
seeking), and each decoded frame serves both categories; at most three frames are held. Chroma is upsampled
linearly according to its siting, then YUV -> RGB with the BT.601 matrix (``--matrix bt709`` for BT.709), limited
("studio") range unless the header says ``XCOLORRANGE=FULL``: Y 16-235 and Cb/Cr 16-240 (times 2^(bits - 8))
map to [0, 1] and [-0.5, 0.5]; values outside the nominal range are kept through the conversion and clipped only in
RGB, then rounded to uint8. The clips carry no matrix tag; ffmpeg's ``-pix_fmt rgb24`` (the public script's
decoder) uses swscale's default for untagged input, BT.601 (checked with the ffmpeg of imageio-ffmpeg: our
``--matrix bt601`` decode agrees with it within 3 code values, bt709 differs by up to 25), and its own chroma filter,
so BT.601 is the default here: it reproduces the frames the published numbers were computed on. The clips are
BT.709 material, and ``--matrix bt709`` gives truer colours; inputs and ground truth are decoded alike either way, so
scores move only slightly.

Output: a Markdown table on stdout (per clip and the mean, PSNR in dB and SSIM), progress and per-clip lines on
stderr, and with ``--json PATH`` (written atomically) ``{"clips": {clip: {"resized": {"psnr", "ssim"},
"cropped": {...}}}, "mean": {"resized": {...}, "cropped": {...}}, "settings": {...}}`` (an infinite PSNR, i.e.
identical frames, is written as null).

Usage: ``python benchmark_xiph.py --data xiph/ [--model PATH|classical] [--device auto|cpu|cuda] [--fp16]
[--clips Tango ...] [--frames 100] [--json results.json]``; ``--resize-to WxH`` / ``--crop-to WxH`` change the
2048 x 1080 targets (for tests and small machines; the protocol's numbers need the defaults).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from tqdm import tqdm

import frames
from frames import UsageError
from interpolator import load_interpolator, select_device
from metrics import psnr, ssim

__all__ = ['CLIPS', 'CATEGORIES', 'Y4MError', 'Y4MHeader', 'Y4MReader', 'yuv_to_rgb', 'protocol_targets',
           'find_clip', 'prepare', 'evaluate_clip', 'run_benchmark', 'main']

CLIPS = ('BoxingPractice', 'Crosswalk', 'DrivingPOV', 'FoodMarket', 'FoodMarket2', 'RitualDance',
         'SquareAndTimelapse', 'Tango')
CATEGORIES = ('resized', 'cropped')
PROTOCOL_SIZE = (2048, 1080)  # width, height of both categories
PROTOCOL_FRAMES = 100
XIPH_URL = 'https://media.xiph.org/video/derf/{collection}/Netflix_{clip}_4096x2160_60fps_10bit_420.y4m'
IMAGE_SUFFIXES = frozenset({'.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm'})
MATRICES = {'bt709': (0.2126, 0.0722), 'bt601': (0.299, 0.114)}  # (Kr, Kb)


def _collection(clip: str) -> str:
    """The Netflix open-content production a clip is from (its folder on media.xiph.org)."""
    return 'Chimera' if clip == 'DrivingPOV' else 'ElFuente'


# ---------------------------------------------------------------------------------------------------------------
# Y4M
# ---------------------------------------------------------------------------------------------------------------

class Y4MError(UsageError):
    """A file that is not valid YUV4MPEG2, or is cut short."""


@dataclass(frozen=True)
class Y4MHeader:
    """What the stream header says. Plane sizes are ``(height, width)``; chroma factors are 1 or 2."""

    width: int
    height: int
    colourspace: str        # the C tag as written, e.g. '420p10'
    chroma: str             # '420', '422', '444' or 'mono'
    bit_depth: int
    full_range: bool
    cosited_x: bool         # chroma samples on the even luma columns (MPEG-2 siting) instead of between them
    alpha: bool             # an extra full-size plane follows the colour planes (444alpha)
    frame_rate: str = ''

    @property
    def sample_bytes(self) -> int:
        return 1 if self.bit_depth <= 8 else 2

    @property
    def chroma_shape(self) -> Tuple[int, int]:
        if self.chroma == '420':
            return (self.height + 1) // 2, (self.width + 1) // 2
        if self.chroma == '422':
            return self.height, (self.width + 1) // 2
        if self.chroma == '444':
            return self.height, self.width
        return 0, 0

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame's samples (after its ``FRAME`` line)."""
        luma = self.height * self.width
        chroma_h, chroma_w = self.chroma_shape
        planes = luma + 2 * chroma_h * chroma_w + (luma if self.alpha else 0)
        return planes * self.sample_bytes


_HEADER_MAGIC = b'YUV4MPEG2'
_FRAME_MAGIC = b'FRAME'
_MAX_LINE = 4096


def parse_y4m_header(line: bytes, name: str = 'y4m') -> Y4MHeader:
    """Parse the stream header line (without its newline). Raises Y4MError with ``name`` in the message."""
    fields = line.split(b' ')
    if fields[0] != _HEADER_MAGIC:
        raise Y4MError(f'{name}: not a YUV4MPEG2 (.y4m) file (it does not start with "YUV4MPEG2 ")')
    tags: Dict[str, str] = {}
    extensions: Dict[str, str] = {}
    for field in fields[1:]:
        if not field:
            continue
        try:
            text = field.decode('ascii')
        except UnicodeDecodeError:
            raise Y4MError(f'{name}: unreadable header tag {field[:20]!r}') from None
        if text[0] == 'X':
            key, _, value = text[1:].partition('=')
            extensions[key.upper()] = value.upper()
        else:
            tags[text[0]] = text[1:]
    try:
        width, height = int(tags['W']), int(tags['H'])
    except KeyError:
        raise Y4MError(f'{name}: the header lacks the W (width) or H (height) tag') from None
    except ValueError:
        raise Y4MError(f'{name}: bad W/H in the header: W{tags.get("W")} H{tags.get("H")}') from None
    if width <= 0 or height <= 0:
        raise Y4MError(f'{name}: bad frame size {width}x{height} in the header')
    colourspace = tags.get('C', '420jpeg')
    match = re.fullmatch(r'(420|422|444|mono)(jpeg|mpeg2|paldv|alpha)?(?:p?(\d+))?', colourspace.lower())
    if not match:
        raise Y4MError(f'{name}: colour space C{colourspace} is not supported (420jpeg, 420mpeg2, 420paldv, '
                       f'420pN, 422[pN], 444[pN], 444alpha, mono[16])')
    chroma, variant, depth = match.group(1), match.group(2) or '', match.group(3)
    bit_depth = int(depth) if depth else 8
    if not 8 <= bit_depth <= 16:
        raise Y4MError(f'{name}: bit depth {bit_depth} of C{colourspace} is not supported (8 to 16)')
    if variant == 'alpha' and chroma != '444':
        raise Y4MError(f'{name}: colour space C{colourspace} is not supported')
    if variant in ('jpeg', 'mpeg2', 'paldv') and chroma != '420':
        raise Y4MError(f'{name}: colour space C{colourspace} is not supported')
    cosited_x = (chroma == '420' and variant == 'mpeg2') or chroma == '422'
    colour_range = extensions.get('COLORRANGE', 'LIMITED')
    if colour_range not in ('FULL', 'LIMITED'):
        raise Y4MError(f'{name}: XCOLORRANGE={colour_range} is neither FULL nor LIMITED')
    return Y4MHeader(width=width, height=height, colourspace=colourspace, chroma=chroma, bit_depth=bit_depth,
                     full_range=colour_range == 'FULL', cosited_x=cosited_x, alpha=variant == 'alpha',
                     frame_rate=tags.get('F', ''))


def _read_line(stream: BinaryIO, what: str, name: str) -> bytes:
    """Read up to a newline; b'' at a clean end of file. Raises Y4MError for an over-long or unfinished line."""
    line = stream.readline(_MAX_LINE + 1)
    if line and not line.endswith(b'\n'):
        if len(line) > _MAX_LINE:
            raise Y4MError(f'{name}: the {what} line is longer than {_MAX_LINE} bytes; not a valid .y4m file')
        raise Y4MError(f'{name}: the file ends inside the {what} line (truncated)')
    return line[:-1]


class Y4MReader:
    """Streaming reader of a YUV4MPEG2 file: one frame in memory at a time.

    ``read_yuv()`` gives the planes, ``read()`` an ``[H, W, 3]`` uint8 RGB frame, both None at the end of the
    stream; ``skip()`` seeks past a frame without decoding it. Use as a context manager (it owns the open file).
    """

    def __init__(self, path: Path, matrix: str = 'bt601'):
        self.path = Path(path)
        if matrix not in MATRICES:
            raise UsageError(f'unknown YUV matrix {matrix!r}; expected one of {", ".join(MATRICES)}')
        self.matrix = matrix
        try:
            self._stream: BinaryIO = open(self.path, 'rb')
        except OSError as error:
            raise UsageError(f'{self.path}: cannot open ({error.strerror})') from None
        try:
            line = _read_line(self._stream, 'header', str(self.path))
            if not line:
                raise Y4MError(f'{self.path}: empty file, not a .y4m video')
            self.header = parse_y4m_header(line, str(self.path))
        except BaseException:
            self._stream.close()
            raise
        self.index = 0  # of the next frame

    def __enter__(self) -> 'Y4MReader':
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()

    def _frame_line(self) -> bool:
        line = _read_line(self._stream, f'FRAME (frame {self.index})', str(self.path))
        if not line:
            return False
        if line.split(b' ')[0] != _FRAME_MAGIC:
            raise Y4MError(f'{self.path}: frame {self.index} does not start with FRAME (corrupt or not .y4m)')
        return True

    def skip(self) -> bool:
        """Skip the next frame; False at the end of the stream."""
        if not self._frame_line():
            return False
        start = self._stream.tell()
        end = self._stream.seek(self.header.frame_bytes, 1)
        if self._stream.seek(0, 2) < end:
            raise Y4MError(f'{self.path}: truncated in frame {self.index} ({self.header.frame_bytes} bytes '
                           f'expected after byte {start})')
        self._stream.seek(end)
        self.index += 1
        return True

    def read_yuv(self) -> Optional[Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]]:
        """The next frame's planes ``(Y [H, W], Cb, Cr [chroma_h, chroma_w])`` as uint8 or uint16 (Cb, Cr None
        for mono), or None at the end of the stream."""
        if not self._frame_line():
            return None
        header = self.header
        data = self._stream.read(header.frame_bytes)
        if len(data) != header.frame_bytes:
            raise Y4MError(f'{self.path}: truncated in frame {self.index} ({len(data)} of {header.frame_bytes} '
                           f'bytes)')
        dtype = np.dtype('<u2') if header.sample_bytes == 2 else np.dtype(np.uint8)
        samples = np.frombuffer(data, dtype=dtype)
        luma = header.height * header.width
        y = samples[:luma].reshape(header.height, header.width)
        u = v = None
        if header.chroma != 'mono':
            chroma_h, chroma_w = header.chroma_shape
            size = chroma_h * chroma_w
            u = samples[luma:luma + size].reshape(chroma_h, chroma_w)
            v = samples[luma + size:luma + 2 * size].reshape(chroma_h, chroma_w)
        self.index += 1
        return y, u, v

    def read(self) -> Optional[np.ndarray]:
        """The next frame as ``[H, W, 3]`` uint8 RGB, or None at the end of the stream."""
        planes = self.read_yuv()
        if planes is None:
            return None
        return yuv_to_rgb(*planes, header=self.header, matrix=self.matrix)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame


def _upsample2(plane: np.ndarray, axis: int, size: int, cosited: bool) -> np.ndarray:
    """Double ``plane`` (float32) along ``axis`` by linear interpolation and cut it to ``size`` samples.

    Centred siting puts chroma sample k at luma position 2k + 0.5, so output 2k is 3/4 of sample k and 1/4 of
    sample k - 1, output 2k + 1 is 3/4 of k and 1/4 of k + 1. Co-sited chroma sits on luma 2k: output 2k is sample
    k itself, output 2k + 1 the mean of k and k + 1. Edges repeat the border sample.
    """
    moved = np.moveaxis(plane, axis, 0)
    after = np.concatenate([moved[1:], moved[-1:]])
    if cosited:
        even = moved
        odd = 0.5 * (moved + after)
    else:
        before = np.concatenate([moved[:1], moved[:-1]])
        even = 0.75 * moved + 0.25 * before
        odd = 0.75 * moved + 0.25 * after
    doubled = np.stack([even, odd], axis=1).reshape((2 * moved.shape[0],) + moved.shape[1:])
    return np.moveaxis(doubled[:size], 0, axis)


def _upsample_chroma(plane: np.ndarray, header: Y4MHeader) -> np.ndarray:
    """A chroma plane (float32) brought to the luma size according to the header's subsampling and siting."""
    plane = plane.astype(np.float32)
    if header.chroma == '420' and not header.cosited_x:
        # Centred in both directions: exactly OpenCV's 2x bilinear resize (replicated border), and much faster.
        doubled = cv2.resize(plane, (2 * plane.shape[1], 2 * plane.shape[0]), interpolation=cv2.INTER_LINEAR)
        return doubled[:header.height, :header.width]
    if header.chroma in ('420', '422') and plane.shape[1] != header.width:
        plane = _upsample2(plane, 1, header.width, header.cosited_x)
    if header.chroma == '420':
        plane = _upsample2(plane, 0, header.height, False)
    return plane


def yuv_to_rgb(y: np.ndarray, u: Optional[np.ndarray], v: Optional[np.ndarray], header: Y4MHeader,
               matrix: str = 'bt601') -> np.ndarray:
    """Planes of one frame (as :meth:`Y4MReader.read_yuv` gives them) -> ``[H, W, 3]`` uint8 RGB.

    Limited range: Y' = (Y - 16 s) / (219 s), Cb' = (Cb - 128 s) / (224 s) with s = 2^(bits - 8); full range:
    Y' = Y / (2^bits - 1), Cb' = (Cb - 2^(bits - 1)) / (2^bits - 1). Then R = Y' + 2 (1 - Kr) Cr',
    B = Y' + 2 (1 - Kb) Cb', G = (Y' - Kr R - Kb B) / (1 - Kr - Kb), clipped to [0, 1] and rounded to 8 bits.
    """
    kr, kb = MATRICES[matrix]
    bits = header.bit_depth
    if header.full_range:
        top = float(2 ** bits - 1)
        luma = y.astype(np.float32) * (1.0 / top)
        centre, chroma_scale = float(2 ** (bits - 1)), 1.0 / top
    else:
        scale = float(2 ** (bits - 8))
        luma = (y.astype(np.float32) - 16.0 * scale) * (1.0 / (219.0 * scale))
        centre, chroma_scale = 128.0 * scale, 1.0 / (224.0 * scale)
    if u is None or v is None:
        rgb = np.repeat(luma[:, :, None], 3, axis=2)
    else:
        cb = (_upsample_chroma(u, header) - centre) * chroma_scale
        cr = (_upsample_chroma(v, header) - centre) * chroma_scale
        kg = 1.0 - kr - kb
        red = luma + (2.0 * (1.0 - kr)) * cr
        blue = luma + (2.0 * (1.0 - kb)) * cb
        green = luma - (2.0 * kb * (1.0 - kb) / kg) * cb - (2.0 * kr * (1.0 - kr) / kg) * cr
        rgb = np.stack([red, green, blue], axis=2)
    return np.clip(rgb * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Clips
# ---------------------------------------------------------------------------------------------------------------

def _natural_key(path: Path) -> List[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', path.name)]


def _clip_word(clip: str) -> 're.Pattern[str]':
    # The clip name as a word: letters/digits may not continue it, so FoodMarket does not match FoodMarket2.
    return re.compile(rf'(?<![A-Za-z0-9]){re.escape(clip)}(?![A-Za-z0-9])', re.IGNORECASE)


@dataclass
class ClipSource:
    """Where one clip's frames are: a .y4m file or a list of image files."""

    clip: str
    path: Path
    images: Optional[List[Path]] = None  # None for a .y4m file

    def describe(self) -> str:
        return f'{self.path} ({len(self.images)} images)' if self.images is not None else str(self.path)

    def iter_frames(self, count: int, matrix: str = 'bt601',
                    needed: Optional[Callable[[int], bool]] = None) -> Iterator[Tuple[int, Optional[np.ndarray]]]:
        """``(index, [H, W, 3] uint8 RGB)`` for the first ``count`` frames, one at a time; frames that ``needed``
        rejects come as ``(index, None)`` without being decoded. UsageError if the clip has fewer frames."""
        produced = 0
        if self.images is not None:
            for index, path in enumerate(self.images[:count]):
                yield index, (frames.read_image(path) if needed is None or needed(index) else None)
                produced += 1
        else:
            with Y4MReader(self.path, matrix) as reader:
                while produced < count:
                    if needed is None or needed(produced):
                        frame = reader.read()
                        if frame is None:
                            break
                    elif reader.skip():
                        frame = None
                    else:
                        break
                    yield produced, frame
                    produced += 1
        if produced < count:
            raise UsageError(f'{self.clip}: {self.describe()} has only {produced} frame(s); the protocol needs '
                             f'{count} (--frames)')


def find_clip(data: Path, clip: str) -> Optional[ClipSource]:
    """Locate ``clip`` in ``data`` (folder, then .y4m, then flat ``<Clip>-NNN`` images); None if absent.

    Raises UsageError if several .y4m files match.
    """
    for child in sorted(data.iterdir()):
        if child.is_dir() and child.name.lower() == clip.lower():
            images = sorted((p for p in child.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                            key=_natural_key)
            if images:
                return ClipSource(clip, child, images)
    word = _clip_word(clip)
    videos = sorted(p for p in data.iterdir() if p.is_file() and p.suffix.lower() == '.y4m' and word.search(p.stem))
    if len(videos) > 1:
        raise UsageError(f'{clip}: several .y4m files in {data} match: {", ".join(p.name for p in videos)}; '
                         f'keep one')
    if videos:
        return ClipSource(clip, videos[0])
    flat = re.compile(rf'{re.escape(clip)}-\d+$', re.IGNORECASE)
    images = sorted((p for p in data.iterdir()
                     if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and flat.match(p.stem)), key=_natural_key)
    if images:
        return ClipSource(clip, data / f'{clip}-*', images)
    return None


def _missing_message(data: Path, missing: Sequence[str]) -> str:
    example = missing[0]
    return (f'Xiph clip(s) not found in {data}: {", ".join(missing)}. Expected per clip a folder '
            f'{data}/<Clip>/ of frames, a .y4m whose name contains the clip name (as published: '
            f'Netflix_<Clip>_4096x2160_60fps_10bit_420.y4m) or {data}/<Clip>-001.png .... They are Netflix open '
            f'content (El Fuente; DrivingPOV from Chimera) at media.xiph.org, e.g. '
            f'{XIPH_URL.format(collection=_collection(example), clip=example)}; this tool downloads nothing')


# ---------------------------------------------------------------------------------------------------------------
# Protocol
# ---------------------------------------------------------------------------------------------------------------

def protocol_targets(count: int = PROTOCOL_FRAMES) -> List[int]:
    """0-based indices of the frames to interpolate among the first ``count``: 1, 3, ..., each from i - 1, i + 1."""
    return list(range(1, count - 1, 2))


def parse_size(text: str, option: str) -> Tuple[int, int]:
    """``'2048x1080'`` -> ``(2048, 1080)`` (width, height); UsageError naming ``option`` otherwise."""
    match = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', text)
    if not match or int(match.group(1)) < 8 or int(match.group(2)) < 8:
        raise UsageError(f'{option} {text!r} is not of the form WIDTHxHEIGHT with both at least 8, e.g. 2048x1080')
    return int(match.group(1)), int(match.group(2))


def prepare(image: np.ndarray, category: str, size: Tuple[int, int]) -> np.ndarray:
    """One ``[H, W, 3]`` uint8 frame as the category sees it: resized (INTER_AREA) or centre-cropped to ``size``."""
    width, height = size
    if category == 'resized':
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width])


@dataclass
class ClipScores:
    """Per-frame scores of one clip: ``scores[category]['psnr' | 'ssim']`` lists, in target order."""

    clip: str
    scores: Dict[str, Dict[str, List[float]]]
    targets: List[int]
    seconds: float


def evaluate_clip(source: ClipSource, interpolator: object, device: torch.device, count: int,
                  sizes: Dict[str, Tuple[int, int]], matrix: str = 'bt601', progress: bool = True) -> ClipScores:
    """Interpolate the protocol's targets of one clip and score them in every category of ``sizes``.

    Frames stream through: at most the previous input, the ground truth and the next input are held.
    """
    began = time.monotonic()
    targets = protocol_targets(count)
    scores = {category: {'psnr': [], 'ssim': []} for category in sizes}
    bar = tqdm(total=len(targets), desc=source.clip, unit='frame', disable=not progress, leave=False,
               file=sys.stderr)
    target_set = set(targets)
    needed = target_set | {target - 1 for target in targets} | {target + 1 for target in targets}
    previous: Optional[np.ndarray] = None
    truth: Optional[np.ndarray] = None
    try:
        for index, image in source.iter_frames(count, matrix, needed.__contains__):
            if image is None:
                continue
            if index == 0:
                _check_size(source, image, sizes)
            if index % 2 == 1:
                truth = image
                continue
            if previous is not None and truth is not None and index - 1 in target_set:
                for category, size in sizes.items():
                    one, two, gt = (prepare(frame, category, size) for frame in (previous, image, truth))
                    with torch.no_grad():
                        estimate = interpolator.interpolate(frames.to_tensor(one, device),
                                                            frames.to_tensor(two, device), [0.5])[0]
                    predicted = frames.to_uint8(estimate)
                    scores[category]['psnr'].append(psnr(predicted, gt))
                    scores[category]['ssim'].append(ssim(predicted, gt))
                bar.update(1)
            previous, truth = image, None
    finally:
        bar.close()
    return ClipScores(source.clip, scores, targets, time.monotonic() - began)


def _check_size(source: ClipSource, image: np.ndarray, sizes: Dict[str, Tuple[int, int]]) -> None:
    if 'cropped' in sizes:
        width, height = sizes['cropped']
        if image.shape[0] < height or image.shape[1] < width:
            raise UsageError(f'{source.clip}: frames of {image.shape[1]}x{image.shape[0]} are smaller than the '
                             f'crop {width}x{height} (--crop-to)')


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _finite(value: float) -> Optional[float]:
    """JSON has no inf/nan: identical frames (PSNR inf) are written as null."""
    return round(value, 6) if math.isfinite(value) else None


def summarize(results: Sequence[ClipScores]) -> Dict[str, object]:
    """The JSON document: per clip and per category (mean over all frames of all clips) PSNR and SSIM."""
    categories = list(results[0].scores) if results else []
    clips = {r.clip: {c: {m: _finite(_mean(r.scores[c][m])) for m in ('psnr', 'ssim')} for c in categories}
             for r in results}
    mean = {c: {m: _finite(_mean([v for r in results for v in r.scores[c][m]])) for m in ('psnr', 'ssim')}
            for c in categories}
    return {'clips': clips, 'mean': mean}


def markdown_table(summary: Dict[str, object]) -> str:
    """The summary as a Markdown table: one row per clip and a mean row."""
    categories = list(summary['mean'])
    header = '| Clip | ' + ' | '.join(f'{c} PSNR | {c} SSIM' for c in categories) + ' |'
    rule = '|---|' + '---:|---:|' * len(categories)

    def cells(entry: Dict[str, Dict[str, Optional[float]]]) -> str:
        out = []
        for c in categories:
            value_psnr, value_ssim = entry[c]['psnr'], entry[c]['ssim']
            out.append('inf' if value_psnr is None else f'{value_psnr:.2f}')
            out.append('-' if value_ssim is None else f'{value_ssim:.4f}')
        return ' | '.join(out)

    rows = [f'| {clip} | {cells(entry)} |' for clip, entry in summary['clips'].items()]
    rows.append(f'| **Mean** | {cells(summary["mean"])} |')
    return '\n'.join([header, rule] + rows)


def run_benchmark(sources: Sequence[ClipSource], interpolator: object, device: torch.device, count: int,
                  sizes: Dict[str, Tuple[int, int]], matrix: str = 'bt601',
                  progress: bool = True) -> Tuple[Dict[str, object], List[ClipScores]]:
    """Evaluate every clip; returns the :func:`summarize` document and the per-frame scores."""
    results = []
    for source in sources:
        result = evaluate_clip(source, interpolator, device, count, sizes, matrix, progress)
        results.append(result)
        parts = [f'{c} {_mean(result.scores[c]["psnr"]):.2f} dB / {_mean(result.scores[c]["ssim"]):.4f}'
                 for c in sizes]
        print(f'{source.clip}: {"; ".join(parts)} ({len(result.targets)} frames, {result.seconds:.0f} s)',
              file=sys.stderr)
    return summarize(results), results


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--data', required=True, metavar='DIR',
                        help='folder holding the clips (.y4m files, <Clip>/ frame folders or <Clip>-NNN.png)')
    parser.add_argument('--clips', nargs='+', metavar='CLIP',
                        help=f'evaluate only these clips (default: all eight: {", ".join(CLIPS)})')
    parser.add_argument('--frames', type=int, default=PROTOCOL_FRAMES, metavar='N',
                        help='use the first N frames: interpolate the odd 0-based frames 1, 3, ... below N-1 from '
                             'their neighbours (default 100, the protocol: 49 frames)')
    parser.add_argument('--categories', nargs='+', choices=CATEGORIES, default=list(CATEGORIES),
                        help='which categories to run (default: both)')
    parser.add_argument('--model', default=None, metavar='PATH|classical',
                        help='MainNet checkpoint or "classical"; default: the tools\' default (classical until '
                             'weights/softsplat.pt beats it)')
    parser.add_argument('--device', default='auto', help='auto (CUDA if available), cpu or cuda[:N]')
    parser.add_argument('--fp16', action='store_true', help='float16 autocast (trained model on CUDA only)')
    parser.add_argument('--matrix', choices=sorted(MATRICES), default='bt601',
                        help='YUV->RGB matrix for .y4m input (default bt601, as ffmpeg decodes these untagged clips '
                             'for the published protocol; bt709 for truer colours)')
    parser.add_argument('--resize-to', default='2048x1080', metavar='WxH',
                        help='size of the "resized" category (default 2048x1080, the protocol)')
    parser.add_argument('--crop-to', default='2048x1080', metavar='WxH',
                        help='size of the central "cropped" region (default 2048x1080, the protocol)')
    parser.add_argument('--json', metavar='PATH', help='also write the scores as JSON (atomically)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for parsed arguments; raises UsageError for bad input."""
    data = Path(args.data)
    if not data.is_dir():
        raise UsageError(f'--data {data}: no such folder (it should hold the Xiph clips)')
    if args.frames < 3:
        raise UsageError(f'--frames must be at least 3 (one target and its two neighbours), got {args.frames}')
    canonical = {clip.lower(): clip for clip in CLIPS}
    clips = []
    for name in args.clips or CLIPS:
        if name.lower() not in canonical:
            raise UsageError(f'--clips: unknown clip {name!r}; the Xiph benchmark has {", ".join(CLIPS)}')
        if canonical[name.lower()] not in clips:
            clips.append(canonical[name.lower()])
    sizes = {}
    for category in CATEGORIES:
        if category in args.categories:
            option = '--resize-to' if category == 'resized' else '--crop-to'
            sizes[category] = parse_size(args.resize_to if category == 'resized' else args.crop_to, option)

    sources, missing = [], []
    for clip in clips:
        source = find_clip(data, clip)
        if source is None:
            missing.append(clip)
        else:
            sources.append(source)
    if missing:
        raise UsageError(_missing_message(data, missing))
    if args.json:
        json_path = Path(args.json)
        if json_path.is_dir():
            raise UsageError(f'--json {json_path}: is a folder')

    device = select_device(args.device)
    interpolator = load_interpolator(args.model, device, args.fp16)
    targets = protocol_targets(args.frames)
    print(f'Xiph benchmark: {len(sources)} clip(s), first {args.frames} frames, {len(targets)} target frame(s) each '
          f'(0-based {targets[0]}..{targets[-1]} step 2), categories {", ".join(sizes)}, model '
          f'{args.model or "default"} on {device}', file=sys.stderr)
    if args.frames != PROTOCOL_FRAMES or any(size != PROTOCOL_SIZE for size in sizes.values()):
        print('note: --frames / --resize-to / --crop-to differ from the protocol; the scores are not comparable '
              'with the paper', file=sys.stderr)

    summary, _ = run_benchmark(sources, interpolator, device, args.frames, sizes, args.matrix,
                               progress=not args.no_progress)
    print(markdown_table(summary))
    if args.json:
        document = dict(summary)
        document['settings'] = {'model': args.model or 'default', 'interpolator': type(interpolator).__name__,
                                'device': str(device), 'fp16': args.fp16,
                                'frames': args.frames, 'targets': targets, 'matrix': args.matrix,
                                'sizes': {c: list(s) for c, s in sizes.items()},
                                'sources': {s.clip: s.describe() for s in sources}}
        with frames.atomic_path(Path(args.json)) as temporary:
            temporary.write_text(json.dumps(document, indent=2) + '\n', encoding='utf-8')
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    return frames.report_errors(lambda: run(args))


if __name__ == '__main__':
    sys.exit(main())
