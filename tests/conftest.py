"""Settings for the whole test session: one thread per thread pool, unless OMP_NUM_THREADS says otherwise; Ctrl-C
delivered.

The tests check behaviour, not speed, and CI machines are often shared. On 2 busy cores PyTorch's and OpenCV's pools
of two threads wait on each other: a torch-heavy part of the suite took 107 s with two threads and 46 s with one
while two other processes kept both cores busy (22 s and 31 s on a quiet machine). The variable is set before
torch is imported, so the tools the tests start as subprocesses inherit it too.

A suite started in the background by a script (``cmd &``, nohup) inherits SIGINT ignored, and so would every tool it
starts, which then cannot show what Ctrl-C does; the session takes Python's own handler, and a handled signal is
back at its default in a started program, which then installs the same handler.
"""

import os
import signal

_GIVEN = os.environ.get('OMP_NUM_THREADS', '').strip()
if not _GIVEN.isdigit() or int(_GIVEN) < 1:  # unset, empty, 0 or not a number
    os.environ['OMP_NUM_THREADS'] = '1'

import cv2  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))
cv2.setNumThreads(int(os.environ['OMP_NUM_THREADS']))

signal.signal(signal.SIGINT, signal.default_int_handler)
