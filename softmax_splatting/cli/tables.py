"""Markdown tables, the one output format of every benchmark, so that results paste into README.md as printed."""

from __future__ import annotations

from typing import Iterable, Sequence

__all__ = ['header', 'row', 'table']


def header(titles: Sequence[str], numeric: Sequence[bool]) -> str:
    """The title row and the rule; ``numeric`` columns are right-aligned."""
    return row(titles) + '\n' + row(['---:' if right else '---' for right in numeric])


def row(cells: Iterable[object]) -> str:
    """One table row of already formatted cells."""
    return '| ' + ' | '.join(str(cell) for cell in cells) + ' |'


def table(titles: Sequence[str], numeric: Sequence[bool], rows: Iterable[Iterable[object]]) -> str:
    return '\n'.join([header(titles, numeric)] + [row(cells) for cells in rows])
