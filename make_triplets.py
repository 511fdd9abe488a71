"""Build frame-interpolation training triplets in the Vimeo90k layout from videos and folders of frames.

Runs `softmax_splatting/cli/triplets.py` from a checkout, without installing; see `python make_triplets.py --help`.
"""

import sys

from softmax_splatting.cli.triplets import main

if __name__ == '__main__':
    sys.exit(main())
