"""The Xiph 4K benchmark of the softmax splatting paper: PSNR and SSIM on eight Netflix clips, resized and cropped.

Runs `softmax_splatting/cli/benchmark_xiph.py` from a checkout, without installing; see `python benchmark_xiph.py --help`.
"""

import sys

from softmax_splatting.cli.benchmark_xiph import main

if __name__ == '__main__':
    sys.exit(main())
