"""Interpolate between two frames, or convert a whole video's frame rate, from the command line.

Runs `softmax_splatting/cli/interpolate.py` from a checkout, without installing; see `python run_a_pair.py --help`.
"""

import sys

from softmax_splatting.cli.interpolate import main

if __name__ == '__main__':
    sys.exit(main())
