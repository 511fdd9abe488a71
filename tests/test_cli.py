"""The command-line surface: one spelling per option across the tools, sizes as WxH, the benchmark dispatcher."""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from softmax_splatting.cli import benchmark, options

REPO = Path(__file__).resolve().parents[1]
TOOLS = ['interpolate', 'train', 'train_flow', 'triplets', 'benchmark_middlebury', 'benchmark_xiph',
         'benchmark_model', 'benchmark_softsplat', 'benchmark_video', 'benchmark_flow']


def test_size_is_width_by_height():
    assert options.size('448x256') == (448, 256)
    assert options.size(' 64X48 ') == (64, 48)
    for text in ('448', '448x', 'x256', '-4x4', '0x4', '1.5x3', '4x4x4'):
        with pytest.raises(argparse.ArgumentTypeError):
            options.size(text)


def help_text(tool: str) -> str:
    result = subprocess.run([sys.executable, '-m', f'softmax_splatting.cli.{tool}', '--help'], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope='module')
def helps():
    return {tool: help_text(tool) for tool in TOOLS}


def test_every_tool_spells_shared_options_one_way(helps):
    retired = [r'--weights\b', '--checkpoint-every', '--checkpoint-minutes', r'--batch\b(?!-)', '--size SIZE',
               r'\bHxW\b', 'WIDTHxHEIGHT', r'\{auto,cpu,cuda\}']
    for tool, text in helps.items():
        for old in retired:
            assert not re.search(old, text), (tool, old)
        if '--device' in text:
            assert '--device DEVICE' in text and 'cuda:N' in text, tool
    for tool in ('interpolate', 'train', 'train_flow', 'benchmark_middlebury', 'benchmark_xiph', 'benchmark_model',
                 'benchmark_softsplat', 'benchmark_flow', 'benchmark_video'):
        assert '--threads N' in helps[tool], tool
    for tool in ('interpolate', 'train', 'benchmark_middlebury', 'benchmark_xiph', 'benchmark_model',
                 'benchmark_video'):
        assert '--model' in helps[tool], tool
    for tool in ('train', 'train_flow'):
        assert '--save-every' in helps[tool] and '--batch-size' in helps[tool] and '--crop WxH' in helps[tool]


@pytest.mark.parametrize('tool, argv', [('benchmark_model', ['--sizes', '480x']), ('train', ['--crop', '256']),
                                        ('interpolate', ['--threads', 'two']), ('triplets', ['--bogus'])])
def test_a_bad_option_is_one_line_and_exit_2(tool, argv):
    result = subprocess.run([sys.executable, '-m', f'softmax_splatting.cli.{tool}', *argv], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith('error: '), result.stderr
    assert result.stderr.count('\n') == 1 and '--help' in result.stderr


def test_benchmark_dispatches_to_the_named_benchmark(capsys, monkeypatch):
    assert benchmark.main(['--help']) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in benchmark.SUBCOMMANDS)
    assert benchmark.main(['nonsense']) == 2 and 'unknown benchmark' in capsys.readouterr().err
    assert benchmark.main([]) == 2
    seen = []
    from softmax_splatting.cli import benchmark_model
    monkeypatch.setattr(benchmark_model, 'main', lambda argv: seen.append(argv) or 0)
    monkeypatch.setattr(sys, 'argv', ['softsplat-benchmark'])
    assert benchmark.main(['model', '--sizes', '64x64']) == 0
    assert seen == [['--sizes', '64x64']] and sys.argv[0] == 'softsplat-benchmark model'


def test_threads_are_bounded_by_the_usable_cores(monkeypatch):
    """--threads 1000 was accepted and oversubscribed the machine; every tool now refuses more than 4 per core."""
    monkeypatch.setattr(options, 'available_cores', lambda: 2)
    assert options.threads('1') == 1 and options.threads('8') == 8
    for text in ('0', '9', '1000', '-1', 'two'):
        with pytest.raises(argparse.ArgumentTypeError):
            options.threads(text)
    with pytest.raises(argparse.ArgumentTypeError, match='1000 is not between 1 and 8'):
        options.threads('1000')


@pytest.mark.parametrize('tool', ['interpolate', 'train', 'train_flow', 'benchmark_middlebury', 'benchmark_model'])
def test_every_tool_refuses_too_many_threads_before_any_work(tool):
    from importlib import import_module

    from softmax_splatting.errors import UsageError
    with pytest.raises(UsageError, match=r'argument --threads: 100000 is not between 1 and \d+'):
        import_module(f'softmax_splatting.cli.{tool}').build_parser().parse_args(['--threads', '100000'])
