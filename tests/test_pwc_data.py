"""Training data of pwc/: the procedural generator's frames agree with its flow and occlusion, it is deterministic,
it never textures with the benchmark; the FlyingChairs reader handles the release format and its errors."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from softmax_splatting.chairs import FlyingChairs
from softmax_splatting.errors import UsageError
from softmax_splatting.frames import to_uint8
from softmax_splatting.metrics import psnr
from softmax_splatting.pwc import backwarp, write_flo
from softmax_splatting.synthetic_flow import (SyntheticFlow, _LinearMotion, default_texture_dir, find_textures,
                                              procedural_texture, render_triplet)

DAVIS = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'davis'


def warp_error(sample):
    """Per-pixel largest channel error of frame two warped back by the true flow, and the visible-pixel mask."""
    warped = backwarp(sample['two'][None].double(), sample['flow'][None].double())[0]
    error = (warped - sample['one'].double()).abs().amax(0)
    return error, sample['occlusion'][0] == 0


def test_linear_textures_make_frames_and_flow_agree_exactly():
    """Bilinear interpolation reproduces linear functions exactly, so with linear textures the only error left
    on visible pixels would come from wrong flow or wrong occlusion."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 600), torch.linspace(0, 1, 600), indexing='ij')
    ramps = [torch.stack([0.2 + 0.6 * xs, 0.9 - 0.5 * ys, 0.3 + 0.3 * xs + 0.2 * ys]),
             torch.stack([0.8 - 0.7 * ys, 0.1 + 0.4 * xs + 0.4 * ys, 0.5 + 0.4 * xs - 0.3 * ys])]
    data = SyntheticFlow((48, 64), textures=ramps, seed=5, layers=(3, 4), max_shift=6)
    for draw in range(3):
        sample = data[draw]
        error, visible = warp_error(sample)
        assert 0.3 < visible.float().mean() < 0.995  # there are both visible and occluded pixels
        assert error[visible].max() < 1e-4
        assert sample['flow'].abs().max() > 1.0


def test_procedural_frames_agree_with_flow_within_interpolation_error():
    data = SyntheticFlow((64, 80), textures=None, seed=1)
    for draw in range(3):
        sample = data[draw]
        assert sample['one'].shape == (3, 64, 80) and sample['flow'].shape == (2, 64, 80)
        assert sample['occlusion'].shape == (1, 64, 80)
        error, visible = warp_error(sample)
        unwarped = (sample['two'] - sample['one']).abs().amax(0)[visible]
        assert error[visible].mean() < 0.01 and error[visible].max() < 0.05
        assert unwarped.mean() > 5 * error[visible].mean()  # the motion is real and the flow explains it
        assert error[~visible].mean() > error[visible].mean()  # occluded pixels are the ones that disagree


def test_samples_are_a_function_of_seed_and_draw():
    data = SyntheticFlow((32, 32), textures=None, seed=2)
    a, b = data[7], data[(123, 7)]
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(data[8]['one'], a['one'])
    assert not torch.equal(SyntheticFlow((32, 32), textures=None, seed=3)[7]['one'], a['one'])


@pytest.mark.skipif(not DAVIS.is_dir(), reason='../shared/data/davis is not here')
def test_davis_photos_as_textures():
    assert default_texture_dir() == DAVIS.resolve()
    data = SyntheticFlow((48, 64), textures=DAVIS, seed=0)
    assert len(data.textures) > 100
    sample = data[0]
    error, visible = warp_error(sample)
    assert np.median(error[visible].numpy()) < 0.02


def test_benchmark_is_refused_as_texture_source(tmp_path):
    folder = tmp_path / 'middlebury' / 'Venus'
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / 'frame10.png'), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match='Middlebury'):
        SyntheticFlow((32, 32), textures=tmp_path / 'middlebury')
    other = tmp_path / 'photos'
    other.mkdir()
    cv2.imwrite(str(other / 'rubberwhale1.png'), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match='Middlebury'):
        find_textures(other)
    with pytest.raises(FileNotFoundError, match='no such texture folder'):
        find_textures(tmp_path / 'nowhere')


# ------------------------------------------------------------------------------------------------ chairs -------

def make_chairs(folder, count=5, size=(24, 32), split='12121'):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(1, count + 1):
        for name in ('img1', 'img2'):
            cv2.imwrite(str(folder / f'{k:05d}_{name}.ppm'), rng.integers(0, 256, size + (3,), dtype=np.uint8))
        write_flo(folder / f'{k:05d}_flow.flo', np.full(size + (2,), float(k), np.float32))
    if split is not None:
        (folder.parent / 'FlyingChairs_train_val.txt').write_text('\n'.join(split) + '\n')
    return folder


def test_triplet_middle_frame_is_halfway():
    textures = [procedural_texture(np.random.default_rng(7), 200)]
    gaps = []
    for seed in range(3):
        first, middle, last = render_triplet(np.random.default_rng(seed), 96, 128, textures)
        assert first.shape == (3, 96, 128) and 0 <= float(first.min()) and float(first.max()) <= 1
        first, middle, last = (to_uint8(frame) for frame in (first, middle, last))
        to_first, to_last = psnr(middle, first), psnr(middle, last)
        assert to_first < 40 and to_last < 40  # the frames move
        gaps.append(to_first - to_last)
    # Halfway: as far from the first frame as from the last (t = 0.25 would be several dB nearer the first).
    assert abs(float(np.mean(gaps))) < 1.5

    motion = _LinearMotion(np.random.default_rng(0), np.array([10.0, 5.0]), 8.0, 0.0, 0.0)
    matrix, offset = motion.inverse_at(0.0)
    assert np.allclose(matrix, np.eye(2)) and np.allclose(offset, 0)
    matrix, offset = motion.inverse_at(0.5)
    assert np.allclose(matrix, np.eye(2)) and np.allclose(offset, -0.5 * motion.shift)


def test_flying_chairs_reads_samples_splits_and_crops(tmp_path):
    root = make_chairs(tmp_path / 'FlyingChairs_release' / 'data')
    train = FlyingChairs(root, split='train')
    val = FlyingChairs(root, split='val')
    assert len(train) == 3 and len(val) == 2 and len(FlyingChairs(root, split='all')) == 5
    sample = train[1]
    assert sample['one'].shape == (3, 24, 32) and sample['flow'].shape == (2, 24, 32)
    assert sample['flow'].eq(3.0).all()  # train = samples 1, 3, 5
    bgr = cv2.imread(str(root / '00003_img1.ppm'))
    np.testing.assert_allclose(sample['one'][0].numpy(), bgr[..., 2] / 255.0, atol=1e-6)  # RGB order
    cropped = FlyingChairs(root, crop=(16, 16), seed=1)
    a, b = cropped[(0, 4)], cropped[(0, 4)]
    assert a['one'].shape == (3, 16, 16) and torch.equal(a['one'], b['one'])


def test_flying_chairs_errors(tmp_path):
    with pytest.raises(UsageError, match='no such FlyingChairs folder'):
        FlyingChairs(tmp_path / 'missing')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UsageError, match='no FlyingChairs samples'):
        FlyingChairs(tmp_path / 'empty')
    root = make_chairs(tmp_path / 'a' / 'data', split='121')
    with pytest.raises(UsageError, match='expected 5 lines'):
        FlyingChairs(root)
    root = make_chairs(tmp_path / 'b' / 'data', split=None)
    assert len(FlyingChairs(root)) == 5  # no split file: everything trains
    with pytest.raises(UsageError, match='no validation split'):
        FlyingChairs(root, split='val')
    (root / '00002_flow.flo').unlink()
    with pytest.raises(UsageError, match='00002 is incomplete'):
        FlyingChairs(root)
    big = FlyingChairs(make_chairs(tmp_path / 'c' / 'data', split=None), crop=(64, 64))
    with pytest.raises(UsageError, match='larger than the FlyingChairs image'):
        big[0]
