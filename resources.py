"""How a tool uses the machine: the threads of the compute libraries and the allocator's handling of big buffers.

Threads: PyTorch and OpenCV each start one thread per core of the machine, ignoring the CPU affinity a job was given;
under a background load (another training run, a second tool) that oversubscription made our runs 3-13x slower.
Tools call :func:`configure_threads` at start: ``--threads N`` if given, else ``OMP_NUM_THREADS`` if set, else the
number of cores this process may run on.

Memory: glibc serves buffers below a threshold that grows up to 32 MB from its heap and keeps them after they are
freed; OpenCV's DIS and PyTorch's temporaries of a 4K frame are exactly that size, and the retained, fragmented heap
raised the peak of a 3840 x 2160 pair to 1400-1550 MiB, varying from run to run. :func:`return_freed_memory` fixes
the threshold at 1 MB, so such buffers are mapped and unmapped on their own: the same pair peaked at 1357-1367 MiB
(``python benchmark_model.py --model classical --sizes 3840x2160``).
"""

from __future__ import annotations

import ctypes
import os
from typing import Optional

import cv2
import torch

__all__ = ['available_cores', 'configure_threads', 'return_freed_memory']


def available_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def configure_threads(requested: Optional[int] = None) -> int:
    """Set PyTorch's and OpenCV's thread counts; return the count. Raises ValueError for a count below 1."""
    if requested is not None and requested < 1:
        raise ValueError(f'the thread count must be at least 1, got {requested}')
    count = requested
    if count is None:
        try:
            count = int(os.environ.get('OMP_NUM_THREADS', '')) or None
        except ValueError:
            count = None
    count = count or available_cores()
    torch.set_num_threads(count)
    cv2.setNumThreads(count)
    return count


_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


def return_freed_memory(threshold: int = 1 << 20) -> bool:
    """Make glibc map buffers of ``threshold`` bytes and more on their own, so that freeing them returns the memory.

    Returns whether it applied (False where the C library is not glibc). Call once at a tool's start.
    """
    try:
        return bool(ctypes.CDLL('libc.so.6').mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):
        return False
