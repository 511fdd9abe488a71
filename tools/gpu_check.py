"""Everything that needs a GPU, in one prepared run: the CUDA tests, compute-sanitizer, and every GPU figure.

GPUs are lent to this project rarely and for minutes, so nothing may be discovered on the GPU's time. This script
runs, each step under its own time limit and all within ``--budget`` seconds (8 minutes by default):

1. ``environment``: versions, the GPU, whether CuPy and compute-sanitizer are there; Python packages that are
   missing are installed from wheels carried in ``.whl/`` (nothing is downloaded);
2. ``cuda-tests``: the operator's, the cost volume's and the model's tests, CuPy against the PyTorch path (values
   and gradients of every mode in float32/float16/bfloat16, the -0.0 / mixed-sign maximum under real atomics);
3. ``sanitizer``: ``compute-sanitizer --tool memcheck`` on ``tools/gpu_kernel_cases.py`` (every kernel once);
4. ``softsplat``: ``benchmark_softsplat.py`` (CuPy against the simple atomicAdd kernel, up to [1, 3, 2160, 3840]);
5. ``model``: ``benchmark_model.py`` at 1920x1080 and 2048x1080 in float32 and float16, peak memory;
6. ``triplets``, ``train``, ``train-amp``: ``train_and_test.py`` for 60 s on generated triplets (batch 8, 256x256)
   without and with AMP, stopped by SIGTERM (which must save and exit 143); steps/s after the first steps;
7. ``flow``: ``softsplat-benchmark flow`` (PWC-Net with the CuPy and the PyTorch cost volume);
8. ``cli``: ``run_a_pair.py`` as a user with a GPU runs it: the default command (``--device auto`` takes the GPU)
   against the same on the CPU, the shipped weights in float16, a frame-folder video.

``--dry`` runs the same steps on the CPU at toy sizes and skips only what needs CUDA (compute-sanitizer; the CUDA
tests then skip themselves), so the script itself is proven before a GPU is lent. Output, at most three files so
that the device tool brings all of it back: ``OUT/summary.md`` (a line per step and the figures), ``OUT/summary.json``
and ``OUT/gpu_check.tgz`` (every log and JSON result), all rewritten after each step::

    python tools/gpu_check.py --out runs/gpu_check --dry      # on the CPU, before
    python tools/gpu_check.py --out "$OUT"                    # on the GPU (device tool)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TRAIN_SECONDS = 60
MIN_STEP_SECONDS = 10  # a step with less time left than this is skipped, not started
MODULES = ['torch', 'numpy', 'cv2', 'skimage', 'tqdm', 'tensorboard']  # what the steps import; cupy on a GPU


class Check:
    """Runs the steps in order inside one time budget and keeps OUT's three files up to date."""

    def __init__(self, out: Path, budget: float, dry: bool):
        self.out, self.dry, self.deadline = out, dry, time.monotonic() + budget
        self.scratch = Path(tempfile.mkdtemp(prefix='gpu_check_'))
        self.logs = self.scratch / 'logs'
        self.logs.mkdir()
        self.results: List[Dict] = []
        self.env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONDONTWRITEBYTECODE='1')

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, command: List[str], limit: float, stop_after: Optional[float] = None,
            env: Optional[Dict[str, str]] = None, report: bool = True) -> Dict:
        """Run ``command`` with its output in logs/NAME.log, for at most ``limit`` seconds (less if the budget is
        nearly spent). ``stop_after``: send SIGTERM after that many seconds, as a user's timeout would.
        ``report=False``: the caller adds figures to the record and reports it."""
        limit = min(limit, self.left() - 5)
        record = {'step': name, 'command': ' '.join(command)}
        self.results.append(record)
        if limit < MIN_STEP_SECONDS:
            record.update(status='skipped: out of time')
            if report:
                self.report(record)
            return record
        began = time.monotonic()
        with open(self.logs / f'{name}.log', 'w') as log:
            log.write(f'$ {record["command"]}\n')
            log.flush()
            process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                       env=env or self.env, start_new_session=True)
            timed_out = False
            try:
                process.wait(timeout=min(stop_after, limit) if stop_after else limit)
            except subprocess.TimeoutExpired:
                if stop_after and stop_after < limit:
                    process.send_signal(signal.SIGTERM)  # the main process only: it must stop its workers
                    try:
                        process.wait(timeout=limit - (time.monotonic() - began))
                    except subprocess.TimeoutExpired:
                        timed_out = True
                else:
                    timed_out = True
            if timed_out:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        record.update(rc=process.returncode, seconds=round(time.monotonic() - began, 1),
                      status='timed out' if timed_out else ('ok' if process.returncode == 0 else 'failed'))
        if report:
            self.report(record)
        return record

    def note(self, name: str, status: str) -> None:
        self.results.append({'step': name, 'status': status})
        self.report(self.results[-1])

    def report(self, record: Dict) -> None:
        """Print a finished step's line and rewrite OUT's files."""
        print(summary_line(record), flush=True)
        self.write()

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        report = {'dry': self.dry, 'steps': self.results}
        for name, text in (('summary.json', json.dumps(report, indent=1)),
                           ('summary.md', '\n'.join(summary_line(r) for r in self.results) + '\n')):
            temporary = self.out / f'.{name}.tmp'
            temporary.write_text(text)
            temporary.replace(self.out / name)
        temporary = self.out / '.gpu_check.tgz.tmp'
        with tarfile.open(temporary, 'w:gz') as archive:
            archive.add(self.logs, arcname='gpu_check')
        temporary.replace(self.out / 'gpu_check.tgz')


def summary_line(record: Dict) -> str:
    extra = {k: v for k, v in record.items() if k not in ('step', 'status', 'command')}
    return f"- {record['step']}: {record['status']}" + (f' {json.dumps(extra)}' if extra else '')


def environment(check: Check) -> bool:
    """Versions and devices; install missing modules from carried wheels. True when CUDA and CuPy work."""
    missing = [m for m in MODULES + ([] if check.dry else ['cupy']) if importlib.util.find_spec(m) is None]
    wheels = sorted((ROOT / '.whl').glob('*.whl'))
    if missing and wheels:
        site = check.scratch / 'site'
        check.run('install', [PYTHON, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile',
                              '--target', str(site)] + [str(w) for w in wheels], 120)
        check.env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(site), check.env.get('PYTHONPATH')]))
    probe = ('import json, shutil, sys, importlib\n'
             'import torch\n'
             'info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,\n'
             '        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,\n'
             '        "compute_sanitizer": shutil.which("compute-sanitizer")}\n'
             f'for name in {MODULES[1:] + ["cupy"]!r}:\n'
             '    try:\n'
             '        info[name] = getattr(importlib.import_module(name), "__version__", "?")\n'
             '    except Exception as error:\n'
             '        info[name] = f"missing ({type(error).__name__}: {error})"\n'
             'if info["gpu"] and not info["cupy"].startswith("missing"):\n'
             '    import cupy; cupy.arange(3).sum().item(); info["cupy_runs"] = True\n'
             'print(json.dumps(info))\n')
    record = check.run('environment', [PYTHON, '-c', probe], 60, report=False)
    text = (check.logs / 'environment.log').read_text().strip().splitlines()
    try:
        info = json.loads(text[-1])
    except (json.JSONDecodeError, IndexError):
        info = {}
    record.update(info)
    check.report(record)
    if shutil.which('nvidia-smi'):
        check.run('nvidia-smi', ['nvidia-smi'], 20)
    return bool(info.get('gpu')) and bool(info.get('cupy_runs'))


def cuda_tests(check: Check, gpu: bool) -> None:
    junit = check.logs / 'cuda-tests.xml'
    record = check.run('cuda-tests', [PYTHON, '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider',
                                      f'--junitxml={junit}', 'tests/test_softsplat_kernels.py',
                                      'tests/test_pwc_correlation.py', 'tests/test_main_net.py',
                                      'tests/test_softsplat.py'], 240, report=False)
    log = (check.logs / 'cuda-tests.log').read_text()
    tail = [line for line in log.splitlines() if ' passed' in line or ' failed' in line or ' error' in line]
    record.update(result=tail[-1] if tail else None,
                  cuda_skips=sum(int(line.split('[')[1].split(']')[0]) for line in log.splitlines()
                                 if line.startswith('SKIPPED [') and 'CUDA' in line))
    if gpu and record['status'] == 'ok' and record['cuda_skips']:
        record['status'] = 'failed: CUDA tests skipped on a GPU'
    check.report(record)


def sanitizer(check: Check, gpu: bool) -> None:
    tool = shutil.which('compute-sanitizer') or next(
        (str(p) for p in sorted(Path('/usr/local').glob('cuda*/bin/compute-sanitizer')) if p.is_file()), None)
    cases = [PYTHON, 'tools/gpu_kernel_cases.py', '--device', 'cuda' if gpu else 'cpu']
    if not gpu:
        check.run('kernel-cases', cases, 60)  # the workload itself, through the CPU-compiled kernels
        check.note('sanitizer', 'skipped: needs CUDA')
        return
    if tool is None:
        check.run('kernel-cases', cases, 60)
        check.note('sanitizer', 'skipped: compute-sanitizer is not on this machine')
        return
    env = dict(check.env, PYTORCH_NO_CUDA_MEMORY_CACHING='1')  # one allocation per tensor: overruns are caught
    check.run('sanitizer', [tool, '--tool', 'memcheck', '--error-exitcode', '99', '--leak-check', 'no',
                            '--target-processes', 'all'] + cases, 150, env=env)


def benchmark_softsplat(check: Check, gpu: bool) -> None:
    check.run('softsplat', [PYTHON, 'benchmark_softsplat.py', '--device', 'cuda' if gpu else 'cpu',
                            '--json', str(check.logs / 'softsplat.json')]
              + ([] if gpu else ['--repeats', '1', '--shapes', '1x3x48x64', '--modes', 'sum', 'soft']), 150)


def benchmark_model(check: Check, gpu: bool) -> None:
    check.run('model', [PYTHON, 'benchmark_model.py', '--device', 'cuda' if gpu else 'cpu',
                        '--json', str(check.logs / 'model.json')] + ([] if gpu else ['--repeats', '1', '--sizes',
                                                                                     '128x64']), 180)


def training(check: Check, gpu: bool) -> None:
    data = check.scratch / 'triplets'
    record = check.run('triplets', [PYTHON, 'tools/synthetic_triplets.py', '--out', str(data), '--seed', '1',
                                    '--count', '48' if gpu else '4', '--size', '448x256' if gpu else '96x64'], 60)
    if record['status'] != 'ok':
        return
    seconds = TRAIN_SECONDS if gpu else 15
    for name, extra in (('train', []), ('train-amp', ['--amp'])):
        run = check.scratch / name
        command = [PYTHON, 'train_and_test.py', '--data', str(data), '--out', str(run), '--steps', '1000000',
                   '--val-every', '0', '--save-every', '0', '--save-minutes', '0', '--seed', '1',
                   '--device', 'cuda' if gpu else 'cpu'] + extra
        command += ['--batch-size', '8', '--crop', '256x256'] if gpu else ['--batch-size', '2', '--crop', '64x64',
                                                                           '--workers', '1']
        record = check.run(name, command, seconds + 60, stop_after=seconds, report=False)
        record.update(throughput(run / 'log.jsonl', batch=8 if gpu else 2),
                      saved_on_sigterm=record.get('rc') == 143 and (run / 'last.pt').is_file())
        if record['status'] == 'failed' and record['saved_on_sigterm']:
            record['status'] = 'ok'  # stopped as planned: SIGTERM, last.pt written, exit 143
        if (run / 'log.jsonl').is_file():
            shutil.copy(run / 'log.jsonl', check.logs / f'{name}.jsonl')
        shutil.rmtree(run, ignore_errors=True)
        check.report(record)


def throughput(log: Path, batch: int, skip: int = 5) -> Dict:
    """Steps/s between the end of step ``skip`` (start-up, kernel compilation and autotuning done) and the last."""
    if not log.is_file():
        return {}
    steps = [r for r in map(json.loads, log.read_text().splitlines()) if 'loss' in r]
    if len(steps) <= skip + 1:
        return {'steps': len(steps)}
    first, last = steps[skip], steps[-1]
    rate = (last['step'] - first['step']) / max(last['time'] - first['time'], 1e-9)
    return {'steps': last['step'], 'steps_per_s': round(rate, 3), 'triplets_per_s': round(rate * batch, 2),
            'finite_loss': all(abs(r['loss']) < float('inf') for r in steps)}


def flow(check: Check, gpu: bool) -> None:
    check.run('flow', [PYTHON, '-m', 'softmax_splatting.cli.benchmark', 'flow', '--device', 'cuda' if gpu else 'cpu',
                       '--json', str(check.logs / 'flow.json')] + ([] if gpu else ['--sizes', '128x64',
                                                                                   '--repeats', '1']), 120)


def command_line(check: Check, gpu: bool) -> None:
    """The tools as a user with a GPU runs them: the README's default command (``--device auto`` picks the GPU)
    against the same command on the CPU, the shipped weights in float16, and a frame-folder video."""
    work = check.scratch / 'cli'
    (work / 'in').mkdir(parents=True)
    device = 'cuda' if gpu else 'cpu'
    auto, cpu = work / 'auto.png', work / 'cpu.png'
    check.run('pair-default', [PYTHON, 'run_a_pair.py', '--out', str(auto)], 120)
    record = check.run('pair-cpu', [PYTHON, 'run_a_pair.py', '--device', 'cpu', '--out', str(cpu)], 120,
                       report=False)
    if auto.is_file() and cpu.is_file():
        import cv2  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415
        difference = cv2.imread(str(auto)).astype(np.float64) - cv2.imread(str(cpu)).astype(np.float64)
        mse = float(np.mean(difference ** 2))
        record['default_vs_cpu_psnr'] = round(10 * np.log10(255 ** 2 / mse), 2) if mse else 'identical'
        if mse and 10 * np.log10(255 ** 2 / mse) < 40:
            record['status'] = 'failed: the GPU frame differs from the CPU frame'
    check.report(record)
    check.run('pair-learned', [PYTHON, 'run_a_pair.py', '--model', 'weights/softsplat.pt', '--device', device,
                               '--time', '0.25', '0.5', '--out', str(work / 'learned.png')]
              + (['--fp16'] if gpu else []), 180)
    shift = ('import sys, cv2, numpy as np\n'
             'image = cv2.imread("example_img/one.png")\n'
             'for i in range(5):\n'
             '    cv2.imwrite(f"{sys.argv[1]}/{i:03d}.png", np.roll(image, 3 * i, axis=1))\n')
    subprocess.run([PYTHON, '-c', shift, str(work / 'in')], cwd=ROOT, check=True)
    record = check.run('video-frames', [PYTHON, 'run_a_pair.py', '--video', str(work / 'in' / '%03d.png'),
                                        '--input-fps', '24', '--factor', '2', '--device', device,
                                        '--out', str(work / 'out') + '/'], 180, report=False)
    record['frames_written'] = len(list((work / 'out').glob('*.png'))) if (work / 'out').is_dir() else 0
    if record['status'] == 'ok' and record['frames_written'] != 9:
        record['status'] = 'failed: 5 frames at --factor 2 should give 9'
    check.report(record)


STEPS = {'tests': cuda_tests, 'sanitizer': sanitizer, 'softsplat': benchmark_softsplat, 'model': benchmark_model,
         'train': training, 'flow': flow, 'cli': command_line}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=Path(os.environ.get('OUT') or ROOT / 'runs' / 'gpu_check'),
                        help='folder for summary.md, summary.json and gpu_check.tgz (default: $OUT, else '
                             'runs/gpu_check)')
    parser.add_argument('--budget', type=float, default=480, help='seconds for all steps together (default: 480)')
    parser.add_argument('--dry', action='store_true', help='on the CPU at toy sizes, skipping what needs CUDA')
    parser.add_argument('--only', nargs='+', choices=list(STEPS), metavar='STEP',
                        help=f'run these steps only (after the environment): {", ".join(STEPS)}')
    args = parser.parse_args(argv)
    check = Check(args.out, args.budget, args.dry)
    try:
        gpu = environment(check)
        if not gpu and not args.dry:
            check.note('gpu', 'failed: CUDA or CuPy is not usable here (see environment.log); use --dry on a CPU')
            return 1
        for name, step in STEPS.items():
            if not args.only or name in args.only:
                step(check, gpu)
    except KeyboardInterrupt:
        check.note('interrupted', 'stopped by Ctrl-C')
        return 130
    finally:
        shutil.rmtree(check.scratch, ignore_errors=True)
    bad = [r for r in check.results if r['status'] != 'ok' and not r['status'].startswith('skipped')]
    print(f'{len(bad)} steps did not pass: ' + ', '.join(r['step'] for r in bad) if bad else 'every step passed')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
