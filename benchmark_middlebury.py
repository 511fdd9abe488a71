"""Middlebury benchmark of a frame interpolator, following the protocol of the softmax splatting paper (Sec. 5).

Runs `softmax_splatting/cli/benchmark_middlebury.py` from a checkout, without installing; see `python benchmark_middlebury.py --help`.
"""

import sys

from softmax_splatting.cli.benchmark_middlebury import main

if __name__ == '__main__':
    sys.exit(main())
