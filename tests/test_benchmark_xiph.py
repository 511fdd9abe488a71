"""Tests of benchmark_xiph.py: the Y4M reader, the protocol's frame indices and whole runs on tiny generated clips."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import List, Sequence

import cv2
import numpy as np
import pytest
import torch

from softmax_splatting import errors, frames, metrics, y4m
from softmax_splatting.cli import benchmark_xiph as bx

KR, KB = 0.299, 0.114  # BT.601, the reader's default (ffmpeg's for these untagged clips)


def rgb_to_yuv(image: np.ndarray, bits: int = 8, full_range: bool = False, kr: float = KR,
               kb: float = KB) -> tuple:
    """``[H, W, 3]`` uint8 RGB -> float Y, Cb, Cr at full resolution, in code values of ``bits`` bits."""
    rgb = image.astype(np.float64) / 255.0
    y = kr * rgb[..., 0] + (1 - kr - kb) * rgb[..., 1] + kb * rgb[..., 2]
    cb = (rgb[..., 2] - y) / (2 * (1 - kb))
    cr = (rgb[..., 0] - y) / (2 * (1 - kr))
    if full_range:
        top = 2 ** bits - 1
        return y * top, cb * top + 2 ** (bits - 1), cr * top + 2 ** (bits - 1)
    scale = 2 ** (bits - 8)
    return (16 + 219 * y) * scale, (128 + 224 * cb) * scale, (128 + 224 * cr) * scale


def write_y4m(path: Path, images: Sequence[np.ndarray], colourspace: str = '420jpeg', full_range: bool = False,
              extra_header: str = '') -> None:
    """Encode RGB frames (even sizes) as Y4M: BT.601, 4:2:0 by 2 x 2 averaging (centred siting), or 4:4:4."""
    bits = 10 if colourspace.endswith('p10') else 8
    dtype = np.dtype('<u2') if bits > 8 else np.dtype(np.uint8)
    height, width = images[0].shape[:2]
    tags = f'YUV4MPEG2 W{width} H{height} F60:1 Ip A1:1 C{colourspace}'
    if full_range:
        tags += ' XCOLORRANGE=FULL'
    with open(path, 'wb') as stream:
        stream.write((tags + extra_header + '\n').encode())
        for image in images:
            y, cb, cr = rgb_to_yuv(image, bits, full_range)
            if colourspace.startswith('420'):
                cb = cb.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
                cr = cr.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
            stream.write(b'FRAME\n')
            for plane in (y, cb, cr):
                stream.write(np.clip(np.round(plane), 0, 2 ** bits - 1).astype(dtype).tobytes())


def panning(count: int, height: int, width: int, speed: float, seed: int) -> List[np.ndarray]:
    """A smooth random texture moving ``speed`` (sub-)pixels per frame to the left."""
    rng = np.random.default_rng(seed)
    wide_width = width + int(math.ceil(speed * count)) + 2
    noise = rng.random((height // 8, wide_width // 8, 3)).astype(np.float32)
    wide = np.clip(cv2.resize(noise, (wide_width, height), interpolation=cv2.INTER_CUBIC) * 255, 0, 255)
    shifted = []
    for index in range(count):
        shift = np.float32([[1, 0, -speed * index], [0, 1, 0]])
        moved = cv2.warpAffine(wide, shift, (width, height), flags=cv2.INTER_LINEAR)
        shifted.append(np.round(moved).astype(np.uint8))
    return shifted


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple:
    code = bx.main(['--no-progress', *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------------------------------------------------------
# Y4M reader
# ---------------------------------------------------------------------------------------------------------------

COLOURS = [(255, 255, 255), (0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128), (200, 120, 40),
           (30, 90, 220)]


def colour_frame(height: int = 16, width: int = 64) -> np.ndarray:
    """Eight flat 8 x 8 ... patches of COLOURS side by side, each 8 pixels wide and ``height`` high."""
    image = np.zeros((height, width, 3), np.uint8)
    for index, colour in enumerate(COLOURS):
        image[:, 8 * index:8 * index + 8] = colour
    return image


def patch_centres(image: np.ndarray) -> np.ndarray:
    """The colour at the centre of each patch (away from edges, where 4:2:0 blurs chroma)."""
    return np.stack([image[image.shape[0] // 2, 8 * index + 4] for index in range(len(COLOURS))])


@pytest.mark.parametrize('colourspace, full_range', [('420jpeg', False), ('420p10', False), ('444', False),
                                                     ('420jpeg', True), ('420', False), ('420mpeg2', False)])
def test_known_colours(tmp_path: Path, colourspace: str, full_range: bool) -> None:
    """BT.601 limited or full range (XCOLORRANGE), 8 and 10 bits, 4:2:0 and 4:4:4: the colours come back."""
    path = tmp_path / 'colours.y4m'
    write_y4m(path, [colour_frame()], colourspace, full_range)
    decoded = list(y4m.y4m_frames(path))
    assert len(decoded) == 1 and decoded[0].shape == (16, 64, 3) and decoded[0].dtype == np.uint8
    error = np.abs(patch_centres(decoded[0]).astype(int) - np.array(COLOURS))
    assert error.max() <= 2, error


def test_the_matrix_decides_the_colours_of_untagged_clips(tmp_path: Path) -> None:
    """Code values of BT.709 red (63/102/240): red with bt709, another colour with the default bt601."""
    path = tmp_path / 'red.y4m'
    with open(path, 'wb') as stream:
        stream.write(b'YUV4MPEG2 W8 H8 F60:1 Ip A1:1 C444\nFRAME\n')
        for value in (63, 102, 240):
            stream.write(bytes([value]) * 64)
    bt709, = y4m.y4m_frames(path, 'bt709')
    bt601, = y4m.y4m_frames(path)
    assert np.abs(bt709[4, 4].astype(int) - [255, 0, 0]).max() <= 3
    assert np.abs(bt601[4, 4].astype(int) - [255, 0, 0]).max() > 10
    with pytest.raises(errors.UsageError, match='unknown YUV matrix'):
        list(y4m.y4m_frames(path, 'bt2020'))


def test_frames_stream_in_order_and_unneeded_ones_are_not_converted(tmp_path: Path) -> None:
    clip = panning(5, 16, 24, 2, seed=1)
    path = tmp_path / 'clip.y4m'
    write_y4m(path, clip, '420p10')
    decoded = list(y4m.y4m_frames(path, needed=lambda index: index in (0, 3)))
    assert [frame is None for frame in decoded] == [False, True, True, False, True]
    # decoded frames are the encoded ones, to what 4:2:0 at 16 x 24 and swscale's chroma filter allow
    assert np.abs(decoded[0].astype(int) - clip[0]).mean() < 6
    assert np.abs(decoded[3].astype(int) - clip[3]).mean() < 6
    assert np.abs(decoded[3].astype(int) - clip[0]).mean() > 2 * np.abs(decoded[3].astype(int) - clip[3]).mean()


def test_bad_files(tmp_path: Path) -> None:
    clip = panning(3, 16, 24, 2, seed=2)
    good = tmp_path / 'good.y4m'
    write_y4m(good, clip)
    truncated = tmp_path / 'truncated.y4m'
    truncated.write_bytes(good.read_bytes()[:-100])
    assert len(list(y4m.y4m_frames(truncated))) == 2  # the partial frame is not a frame (the benchmark counts)
    for content in (b'RIFF....WAVEfmt \n', b'', b'YUV4MPEG2 H16 C420jpeg\n'):
        path = tmp_path / 'bad.y4m'
        path.write_bytes(content)
        with pytest.raises(errors.UsageError, match='not a readable .y4m video'):
            list(y4m.y4m_frames(path))


# ---------------------------------------------------------------------------------------------------------------
# Protocol
# ---------------------------------------------------------------------------------------------------------------

def test_protocol_targets() -> None:
    targets = bx.protocol_targets(100)
    assert len(targets) == 49 and targets[0] == 1 and targets[-1] == 97
    assert all(target % 2 == 1 for target in targets)
    assert bx.protocol_targets(7) == [1, 3, 5]
    assert bx.protocol_targets(8) == [1, 3, 5]  # frame 7 would need a frame 8


def test_prepare_categories() -> None:
    image = np.arange(40 * 60 * 3, dtype=np.int64).reshape(40, 60, 3).astype(np.uint8)
    crop = bx.prepare(image, 'cropped', (20, 10))
    np.testing.assert_array_equal(crop, image[15:25, 20:40])
    # The protocol's crop of 4096x2160 to 2048x1080 is rows 540:1620, columns 1024:3072.
    big = np.zeros((2160, 4096, 3), np.uint8)
    big[540, 1024] = 255
    big[1619, 3071] = 255
    cropped = bx.prepare(big, 'cropped', (2048, 1080))
    assert cropped[0, 0, 0] == 255 and cropped[-1, -1, 0] == 255 and cropped.sum() == 2 * 3 * 255
    noise = np.random.default_rng(0).integers(0, 256, (40, 60, 3)).astype(np.uint8)
    resized = bx.prepare(noise, 'resized', (25, 17))
    np.testing.assert_array_equal(resized, cv2.resize(noise, (25, 17), interpolation=cv2.INTER_AREA))
    assert not np.array_equal(resized, cv2.resize(noise, (25, 17), interpolation=cv2.INTER_LINEAR))


class Recorder:
    """A stand-in interpolator that records which frames it was given (frame k is flat grey 20 k + 10)."""

    def __init__(self) -> None:
        self.pairs: List[tuple] = []

    def interpolate(self, one: torch.Tensor, two: torch.Tensor, times: Sequence[float]) -> List[torch.Tensor]:
        index = lambda frame: int(round((float(frame.mean()) * 255 - 10) / 20))  # noqa: E731
        self.pairs.append((index(one), index(two), tuple(times)))
        return [(one + two) / 2]


def test_frame_indices_of_a_run(tmp_path: Path, capsys: pytest.CaptureFixture,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    clip = [np.full((16, 24, 3), 20 * index + 10, np.uint8) for index in range(10)]
    frames_dir = tmp_path / 'data' / 'Tango'
    for index, image in enumerate(clip):
        frames.write_image(frames_dir / f'{index + 1:03d}.png', image)
    recorder = Recorder()
    monkeypatch.setattr(bx, 'load_interpolator', lambda spec, device, fp16=False: recorder)
    code, out, _ = run(capsys, '--data', str(tmp_path / 'data'), '--clips', 'Tango', '--frames', '9',
                       '--categories', 'cropped', '--crop-to', '16x8', '--json', str(tmp_path / 'r.json'))
    assert code == 0
    assert recorder.pairs == [(0, 2, (0.5,)), (2, 4, (0.5,)), (4, 6, (0.5,)), (6, 8, (0.5,))]
    document = json.loads((tmp_path / 'r.json').read_text())
    assert document['settings']['targets'] == [1, 3, 5, 7]
    # The mean of two flat frames is exactly the flat frame between them: PSNR inf is written as null.
    assert document['clips']['Tango']['cropped']['psnr'] is None
    assert document['clips']['Tango']['cropped']['ssim'] == pytest.approx(1.0)
    assert '| Tango |' in out


class NeighbourRecorder(Recorder):
    """Records the frames around each pair too (their index, or None)."""

    def interpolate(self, one, two, times, before=None, after=None):
        index = lambda frame: None if frame is None else int(round((float(frame.mean()) * 255 - 10) / 20))  # noqa
        self.pairs.append((index(before), index(one), index(two), index(after)))
        return [(one + two) / 2]

    def estimate_flows(self, one, two):  # marks it as an interpolator with its own flow
        raise AssertionError('not called by the benchmark')


def test_quadratic_motion_gets_the_inputs_of_the_neighbouring_targets(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    clip = [np.full((16, 24, 3), 20 * index + 10, np.uint8) for index in range(10)]
    for index, image in enumerate(clip):
        frames.write_image(tmp_path / 'data' / 'Tango' / f'{index + 1:03d}.png', image)
    recorder = NeighbourRecorder()
    monkeypatch.setattr(bx, 'load_interpolator', lambda spec, device, fp16=False: recorder)
    code, _, err = run(capsys, '--data', str(tmp_path / 'data'), '--clips', 'Tango', '--frames', '9',
                       '--categories', 'cropped', '--crop-to', '16x8', '--motion', 'quadratic')
    assert code == 0, err
    assert recorder.pairs == [(None, 0, 2, 4), (0, 2, 4, 6), (2, 4, 6, 8), (4, 6, 8, None)]
    monkeypatch.setattr(bx, 'load_interpolator', lambda spec, device, fp16=False: Recorder())
    code, _, err = run(capsys, '--data', str(tmp_path / 'data'), '--clips', 'Tango', '--frames', '9',
                       '--motion', 'quadratic')
    assert code == 2 and 'needs an interpolator that computes flow' in err


# ---------------------------------------------------------------------------------------------------------------
# Whole runs
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def xiph_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny clips in the three accepted layouts: 8-bit y4m, 10-bit y4m (published name), frame folder."""
    data = tmp_path_factory.mktemp('xiph')
    write_y4m(data / 'BoxingPractice.y4m', panning(8, 48, 80, 2.5, seed=3), '420jpeg')
    write_y4m(data / 'Netflix_Tango_4096x2160_60fps_10bit_420.y4m', panning(8, 48, 80, 3.5, seed=4), '420p10')
    for index, image in enumerate(panning(8, 48, 80, 1.5, seed=5)):
        frames.write_image(data / 'Crosswalk' / f'{index + 1:03d}.png', image)
    return data


def test_end_to_end_classical(xiph_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'scores.json'
    code, stdout, err = run(capsys, '--data', str(xiph_dir), '--clips', 'Tango', 'BoxingPractice', 'crosswalk',
                            '--frames', '7', '--resize-to', '40x24', '--crop-to', '48x32', '--model', 'classical',
                            '--device', 'cpu', '--json', str(out))
    assert code == 0, err
    document = json.loads(out.read_text())
    assert set(document) >= {'clips', 'mean'}
    assert list(document['clips']) == ['Tango', 'BoxingPractice', 'Crosswalk']
    for clip, entry in document['clips'].items():
        assert set(entry) == {'resized', 'cropped'}
        for category in entry.values():
            assert set(category) == {'psnr', 'ssim'}
            assert 15 < category['psnr'] < 100 and 0 < category['ssim'] <= 1
    for category in ('resized', 'cropped'):
        for metric in ('psnr', 'ssim'):
            clip_means = [entry[category][metric] for entry in document['clips'].values()]
            assert document['mean'][category][metric] == pytest.approx(np.mean(clip_means), abs=1e-5)
    assert document['settings']['targets'] == [1, 3, 5]
    table = stdout.strip().splitlines()
    assert table[0].startswith('| Clip |') and len(table) == 2 + 3 + 1 and '**Mean**' in table[-1]
    assert 'not comparable' in err  # shortened protocol is flagged


def test_interpolation_beats_repeating_a_frame(xiph_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    """The scores measure the interpolation: the classical interpolator beats copying the first input."""
    out = tmp_path / 'scores.json'
    code, _, err = run(capsys, '--data', str(xiph_dir), '--clips', 'Tango', '--frames', '7', '--categories',
                       'cropped', '--crop-to', '64x40', '--model', 'classical', '--device', 'cpu', '--json', str(out))
    assert code == 0, err
    score = json.loads(out.read_text())['clips']['Tango']['cropped']['psnr']
    decoded = [bx.prepare(image, 'cropped', (64, 40)) for image in y4m.y4m_frames(next(xiph_dir.glob('*Tango*.y4m')))]
    repeat = np.mean([metrics.psnr(decoded[i - 1], decoded[i]) for i in (1, 3, 5)])
    assert score > repeat + 3


def test_find_clip_matches_whole_names(tmp_path: Path) -> None:
    write_y4m(tmp_path / 'Netflix_FoodMarket2_4096x2160_60fps_10bit_420.y4m', panning(3, 16, 24, 1, seed=6))
    assert bx.find_clip(tmp_path, 'FoodMarket') is None
    assert bx.find_clip(tmp_path, 'FoodMarket2').path.name.startswith('Netflix_FoodMarket2')
    write_y4m(tmp_path / 'foodmarket.y4m', panning(3, 16, 24, 1, seed=6))
    assert bx.find_clip(tmp_path, 'FoodMarket').path.name == 'foodmarket.y4m'
    for index in range(3):
        frames.write_image(tmp_path / f'DrivingPOV-{index + 1:03d}.png', np.zeros((16, 24, 3), np.uint8))
    source = bx.find_clip(tmp_path, 'DrivingPOV')
    assert source.images is not None and [p.name for p in source.images][0] == 'DrivingPOV-001.png'
    write_y4m(tmp_path / 'FoodMarket2.y4m', panning(3, 16, 24, 1, seed=6))
    with pytest.raises(errors.UsageError, match='several'):
        bx.find_clip(tmp_path, 'FoodMarket2')


@pytest.mark.parametrize('case', ['missing_clip', 'missing_dir', 'truncated', 'too_few', 'unknown_clip',
                                  'bad_size', 'crop_too_big'])
def test_errors_are_one_line(case: str, xiph_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    common = ['--model', 'classical', '--device', 'cpu', '--resize-to', '40x24', '--crop-to', '48x32']
    broken = tmp_path / 'broken'
    broken.mkdir()
    data = (xiph_dir / 'Netflix_Tango_4096x2160_60fps_10bit_420.y4m').read_bytes()
    (broken / 'Tango.y4m').write_bytes(data[:len(data) * 2 // 3])
    argv = {
        'missing_clip': ['--data', str(xiph_dir), '--clips', 'Tango', 'DrivingPOV'],
        'missing_dir': ['--data', str(tmp_path / 'nowhere')],
        'truncated': ['--data', str(broken), '--clips', 'Tango', '--frames', '7'],
        'too_few': ['--data', str(xiph_dir), '--clips', 'Tango', '--frames', '20'],
        'unknown_clip': ['--data', str(xiph_dir), '--clips', 'Beanbags'],
        'bad_size': ['--data', str(xiph_dir), '--clips', 'Tango', '--frames', '3', '--resize-to', '2048'],
        'crop_too_big': ['--data', str(xiph_dir), '--clips', 'Tango', '--frames', '3', '--crop-to', '4096x2160'],
    }[case]
    out = tmp_path / 'r.json'
    code, _, err = run(capsys, *common, *argv, '--json', str(out))
    assert code == 2
    error_lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(error_lines) == 1 and 'Traceback' not in err
    assert not out.exists()
    message = error_lines[0]
    if case == 'missing_clip':
        assert 'DrivingPOV' in message and 'Tango' not in message.split('found in')[1].split('.')[0]
        assert 'media.xiph.org' in message and 'Chimera' in message
        assert 'Netflix_DrivingPOV_4096x2160_60fps_10bit_420.y4m' in message
    elif case == 'truncated':
        assert 'Tango.y4m has only 5 frame(s)' in message  # FFmpeg's demuxer drops the partial frame
    elif case == 'too_few':
        assert 'only 8 frame(s)' in message


def test_missing_everything_names_each_clip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys, '--data', str(tmp_path), '--model', 'classical', '--device', 'cpu')
    assert code == 2
    for clip in bx.CLIPS:
        assert clip in err
