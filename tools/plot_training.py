"""Draw a training curve from ``train_and_test.py`` logs: training loss and validation PSNR against the step.

    python tools/plot_training.py docs/training/train_log.jsonl --out docs/training/training_curve.png

The loss panel shows every logged step (thin) and a running mean over ``--smooth`` steps; the PSNR panel shows the
validation PSNR of each evaluation and, as a horizontal line, the classical interpolator's PSNR on the same
validation set (``val_classical_psnr``, logged at step 0 of a run), the line the learned model must clear. Logs of
runs with ``--train-val-size`` get a third panel, the PSNR on those training triplets (``train_psnr``, with
``train_classical_psnr`` as its line when logged; with ``--compare``, each run's change since its first score, as
runs may score different triplets): a validation score that falls while this one rises is a model learning its
training scenes rather than the task. Several
logs (e.g. one per chunk of training) are drawn as one curve when their steps continue each other; with
``--compare`` each log is a run of its own (one line per run, named after its file), for runs that branch from one
checkpoint with different settings::

    python tools/plot_training.py docs/training/train_log_chunk4.jsonl docs/training/train_log_chunk5.jsonl \
        docs/training/train_log_chunk6.jsonl docs/training/train_log_chunk7.jsonl --compare \
        --out docs/training/chunks_4_7.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softmax_splatting.errors import UsageError, report_errors  # noqa: E402
from softmax_splatting.files import atomic_path  # noqa: E402


def read_records(paths: Sequence[Path]) -> List[Dict[str, float]]:
    """All records of the logs in order; raises UsageError for a missing file or a line that is not JSON."""
    records = []
    for path in paths:
        if not path.is_file():
            raise UsageError(f'{path}: no such log file')
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise UsageError(f'{path}:{number}: not a JSON line') from None
    return records


def plot(records: List[Dict[str, float]], out: Path, smooth: int = 50, title: Optional[str] = None) -> None:
    """Write the two-panel figure of one run to ``out`` (PNG) atomically."""
    plot_runs([('learned model', records)], out, smooth, title)


def plot_runs(runs: List[Tuple[str, List[Dict[str, float]]]], out: Path, smooth: int = 50,
              title: Optional[str] = None) -> None:
    """The two-panel figure with one loss and one validation line per ``(label, records)`` run."""
    import matplotlib  # noqa: PLC0415 - only this tool needs it
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415

    single = len(runs) == 1
    if not any('loss' in r or 'val_psnr' in r for _, records in runs for r in records):
        raise UsageError('the logs hold neither losses nor validation scores')
    probed = any('train_psnr' in r for _, records in runs for r in records)
    figure, axes = plt.subplots(1, 3 if probed else 2, figsize=(16 if probed else 11, 4))
    left, right = axes[:2]
    baselines, train_baselines = [], []
    for index, (label, records) in enumerate(runs):
        colour = 'C1' if single else f'C{index % 10}'
        losses = [(r['step'], r['loss']) for r in records if 'loss' in r]
        scores = [(r['step'], r['val_psnr']) for r in records if 'val_psnr' in r]
        baselines += [r['val_classical_psnr'] for r in records if 'val_classical_psnr' in r]
        train_baselines += [r['train_classical_psnr'] for r in records if 'train_classical_psnr' in r]
        train_scores = [(r['step'], r['train_psnr']) for r in records if 'train_psnr' in r]
        if train_scores:
            steps, values = map(np.array, zip(*train_scores))
            if not single:  # runs may score different training triplets: compare their changes, not levels
                values = values - values[0]
            axes[2].plot(steps, values, 's-', color=colour, markersize=3, label=label)
        if losses:
            steps, values = map(np.array, zip(*losses))
            if single:
                left.plot(steps, values, color='0.8', linewidth=0.5, label='loss per step')
            if len(values) >= smooth > 1:
                kernel = np.ones(smooth) / smooth
                left.plot(steps[smooth - 1:], np.convolve(values, kernel, mode='valid'),
                          color='C0' if single else colour,
                          label=f'running mean of {smooth}' if single else f'{label}, running mean of {smooth}')
        if scores:
            steps, values = map(np.array, zip(*scores))
            right.plot(steps, values, 'o-', color=colour, markersize=3, label=label)
    left.set_xlabel('step')
    left.set_ylabel('training loss')
    if left.lines:
        left.legend()
    if baselines:
        right.axhline(baselines[-1], color='C2' if single else '0.4', linestyle='--',
                      label=f'classical ({baselines[-1]:.2f} dB)')
    right.ticklabel_format(axis='y', useOffset=False)
    right.set_xlabel('step')
    right.set_ylabel('validation PSNR (dB)')
    if right.lines:
        right.legend()
    if probed:
        if train_baselines and single:
            axes[2].axhline(train_baselines[-1], color='C2', linestyle='--',
                            label=f'classical ({train_baselines[-1]:.2f} dB)')
        axes[2].ticklabel_format(axis='y', useOffset=False)
        axes[2].set_xlabel('step')
        axes[2].set_ylabel('PSNR on training triplets (dB)' if single else
                           'change of training-triplet PSNR (dB)')
        axes[2].legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(out) as temporary:
        figure.savefig(temporary, dpi=100, format='png')
    plt.close(figure)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('logs', nargs='+', type=Path, help='log.jsonl files of train_and_test.py, in order')
    parser.add_argument('--out', type=Path, required=True, help='PNG to write')
    parser.add_argument('--smooth', type=int, default=50, help='running-mean window of the loss (default: 50)')
    parser.add_argument('--title', help='figure title')
    parser.add_argument('--compare', action='store_true',
                        help='draw each log as a run of its own, named after its file (default: one run)')
    args = parser.parse_args(argv)

    def run() -> int:
        if args.compare:
            plot_runs([(path.stem, read_records([path])) for path in args.logs], args.out, args.smooth, args.title)
        else:
            plot(read_records(args.logs), args.out, args.smooth, args.title)
        print(f'wrote {args.out}')
        return 0

    return report_errors(run)


if __name__ == '__main__':
    sys.exit(main())
