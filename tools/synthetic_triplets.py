"""Write procedural frame triplets in the Vimeo90k layout, to add scenes to the CPU training of issue 12.

Chunks 4 and 5 (weights/README.md) showed the learned correction fitting the 11 DAVIS training sequences while the 2
validation sequences got worse, which suggested too few scenes. No other real footage was at hand (the registry
clips are held out), so this tool writes the layered scenes of ``softmax_splatting.synthetic_flow.render_triplet``:
a textured background and textured foreground shapes, each with its own motion growing linearly in time, so that the
frame rendered at t = 0.5 is the true middle of those at t = 0 and t = 1, occlusions and disocclusions included.
Added as a third of the training data (chunk 6), they made the validation score fall faster, not slower.

Textures are frames of DAVIS sequences other than the held-out ones (the test split and the validation sequences of
weights/README.md) and the colour photographs scikit-image ships. Output (``make_triplets.py``'s layout)::

    OUT/sequences/synthetic/NNNNN/im1.png, im2.png, im3.png,  OUT/tri_trainlist.txt, OUT/tri_testlist.txt (empty)

    python tools/synthetic_triplets.py --out data/train_synth --count 1200 --size 448x256
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softmax_splatting import frames  # noqa: E402
from softmax_splatting.cli import options  # noqa: E402
from softmax_splatting.errors import Interrupted, UsageError, first_line, report_errors  # noqa: E402
from softmax_splatting.files import atomic_path  # noqa: E402
from softmax_splatting.synthetic_flow import find_textures, render_triplet  # noqa: E402

HELD_OUT = ('bmx-trees', 'libby', 'car-shadow', 'goat')  # as tools/tune_classical.py


def default_textures(davis: Path = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'davis') -> List[Path]:
    """Frames of the DAVIS sequences under ``davis`` but the held-out ones, and scikit-image's colour photographs."""
    textures = []
    if davis.is_dir():
        textures += [p for p in find_textures(davis) if p.parent.name not in HELD_OUT]
    try:
        import skimage  # noqa: PLC0415 - optional
        folder = Path(skimage.__file__).parent / 'data'
        for name in ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png'):
            if (folder / name).is_file():
                textures.append(folder / name)
    except ImportError:
        pass
    return textures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, type=Path, help='output folder (Vimeo90k triplet layout)')
    parser.add_argument('--count', type=int, default=1200, help='number of triplets (default: 1200)')
    parser.add_argument('--size', type=options.size, default=(448, 256), metavar='WxH',
                        help='frame size (default: 448x256)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f'--count must be at least 1, got {args.count}')
    textures = default_textures()  # none: procedural textures
    width, height = args.size

    def run() -> int:
        names = []
        try:
            for number in range(args.count):
                name = f'synthetic/{number + 1:05d}'
                triplet = render_triplet(np.random.default_rng([args.seed, number]), height, width, textures)
                write_triplet(args.out / 'sequences' / name, triplet)
                names.append(name)
            with atomic_path(args.out / 'tri_trainlist.txt') as path:
                path.write_text(''.join(name + '\n' for name in names))
            with atomic_path(args.out / 'tri_testlist.txt') as path:
                path.write_text('')
        except KeyboardInterrupt:
            raise Interrupted(f'interrupted: {len(names)} whole triplets written, no list file') from None
        except OSError as error:
            raise UsageError(f'{args.out}: {first_line(error)}') from None
        print(f'{len(names)} triplets of {width}x{height} in {args.out}')
        return 0

    return report_errors(run)


def write_triplet(folder: Path, triplet: List[torch.Tensor]) -> None:
    """``im1.png``..``im3.png`` in ``folder``, which appears whole or not at all (written beside it, then renamed)."""
    partial = folder.with_name(folder.name + '.partial')
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for index, frame in enumerate(triplet, 1):
            frames.write_image(partial / f'im{index}.png', frame)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


if __name__ == '__main__':
    sys.exit(main())
