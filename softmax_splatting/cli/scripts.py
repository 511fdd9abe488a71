"""The console scripts of ``pyproject.toml`` (``softsplat-interpolate`` ...): each starts its tool through
:func:`softmax_splatting.cli.program`. A module of their own, because functions named after the tools in the
package itself would hide the tool modules of the same names."""

from . import program

__all__ = ['interpolate', 'train', 'train_flow', 'benchmark', 'triplets', 'app']


def interpolate() -> int:
    return program('interpolate')


def train() -> int:
    return program('train')


def train_flow() -> int:
    return program('train_flow')


def benchmark() -> int:
    return program('benchmark')


def triplets() -> int:
    return program('triplets')


def app() -> int:
    return program('app')
