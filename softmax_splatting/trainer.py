"""The training job of softsplat-train: model, data, steps, validation, checkpoints (paper Sec. 4.3).

The published release has no training code; this is its pipeline, for both networks the project runs: our
``MainNet`` (the paper's recipe: Adam at 1e-4, 256 x 256 random crops of Vimeo90k triplets, the Laplacian-pyramid
loss, PWC-Net frozen for the first steps when it starts from trained weights, then trained jointly) and the
released network of ``published/`` (fine-tuned from ``network-l1/-lf.pytorch`` with ``--init``, or trained anew
with ``--architecture published``; its best.pt and final.pt are plain state_dicts the release's script reads).

What a reproducible run needs comes with it: augmentation (crops, flips, temporal reversal), worker processes,
validation with PSNR/SSIM against the classical interpolator's score, TensorBoard scalars, an optional moving
average of the weights, atomic checkpoints that resume exactly (also after Ctrl-C or SIGTERM, which save the
current step), and multi-GPU / multi-node training through DistributedDataParallel under ``torchrun``. A NaN or
infinite loss stops the run at that step without saving (``training.Diverged``, exit status 2); no checkpoint is
written with non-finite weights. The shared step loop and save schedule are ``training.py``.

The functions that take settings (``build_model``, ``Trainer``, ``run_training``, ...) take those of softsplat-train
as the ``argparse.Namespace`` that ``cli/train.py`` parses (its ``--help`` documents each); this module has no
command line of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, DistributedSampler, Sampler, Subset

from . import files, frames, metrics, models
from .errors import UsageError
from .files import atomic_path, load_checkpoint
from .losses import LOSSES, REFERENCE_LOSSES
from .main_net import TRAINING_STATE_FORMAT, MainNet
from .resources import select_device
from .signals import StopSignals
from .training import Diverged, SaveSchedule, check_finite, loader_batches, quiet_worker, run_steps, stopped
from .triplet_data import LIST_FILES, TripletDataset, triplet_paths

__all__ = ['CHECKPOINT_FORMAT', 'DEFAULT_LR', 'Runtime', 'Trainer', 'build_model', 'check_out_folder', 'evaluate',
           'freeze_steps', 'load_training_state', 'measure_throughput', 'rng_state', 'run_training',
           'save_training_state', 'set_rng_state', 'trains_flow', 'validation_set']

CHECKPOINT_FORMAT = TRAINING_STATE_FORMAT  # last.pt; MainNet.from_file also takes the weights from it
DEFAULT_LR = 1e-4


class EpochTagged(Sampler):
    """Wrap a (Distributed)Sampler: yield ``(index, epoch)`` and optionally skip the first ``skip`` items."""

    def __init__(self, base: DistributedSampler, epoch: int, skip: int = 0):
        self.base, self.epoch, self.skip = base, epoch, skip
        base.set_epoch(epoch)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        return ((index, self.epoch) for index in itertools.islice(iter(self.base), self.skip, None))

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


# ---------------------------------------------------------------------------------------------------------------
# Distributed setup
# ---------------------------------------------------------------------------------------------------------------

class Runtime:
    """Rank, world size and device of this process (one process, or one of torchrun's)."""

    def __init__(self, device_choice: str):
        self.world = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        chosen = select_device(device_choice)
        use_cuda = chosen.type == 'cuda'
        # under torchrun each process takes the GPU of its local rank; alone, the one asked for
        if use_cuda and self.world > 1:
            chosen = torch.device('cuda', local_rank)
        elif use_cuda and chosen.index is None:  # set_device needs an index; plain 'cuda' is the current GPU
            chosen = torch.device('cuda', torch.cuda.current_device())
        self.device = chosen
        if use_cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1:
            dist.init_process_group('nccl' if use_cuda else 'gloo')

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.item() / self.world

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------------------
# Model, checkpoints
# ---------------------------------------------------------------------------------------------------------------

def build_model(args: argparse.Namespace) -> Tuple[nn.Module, bool]:
    """The model to train (MainNet, or with ``--architecture published`` or a published ``--init`` file the
    released network) and whether its flow starts from trained weights (always True for DIS)."""
    if args.init is None:
        if args.architecture == models.PUBLISHED:
            return models.build(models.PUBLISHED), False
        model = MainNet(metric=args.metric, flow=args.flow, residual=args.residual)
        return model, args.flow == 'dis' or model.pretrained_flow
    init = Path(args.init)
    problem = files.not_a_file(init)
    if problem is not None:
        raise UsageError(f'--init {init}: {problem}')
    try:
        payload = load_checkpoint(init)
    except (FileNotFoundError, ValueError) as error:  # NonFiniteWeights included: it read well, nothing else applies
        raise UsageError(f'--init {error}') from None
    if models.architecture_of(payload) == models.PUBLISHED:
        if args.architecture == models.MAINNET:
            raise UsageError(f'--init {init} holds the published SoftSplat network; --architecture mainnet cannot '
                             f'start from it (leave --architecture out, or give --architecture published)')
        if getattr(args, 'mainnet_options', None):
            raise UsageError(f'{args.mainnet_options[0]} sets up a MainNet; --init {init} is the published network, '
                             f'which has its own flow and metric')
        try:
            return models.read_model(init), True
        except ValueError as error:
            raise UsageError(f'--init {error}') from None
    if args.architecture == models.PUBLISHED:
        raise UsageError(f'--init {init}: not a file of the published SoftSplat network, which --architecture '
                         f'published trains (network-l1/-lf.pytorch, or a final.pt of such a run)')
    try:
        return MainNet.from_payload(payload, init), True
    except ValueError as mainnet_error:
        from . import pwc  # noqa: PLC0415 - only needed for this fallback
        if args.flow != 'pwc':
            raise UsageError(f'--init {init}: not a MainNet checkpoint ({mainnet_error})') from None
        model = MainNet(metric=args.metric, pwc_weights=None, residual=args.residual)
        try:
            model.flow_net.load_state_dict(pwc.PWCNet.from_file(init).state_dict())
        except (ValueError, RuntimeError) as pwc_error:
            raise UsageError(f'--init {init}: neither a MainNet checkpoint ({mainnet_error}) nor a PWC-Net file '
                             f'({pwc_error})') from None
        return model, True


RANDOM_PWC_NOTICE = ('note: PWC-Net starts from random weights (no pwc/weights/network-default.pytorch, no --init); '
                     'it trains jointly from the first step')
RANDOM_PUBLISHED_NOTICE = ('note: the published network starts from random weights (no --init with '
                           'network-l1/-lf.pytorch); its flow trains jointly from the first step')


def trains_flow(model: nn.Module) -> bool:
    """Whether the model's flow is a network that trains (PWC-Net, the published flow), not OpenCV's DIS."""
    return not (isinstance(model, MainNet) and model.config.flow == 'dis')


def freeze_steps(args: argparse.Namespace, model: nn.Module, pretrained_flow: bool) -> int:
    """How many first steps keep the flow network frozen: --freeze-flow-steps, or by default 10% of --steps when it
    starts from trained weights and 0 when it is random (freezing random flow would teach the synthesis to ignore
    it; training then says so in one line, :data:`RANDOM_PWC_NOTICE`)."""
    if not trains_flow(model):
        if args.freeze_flow_steps:
            raise UsageError('--freeze-flow-steps applies to PWC-Net; this model uses DIS flow, which does not train')
        return 0
    if not pretrained_flow:
        if args.freeze_flow_steps:
            raise UsageError(f'--freeze-flow-steps {args.freeze_flow_steps}: the flow network has random weights '
                             f'(no pwc/weights/network-default.pytorch and no --init), and frozen random flow is '
                             f'useless; give trained weights or train it jointly with --freeze-flow-steps 0')
        return 0
    if args.freeze_flow_steps is None:
        return args.steps // 10
    return args.freeze_flow_steps


def rng_state() -> Dict[str, object]:
    """Every global generator's state in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {'torch': torch.get_rng_state(), 'python': random.getstate(),
             'numpy': {'kind': kind, 'keys': torch.from_numpy(keys.astype(np.int64)), 'position': int(position),
                       'has_gauss': int(has_gauss), 'gauss': float(gauss)}}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, object]) -> None:
    torch.set_rng_state(state['torch'])
    n = state['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32), n['position'], n['has_gauss'],
                         n['gauss']))
    random.setstate(state['python'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def save_training_state(path: Path, trainer: 'Trainer') -> None:
    payload = {'format': CHECKPOINT_FORMAT, 'step': trainer.step, 'best_psnr': trainer.best,
               'model': trainer.model.state_dict(), 'config': models.model_config(trainer.model),
               'optimizer': trainer.optimizer.state_dict(), 'scheduler': trainer.scheduler.state_dict(),
               'scaler': trainer.scaler.state_dict(), 'rng': rng_state(), 'elapsed': trainer.elapsed(),
               'args': {k: v for k, v in vars(trainer.args).items()
                        if isinstance(v, (int, float, str, bool, type(None)))}}
    if trainer.ema is not None:
        payload['ema'] = trainer.ema.state_dict()
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def load_training_state(path: Path) -> Dict[str, object]:
    try:
        payload = load_checkpoint(path)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(f'--resume: {error}') from None
    if models.is_model_file(payload):
        raise UsageError(f'--resume: {path} is a model checkpoint (final.pt, best.pt), without the optimizer and '
                         f'schedule a run continues from: resume from the run\'s last.pt, or start a new run from '
                         f'these weights with --init')
    if not isinstance(payload, dict) or payload.get('format') != CHECKPOINT_FORMAT:
        raise UsageError(f'--resume: {path} is not a training checkpoint of train_and_test.py (its last.pt)')
    return payload


# ---------------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(interpolate: Callable[..., torch.Tensor], dataset: TripletDataset, device: torch.device,
             progress: bool = False, stop: Callable[[], bool] = lambda: False) -> Dict[str, float]:
    """Mean PSNR and SSIM of ``interpolate(one, two, flows) -> middle`` over ``dataset`` (8-bit RGB, as published).

    ``flows`` is the pair's cached (F0->1, F1->0) when the dataset carries flows, else None. Stops early (with the
    triplets done so far) when ``stop()`` turns true.
    """
    psnrs, ssims = [], []
    items = range(len(dataset))
    if progress:
        from tqdm import tqdm  # noqa: PLC0415
        items = tqdm(items, desc='test', unit='triplet')
    for index in items:
        if stop():
            break
        one, middle, two, *extra = (t.unsqueeze(0).to(device) for t in dataset[index])
        prediction = interpolate(one, two, tuple(extra[:2]) if extra else None)
        truth, guess = frames.to_uint8(middle), frames.to_uint8(prediction)
        psnrs.append(metrics.psnr(guess, truth))
        ssims.append(metrics.ssim(guess, truth))
    return {'psnr': float(np.mean(psnrs)) if psnrs else float('nan'),
            'ssim': float(np.mean(ssims)) if ssims else float('nan'), 'count': len(psnrs)}


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------

class Trainer:
    """One training run: model (DDP-wrapped when distributed), optimizer, schedule, AMP, EMA, checkpoints, logs."""

    def __init__(self, args: argparse.Namespace, runtime: Runtime):
        self.args, self.runtime = args, runtime
        self.out = Path(args.out)
        torch.manual_seed(args.seed)  # identical initialization on every rank
        model, pretrained_flow = build_model(args)
        self.model = model.to(runtime.device).train()
        self.freeze_steps = freeze_steps(args, self.model, pretrained_flow)
        self.random_flow = trains_flow(self.model) and not pretrained_flow
        self.lr_given = args.lr is not None  # --resume keeps the run's rate unless --lr is given
        args.lr = args.lr if self.lr_given else DEFAULT_LR
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._schedule)
        self.amp = args.amp
        self.amp_dtype = torch.float16 if runtime.device.type == 'cuda' else torch.bfloat16
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.amp and runtime.device.type == 'cuda')
        self.ema = None
        if args.ema:
            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(args.ema), use_buffers=True)
        self.loss_fn = LOSSES[args.loss]
        self.step, self.best = 0, float('-inf')
        self.flow_frozen = None
        self.wrapped = self.model
        self.writer = None
        self.stop = StopSignals()
        self.probe: Optional[Subset] = None  # training triplets scored beside validation (--train-val-size)
        self.kept: Optional[Tuple[Path, int]] = None  # the last good training checkpoint on disk and its step
        self._elapsed_before, self._began = 0.0, time.monotonic()

    def elapsed(self) -> float:
        """Seconds spent training in this run, resumed chunks included."""
        return self._elapsed_before + time.monotonic() - self._began

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are validated and published: the EMA when kept, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def _schedule(self, step: int) -> float:
        # A linear warm-up lets a zero-initialised correction take a larger rate without the early divergence
        # seen at a constant 1e-3.
        warmup = min(1.0, (step + 1) / self.args.warmup) if self.args.warmup > 0 else 1.0
        if self.args.schedule == 'constant':
            return warmup
        progress = min(step / max(1, self.args.steps), 1.0)  # cosine from lr to lr / 100
        return warmup * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))

    def set_flow_frozen(self, frozen: bool) -> None:
        """Freeze or unfreeze PWC-Net; DDP registers trainable parameters when built, so it is rebuilt."""
        if frozen == self.flow_frozen:
            return
        self.model.set_flow_trainable(not frozen)
        self.flow_frozen = frozen
        if self.runtime.world > 1:
            ids = [self.runtime.device.index] if self.runtime.device.type == 'cuda' else None
            self.wrapped = DistributedDataParallel(self.model, device_ids=ids)

    def resume(self, path: Path) -> None:
        payload = load_training_state(path)
        mine, theirs = models.model_config(self.model), payload.get('config')
        if mine != theirs:
            if (theirs or {}).get('architecture') != mine.get('architecture'):
                named = (theirs or {}).get('architecture', models.MAINNET)
                raise UsageError(f'--resume: {path} trained the {named} architecture; repeat its --architecture '
                                 f'{named}')
            differ = sorted(k for k in set(mine) | set(theirs or {}) if mine.get(k) != (theirs or {}).get(k))
            raise UsageError(f'--resume: {path} was trained with another model configuration ({", ".join(differ)}'
                             f'); repeat its --flow, --residual and --metric')
        if int(payload['step']) > self.args.steps:  # nothing to train, and final.pt would be rewritten as if done
            raise UsageError(f'--resume: {path} is at step {int(payload["step"])}, past --steps {self.args.steps}; '
                             f'give a --steps above {int(payload["step"])} to train on')
        self.model.load_state_dict(payload['model'])
        self.optimizer.load_state_dict(payload['optimizer'])
        self.scheduler.load_state_dict(payload['scheduler'])
        self._resume_rate(int(payload['step']))
        self.scaler.load_state_dict(payload['scaler'])
        if self.ema is not None:
            if 'ema' in payload:
                self.ema.load_state_dict(payload['ema'])
            else:  # EMA switched on for a run that had none: it starts from the current weights
                self.ema.update_parameters(self.model)
        set_rng_state(payload['rng'])
        self.step, self.best = int(payload['step']), float(payload['best_psnr'])
        self.kept = (path, self.step)
        self._elapsed_before, self._began = float(payload.get('elapsed', 0.0)), time.monotonic()
        self._truncate_log()

    def _resume_rate(self, step: int) -> None:
        """The checkpoint's base rate goes on, unless --lr gives another (the usual cure for a run that diverged):
        then the schedule continues from the resumed step at the new rate."""
        resumed = self.scheduler.base_lrs[0]
        if not self.lr_given:
            self.args.lr = resumed
            return
        if self.args.lr == resumed:
            return
        self.scheduler.base_lrs = [self.args.lr] * len(self.optimizer.param_groups)
        for group in self.optimizer.param_groups:
            group['initial_lr'] = self.args.lr
            group['lr'] = self.args.lr * self._schedule(self.scheduler.last_epoch)
        if self.runtime.main:
            print(f'note: --lr {self.args.lr:g} replaces the resumed run\'s {resumed:g} from step {step} on',
                  file=sys.stderr)

    def _truncate_log(self) -> None:
        """Drop log records after the resumed step (written after the checkpoint by the run that stopped), so that
        the log holds each step once."""
        log = self.out / 'log.jsonl'
        if not self.runtime.main or not log.is_file():
            return
        lines = log.read_text().splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get('step', 0) <= self.step]
        if len(kept) != len(lines):
            with atomic_path(log) as temporary:
                temporary.write_text(''.join(line + '\n' for line in kept))

    def train_step(self, batch) -> float:
        one, middle, two, *extra = (t.to(self.runtime.device, non_blocking=True) for t in batch)
        self.wrapped.train()
        with torch.autocast(self.runtime.device.type, dtype=self.amp_dtype, enabled=self.amp):
            prediction = self.wrapped(one, two, 0.5, tuple(extra[:2]) if extra else None)
            if self.args.loss in REFERENCE_LOSSES:
                loss = self.loss_fn(prediction.float(), middle, extra[2])
            else:
                loss = self.loss_fn(prediction.float(), middle)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss.item()

    def loader(self, dataset: TripletDataset, epoch: int, skip: int) -> DataLoader:
        base = DistributedSampler(dataset, num_replicas=self.runtime.world, rank=self.runtime.rank, shuffle=True,
                                  seed=self.args.seed, drop_last=True)
        return DataLoader(dataset, batch_size=self.args.batch_size, sampler=EpochTagged(base, epoch, skip),
                          num_workers=self.args.workers, drop_last=True, worker_init_fn=quiet_worker,
                          pin_memory=self.runtime.device.type == 'cuda',
                          persistent_workers=False)

    def batches(self, dataset: TripletDataset, epoch: int, skip: int) -> Iterator:
        """The epoch's batches, from worker processes that a stop signal cannot kill and that end with the
        iteration (``training.loader_batches``)."""
        return loader_batches(lambda: self.loader(dataset, epoch, skip))

    def validate(self, dataset: TripletDataset) -> Dict[str, float]:
        model = self.evaluated
        model.eval()
        with torch.autocast(self.runtime.device.type, dtype=self.amp_dtype, enabled=self.amp):
            result = evaluate(lambda one, two, flows: model(one, two, 0.5, flows).float(), dataset,
                              self.runtime.device, stop=self.stop)
        model.train()
        return result

    def log(self, record: Dict[str, float]) -> None:
        if not self.runtime.main:
            return
        record = dict(record, time=round(self.elapsed(), 1))
        with open(self.out / 'log.jsonl', 'a') as handle:
            handle.write(json.dumps(record) + '\n')
        if self.writer is not None:
            for key, value in record.items():
                if key not in ('step', 'time'):
                    self.writer.add_scalar(key, value, record['step'])

    def check_finite(self) -> None:
        """Diverged unless the weights (and the EMA's) are finite. Every rank checks (their weights are the same),
        so that all stop together."""
        check_finite(self.step, self.model.state_dict(), *([self.ema.state_dict()] if self.ema is not None else []))

    def save(self, name: str) -> None:
        self.check_finite()
        if self.runtime.main:
            save_training_state(self.out / name, self)
            self.kept = (self.out / name, self.step)

    def publish(self, name: str) -> None:
        """Write the evaluated weights (the EMA when kept) as a model file: best.pt, final.pt (MainNet's format, or
        the release's plain state_dict for the published network)."""
        self.check_finite()
        self.evaluated.save(self.out / name)

    def fit(self, train: TripletDataset, val: Optional[TripletDataset]) -> None:
        """Train to --steps. A bad triplet met on the way (unreadable, frames of two sizes) stops the run with its
        error, after saving the steps made since the last save, so that --resume continues once it is fixed."""
        first_step = self.step
        with self.stop:
            try:
                self._fit(train, val)
            except Diverged as error:
                error.kept = f'{self.kept[0]} (step {self.kept[1]})' if self.kept else None
                error.advice = (f'continue from it with --resume {self.kept[0]} and a lower --lr' if self.kept else
                                'try a lower --lr')
                raise
            except UsageError as error:
                if self.step == first_step or (self.kept is not None and self.kept[1] == self.step):
                    raise
                self.save('last.pt')
                raise UsageError(f'{error}; stopped at step {self.step}, saved {self.out / "last.pt"}: continue with '
                                 f'--resume once the data is fixed') from None
        if self.stop.received is not None:
            raise stopped(self.stop.received, self.step, self.out / 'last.pt')

    def _fit(self, train: TripletDataset, val: Optional[TripletDataset]) -> None:
        args = self.args
        per_epoch = len(train) // (self.runtime.world * args.batch_size)
        if per_epoch == 0:
            raise UsageError(f'{len(train)} training triplets are fewer than one batch of {args.batch_size} per '
                             f'process ({self.runtime.world} processes)')
        if self.runtime.main:
            if self.random_flow:
                published = isinstance(self.model, models.PublishedNet)
                print(RANDOM_PUBLISHED_NOTICE if published else RANDOM_PWC_NOTICE, file=sys.stderr)
            from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415
            self.writer = SummaryWriter(str(self.out / 'tensorboard'))
        if self.step == 0 and val is not None and args.val_every:
            self._baselines(val)
        schedule = SaveSchedule(args.save_every, args.save_minutes)

        def epochs() -> Iterator:
            while True:  # each epoch starts where self.step says, so a resumed run sees the same batches
                epoch, within = divmod(self.step, per_epoch)
                yield from self.batches(train, epoch, within * args.batch_size)

        def step_once(batch) -> Dict[str, float]:
            self.set_flow_frozen(self.step < self.freeze_steps)
            return {'loss': self.runtime.mean(self.train_step(batch))}

        def after_step(step: int, values: Dict[str, float]) -> None:
            self.step = step
            self.log({'step': step, 'loss': values['loss'], 'lr': self.scheduler.get_last_lr()[0]})
            if val is not None and args.val_every and step % args.val_every == 0:
                self._validate_and_keep_best(val)
            if schedule.due(step):
                self.save('last.pt')
                schedule.saved()

        self.step = run_steps(self.step, args.steps, epochs(), step_once, after_step, self.stop,
                              show=self.runtime.main)
        self.save('last.pt')
        if self.runtime.main and not self.stop():
            self.publish('final.pt')
            if self.writer is not None:
                self.writer.close()

    def _baselines(self, val: TripletDataset) -> None:
        """Step 0 on the validation set: the untrained model and the classical interpolator (the line to beat)."""
        if self.runtime.main:
            from .classical import ClassicalInterpolator  # noqa: PLC0415

            classical = ClassicalInterpolator()

            def classical_frame(one, two, flows):
                return (classical.synthesize(one, two, *flows, [0.5]) if flows
                        else classical.interpolate(one, two, [0.5]))[0]

            reference = evaluate(classical_frame, val, self.runtime.device)
            result = self.validate(val)
            self.log({'step': 0, 'val_psnr': result['psnr'], 'val_ssim': result['ssim'],
                      'val_classical_psnr': reference['psnr'], 'val_classical_ssim': reference['ssim']})
            if self.probe is not None:
                reference = evaluate(classical_frame, self.probe, self.runtime.device)
                self.log({'step': 0, 'train_psnr': self.validate(self.probe)['psnr'],
                          'train_classical_psnr': reference['psnr']})
        self.runtime.barrier()

    def _validate_and_keep_best(self, val: TripletDataset) -> None:
        if self.runtime.main:
            result = self.validate(val)
            if result['count'] == len(val):  # a validation cut short by a signal is not a score
                self.log({'step': self.step, 'val_psnr': result['psnr'], 'val_ssim': result['ssim']})
                if result['psnr'] > self.best:
                    self.best = result['psnr']
                    self.publish('best.pt')
                probe = self.validate(self.probe) if self.probe is not None else None
                if probe is not None and probe['count'] == len(self.probe):
                    self.log({'step': self.step, 'train_psnr': probe['psnr']})
        self.runtime.barrier()


def measure_throughput(args: argparse.Namespace, runtime: Runtime) -> Dict[str, object]:
    """Training throughput on random data (no dataset needed): ``{'device', 'flow', 'iterations_per_second',
    'triplets_per_second'}`` over ``args.benchmark`` steps after two warm-up steps."""
    trainer = Trainer(args, runtime)
    trainer.set_flow_frozen(False)
    generator = torch.Generator().manual_seed(args.seed)
    crop_w, crop_h = args.crop
    batch = [torch.rand(args.batch_size, 3, crop_h, crop_w, generator=generator) for _ in range(3)]
    if not trains_flow(trainer.model):  # training reads cached flows: time the network only
        batch += [4 * torch.randn(args.batch_size, 2, crop_h, crop_w, generator=generator) for _ in range(2)]
        batch.append(torch.full((args.batch_size,), 1e-3))
    for _ in range(2):
        trainer.train_step(batch)
    if runtime.device.type == 'cuda':
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(args.benchmark):
        trainer.train_step(batch)
    if runtime.device.type == 'cuda':
        torch.cuda.synchronize()
    rate = args.benchmark / (time.perf_counter() - began)
    name = torch.cuda.get_device_name(runtime.device) if runtime.device.type == 'cuda' else \
        f'CPU ({torch.get_num_threads()} threads)'
    flow = trainer.model.config.flow if isinstance(trainer.model, MainNet) else models.PUBLISHED
    return {'device': name, 'flow': flow, 'iterations_per_second': rate,
            'triplets_per_second': rate * args.batch_size * runtime.world}


RUN_FILES = ('last.pt', 'best.pt', 'final.pt', 'log.jsonl', 'tensorboard')


def remove_unfinished_run(out: Path) -> None:
    """Remove what a fresh run wrote before it failed at step 0 (its log and TensorBoard folder, and ``out`` when
    that is left empty): the next run into ``out`` would be refused as another run's."""
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    with contextlib.suppress(OSError):
        out.rmdir()  # only when empty


def check_out_folder(out: Path, resume: bool) -> None:
    """A fresh run needs an --out that holds no other run's files: its log and TensorBoard curves would be appended
    to (each step then logged twice) and its best.pt compared with scores it never made. Only --resume continues a
    run."""
    if out.exists() and not out.is_dir():
        raise UsageError(f'--out {out}: exists and is not a folder')
    if resume:
        return
    if (out / 'last.pt').exists():
        raise UsageError(f'{out / "last.pt"} exists: pass --resume to continue that run or choose another --out')
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        raise UsageError(f'--out {out} holds {", ".join(found)} of another run but no last.pt to resume from; choose '
                         f'another --out or remove those files')


def validation_set(args: argparse.Namespace, roots: Sequence[Path]) -> Optional[TripletDataset]:
    """The triplets validated on every --val-every steps (None with --val-every 0). A missing or empty test list is
    refused rather than validation silently skipped: best.pt and the curve would be missing without a word."""
    if not args.val_every:
        if args.train_val_size:
            raise UsageError('--train-val-size scores training triplets at each validation; it needs --val-every '
                             'above 0')
        return None
    root = Path(args.val_data) if args.val_data else roots[0]
    listing = root / LIST_FILES['test']
    names = [line for line in listing.read_text().splitlines() if line.strip()] if listing.is_file() else []
    if not names:
        state = 'is empty' if listing.is_file() else 'does not exist'
        raise UsageError(f'--val-every {args.val_every} validates on {listing}, which {state}; give a root with test '
                         f'triplets (--val-data DIR) or train without validation (--val-every 0)')
    return TripletDataset(root, 'test', crop=None, augment=False, limit=args.val_size)


def run_training(args: argparse.Namespace, runtime: Runtime) -> int:
    roots = [Path(d) for d in args.data]
    if runtime.main:
        check_out_folder(Path(args.out), bool(args.resume))
    val = validation_set(args, roots)
    train = TripletDataset(roots, 'train', crop=args.crop, augment=args.augment, seed=args.seed)
    for dataset in (train, val):  # a triplet missing at step 40000 would stop the run there
        if dataset is not None:
            dataset.check_files()
    root, name = train.items[0]
    first = frames.read_image(triplet_paths(root, name)[0])  # fail early on a broken layout
    if first.shape[1] < args.crop[0] or first.shape[0] < args.crop[1]:
        raise UsageError(f'--crop {args.crop[0]}x{args.crop[1]} is larger than the frames '
                         f'({first.shape[1]}x{first.shape[0]})')
    trainer = Trainer(args, runtime)
    if not trains_flow(trainer.model):  # DIS flows as the model computes them at inference
        train.flows = trainer.model.config.dis_parameters
        if val is not None:
            val.flows = train.flows
    if args.train_val_size and val is not None:
        # Evenly spaced over all roots, whole frames, no augmentation: the same triplets at every validation.
        picks = np.unique(np.linspace(0, len(train) - 1, min(args.train_val_size, len(train))).round().astype(int))
        trainer.probe = Subset(TripletDataset(roots, 'train', crop=None, augment=False, flows=train.flows),
                               picks.tolist())
    if args.resume:
        trainer.resume(Path(args.resume) if args.resume != 'last' else trainer.out / 'last.pt')
    if runtime.main:
        try:
            trainer.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f'--out {trainer.out}: cannot be created ({error.strerror or error})') from None
        # a save killed outright (SIGKILL, out of memory) leaves its temporary; this run owns the folder now
        for name in RUN_FILES[:-1]:
            for stale in files.remove_stale_temporaries(trainer.out / name):
                print(f'note: removed {stale}, the temporary file of a save that was killed', file=sys.stderr)
    runtime.barrier()
    try:
        trainer.fit(train, val)
    except UsageError:
        if runtime.main and not args.resume and trainer.step == 0:  # nothing to resume: leave no run behind
            if trainer.writer is not None:
                trainer.writer.close()
            remove_unfinished_run(trainer.out)
        raise
    if runtime.main:
        print(f'trained to step {trainer.step}; final model: {trainer.out / "final.pt"}')
    return 0
