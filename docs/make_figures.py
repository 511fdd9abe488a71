"""Make the pictures in README.md from real data, so anyone can regenerate them.

    python docs/make_figures.py splat      # docs/splat_modes.jpg from ../shared/data/splat_demo
    python docs/make_figures.py pair       # docs/example_pair.jpg: example_img/ inputs, result, flow

``splat`` reproduces the comparison of the paper's Fig. 2: forward-warping one frame of a real pair by its optical
flow with summation, average, linear and softmax splatting. The metric is the brightness-constancy error of
Sec. 3.4: Z = alpha * |one - backwarp(two, flow)|; linear splatting uses a positive weight that falls with it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from softmax_splatting import errors, frames  # noqa: E402
from softmax_splatting import pwc  # noqa: E402
from softmax_splatting.softsplat import softsplat  # noqa: E402

SPLAT_DEMO = REPO.parent / 'shared' / 'data' / 'splat_demo'


def label(image: np.ndarray, text: str) -> np.ndarray:
    image = image.copy()
    cv2.rectangle(image, (0, 0), (12 + 11 * len(text), 26), (0, 0, 0), -1)
    cv2.putText(image, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def grid(tiles, columns: int, width: int) -> np.ndarray:
    tiles = [cv2.resize(t, (width, round(t.shape[0] * width / t.shape[1])), interpolation=cv2.INTER_AREA)
             for t in tiles]
    rows = [np.concatenate(tiles[i:i + columns], 1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, 0)


def splat_figure(data: Path, out: Path) -> None:
    one = frames.to_tensor(frames.read_image(data / 'one.png'))
    two = frames.to_tensor(frames.read_image(data / 'two.png'))
    flow = torch.from_numpy(pwc.read_flo(data / 'flow.flo')).permute(2, 0, 1).unsqueeze(0).float()
    error = (one - pwc.backwarp(two, flow)).abs().mean(1, keepdim=True)
    results = {
        'summation': softsplat(one, flow, None, 'sum'),
        'average': softsplat(one, flow, None, 'avg'),
        'linear, Z = 1 / (1 + 20 err)': softsplat(one, flow, 1 / (1 + 20 * error), 'linear'),
        'softmax, Z = -20 err': softsplat(one, flow, -20 * error, 'soft'),
    }
    tiles = [label(frames.read_image(data / 'one.png'), 'frame one'),
             label(pwc.flow_to_color(flow[0].permute(1, 2, 0).numpy()), 'flow one -> two')]
    tiles += [label(frames.to_uint8(image), name) for name, image in results.items()]
    frames.write_image(out, grid(tiles, 2, 427))
    print(f'wrote {out}')


def pair_figure(out: Path) -> None:
    """The default run of run_a_pair.py: inputs, the frame at t = 0.5, and the flow it used (classical: DIS)."""
    from softmax_splatting.interpolator import load_interpolator  # noqa: PLC0415

    one_image = frames.read_image(REPO / 'example_img' / 'one.png')
    two_image = frames.read_image(REPO / 'example_img' / 'two.png')
    one, two = frames.to_tensor(one_image), frames.to_tensor(two_image)
    model = load_interpolator(None, torch.device('cpu'))
    with torch.no_grad():
        middle = model.interpolate(one, two, [0.5])[0]
    if hasattr(model, 'flows'):
        flow, name = model.flows(one, two)[0], 'DIS flow one -> two'
    else:
        flow, name = pwc.estimate(one, two, net=model.flow_net), 'PWC-Net flow one -> two'
    tiles = [label(one_image, 'frame one'), label(two_image, 'frame two'),
             label(frames.to_uint8(middle), f'{type(model).__name__}, t = 0.5'),
             label(pwc.flow_to_color(flow[0].permute(1, 2, 0).detach().numpy()), name)]
    frames.write_image(out, grid(tiles, 2, 427))
    print(f'wrote {out}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('figure', choices=['splat', 'pair'])
    parser.add_argument('--data', type=Path, default=SPLAT_DEMO, help='splat_demo folder (one.png, two.png, flow.flo)')
    args = parser.parse_args()

    def run() -> int:
        if args.figure == 'splat':
            splat_figure(args.data, REPO / 'docs' / 'splat_modes.jpg')
        else:
            pair_figure(REPO / 'docs' / 'example_pair.jpg')
        return 0

    return errors.report_errors(run)


if __name__ == '__main__':
    sys.exit(main())
