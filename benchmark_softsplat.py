"""Benchmark softsplat.py: forward and forward+backward per backend, mode and size, each against a reference.

Runs `softmax_splatting/cli/benchmark_softsplat.py` from a checkout, without installing; see `python benchmark_softsplat.py --help`.
"""

import sys

from softmax_splatting.cli import launch, program


def main(argv=None) -> int:
    """The tool, started by the launcher that stops cleanly on a signal (softmax_splatting/cli/__init__.py)."""
    return launch('benchmark_softsplat', argv)


if __name__ == '__main__':
    sys.exit(program('benchmark_softsplat'))
