"""Middlebury benchmark of a frame interpolator, following the protocol of the softmax splatting paper (Sec. 5).

Runs `softmax_splatting/cli/benchmark_middlebury.py` from a checkout, without installing; see `python benchmark_middlebury.py --help`.
"""

import sys

from softmax_splatting.cli import launch, program


def main(argv=None) -> int:
    """The tool, started by the launcher that stops cleanly on a signal (softmax_splatting/cli/__init__.py)."""
    return launch('benchmark_middlebury', argv)


if __name__ == '__main__':
    sys.exit(program('benchmark_middlebury'))
