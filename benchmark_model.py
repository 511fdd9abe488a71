"""Time and peak memory of the interpolation model per interpolated frame, per size, device and precision.

Runs `softmax_splatting/cli/benchmark_model.py` from a checkout, without installing; see `python benchmark_model.py --help`.
"""

import sys

from softmax_splatting.cli.benchmark_model import main

if __name__ == '__main__':
    sys.exit(main())
