"""Train and test the softmax-splatting model on frame triplets in the Vimeo90k layout (paper Sec. 4.3).

The published release has no training code. This script is the pipeline: the paper's recipe (Adam at 1e-4,
256 x 256 random crops of Vimeo90k triplets, the Laplacian-pyramid loss, PWC-Net frozen for the first steps when it
starts from trained weights, then trained jointly) with what a reproducible run needs: augmentation (crops, flips,
temporal reversal), worker processes, validation with PSNR/SSIM against the classical interpolator's score,
TensorBoard scalars, an optional moving average of the weights, atomic checkpoints that resume exactly (also after
Ctrl-C or SIGTERM, which save the current step), and multi-GPU / multi-node training through PyTorch's own
DistributedDataParallel under ``torchrun`` (NCCL on GPUs, gloo on CPUs). A NaN or infinite loss (too high a --lr)
stops the run at that step without saving, with one line naming the step and the last good checkpoint and exit
status 2, the status of bad input (``training.Diverged``); no checkpoint is written with non-finite weights.

For CPUs, ``--flow dis --residual`` trains the model over OpenCV's DIS flow, cached per triplet, as a correction of
the classical interpolator (see ``main_net.py``); ``weights/README.md`` records how the shipped weights were made.

Data: ``--data DIR [DIR ...]`` holds ``sequences/<a>/<b>/im1.png, im2.png, im3.png`` (``.jpg`` also read) and the
lists ``tri_trainlist.txt`` / ``tri_testlist.txt``. Vimeo90k has that layout; ``make_triplets.py`` builds it from
any footage. Examples::

    python train_and_test.py --data vimeo_triplet --out runs/vimeo --steps 300000
    torchrun --nproc_per_node 4 train_and_test.py --data vimeo_triplet --out runs/vimeo4 --batch-size 4
    python train_and_test.py --data vimeo_triplet --resume --out runs/vimeo --steps 400000
    python train_and_test.py --data vimeo_triplet --test --model runs/vimeo/final.pt
    python train_and_test.py --init network-l1.pytorch --data triplets --out runs/l1-tuned --lr 1e-5  # the release
    python train_and_test.py --benchmark 20 --batch-size 8 --crop 256x256 --amp   # throughput, random data

Randomness is a function of (seed, epoch, sample), never of worker timing, so ``--resume`` continues a run
exactly: the same batches, the same augmentations, the restored optimizer, scheduler, EMA and RNG states.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from .. import errors, files, models
from ..errors import UsageError
from ..losses import LOSSES, REFERENCE_LOSSES
from ..resources import configure_threads, select_device
from ..signals import terminate_as_interrupt
from ..trainer import DEFAULT_LR, Runtime, evaluate, measure_throughput, run_training
from ..triplet_data import AUGMENTATIONS, TripletDataset
from . import options, tables


def run_test(args: argparse.Namespace) -> int:
    """``--test``: PSNR/SSIM of ``--model`` on the test list, as a table (and ``--json``)."""
    from ..interpolator import load_interpolator  # noqa: PLC0415 - the command-line model loader

    device = select_device(args.device)
    model = load_interpolator(args.model, device)
    dataset = TripletDataset([Path(d) for d in args.data], 'test', crop=None, augment=False, limit=args.val_size)
    result = evaluate(lambda one, two, _: model.interpolate(one, two, [0.5])[0], dataset, device, progress=True)
    print(tables.table(['model', 'triplets', 'PSNR', 'SSIM'], [False, True, True, True],
                       [(args.model or 'default', result['count'], f"{result['psnr']:.2f}", f"{result['ssim']:.4f}")]))
    if args.json:
        files.write_json(args.json, result)
    return 0


def run_benchmark(args: argparse.Namespace, runtime: Runtime) -> int:
    """Print the training throughput on random data (``trainer.measure_throughput``) as a table."""
    result = measure_throughput(args, runtime)
    if runtime.main:
        crop_w, crop_h = args.crop
        print(tables.table(['device', 'flow', 'batch', 'crop', 'AMP', 'it/s', 'triplets/s'],
                           [False, False, True, True, False, True, True],
                           [(result['device'], result['flow'], args.batch_size, f'{crop_w}x{crop_h}',
                             'on' if args.amp else 'off', f"{result['iterations_per_second']:.3f}",
                             f"{result['triplets_per_second']:.2f}")]))
    return 0


def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--data', nargs='+', metavar='DIR',
                        help='triplet roots in the Vimeo90k layout (sequences/, tri_trainlist.txt, tri_testlist.txt); '
                             'make_triplets.py builds one from any footage. Training reads the train lists of all; '
                             'validation and --test read the test list of the first')
    parser.add_argument('--val-data', metavar='DIR', help='validate on the test list of this root instead of the '
                                                          'first --data root')
    parser.add_argument('--out', default='runs/softsplat', help='folder for checkpoints and logs '
                                                                '(default: runs/softsplat)')
    parser.add_argument('--steps', type=int, default=100000, help='total optimizer steps (default: 100000)')
    parser.add_argument('--batch-size', type=int, default=8, help='triplets per step and process (default: 8)')
    parser.add_argument('--crop', type=options.size, default=(256, 256), metavar='WxH',
                        help='random crop of the training triplets (default: 256x256, the paper\'s)')
    parser.add_argument('--augment', choices=AUGMENTATIONS, default='basic',
                        help='basic: random flips and temporal reversal (default); strong: also transpositions '
                             '(square crops) and random RGB channel order, against learning a few scenes by heart')
    parser.add_argument('--lr', type=float, default=None,
                        help=f'Adam learning rate (default: {DEFAULT_LR:g}; with --resume, the run\'s own, and a '
                             f'value given applies from the resumed step on)')
    parser.add_argument('--schedule', choices=['cosine', 'constant'], default='cosine',
                        help='learning-rate schedule over --steps (default: cosine down to lr/100)')
    parser.add_argument('--warmup', type=int, default=0, metavar='STEPS',
                        help='raise the learning rate linearly from lr/STEPS to lr over the first STEPS steps '
                             '(default: 0, none)')
    parser.add_argument('--loss', choices=sorted(LOSSES), default='lap',
                        help='lap: the Laplacian-pyramid L1 loss the paper trains with (default); l1: plain L1; '
                             'logmse: per-sample log MSE (-PSNR); relmse: MSE relative to the classical '
                             'interpolator\'s on the whole frame (with --flow dis)')
    parser.add_argument('--architecture', choices=models.ARCHITECTURES, default=None,
                        help='the network: mainnet (the paper\'s model as this project builds it; the default) or '
                             'published (the authors\' 2022 release, whose network-l1/-lf.pytorch --init starts '
                             'from; a published --init implies it). Repeat it with --resume')
    parser.add_argument('--metric', choices=['unet', 'brightness'], default=None,
                        help='importance metric of a new MainNet (default: unet, the refined one)')
    parser.add_argument('--flow', choices=['pwc', 'dis'], default=None,
                        help='flow of a new MainNet: pwc (the paper, trainable; default) or dis (OpenCV DIS, cached '
                             'per triplet; for CPU training)')
    parser.add_argument('--residual', action='store_true',
                        help='a new MainNet corrects the classical interpolator\'s frame (starts equal to it) '
                             'instead of synthesizing the frame directly as in the paper')
    parser.add_argument('--freeze-flow-steps', type=int, default=None, metavar='K',
                        help='keep PWC-Net frozen for the first K steps, then train jointly (default: 10%% of '
                             '--steps when PWC-Net starts from trained weights; 0, with a notice, when it is random; '
                             'K > 0 with a random PWC-Net is refused)')
    parser.add_argument('--ema', type=float, default=0.0, metavar='DECAY',
                        help='keep an exponential moving average of the weights (e.g. 0.999); validation, best.pt '
                             'and final.pt then use it (default: 0, off)')
    parser.add_argument('--amp', action='store_true', help='mixed precision (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--workers', type=int, default=4, help='data-loading processes per training process '
                                                               '(default: 4)')
    parser.add_argument('--resume', nargs='?', const='last', default=None, metavar='PATH',
                        help='continue from a training checkpoint (default: OUT/last.pt); with the same --steps the '
                             'run continues exactly, a larger --steps re-plans the cosine schedule from there')
    parser.add_argument('--seed', type=int, default=0, help='seed of initialization, sampling and augmentation')
    parser.add_argument('--init', metavar='PATH', help='weights to start from: a MainNet checkpoint, a PWC-Net file '
                                                       '(network-default.pytorch layout), or the published '
                                                       'network-l1/-lf.pytorch (fine-tuning the released network)')
    parser.add_argument('--val-every', type=int, default=2000, help='validate every K steps on the test list '
                                                                    '(0: never; default: 2000); a missing or '
                                                                    'empty test list is refused')
    parser.add_argument('--val-size', type=int, default=200, help='triplets of the test list to validate/test on '
                                                                  '(default: 200 for validation)')
    parser.add_argument('--train-val-size', type=int, default=0, metavar='N',
                        help='also score N evenly spaced training triplets (whole frames) at each validation and '
                             'log them as train_psnr: a validation score that falls while this one rises is '
                             'overfitting (default: 0, off)')
    parser.add_argument('--save-every', type=int, default=1000, metavar='K',
                        help='write OUT/last.pt every K steps (0: never; default: 1000)')
    parser.add_argument('--save-minutes', type=float, default=15.0, metavar='M',
                        help='also write OUT/last.pt when M minutes have passed since the last write '
                             '(0: never; default: 15)')
    options.add_device(parser)
    options.add_threads(parser)
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (bitwise-reproducible runs on CPU; slower)')
    parser.add_argument('--test', action='store_true', help='evaluate --model on the test list instead of '
                                                            'training (all of it unless --val-size is given)')
    options.add_model(parser, 'with --test, the interpolator to evaluate')
    parser.add_argument('--json', help='with --test: also write the result to this JSON file')
    parser.add_argument('--benchmark', type=int, default=0, metavar='N',
                        help='time N training steps on random data and print iterations/s (no --data needed)')
    return parser


def validate_args(args: argparse.Namespace, argv: Sequence[str]) -> None:
    for name in ('steps', 'batch_size', 'workers', 'val_every', 'save_every', 'freeze_flow_steps',
                 'benchmark', 'warmup', 'train_val_size'):
        minimum = 1 if name in ('steps', 'batch_size') else 0
        value = getattr(args, name)
        if value is not None and value < minimum:
            raise UsageError(f'--{name.replace("_", "-")} must be at least {minimum}')
    if args.lr is not None and args.lr <= 0:
        raise UsageError('--lr must be positive')
    if not 0.0 <= args.ema < 1.0:
        raise UsageError('--ema must lie in [0, 1)')
    if args.save_minutes < 0:
        raise UsageError('--save-minutes must not be negative')
    # options of a new MainNet, remembered so that a published --init can refuse them too (trainer.build_model)
    args.mainnet_options = [option for given, option in ((args.flow, '--flow'), (args.metric, '--metric'),
                                                         (args.residual or None, '--residual')) if given is not None]
    if args.architecture == models.PUBLISHED and args.mainnet_options:
        raise UsageError(f'{args.mainnet_options[0]} sets up a MainNet; the published network has its own flow and '
                         f'metric')
    args.flow, args.metric = args.flow or 'pwc', args.metric or 'unet'
    if args.loss in REFERENCE_LOSSES and args.flow != 'dis':
        raise UsageError(f'--loss {args.loss} needs --flow dis (its reference, the classical interpolator\'s error, '
                         f'is computed from the cached DIS flows)')
    if args.benchmark == 0 and args.data is None:
        raise UsageError('--data DIR is required (the triplet root), except with --benchmark')
    for folder in (args.data or []) + ([args.val_data] if args.val_data else []):
        if not Path(folder).is_dir():
            raise UsageError(f'--data {folder}: no such folder')
    if args.test and '--val-size' not in argv:
        args.val_size = None  # test on the whole list unless asked otherwise


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Test, benchmark or train for parsed arguments; raises UsageError on bad input."""
    validate_args(args, argv)
    configure_threads(args.threads)
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
    if args.test:
        return run_test(args)
    runtime = Runtime(args.device)
    try:
        return run_benchmark(args, runtime) if args.benchmark else run_training(args, runtime)
    finally:
        runtime.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with terminate_as_interrupt():
        return errors.report_errors(lambda: run(build_parser().parse_args(argv), argv))


if __name__ == '__main__':
    sys.exit(main())
