"""Build frame-interpolation training triplets in the Vimeo90k layout from videos and folders of frames.

Runs `softmax_splatting/cli/triplets.py` from a checkout, without installing; see `python make_triplets.py --help`.
"""

import sys

from softmax_splatting.cli import launch, program


def main(argv=None) -> int:
    """The tool, started by the launcher that stops cleanly on a signal (softmax_splatting/cli/__init__.py)."""
    return launch('triplets', argv)


if __name__ == '__main__':
    sys.exit(program('triplets'))
