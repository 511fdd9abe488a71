"""Tune the classical interpolator (classical.py) on DAVIS video, never on the Middlebury benchmark.

A tuning sample is a triplet of real frames (k - gap, k, k + gap) of a DAVIS sequence: the interpolator predicts frame
k at t = 0.5 from its neighbours, and the score is the mean 8-bit RGB PSNR (metrics.psnr) over the sample. Flows are
computed once per DIS setting and reused for every value of the synthesis parameters.

Full-resolution DAVIS at 24 fps mostly moves by 10-100 pixels per frame, where every method fails the same way and
the parameters barely matter; typical interpolation benchmarks move less. The defaults of classical.py were
therefore chosen on two DAVIS sets that both had to agree:

* A, small motion at full resolution: 16 evenly spaced triplets per sequence (gap 1), kept when the median flow
  (DIS at finest scale 2) is at most 8 pixels (59 of 240 triplets)::

      python tools/tune_classical.py --per-sequence 16 --max-motion 8 --grid alpha=2,5,10,20

* B, every sequence at half resolution (motion halved, 427x240): 6 triplets per sequence (90 triplets)::

      python tools/tune_classical.py --per-sequence 6 --scale 0.5 --grid alpha=2,5,10,20

What the sets said (mean PSNR, A / B): DIS at finest scale 0 instead of 1 +0.06 / +0.10 dB, patch stride 2
instead of 3 +0.05 / +0.04 dB (stride 4: -0.02 / -0.05), patch size 12 -0.14 dB on B, the other DIS fields
(iterations, variational refinement weights) within +-0.03 dB; alpha 2 and 5 tie (29.43 / 27.46 dB), 10 loses
0.05 dB and 20 loses 0.18 dB; coverage 1.5 gains 0.02 dB over 1 on both, which is noise: 1 was kept, because a
pixel that one frame covers fully (a disocclusion) should not be blended with its blurred neighbourhood. Joint
splatting, splatting each frame separately and backward warping by splatted flows (bilinear or bicubic) differed
by less than 0.1 dB, so the simplest stayed.

Issue 15 (2026-12-01) asked for 0.3 s per 854 x 480 pair, which full-resolution DIS alone exceeds (0.64 s for both
directions). On the training sequences only (the test and validation sequences are excluded by default), with
``--set dis.finest_scale=1``: finest scale 1 instead of 0 cost 0.06 dB on A (29.525 -> 29.467) and 0.14 dB on B
(27.706 -> 27.567); at that scale, backward warping along softmax-splatted flows, forward-backward consistency in
the metric, averaging each flow with the other direction's where they agree, and full-resolution variational
refinement after DIS all stayed within 0.05 dB (the refinement also took 0.16 s per pair), and the plain blend of
baselines.py on the same flows scored 29.458 (A) and 27.550 (B). Classical.py now uses finest scale 1
(``CLASSICAL_DIS``)::

    python tools/tune_classical.py --per-sequence 16 --max-motion 8 --set dis.finest_scale=1 \
        --grid synthesis=splat,blend

Cheaper DIS at full resolution does not beat half resolution within that time (2026-12-01, A / B, finest scale 1
with patch stride 2 being 29.467 / 27.567): patch stride 4 with 0, 1 or 2 variational iterations 29.394 / 27.617,
29.438 / 27.650, 29.459 / 27.682 (0.17-0.23 s for DIS's pair alone with training paused, against 0.15-0.19 s at half
resolution; timed with a throwaway script, medians of 7); stride 6 with 0-2 iterations 29.311-29.330 /
27.508-27.521. At half resolution, patch size 4 gave 29.454 / 27.671 and 6 gave 29.475 / 27.596 (the sets disagree
on 4; 6 is within the +-0.03 dB noise of this comparison); a 3x3 or 5x5 median filter of both flows (a throwaway
variant of this script, not kept) moved neither set by more than 0.003 dB. None was kept::

    python tools/tune_classical.py --per-sequence 16 --max-motion 8 --set dis.finest_scale=0 \
        --grid dis.patch_stride=4,6 --grid dis.variational_refinement_iterations=0,1,2
    python tools/tune_classical.py --per-sequence 16 --max-motion 8 --set dis.finest_scale=1 --grid dis.patch_size=4,6
    # and each with --per-sequence 6 --scale 0.5 instead of --per-sequence 16 --max-motion 8 for set B

``--grid`` takes ``name=v1,v2,...`` for ``alpha``, ``coverage`` or a DisParameters field prefixed by ``dis.``
(e.g. ``dis.finest_scale=0,1``); all combinations are evaluated. ``--set name=value`` fixes a parameter. Without
``--grid`` the current defaults are scored.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softmax_splatting import frames  # noqa: E402
from softmax_splatting import metrics  # noqa: E402
from softmax_splatting.baselines import DisBlend  # noqa: E402
from softmax_splatting.classical import ClassicalInterpolator, DisParameters  # noqa: E402


# The DAVIS test split and the validation sequences (weights/README.md): never tuned on.
HELD_OUT = ('bmx-trees', 'libby', 'car-shadow', 'goat')


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ('true', 'false'):
        return text.lower() == 'true'
    return text


def triplets(root: Path, gap: int, per_sequence: int, exclude: Sequence[str] = ()) -> List[Tuple[Path, Path, Path]]:
    """``per_sequence`` evenly spaced (first, middle, last) frame paths of every sequence under ``root``."""
    chosen = []
    for sequence in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in exclude):
        files = sorted(sequence.glob('*.jpg'))
        centres = range(gap, len(files) - gap)
        # Evenly spaced, reproducible centres across the whole sequence.
        for k in np.linspace(centres.start, centres.stop - 1, per_sequence).round().astype(int):
            chosen.append((files[k - gap], files[k], files[k + gap]))
    return chosen


def load(paths: Tuple[Path, ...], scale: float) -> List[np.ndarray]:
    images = [frames.read_image(path) for path in paths]
    if scale != 1.0:
        images = [cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for image in images]
    return images


def small_motion(samples: List[Tuple[Path, Path, Path]], scale: float, limit: float) -> List[Tuple[Path, Path, Path]]:
    """The samples whose median flow magnitude (fast DIS, finest scale 2) is at most ``limit`` pixels."""
    probe = ClassicalInterpolator(dis=DisParameters(finest_scale=2))
    kept = []
    for first, middle, last in samples:
        one, _, two = load((first, middle, last), scale)
        flow, _ = probe.flows(frames.to_tensor(one), frames.to_tensor(two))
        if flow.norm(dim=1).median().item() <= limit:
            kept.append((first, middle, last))
    return kept


def build(params: Dict[str, object]) -> ClassicalInterpolator:
    """The interpolator of ``params``: DisParameters fields as ``dis.<field>`` over the dataclass defaults (full
    resolution), ``synthesis=blend`` for baselines.DisBlend on the same flows (``splat``: classical.py), the rest
    ClassicalInterpolator's."""
    dis_fields = {key[4:]: value for key, value in params.items() if key.startswith('dis.')}
    other = {key: value for key, value in params.items() if not key.startswith('dis.')}
    dis = dataclasses.replace(DisParameters(), **dis_fields)
    if other.pop('synthesis', 'splat') == 'blend':  # the comparison model of baselines.py, on the same flows
        return DisBlend(dis=dis)
    return ClassicalInterpolator(dis=dis, **other)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--davis', type=Path, default=Path('../shared/data/davis'), help='DAVIS frames folder')
    parser.add_argument('--gap', type=int, default=1, help='predict k from k - gap and k + gap')
    parser.add_argument('--per-sequence', type=int, default=4, help='triplets per sequence')
    parser.add_argument('--scale', type=float, default=1.0, help='resize the frames by this factor first')
    parser.add_argument('--max-motion', type=float, default=None,
                        help='keep only triplets whose median flow is at most this many pixels')
    parser.add_argument('--exclude', nargs='*', default=list(HELD_OUT),
                        help='sequences left out (default: the test and validation sequences of weights/README.md)')
    parser.add_argument('--grid', action='append', default=[], help='name=v1,v2,... (repeatable)')
    parser.add_argument('--set', action='append', default=[], help='name=value (repeatable)')
    args = parser.parse_args(argv)

    fixed = {}
    for item in args.set:
        name, _, value = item.partition('=')
        fixed[name] = parse_value(value)
    names, values = [], []
    for item in args.grid:
        name, _, value = item.partition('=')
        names.append(name)
        values.append([parse_value(v) for v in value.split(',')])
    combos = [dict(fixed, **dict(zip(names, combo))) for combo in itertools.product(*values)]
    samples = triplets(args.davis, args.gap, args.per_sequence, args.exclude)
    if args.max_motion is not None:
        samples = small_motion(samples, args.scale, args.max_motion)
    print(f'{len(samples)} triplets (gap {args.gap}, scale {args.scale}) from {args.davis}', flush=True)

    # Group by DIS setting so that each flow is computed once per setting.
    groups: Dict[Tuple, List[Dict[str, object]]] = {}
    for combo in combos:
        key = tuple(sorted((k, v) for k, v in combo.items() if k.startswith('dis.')))
        groups.setdefault(key, []).append(combo)
    for key, members in groups.items():
        scores = [[] for _ in members]
        flow_time = 0.0
        for first, middle, last in samples:
            one, truth, two = load((first, middle, last), args.scale)
            one, two = frames.to_tensor(one), frames.to_tensor(two)
            start = time.perf_counter()
            flow_01, flow_10 = build(members[0]).flows(one, two)
            flow_time += time.perf_counter() - start
            for index, combo in enumerate(members):
                (pred,) = build(combo).synthesize(one, two, flow_01, flow_10, [0.5])
                scores[index].append(metrics.psnr(frames.to_uint8(pred), truth))
        for combo, values_ in zip(members, scores):
            print(f'{np.mean(values_):7.3f} dB  {combo}  (flow {flow_time / len(samples):.3f} s/pair)', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
