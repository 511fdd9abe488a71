"""Seconds per output frame of ``run_a_pair.py --video`` against ffmpeg's minterpolate, on the same clips, one run.

Runs `softmax_splatting/cli/benchmark_video.py` from a checkout, without installing; see `python benchmark_video.py --help`.
"""

import sys

from softmax_splatting.cli.benchmark_video import main

if __name__ == '__main__':
    sys.exit(main())
