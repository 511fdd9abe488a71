"""Open the local web page (drop a video or two images, convert, compare, download) from a checkout.

Runs `softmax_splatting/cli/app.py` without installing; see `python app.py --help`.
"""

import sys

from softmax_splatting.cli import launch, program


def main(argv=None) -> int:
    """The tool, started by the launcher that stops cleanly on a signal (softmax_splatting/cli/__init__.py)."""
    return launch('app', argv)


if __name__ == '__main__':
    sys.exit(program('app'))
