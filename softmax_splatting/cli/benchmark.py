"""One command for every benchmark (``softsplat-benchmark NAME``), each a subcommand with its own options.

``middlebury`` and ``xiph`` are the paper's evaluation protocols (Sec. 4.2); ``model``, ``softsplat``, ``flow`` and
``video`` measure speed and memory of the interpolator, the operator, PWC-Net and whole-video conversion.
"""

from __future__ import annotations

import importlib
import sys
from typing import List, Optional

SUBCOMMANDS = {
    'middlebury': ('benchmark_middlebury', 'PSNR/SSIM/IE on the Middlebury "other" frames'),
    'xiph': ('benchmark_xiph', 'PSNR/SSIM on the Xiph 4K clips, resized and cropped to 2K'),
    'model': ('benchmark_model', 'seconds and peak memory per interpolated frame'),
    'softsplat': ('benchmark_softsplat', 'the splatting operator against the published algorithm'),
    'flow': ('benchmark_flow', "PWC-Net's speed and its cost volume's backends"),
    'video': ('benchmark_video', 'whole-video conversion against ffmpeg minterpolate'),
}


def usage() -> str:
    lines = ['usage: softsplat-benchmark {' + ','.join(SUBCOMMANDS) + '} [options]', '', __doc__.split('\n\n')[0],
             '']
    lines += [f'  {name:<11} {summary}' for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ['', 'softsplat-benchmark NAME --help lists the options of NAME.']
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] in ('-h', '--help'):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f'error: unknown benchmark {name!r}; choose one of {", ".join(SUBCOMMANDS)}', file=sys.stderr)
        return 2
    module = importlib.import_module(f'{__package__}.{SUBCOMMANDS[name][0]}')
    sys.argv[0] = f'softsplat-benchmark {name}'  # argparse names the program after it in usage and errors
    return module.main(rest)


if __name__ == '__main__':
    sys.exit(main())
