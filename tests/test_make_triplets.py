"""Tests of make_triplets.py on generated videos and frame folders (no shared data needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence

import cv2
import numpy as np
import pytest

from softmax_splatting import errors, frames
from softmax_splatting.cli import triplets as mt

SIZE = (64, 48)  # small output frames keep the tests fast
SIZE_ARG = ['--size', f'{SIZE[0]}x{SIZE[1]}']


def texture(rng: np.random.Generator, height: int, width: int, tint: Sequence[float]) -> np.ndarray:
    """A smooth random RGB texture ``[height, width, 3]`` uint8 (smooth, so that video coding keeps it)."""
    noise = rng.random((max(height // 8, 2), max(width // 8, 2), 3)).astype(np.float32)
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(image * 255.0 * np.asarray(tint, np.float32), 0, 255).astype(np.uint8)


def moving(rng: np.random.Generator, count: int, height: int, width: int, speed: int,
           tint: Sequence[float] = (1, 1, 1)) -> List[np.ndarray]:
    """``count`` frames of a texture panning left by ``speed`` pixels per frame."""
    wide = texture(rng, height, width + speed * count, tint)
    return [np.ascontiguousarray(wide[:, speed * i:speed * i + width]) for i in range(count)]


def write_video(path: Path, video: Sequence[np.ndarray], fps: int = 10) -> None:
    import imageio_ffmpeg  # moviepy's own ffmpeg

    height, width = video[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, codec='libx264',
                                         output_params=['-crf', '12'], macro_block_size=16)
    writer.send(None)
    for frame in video:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def write_folder(folder: Path, images: Sequence[np.ndarray], pattern: str = '{:05d}.png') -> List[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(images):
        paths.append(folder / pattern.format(index))
        frames.write_image(paths[-1], image)
    return paths


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple:
    code = mt.main(['--no-progress', *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def lines(path: Path) -> List[str]:
    return [line for line in path.read_text().splitlines() if line]


@pytest.fixture(scope='module')
def cut_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames, 128x96: 12 moving (A), 8 static (B), then a cut to 10 moving frames of other content (C).

    With non-overlapping triplets (0-2, 3-5, ...): 4 moving in A; 12-14 and 15-17 static; 18-20 spans the
    cut B|C between im2 and im3; 21-23, 24-26, 27-29 moving in C. So 7 kept, 2 static, 1 cut.
    """
    rng = np.random.default_rng(0)
    clip = (moving(rng, 12, 96, 128, 3)
            + [texture(rng, 96, 128, (1.0, 0.5, 0.2))] * 8
            + moving(rng, 10, 96, 128, 4, (0.2, 0.6, 1.0)))
    path = tmp_path_factory.mktemp('video') / 'street scene.mp4'
    write_video(path, clip)
    return path


# ---------------------------------------------------------------------------------------------------------------
# Whole runs
# ---------------------------------------------------------------------------------------------------------------

def test_video_layout_static_and_cut(cut_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'out'
    code, stdout, _ = run(capsys, str(cut_video), '--out', str(out), *SIZE_ARG, '--test-fraction', '0')
    assert code == 0
    record = json.loads((out / 'make_triplets.json').read_text())
    counts = record['sources']['street_scene']  # the stem, sanitized
    assert (counts['frames'], counts['written'], counts['static'], counts['cut']) == (30, 7, 2, 1)
    assert 'street_scene' in stdout
    folders = sorted(path.name for path in (out / 'sequences' / 'street_scene').iterdir())
    assert folders == [f'{index:04d}' for index in range(1, 8)]
    for folder in folders:
        for number in (1, 2, 3):
            image = frames.read_image(out / 'sequences' / 'street_scene' / folder / f'im{number}.png')
            assert image.shape == (SIZE[1], SIZE[0], 3)
    assert lines(out / 'tri_trainlist.txt') == [f'street_scene/{folder}' for folder in folders]
    assert lines(out / 'tri_testlist.txt') == []


def test_video_filters_can_be_disabled(cut_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'out'
    code, _, _ = run(capsys, str(cut_video), '--out', str(out), *SIZE_ARG, '--min-motion', '0',
                     '--cut-ratio', '1000', '--cut-hist', '1', '--format', 'jpg', '--quality', '90')
    assert code == 0
    assert len(lines(out / 'tri_trainlist.txt')) + len(lines(out / 'tri_testlist.txt')) == 10
    assert sorted(path.name for path in (out / 'sequences' / 'street_scene' / '0001').iterdir()) == \
        ['im1.jpg', 'im2.jpg', 'im3.jpg']


def test_frame_folder_triplets_are_the_right_frames(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(1)
    clip = moving(rng, 11, 60, 100, 3)
    write_folder(tmp_path / 'walk', clip, 'frame{}.png')  # unpadded numbers: natural sort needed
    frames.write_image(tmp_path / 'walk' / 'rubberwhale1.png', clip[0])
    expected = [mt.resize_cover_crop(image, *SIZE) for image in clip]

    out = tmp_path / 'out'
    code, _, err = run(capsys, str(tmp_path / 'walk'), '--out', str(out), *SIZE_ARG)
    assert code == 0
    assert 'rubberwhale1.png' in err and 'skipping' in err
    triplets = sorted((out / 'sequences' / 'walk').iterdir())
    assert len(triplets) == 3  # frames 0-2, 3-5, 6-8; 9 and 10 are too few for a fourth
    for number, folder in enumerate(triplets):
        for offset in range(3):
            got = frames.read_image(folder / f'im{offset + 1}.png')
            np.testing.assert_array_equal(got, expected[3 * number + offset])

    out = tmp_path / 'strided'
    code, _, _ = run(capsys, str(tmp_path / 'walk'), '--out', str(out), *SIZE_ARG, '--stride', '2', '--step', '1',
                     '--max-per-source', '5')
    assert code == 0
    triplets = sorted((out / 'sequences' / 'walk').iterdir())
    assert len(triplets) == 5  # 7 possible (s = 0..6), capped at 5
    for start, folder in enumerate(triplets):
        for offset in range(3):
            got = frames.read_image(folder / f'im{offset + 1}.png')
            np.testing.assert_array_equal(got, expected[start + 2 * offset])


def test_split_is_by_source_and_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(2)
    collection = tmp_path / 'clips'
    names = ['alpha', 'bravo', 'charlie', 'delta', 'echo']
    for number, name in enumerate(names):
        write_folder(collection / name, moving(rng, 6 + 3 * number, 48, 64, 2 + number))

    def split(out: Path, *extra: str) -> tuple:
        code, _, _ = run(capsys, str(collection), '--out', str(out), *SIZE_ARG, *extra)
        assert code == 0
        train, test = lines(out / 'tri_trainlist.txt'), lines(out / 'tri_testlist.txt')
        return train, test

    train, test = split(tmp_path / 'one', '--test-fraction', '0.4', '--seed', '3')
    train_sources = {line.split('/')[0] for line in train}
    test_sources = {line.split('/')[0] for line in test}
    assert len(test_sources) == 2 and train_sources.isdisjoint(test_sources)
    assert train_sources | test_sources == set(names)
    listed = sorted(train + test)
    on_disk = sorted(f'{p.parent.name}/{p.name}' for p in (tmp_path / 'one' / 'sequences').glob('*/*'))
    assert listed == on_disk and len(listed) == sum(2 + number for number in range(5))

    assert split(tmp_path / 'two', '--test-fraction', '0.4', '--seed', '3') == (train, test)
    chosen = {tuple(mt.choose_test_sources(names, 0.4, seed=seed)) for seed in range(20)}
    assert len(chosen) > 1  # the seed matters

    train, test = split(tmp_path / 'three', '--test-sources', 'echo', 'alpha')
    assert {line.split('/')[0] for line in test} == {'alpha', 'echo'}
    assert {line.split('/')[0] for line in train} == {'bravo', 'charlie', 'delta'}


def test_choose_test_sources_bounds() -> None:
    names = [f's{index}' for index in range(10)]
    assert mt.choose_test_sources(names, 0.0) == []
    assert len(mt.choose_test_sources(names, 0.01)) == 1  # never an empty side when a split was asked for
    assert len(mt.choose_test_sources(names, 0.99)) == 9
    assert len(mt.choose_test_sources(names, 0.3)) == 3
    assert mt.choose_test_sources(['only'], 0.5) == []
    with pytest.raises(errors.UsageError, match='nope'):
        mt.choose_test_sources(names, test_sources=['nope'])


def test_benchmark_data_and_excludes_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(3)
    collection = tmp_path / 'clips'
    write_folder(collection / 'keep', moving(rng, 6, 48, 64, 3))
    write_folder(collection / 'middlebury_copy', moving(rng, 6, 48, 64, 3))
    write_folder(collection / 'private_take', moving(rng, 6, 48, 64, 3))
    out = tmp_path / 'out'
    code, _, err = run(capsys, str(collection), '--out', str(out), *SIZE_ARG, '--exclude', 'private*')
    assert code == 0
    assert sorted(path.name for path in (out / 'sequences').iterdir()) == ['keep']
    assert 'middlebury_copy' in err and 'benchmark' in err and 'private_take' in err

    # A benchmark folder as the only input: nothing left, a clear error.
    bench = tmp_path / 'Middlebury' / 'RubberWhale'
    write_folder(bench, moving(rng, 6, 48, 64, 3))
    code, _, err = run(capsys, str(bench), '--out', str(tmp_path / 'bench_out'), *SIZE_ARG)
    assert code == 2 and 'benchmark' in err and 'no usable inputs' in err
    assert not (tmp_path / 'bench_out' / 'sequences').exists()


def test_repeated_names_are_made_unique(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(4)
    write_folder(tmp_path / 'a' / 'clip', moving(rng, 3, 48, 64, 3))
    write_folder(tmp_path / 'b' / 'clip', moving(rng, 3, 48, 64, 3))
    out = tmp_path / 'out'
    code, _, _ = run(capsys, str(tmp_path / 'a' / 'clip'), str(tmp_path / 'b' / 'clip'), '--out', str(out),
                     *SIZE_ARG, '--test-fraction', '0')
    assert code == 0
    assert lines(out / 'tri_trainlist.txt') == ['clip/0001', 'clip_2/0001']


def test_existing_output_needs_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(5)
    write_folder(tmp_path / 'clip', moving(rng, 9, 48, 64, 3))
    out = tmp_path / 'out'
    assert run(capsys, str(tmp_path / 'clip'), '--out', str(out), *SIZE_ARG)[0] == 0
    code, _, err = run(capsys, str(tmp_path / 'clip'), '--out', str(out), *SIZE_ARG, '--max-per-source', '1')
    assert code == 2 and '--overwrite' in err
    assert len(list((out / 'sequences' / 'clip').iterdir())) == 3
    code, _, _ = run(capsys, str(tmp_path / 'clip'), '--out', str(out), *SIZE_ARG, '--max-per-source', '1',
                     '--overwrite')
    assert code == 0
    assert [path.name for path in (out / 'sequences' / 'clip').iterdir()] == ['0001']


@pytest.mark.parametrize('case', ['missing', 'size', 'size_zero', 'not_video', 'empty_folder', 'single_image',
                                  'stride', 'nothing_written'])
def test_errors_are_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(6)
    clip = tmp_path / 'clip'
    write_folder(clip, moving(rng, 6, 48, 64, 3))
    argv = {
        'missing': [str(tmp_path / 'nowhere.mp4')],
        'size': [str(clip), '--size', '448by256'],
        'size_zero': [str(clip), '--size', '0x256'],
        'not_video': [str(tmp_path / 'bad.mp4')],
        'empty_folder': [str(tmp_path / 'empty')],
        'single_image': [str(clip / '00000.png')],
        'stride': [str(clip), '--stride', '0'],
        'nothing_written': [str(clip), '--min-motion', '1000'],
    }[case]
    (tmp_path / 'bad.mp4').write_text('this is not a video')
    (tmp_path / 'empty').mkdir()
    code, _, err = run(capsys, *argv, '--out', str(tmp_path / 'out'), *(SIZE_ARG if case[:4] != 'size' else []))
    assert code == 2
    err_lines = [line for line in err.splitlines() if line.strip()]
    assert len(err_lines) == 1 and err_lines[0].startswith('error: ')
    assert 'Traceback' not in err
    assert not (tmp_path / 'out' / 'tri_trainlist.txt').exists()


# ---------------------------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('height, width', [(480, 854), (600, 400), (100, 100), (20, 30), (256, 448)])
def test_resize_cover_crop_size_and_centre(height: int, width: int) -> None:
    image = np.zeros((height, width, 3), np.uint8)
    image[height // 2 - height // 8:height // 2 + height // 8, width // 2 - width // 8:width // 2 + width // 8] = 255
    out = mt.resize_cover_crop(image, 448, 256)
    assert out.shape == (256, 448, 3) and out.dtype == np.uint8
    bright = np.argwhere(out[:, :, 0] > 127)
    centre = bright.mean(axis=0)
    assert abs(centre[0] - 127.5) < 3 and abs(centre[1] - 223.5) < 3  # the centred square stays centred


def test_classify_triplet() -> None:
    rng = np.random.default_rng(7)
    criteria = mt.Criteria()
    shots = moving(rng, 3, 64, 96, 6)
    other = moving(rng, 3, 64, 96, 6, (1.0, 0.3, 0.1))
    noisy = [np.clip(shots[0].astype(int) + rng.integers(-1, 2, shots[0].shape), 0, 255).astype(np.uint8)
             for _ in range(3)]
    assert mt.classify_triplet(mt.triplet_stats(*shots), criteria) == 'keep'
    assert mt.classify_triplet(mt.triplet_stats(*noisy), criteria) == 'static'
    assert mt.classify_triplet(mt.triplet_stats(shots[0], shots[1], other[2]), criteria) == 'cut'
    assert mt.classify_triplet(mt.triplet_stats(shots[0], other[1], other[2]), criteria) == 'cut'
    # Histogram test alone: two equally large jumps (a flash frame) defeat the ratio test.
    flash = np.full_like(shots[1], 250)
    stats = mt.triplet_stats(shots[0], flash, shots[2])
    assert stats['d12'] / stats['d23'] < 3
    assert mt.classify_triplet(stats, criteria) == 'cut'
    assert mt.classify_triplet(stats, mt.Criteria(cut_hist=1.0)) == 'keep'
    # Ratio test alone: the same content shifted a lot (histograms alike) after a still pair.
    stats = mt.triplet_stats(shots[0], shots[0], np.roll(shots[0], 40, axis=1))
    assert max(stats['h12'], stats['h23']) < criteria.cut_hist
    assert mt.classify_triplet(stats, criteria) == 'cut'


KEEP_ALL = ['--min-motion', '0', '--cut-ratio', '1000', '--cut-hist', '1']  # every triplet: no static, no cut


def snapshot(folder: Path) -> dict:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob('*')) if path.is_file()}


@pytest.mark.parametrize('stop', ['SIGINT', 'SIGTERM'])
def test_an_interrupted_overwrite_leaves_the_output_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch, stop: str) -> None:
    """--overwrite used to delete each source's folder before rebuilding it: Ctrl-C in the middle left lists naming
    deleted triplets and sources of two sizes side by side. The run is now built beside OUT and moved in whole."""
    import os
    import signal

    rng = np.random.default_rng(7)
    for name in ('one', 'two'):
        write_folder(tmp_path / 'clips' / name, moving(rng, 9, 48, 64, 3))
    out = tmp_path / 'out'
    inputs = [str(tmp_path / 'clips' / 'one'), str(tmp_path / 'clips' / 'two'), '--out', str(out),
              '--test-fraction', '0', *KEEP_ALL]
    assert run(capsys, *inputs, *SIZE_ARG)[0] == 0
    before = snapshot(out)
    written = []
    original = mt._write_triplet

    def interrupted(folder, triplet, extension, quality):
        written.append(folder)
        if len(written) == 4:  # the first triplet of the second source
            os.kill(os.getpid(), getattr(signal, stop))
        original(folder, triplet, extension, quality)

    monkeypatch.setattr(mt, '_write_triplet', interrupted)
    code, _, err = run(capsys, *inputs, '--size', '32x24', '--overwrite')
    assert code == (130 if stop == 'SIGINT' else 143)
    assert err.strip().splitlines()[-1].endswith(f'; {out} is as it was (this run\'s triplets were not kept)'), err
    assert snapshot(out) == before
    assert not [path for path in tmp_path.rglob('*make_triplets-partial*')]


def test_an_overwrite_replaces_sources_whole_with_their_cached_flows(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(8)
    for name in ('one', 'two', 'kept'):
        write_folder(tmp_path / 'clips' / name, moving(rng, 9, 48, 64, 3))
    out = tmp_path / 'out'
    assert run(capsys, str(tmp_path / 'clips'), '--out', str(out), *SIZE_ARG, '--test-fraction', '0',
               *KEEP_ALL)[0] == 0
    for name in ('one', 'kept'):  # as training leaves them (triplet_data.TripletDataset)
        (out / 'flow_cache' / 'dis-abc' / name).mkdir(parents=True)
        (out / 'flow_cache' / 'dis-abc' / name / '0001.npy').write_bytes(b'flows')
    (out / '.make_triplets-partial').mkdir()  # left by a run killed outright
    (out / '.make_triplets-partial' / 'junk').write_bytes(b'')
    code, _, _ = run(capsys, str(tmp_path / 'clips' / 'one'), str(tmp_path / 'clips' / 'two'), '--out', str(out),
                     '--size', '32x24', '--overwrite', '--test-fraction', '0', '--max-per-source', '2', *KEEP_ALL)
    assert code == 0
    listed = lines(out / 'tri_trainlist.txt')
    assert listed == ['one/0001', 'one/0002', 'two/0001', 'two/0002']
    for name in ('one', 'two'):
        assert sorted(p.name for p in (out / 'sequences' / name).iterdir()) == ['0001', '0002']
    assert all(frames.read_image(out / 'sequences' / entry / 'im2.png').shape == (24, 32, 3) for entry in listed)
    assert frames.read_image(out / 'sequences' / 'kept' / '0001' / 'im2.png').shape == (48, 64, 3)  # not this run's
    assert not (out / 'flow_cache' / 'dis-abc' / 'one').exists()  # flows of the old 'one' triplets
    assert (out / 'flow_cache' / 'dis-abc' / 'kept' / '0001.npy').exists()
    assert sorted(p.name for p in out.iterdir()) == ['flow_cache', 'make_triplets.json', 'sequences',
                                                     'tri_testlist.txt', 'tri_trainlist.txt']
