"""Time and peak memory of the interpolation model per interpolated frame, per size, device and precision.

Runs `softmax_splatting/cli/benchmark_model.py` from a checkout, without installing; see `python benchmark_model.py --help`.
"""

import sys

from softmax_splatting.cli import launch, program


def main(argv=None) -> int:
    """The tool, started by the launcher that stops cleanly on a signal (softmax_splatting/cli/__init__.py)."""
    return launch('benchmark_model', argv)


if __name__ == '__main__':
    sys.exit(program('benchmark_model'))
