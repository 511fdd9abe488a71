"""Train and test the softmax-splatting model on frame triplets in the Vimeo90k layout (paper Sec. 4.3).

Runs `softmax_splatting/cli/train.py` from a checkout, without installing; see `python train_and_test.py --help`.
"""

import sys

from softmax_splatting.cli import launch, program


def main(argv=None) -> int:
    """The tool, started by the launcher that stops cleanly on a signal (softmax_splatting/cli/__init__.py)."""
    return launch('train', argv)


if __name__ == '__main__':
    sys.exit(program('train'))
