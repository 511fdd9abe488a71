"""resources.py: thread counts, and glibc handing freed buffers back (the 4K memory budget depends on it)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from softmax_splatting.errors import UsageError
from softmax_splatting.resources import available_cores, configure_threads, select_device

REPO = Path(__file__).resolve().parents[1]

PLACEMENT = r'''
import ctypes, sys
sys.path.insert(0, {repo!r})
libc = ctypes.CDLL('libc.so.6')
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(24 << 20))  # glibc maps 24 MB on its own; freeing it raises its threshold to 24 MB
if {apply}:
    from softmax_splatting.resources import return_freed_memory
    assert return_freed_memory({pixels})
pointer = libc.malloc({megabytes} << 20)
low, high = 0, 0
for line in open('/proc/self/maps'):
    if line.rstrip().endswith('[heap]'):
        low, high = (int(x, 16) for x in line.split()[0].split('-'))
print(int(low <= pointer < high))  # 1: the buffer lives in the heap, where freeing it does not return it
'''


def in_heap(apply: bool, megabytes: int = 4, pixels=None) -> bool:
    code = PLACEMENT.format(repo=str(REPO), apply=apply, pixels=pixels, megabytes=megabytes)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    return result.stdout.strip() == '1'


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc behaviour')
def test_mid_sized_buffers_are_mapped_on_their_own_with_the_fixed_threshold():
    """After one large buffer is freed, glibc serves 4 MB requests from its heap (and keeps them when freed);
    return_freed_memory() for large or unknown frames makes them separate mappings, returned to the system on free.
    For frames of at most 2 megapixels buffers below 16 MB stay in the heap, where they are reused."""
    assert in_heap(apply=False)
    assert not in_heap(apply=True)
    assert not in_heap(apply=True, pixels=3840 * 2160)
    assert in_heap(apply=True, pixels=854 * 480)
    assert not in_heap(apply=True, megabytes=20, pixels=854 * 480)


TRIM = r'''
import ctypes, sys
sys.path.insert(0, {repo!r})
from softmax_splatting.resources import return_freed_memory
assert return_freed_memory({pixels})
libc = ctypes.CDLL('libc.so.6')
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def heap():
    for line in open('/proc/self/maps'):
        if line.rstrip().endswith('[heap]'):
            low, high = (int(x, 16) for x in line.split()[0].split('-'))
            return high - low
    return 0

blocks = [libc.malloc(512 << 10) for _ in range(32)]  # 16 MB in half-megabyte pieces, all below the thresholds
grown = heap()
for block in reversed(blocks):
    libc.free(block)
print(grown - heap())  # what the freeing gave back to the system
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc behaviour')
def test_the_heap_of_small_frames_is_kept_after_frees_and_that_of_large_frames_returned():
    """Trimming the heap top after every free made the video path spend a second in the kernel on 47 small frames;
    for large frames the memory goes back, as the 4K budget needs."""
    def returned(pixels):
        code = TRIM.format(repo=str(REPO), pixels=pixels)
        return int(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                                  check=True).stdout)
    assert returned(854 * 480) == 0
    assert returned(3840 * 2160) > 8 << 20


def test_thread_count_from_argument_environment_or_affinity(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv('OMP_NUM_THREADS', '3')
        assert configure_threads() == 3
        monkeypatch.delenv('OMP_NUM_THREADS')
        assert configure_threads() == available_cores() == len(os.sched_getaffinity(0))
        with pytest.raises(UsageError, match='at least 1'):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_select_device():
    assert select_device('cpu') == torch.device('cpu')
    assert select_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    with pytest.raises(UsageError, match='auto, cpu, cuda or cuda:N'):
        select_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match='no CUDA device'):
            select_device('cuda')
