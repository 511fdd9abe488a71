"""Benchmark softsplat.py: forward and forward+backward per backend, mode and size, each against a reference.

Runs `softmax_splatting/cli/benchmark_softsplat.py` from a checkout, without installing; see `python benchmark_softsplat.py --help`.
"""

import sys

from softmax_splatting.cli.benchmark_softsplat import main

if __name__ == '__main__':
    sys.exit(main())
