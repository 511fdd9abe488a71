"""How a tool uses the machine: the device, the threads of the compute libraries, the allocator's big buffers.

Device: ``--device auto|cpu|cuda|cuda:N`` of every tool goes through :func:`select_device`.

Threads: PyTorch and OpenCV each start one thread per core of the machine, ignoring the CPU affinity a job was given;
under a background load (another training run, a second tool) that oversubscription made our runs 3-13x slower.
Tools call :func:`configure_threads` at start: ``--threads N`` if given, else ``OMP_NUM_THREADS`` if set, else the
number of cores this process may run on.

Memory: glibc serves buffers below a threshold that grows up to 32 MB from its heap and keeps them after they are
freed; OpenCV's DIS and PyTorch's temporaries of a 4K frame are exactly that size, and the retained, fragmented heap
raised the peak of a 3840 x 2160 pair to 1400-1550 MiB, varying from run to run. :func:`return_freed_memory` fixes
the threshold at 1 MB for frames above 2 megapixels, so such buffers are mapped and unmapped on their own: the same
pair peaked at 1357-1382 MiB (``python benchmark_model.py --model classical --sizes 3840x2160``). Mapping every
buffer anew costs page faults, though: at 854 x 480 the classical interpolator took 321 ms per pair with the 1 MB
threshold and 203 ms with 16 MB, for 367 against 414 MiB of peak. Smaller frames therefore get 16 MB, which keeps
their buffers in the heap, where they are reused from one pair to the next, and glibc is also told not to give the
top of the heap back after each free (it does above 128 KB by default): in the video path, whose threads free and
allocate frame buffers all the time, that trimming cost a second of system time on 47 frames at 854 x 480
(``run_a_pair.py --video`` took 6.76-6.78 s, 1.35-1.41 s of it in the kernel, against 6.12 s and
0.49-0.60 s without it; two runs each).
"""

from __future__ import annotations

import ctypes
import os
from typing import Optional

import cv2
import torch

from .errors import UsageError

__all__ = ['available_cores', 'configure_threads', 'return_freed_memory', 'select_device']


def select_device(name: str = 'auto') -> torch.device:
    """``'auto'`` (CUDA when available, else CPU), ``'cpu'`` or ``'cuda'`` / ``'cuda:N'`` -> a torch.device.

    Raises UsageError for an unknown name or a CUDA device that this machine does not have.
    """
    name = name.strip().lower()
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f'--device must be auto, cpu, cuda or cuda:N, got {name!r}') from None
    if device.type not in ('cpu', 'cuda'):
        raise UsageError(f'--device must be auto, cpu, cuda or cuda:N, got {name!r}')
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise UsageError('--device cuda: no CUDA device is available (PyTorch sees none); use --device cpu')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f'--device {name}: only {torch.cuda.device_count()} CUDA device(s) available')
    return device


def available_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def configure_threads(requested: Optional[int] = None) -> int:
    """Set PyTorch's and OpenCV's thread counts (``--threads``); return the count. UsageError below 1."""
    if requested is not None and requested < 1:
        raise UsageError(f'--threads must be at least 1, got {requested}')
    count = requested
    if count is None:
        text = os.environ.get('OMP_NUM_THREADS', '')
        try:
            count = int(text) or None
        except ValueError:  # empty, or an OpenMP list such as '4,2': not a count for us
            count = None
        if count is not None and count < 0:
            raise UsageError(f'OMP_NUM_THREADS={text}: not a thread count; unset it, set a positive number, or '
                             f'give --threads')
    count = count or available_cores()
    torch.set_num_threads(count)
    cv2.setNumThreads(count)
    return count


_M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers in glibc's malloc.h
_M_TRIM_THRESHOLD = -1


LARGE_FRAME_PIXELS = 2048 * 1080  # above it, buffers are big enough for a retained heap to raise the peak


def return_freed_memory(pixels: Optional[int] = None) -> bool:
    """Fix glibc's mmap threshold for frames of ``pixels`` pixels (None: as for the largest frames).

    Buffers at and above the threshold get mappings of their own, returned to the system when freed: 1 MB for frames
    above ``LARGE_FRAME_PIXELS`` (or unknown ones), 16 MB for smaller frames, whose heap is then also kept rather
    than trimmed after frees (see the module docstring). Returns whether it applied (False where the C library is
    not glibc). Call when a tool knows its frame size.
    """
    small = pixels is not None and pixels <= LARGE_FRAME_PIXELS
    try:
        libc = ctypes.CDLL('libc.so.6')
        applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, 16 << 20 if small else 1 << 20))
        return applied and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30 if small else 128 << 10))
    except (OSError, AttributeError):
        return False
