"""Seconds per output frame of ``run_a_pair.py --video`` against ffmpeg's minterpolate, on the same clips, one run.

Runs `softmax_splatting/cli/benchmark_video.py` from a checkout, without installing; see `python benchmark_video.py --help`.
"""

import sys

from softmax_splatting.cli import launch, program


def main(argv=None) -> int:
    """The tool, started by the launcher that stops cleanly on a signal (softmax_splatting/cli/__init__.py)."""
    return launch('benchmark_video', argv)


if __name__ == '__main__':
    sys.exit(program('benchmark_video'))
