"""Settings for the whole test session: one thread per thread pool, unless OMP_NUM_THREADS says otherwise.

The tests check behaviour, not speed, and CI machines are often shared. On 2 busy cores PyTorch's and OpenCV's pools
of two threads wait on each other: a torch-heavy part of the suite took 107 s with two threads and 46 s with one
while two other processes kept both cores busy (22 s and 31 s on a quiet machine). The variable is set before
torch is imported, so the tools the tests start as subprocesses inherit it too.
"""

import os

_GIVEN = os.environ.get('OMP_NUM_THREADS', '').strip()
if not _GIVEN.isdigit() or int(_GIVEN) < 1:  # unset, empty, 0 or not a number
    os.environ['OMP_NUM_THREADS'] = '1'

import cv2  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))
cv2.setNumThreads(int(os.environ['OMP_NUM_THREADS']))
