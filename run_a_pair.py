"""Interpolate between two frames, or convert a whole video's frame rate, from the command line.

Runs `softmax_splatting/cli/interpolate.py` from a checkout, without installing; see `python run_a_pair.py --help`.
"""

import sys

from softmax_splatting.cli import launch, program


def main(argv=None) -> int:
    """The tool, started by the launcher that stops cleanly on a signal (softmax_splatting/cli/__init__.py)."""
    return launch('interpolate', argv)


if __name__ == '__main__':
    sys.exit(program('interpolate'))
