"""Draw a training curve from ``train_and_test.py`` logs: training loss and validation PSNR against the step.

    python tools/plot_training.py weights/train_log.jsonl --out weights/training_curve.png

The loss panel shows every logged step (thin) and a running mean over ``--smooth`` steps; the PSNR panel shows the
validation PSNR of each evaluation and, as a horizontal line, the classical interpolator's PSNR on the same
validation set (``val_classical_psnr``, logged at step 0 of a run), the line the learned model must clear. Several
logs (e.g. one per chunk of training) are drawn as one curve when their steps continue each other.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

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
    """Write the two-panel figure to ``out`` (PNG) atomically."""
    import matplotlib  # noqa: PLC0415 - only this tool needs it
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415

    losses = [(r['step'], r['loss']) for r in records if 'loss' in r]
    scores = [(r['step'], r['val_psnr']) for r in records if 'val_psnr' in r]
    baselines = [r['val_classical_psnr'] for r in records if 'val_classical_psnr' in r]
    if not losses and not scores:
        raise UsageError('the logs hold neither losses nor validation scores')
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if losses:
        steps, values = map(np.array, zip(*losses))
        left.plot(steps, values, color='0.8', linewidth=0.5, label='loss per step')
        if len(values) >= smooth > 1:
            kernel = np.ones(smooth) / smooth
            left.plot(steps[smooth - 1:], np.convolve(values, kernel, mode='valid'), color='C0',
                      label=f'running mean of {smooth}')
        left.set_xlabel('step')
        left.set_ylabel('training loss')
        left.legend()
    if scores:
        steps, values = map(np.array, zip(*scores))
        right.plot(steps, values, 'o-', color='C1', markersize=3, label='learned model')
    if baselines:
        right.axhline(baselines[-1], color='C2', linestyle='--', label=f'classical ({baselines[-1]:.2f} dB)')
    right.ticklabel_format(axis='y', useOffset=False)
    right.set_xlabel('step')
    right.set_ylabel('validation PSNR (dB)')
    right.legend()
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
    args = parser.parse_args(argv)

    def run() -> int:
        plot(read_records(args.logs), args.out, args.smooth, args.title)
        print(f'wrote {args.out}')
        return 0

    return report_errors(run)


if __name__ == '__main__':
    sys.exit(main())
