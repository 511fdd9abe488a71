"""The Xiph 4K benchmark of the softmax splatting paper: PSNR and SSIM on eight Netflix clips, resized and cropped.

Runs `softmax_splatting/cli/benchmark_xiph.py` from a checkout, without installing; see `python benchmark_xiph.py --help`.
"""

import sys

from softmax_splatting.cli import launch, program


def main(argv=None) -> int:
    """The tool, started by the launcher that stops cleanly on a signal (softmax_splatting/cli/__init__.py)."""
    return launch('benchmark_xiph', argv)


if __name__ == '__main__':
    sys.exit(program('benchmark_xiph'))
