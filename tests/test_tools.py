"""The helper tools: the training-curve plot, the scene-cut measurement, the video benchmark (a smoke run), the
procedural triplets and the GPU check's machinery (its whole dry run takes a minute, so it is run by hand)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from images import texture

from softmax_splatting import frames

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))

import measure_scene_cuts  # noqa: E402
import plot_training  # noqa: E402


def test_plot_training_draws_loss_and_validation_with_the_classical_line(tmp_path, capsys):
    log = tmp_path / 'log.jsonl'
    records = [{'step': 0, 'val_psnr': 25.0, 'val_classical_psnr': 25.0}]
    records += [{'step': s, 'loss': -6 - 0.001 * s} for s in range(1, 121)]
    records += [{'step': 60, 'val_psnr': 25.1}, {'step': 120, 'val_psnr': 25.2}]
    log.write_text(''.join(json.dumps(r) + '\n' for r in records))
    out = tmp_path / 'curve.png'
    assert plot_training.main([str(log), '--out', str(out), '--smooth', '10']) == 0
    image = frames.read_image(out)
    assert image.shape[0] > 200 and image.shape[1] > 500
    assert image.std() > 10  # something is drawn
    assert plot_training.main([str(tmp_path / 'absent.jsonl'), '--out', str(out)]) == 2
    log.write_text('{"step": 1, "loss": 0.5}\nnot json\n')
    assert plot_training.main([str(log), '--out', str(tmp_path / 'other.png')]) == 2
    err = capsys.readouterr().err
    assert 'no such log file' in err and 'log.jsonl:2: not a JSON line' in err
    assert not (tmp_path / 'other.png').exists()


def test_plot_training_compares_runs_as_separate_lines(tmp_path, monkeypatch):
    logs = []
    for k in range(2):
        log = tmp_path / f'run{k}.jsonl'
        records = [{'step': 0, 'val_psnr': 25.0, 'val_classical_psnr': 25.0}]
        records += [{'step': s, 'loss': -6 - 0.001 * s * (k + 1)} for s in range(1, 61)]
        records += [{'step': 60, 'val_psnr': 25.1 + 0.1 * k}]
        log.write_text(''.join(json.dumps(r) + '\n' for r in records))
        logs.append(str(log))
    drawn = {}
    original = plot_training.plot_runs

    def spy(runs, *args, **kwargs):
        drawn['runs'] = [(label, len(records)) for label, records in runs]
        return original(runs, *args, **kwargs)

    monkeypatch.setattr(plot_training, 'plot_runs', spy)
    out = tmp_path / 'compare.png'
    assert plot_training.main([*logs, '--compare', '--out', str(out), '--smooth', '10']) == 0
    assert drawn['runs'] == [('run0', 62), ('run1', 62)]  # two runs, named after their files, not one curve
    assert frames.read_image(out).std() > 10


def test_measure_scene_cuts_finds_the_gap_between_motion_and_cuts(tmp_path, capsys):
    base = texture(48, 80, seed=1)
    looks = (base, 255 - base, np.ascontiguousarray(base[..., ::-1] // 3))  # each shot in its own colours
    for k, image in enumerate(looks):
        shot = tmp_path / 'shots' / f'shot{k}'
        shot.mkdir(parents=True)
        for step in range(4):  # panning 2 px per frame
            frames.write_image(shot / f'{step:03d}.png', np.ascontiguousarray(image[:, 2 * step:2 * step + 64]))
    results = measure_scene_cuts.measure(tmp_path / 'shots', steps=(1, 2))
    assert set(results) == {'scene score', 'colour distance', 'motion residual'}
    result = results['scene score']
    assert len(result['cuts']) == 6 and len(result['within'][1]) == 9 and len(result['within'][2]) == 6
    assert result['gap'][0] == max(max(v) for v in result['within'].values())
    assert result['gap'][0] < result['gap'][1] and result['middle'] is not None
    assert measure_scene_cuts.main([str(tmp_path / 'shots'), '--steps', '1', '3']) == 0
    out = capsys.readouterr().out
    assert 'its middle' in out and 'step 3: 3 pairs' in out and 'false cuts per step {1: 0, 3: 0}' in out
    assert measure_scene_cuts.main([str(tmp_path / 'shots' / 'shot0')]) == 2
    assert measure_scene_cuts.main([str(tmp_path / 'shots'), '--steps', '0']) == 2


def test_video_benchmark_runs_both_tools(tmp_path):
    from softmax_splatting.cli import benchmark_video
    out = tmp_path / 'bench.json'
    assert benchmark_video.main(['--frames', '3', '--sizes', '64x48', '--repeats', '1', '--model', 'classical',
                                 '--threads', '1', '--json', str(out)]) == 0
    row, = json.loads(out.read_text())['rows']
    assert row['size'] == '64x48' and row['ours_frames'] == 5
    assert row['ours_s_per_frame'] > 0 and row['minterpolate_s_per_frame'] > 0
    assert benchmark_video.main(['--sizes', '64by48']) == 2


def test_video_quality_benchmark_at_frame_step_4(tmp_path):
    """13 frames of a pan: frames 0, 4, 8, 12 kept (6 fps), the 9 between rebuilt with --factor 4 and scored."""
    from images import texture
    from softmax_splatting import frames
    from softmax_splatting.cli import benchmark_video
    wide = texture(48, 64 + 2 * 13, seed=4)
    (tmp_path / 'pan').mkdir()
    for k in range(13):
        frames.write_image(tmp_path / 'pan' / f'{k:05d}.png', wide[:, 2 * k:2 * k + 64])
    out = tmp_path / 'quality.json'
    assert benchmark_video.main(['--quality', '--data', str(tmp_path), '--sequences', 'pan', '--step', '4', '--runs',
                                 'quadratic', 'dis-blend', '--threads', '1', '--json', str(out)]) == 0
    rows = {row['run']: row for row in json.loads(out.read_text())['rows'] if row['sequence'] == 'pan'}
    assert rows['quadratic']['scored'] == 9 and rows['quadratic']['frames'] == 13
    assert rows['quadratic']['psnr'] > 25 and 0 < rows['dis-blend']['ssim'] <= 1
    assert benchmark_video.main(['--quality', '--data', str(tmp_path), '--sequences', 'pan', '--step', '9']) == 2


@pytest.mark.parametrize('tool', ['plot_training.py', 'measure_scene_cuts.py', 'synthetic_triplets.py', 'gpu_check.py',
                                  'gpu_kernel_cases.py', 'tune_motion.py', 'measure_duplicates.py'])
def test_tools_have_help(tool):
    import subprocess
    result = subprocess.run([sys.executable, str(REPO / 'tools' / tool), '--help'], capture_output=True, text=True)
    assert result.returncode == 0 and 'usage' in result.stdout


def test_plot_training_adds_a_panel_for_training_triplets(tmp_path):
    log = tmp_path / 'log.jsonl'
    records = [{'step': 0, 'val_psnr': 25.0, 'val_classical_psnr': 25.0}]
    records += [{'step': s, 'loss': -6 - 0.001 * s} for s in range(1, 61)]
    records += [{'step': 60, 'val_psnr': 24.9}, {'step': 60, 'train_psnr': 27.2}]
    log.write_text(''.join(json.dumps(r) + '\n' for r in records))
    plain, probed = tmp_path / 'plain.png', tmp_path / 'probed.png'
    log_plain = tmp_path / 'plain.jsonl'
    log_plain.write_text(''.join(json.dumps(r) + '\n' for r in records if 'train_psnr' not in r))
    assert plot_training.main([str(log_plain), '--out', str(plain), '--smooth', '10']) == 0
    assert plot_training.main([str(log), '--out', str(probed), '--smooth', '10']) == 0
    # A third panel: the figure is wider, and its right part holds a drawn curve.
    narrow, wide = frames.read_image(plain), frames.read_image(probed)
    assert wide.shape[1] > narrow.shape[1] * 1.3
    assert wide[:, narrow.shape[1]:].std() > 10
    # Runs compared: each run's training-triplet scores are drawn as changes from its first one.
    other = tmp_path / 'other.jsonl'
    other.write_text(log.read_text() + json.dumps({'step': 90, 'train_psnr': 26.3}) + '\n')
    compared = tmp_path / 'compared.png'
    assert plot_training.main([str(log), str(other), '--compare', '--out', str(compared), '--smooth', '10']) == 0
    assert frames.read_image(compared).shape == wide.shape


def test_synthetic_triplets_writes_the_triplet_layout_without_held_out_textures(tmp_path):
    import synthetic_triplets

    from softmax_splatting.triplet_data import read_list, triplet_paths
    davis = tmp_path / 'davis'
    for sequence in ('camel', 'goat', 'libby'):
        frames.write_image(davis / sequence / '00000.jpg', texture(64, 80, seed=1))
    kept = synthetic_triplets.default_textures(davis)
    assert [p for p in kept if p.parent.parent == davis] == [davis / 'camel' / '00000.jpg']

    out = tmp_path / 'synthetic'
    assert synthetic_triplets.main(['--out', str(out), '--count', '2', '--size', '64x48']) == 0
    names = read_list(out, 'train')
    assert names == ['synthetic/00001', 'synthetic/00002']
    one, two, three = (frames.read_image(p) for p in triplet_paths(out, names[1]))
    assert one.shape == (48, 64, 3) and not np.array_equal(one, three)
    with pytest.raises(SystemExit) as refused:
        synthetic_triplets.main(['--out', str(tmp_path / 'none'), '--count', '0'])
    assert refused.value.code == 2 and not (tmp_path / 'none').exists()


def test_synthetic_triplets_stops_cleanly(tmp_path, monkeypatch, capsys):
    import synthetic_triplets

    from softmax_splatting import frames as frame_io
    written = []
    original = frame_io.write_image

    def write_then_interrupt(path, image):  # Ctrl-C in the middle of the second triplet
        if len(written) == 4:
            raise KeyboardInterrupt
        written.append(path)
        original(path, image)

    monkeypatch.setattr(frame_io, 'write_image', write_then_interrupt)
    out = tmp_path / 'synthetic'
    assert synthetic_triplets.main(['--out', str(out), '--count', '3', '--size', '32x24']) == 130
    assert capsys.readouterr().err.strip() == 'interrupted: 1 whole triplets written, no list file'
    assert sorted(p.name for p in (out / 'sequences' / 'synthetic').iterdir()) == ['00001']
    assert not (out / 'tri_trainlist.txt').exists()

    blocker = tmp_path / 'file'
    blocker.write_text('')
    monkeypatch.setattr(frame_io, 'write_image', original)
    assert synthetic_triplets.main(['--out', str(blocker / 'sub'), '--count', '1', '--size', '32x24']) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'error: {blocker / "sub"}') and 'Not a directory' in err and len(err.splitlines()) == 1


def test_gpu_check_reads_training_throughput_after_the_first_steps(tmp_path):
    import gpu_check  # noqa: PLC0415
    log = tmp_path / 'log.jsonl'
    records = [{'step': 1, 'loss': 0.5, 'time': 9.0}]  # the first step carries start-up and compilation
    records += [{'step': s, 'loss': 0.4, 'time': 9.0 + 0.5 * s} for s in range(2, 42)]
    records.insert(10, {'step': 10, 'val_psnr': 30.0, 'time': 99.0})  # validation records are not steps
    log.write_text(''.join(json.dumps(r) + '\n' for r in records))
    result = gpu_check.throughput(log, batch=8)
    assert result['steps'] == 41 and result['steps_per_s'] == pytest.approx(2.0)
    assert result['triplets_per_s'] == pytest.approx(16.0) and result['finite_loss']
    log.write_text(''.join(json.dumps(r) + '\n' for r in records[:4]))
    assert gpu_check.throughput(log, batch=8) == {'steps': 4}
    assert gpu_check.throughput(tmp_path / 'absent.jsonl', batch=8) == {}


def test_gpu_check_steps_stop_on_time_keep_their_logs_and_respect_the_budget(tmp_path, monkeypatch):
    import shutil  # noqa: PLC0415
    import tarfile  # noqa: PLC0415

    import gpu_check  # noqa: PLC0415
    monkeypatch.setattr(gpu_check, 'MIN_STEP_SECONDS', 1)
    out = tmp_path / 'out'
    check = gpu_check.Check(out, budget=60, dry=True)
    ignores_term = ('import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(143)); '
                    'print("working", flush=True); time.sleep(30)')
    record = check.run('stops', [sys.executable, '-c', ignores_term], 20, stop_after=2)
    assert record['rc'] == 143 and record['seconds'] < 10 and record['status'] == 'failed'
    record = check.run('hangs', [sys.executable, '-c', 'import time; time.sleep(30)'], 2)
    assert record['status'] == 'timed out' and record['seconds'] < 10
    check.deadline = gpu_check.time.monotonic() + 5.5  # under a step's minimum once 5 s are kept back: skipped
    assert check.run('late', [sys.executable, '-c', 'print(1)'], 60)['status'] == 'skipped: out of time'
    summary = json.loads((out / 'summary.json').read_text())
    assert [r['step'] for r in summary['steps']] == ['stops', 'hangs', 'late']
    assert '- hangs: timed out' in (out / 'summary.md').read_text()
    with tarfile.open(out / 'gpu_check.tgz') as archive:
        log = archive.extractfile('gpu_check/stops.log').read().decode()
    assert 'working' in log
    assert sorted(p.name for p in out.iterdir()) == ['gpu_check.tgz', 'summary.json', 'summary.md']
    shutil.rmtree(check.scratch)


def test_tune_motion_scores_linear_and_guarded_quadratic_motion(tmp_path, capsys):
    import tune_motion  # noqa: PLC0415
    wide = texture(128, 192 + 64, seed=12)
    shot = tmp_path / 'davis' / 'pan'
    shot.mkdir(parents=True)
    for k in range(9):  # accelerating: x = k^2 pixels
        frames.write_image(shot / f'{k:05d}.png', np.ascontiguousarray(wide[:, k * k:k * k + 192]))
    (tmp_path / 'davis' / 'libby').mkdir()  # a held-out name: never scored
    assert tune_motion.main([str(tmp_path / 'davis'), '--step', '1', '--every', '1', '--guards', 'none',
                             'inf/inf/0.2']) == 0
    out = capsys.readouterr().out
    assert 'step 1, 3 samples' in out and 'linear' in out and 'inf/inf/0.2' in out
    gains = {line.split()[0]: float(line.split()[2].strip('(')) for line in out.splitlines() if 'vs linear' in line}
    assert gains['none'] > 0.5  # accelerating content: quadratic motion is closer
    assert tune_motion.main([str(tmp_path / 'absent')]) == 2
    assert tune_motion.main([str(tmp_path / 'davis'), '--step', '3']) == 2  # 13 frames needed, 9 there
    assert 'error:' in capsys.readouterr().err
