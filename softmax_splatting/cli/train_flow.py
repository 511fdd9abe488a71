"""Train (or fine-tune) PWC-Net, the flow of the paper's model: ``softsplat-train-flow --help``.

Follows PWC-Net's training recipe (Sun et al., CVPR 2018, Sec. 4): the multi-scale endpoint-error loss with level
weights 0.32, 0.08, 0.02, 0.01, 0.005 against the ground truth downscaled to every level and divided by 20
(``pwc/loss.py``), Adam, and weight decay standing in for the paper's gamma * |theta|^2 term. Data: FlyingChairs in
its release folder format (``--data chairs:DIR``) when a user has it, else the procedural generator of
``synthetic_flow.py`` (the default), which needs no download.

Everything that decides what the next step does is in the checkpoint (model, optimizer, step; samples are a pure
function of the seed and the draw number), so ``--resume`` continues the same run. Checkpoints are written
atomically; the final weights are saved in the layout of the published ``network-default.pytorch``, which
``PWCNet.from_file`` and ``pwc.estimate`` load.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from .. import errors
from ..chairs import FlyingChairs
from ..errors import UsageError
from ..files import atomic_path, load_checkpoint as read_checkpoint, not_a_file, remove_stale_temporaries
from ..pwc.loss import FLOW_SCALE, endpoint_error, multiscale_loss
from ..pwc.network import MULTIPLE, CheckpointError, PWCNet
from ..resources import configure_threads, select_device
from ..signals import StopSignals, terminate_as_interrupt
from ..synthetic_flow import SyntheticFlow
from ..training import Diverged, SaveSchedule, check_finite, loader_batches, quiet_worker, run_steps, stopped
from . import options

CHECKPOINT = 'checkpoint.pt'
FINAL_WEIGHTS = 'network-final.pytorch'
DEFAULT_LR = 1e-4


# ---------------------------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------------------------

def _crop(text: str) -> Tuple[int, int]:
    """``--crop WxH`` -> ``(height, width)``, the order of the datasets; both multiples of the network's 64."""
    width, height = options.size(text)
    if height % MULTIPLE or width % MULTIPLE:
        raise argparse.ArgumentTypeError(f'crop {width}x{height}: both sides must be multiples of {MULTIPLE} (the '
                                         f'pyramid halves the image six times)')
    return height, width


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f'must be positive, got {text}')
        return value
    return parse


def build_parser() -> options.Parser:
    parser = options.Parser(__doc__)
    parser.add_argument('--data', default='synthetic',
                        help="'synthetic' (procedural scenes rendered on the fly; default) or 'chairs:DIR' (a "
                             'FlyingChairs folder with *_img1.ppm, *_img2.ppm, *_flow.flo and '
                             'FlyingChairs_train_val.txt)')
    parser.add_argument('--textures', default='auto',
                        help="synthetic data only: a folder of photos to texture the scenes with, 'auto' "
                             "(../shared/data/davis when it exists; default) or 'none' (procedural textures)")
    parser.add_argument('--steps', type=_positive(int), default=100_000,
                        help='total optimizer steps of the run (default: 100000)')
    parser.add_argument('--batch-size', type=_positive(int), default=8, help='samples per step (default: 8)')
    parser.add_argument('--crop', type=_crop, default='448x320', metavar='WxH',
                        help='training size (multiples of 64): random crops of FlyingChairs, or the size of the '
                             'rendered scenes (default: 448x320)')
    parser.add_argument('--lr', type=_positive(float), default=None,
                        help=f'Adam learning rate (default: {DEFAULT_LR:g}; with --resume, the run\'s own)')
    parser.add_argument('--weight-decay', type=float, default=4e-4,
                        help="the paper's gamma in gamma * |theta|^2, applied as Adam weight decay 2 * gamma "
                             "(default: 4e-4)")
    parser.add_argument('--out', default='runs/pwc',
                        help='folder for checkpoint.pt and network-final.pytorch (default: runs/pwc)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                        help='continue a run: from this checkpoint, or (without a value) from OUT/checkpoint.pt; '
                             'keep --data, --seed and --batch-size to continue with the same data (a --lr given '
                             'applies from there on)')
    parser.add_argument('--init', default=None, metavar='WEIGHTS',
                        help='start from these weights (e.g. network-default.pytorch, to fine-tune) instead of a '
                             'random initialisation')
    parser.add_argument('--seed', type=int, default=0, help='seed of the initialisation and of the data (default: 0)')
    parser.add_argument('--workers', type=int, default=2,
                        help='data-loading worker processes (0: in-process; default: 2)')
    options.add_device(parser)
    options.add_threads(parser)
    parser.add_argument('--save-every', type=int, default=1000, metavar='K',
                        help='write OUT/checkpoint.pt every K steps (0: never; default: 1000)')
    parser.add_argument('--save-minutes', type=float, default=15.0, metavar='M',
                        help='also write OUT/checkpoint.pt when M minutes have passed since the last write '
                             '(0: never; default: 15)')
    return parser


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------

class DrawSampler(Sampler):
    """Endless ``(index, draw)`` keys from draw ``start`` on: draw k of a dataset of n samples takes the position
    k mod n of a permutation seeded by (seed, k // n), so the order is known for any step of any run."""

    def __init__(self, length: Optional[int], seed: int, start: int = 0):
        self.length, self.seed, self.start = length, seed, start

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        epoch, order = None, None
        for draw in itertools.count(self.start):
            if self.length is None:
                yield draw, draw
                continue
            if draw // self.length != epoch:
                epoch = draw // self.length
                order = torch.randperm(self.length, generator=torch.Generator().manual_seed(self.seed * 1_000_003
                                                                                            + epoch)).tolist()
            yield order[draw % self.length], draw


def build_dataset(args: argparse.Namespace) -> Tuple[Dataset, Optional[int]]:
    """The training set and its length for the sampler (None: endless synthetic draws)."""
    if args.data == 'synthetic':
        textures = args.textures
        if textures == 'none':
            textures = None
        elif textures != 'auto' and not Path(textures).is_dir():
            raise UsageError(f'--textures {textures}: no such folder')
        try:
            return SyntheticFlow(size=args.crop, seed=args.seed, textures=textures), None
        except (ValueError, FileNotFoundError) as error:
            raise UsageError(f'--textures: {error}') from error
    if args.data.startswith('chairs:'):
        dataset = FlyingChairs(args.data[len('chairs:'):], split='train', crop=args.crop, seed=args.seed)
        dataset[0]  # fail now, in this process, if the crop does not fit or the files are unreadable
        return dataset, len(dataset)
    raise UsageError(f"--data must be 'synthetic' or 'chairs:DIR', got {args.data!r}")


# ---------------------------------------------------------------------------------------------------------------
# Steps and checkpoints
# ---------------------------------------------------------------------------------------------------------------

def flow_at_input_size(flows: List[torch.Tensor], size: Tuple[int, int]) -> torch.Tensor:
    """The final (level-2) estimate of ``return_levels`` as ``[N, 2, H, W]`` flow in pixels."""
    return F.interpolate(flows[-1] * FLOW_SCALE, size=size, mode='bilinear', align_corners=False)


def train_step(net: PWCNet, optimizer: torch.optim.Optimizer,
               batch: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """One Adam step on a batch of RGB ``one``/``two`` ``[N, 3, H, W]`` and ``flow`` ``[N, 2, H, W]``.

    Returns the loss and the endpoint error of the final estimate at input resolution (before the step), as
    tensors detached from the graph (reading them as numbers is left to the caller, which syncs a GPU)."""
    one, two, gt = batch['one'], batch['two'], batch['flow']
    flows = net(one.flip(1), two.flip(1), return_levels=True)  # the network takes BGR
    loss = multiscale_loss(flows, gt)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        epe = endpoint_error(flow_at_input_size(flows, gt.shape[2:]), gt)
    return loss.detach(), epe


def save_checkpoint(path: Path, net: PWCNet, optimizer: torch.optim.Optimizer, step: int,
                    args: argparse.Namespace) -> None:
    check_finite(step, net.state_dict())
    state = {'model': net.state_dict(), 'optimizer': optimizer.state_dict(), 'step': step,
             'rng': {'torch': torch.get_rng_state()},
             'args': {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}}
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: Path, net: PWCNet, optimizer: torch.optim.Optimizer, device: torch.device) -> int:
    problem = not_a_file(path, 'checkpoint')
    if problem is not None:
        raise UsageError(f'--resume: {path}: {problem}')
    try:
        state = read_checkpoint(path, map_location=device)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(f'--resume: {error}') from None
    if not isinstance(state, dict) or not {'model', 'optimizer', 'step'} <= set(state):
        raise UsageError(f'--resume: {path}: not a checkpoint of softsplat-train-flow (needs model, optimizer and '
                         f'step)')
    net.load_checkpoint_state(state['model'], source=str(path))
    optimizer.load_state_dict(state['optimizer'])
    if 'rng' in state:
        torch.set_rng_state(state['rng']['torch'].cpu())
    return int(state['step'])


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------

def train(args: argparse.Namespace) -> Path:
    """Run the training that ``args`` describes; returns the path of the final weights."""
    device = select_device(args.device)
    configure_threads(args.threads)
    for name in ('workers', 'save_every', 'save_minutes'):
        if getattr(args, name) < 0:
            raise UsageError(f'--{name.replace("_", "-")} must be 0 or more, got {getattr(args, name)}')
    out = Path(args.out)
    torch.manual_seed(args.seed)
    net = PWCNet.from_file(args.init) if args.init else PWCNet()
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr or DEFAULT_LR, weight_decay=2 * args.weight_decay)
    step, kept = 0, None  # kept: the last good checkpoint on disk, named when training diverges
    if args.resume is not None:
        resumed = out / CHECKPOINT if args.resume == 'auto' else Path(args.resume)
        step = load_checkpoint(resumed, net, optimizer, device)
        kept = f'{resumed} (step {step})'
        own = optimizer.param_groups[0]['lr']
        if args.lr is not None and args.lr != own:  # the usual cure for a run that diverged
            for group in optimizer.param_groups:
                group['lr'] = args.lr
            print(f'note: --lr {args.lr:g} replaces the resumed run\'s {own:g} from step {step} on', file=sys.stderr)
    args.lr = optimizer.param_groups[0]['lr']  # the rate in use, as the checkpoint records it
    dataset, length = build_dataset(args)
    out.mkdir(parents=True, exist_ok=True)
    # a save killed outright (SIGKILL, out of memory) leaves its temporary; this run owns the folder now
    for stale in remove_stale_temporaries(out / CHECKPOINT):
        print(f'note: removed {stale}, the temporary file of a save that was killed', file=sys.stderr)
    if step >= args.steps:
        print(f'checkpoint is at step {step}, --steps is {args.steps}: nothing to do', file=sys.stderr)
        net.save(out / FINAL_WEIGHTS)
        return out / FINAL_WEIGHTS
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers, worker_init_fn=quiet_worker,
                        sampler=DrawSampler(length, args.seed, start=step * args.batch_size),
                        pin_memory=device.type == 'cuda')
    schedule = SaveSchedule(args.save_every, args.save_minutes)

    def step_once(batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        loss, epe = train_step(net, optimizer, {k: v.to(device, non_blocking=True) for k, v in batch.items()})
        return {'loss': float(loss), 'epe': float(epe)}

    def after_step(reached: int, _: Dict[str, float]) -> None:
        nonlocal kept
        if schedule.due(reached):
            save_checkpoint(out / CHECKPOINT, net, optimizer, reached, args)
            kept = f'{out / CHECKPOINT} (step {reached})'
            schedule.saved()

    try:
        with StopSignals() as stop:  # a signal during the last saves is recorded too: they complete
            step = run_steps(step, args.steps, loader_batches(lambda: loader), step_once, after_step, stop,
                             description='PWC-Net')
            save_checkpoint(out / CHECKPOINT, net, optimizer, step, args)
            if not stop():
                net.save(out / FINAL_WEIGHTS)
    except Diverged as error:
        error.kept = kept
        error.advice = 'continue from it with --resume and a lower --lr' if kept else 'try a lower --lr'
        raise
    if stop.received is not None:
        raise stopped(stop.received, step, out / CHECKPOINT)
    return out / FINAL_WEIGHTS


def main(argv: Optional[List[str]] = None) -> int:
    with terminate_as_interrupt():
        return errors.report_errors(lambda: run(build_parser().parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        final = train(args)
    except (CheckpointError, FileNotFoundError) as error:  # --init or --resume named an unusable file
        raise UsageError(str(error).replace('\n', ' ')) from None
    print(f'saved {final} ({time.perf_counter() - started:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
