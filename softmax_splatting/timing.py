"""Timing for the benchmark scripts: medians of interleaved runs, with CUDA events on a GPU.

Contenders are run in turn within every repeat, so a machine that slows down or speeds up during a benchmark
(other processes, clocks) affects all of them alike and their ratios stay meaningful.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, List

import torch


def median_ms(fns: List[Callable[[], object]], device: torch.device, repeats: int, warmup: int = 2) -> List[float]:
    """Median milliseconds of each function over ``repeats`` interleaved runs, after ``warmup`` runs of each."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            if device.type == 'cuda':
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize(device)
                record.append(start.elapsed_time(end))
            else:
                begin = time.perf_counter()
                fn()
                record.append((time.perf_counter() - begin) * 1e3)
    return [statistics.median(record) for record in times]
