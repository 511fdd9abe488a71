"""Every Python block of README.md runs as written (in a scratch folder, on the CPU)."""

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / 'README.md'
BLOCKS = re.findall(r'```python\n(.*?)```', README.read_text(), flags=re.S)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize('index', range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path):
    before = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(BLOCKS[index], f'README.md block {index + 1}', 'exec'), {'__name__': 'readme'})
    finally:
        os.chdir(before)
