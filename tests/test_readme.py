"""README.md as written: every Python block runs (in a scratch folder, on the CPU), and every command line of our
tools in it parses with that tool's options."""

import importlib
import os
import re
import shlex
from pathlib import Path

import pytest

from softmax_splatting.errors import UsageError

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


# ------------------------------------------------------------------------------------- command lines ------------

TEXT = README.read_text() + '\n\n' + (README.parent / 'weights' / 'README.md').read_text()
TOOL_MODULES = {'run_a_pair.py': 'interpolate', 'train_and_test.py': 'train', 'make_triplets.py': 'triplets',
                'softsplat-interpolate': 'interpolate', 'softsplat-train': 'train',
                'softsplat-train-flow': 'train_flow', 'softsplat-triplets': 'triplets', 'app.py': 'app',
                'softsplat-app': 'app'}


def readme_commands():
    """Every command of ours in README.md and weights/README.md: code blocks (fenced or indented), inline spans."""
    blocks = [body for language, body in re.findall(r'^```(\w*)\n(.*?)^```$', TEXT, flags=re.S | re.M)
              if language in ('', 'sh', 'bash')]
    blocks += re.findall(r'(?:^|\n\n)((?: {4}\S.*\n)+)', TEXT)
    lines = [line.strip() for block in blocks for line in re.sub(r'\\\n\s*', ' ', block).splitlines()]
    spans = re.findall(r'`((?:python|softsplat-|torchrun)[^`]*)`', TEXT)
    # a bare tool name in prose or a table names the tool; with arguments it is a command
    lines += [span for span in spans
              if len(span.split()) > (2 if span.startswith(('python', 'softsplat-benchmark')) else 1)]
    commands, variables = [], {}
    for line in lines:
        for part in re.split(r'\s*(?:&&|;)\s+', re.split(r'\s+#', line)[0]):
            assignment = re.fullmatch(r'(\w+)=(.*)', part)
            if assignment:  # NAME=value, as the shell would expand $NAME later in the block
                variables[assignment.group(1)] = ' '.join(shlex.split(assignment.group(2)))
                continue
            words = shlex.split(re.sub(r'\$(\w+)', lambda m: variables.get(m.group(1), m.group(0)), part))
            if words and (words[0] in ('python', 'torchrun') or words[0].startswith('softsplat-')):
                commands.append(words)
    return commands


def tool_and_arguments(words):
    """The cli module a command runs and its arguments, or None for commands that are not our tools."""
    if words[0] == 'torchrun':
        words = ['python'] + [w for w in words if w.endswith('.py') or not w.startswith('-')][1:]
        words = words[words.index('train_and_test.py') - 1:] if 'train_and_test.py' in words else words
    if words[0] == 'python':
        if len(words) < 2:
            return None
        if words[1:3] == ['-m', 'softmax_splatting.cli.train_flow']:
            return 'train_flow', words[3:]
        if words[1].startswith('benchmark_') and words[1].endswith('.py'):
            return words[1][:-3], words[2:]
        if words[1] in TOOL_MODULES:
            return TOOL_MODULES[words[1]], words[2:]
        return None
    if words[0] == 'softsplat-benchmark':
        return ('benchmark_' + words[1], words[2:]) if len(words) > 1 and '|' not in words[1] else None
    return (TOOL_MODULES[words[0]], words[1:]) if words[0] in TOOL_MODULES else None


def test_the_readme_names_our_tools():
    tools = {found[0] for found in map(tool_and_arguments, readme_commands()) if found}
    assert {'interpolate', 'train', 'triplets', 'benchmark_middlebury', 'benchmark_xiph', 'benchmark_model',
            'train_flow'} <= tools, tools


def test_every_readme_command_line_parses():
    """Each of our commands in the README uses options its tool has, in the formats it reads (parsing only)."""
    checked = 0
    for words in readme_commands():
        found = tool_and_arguments(words)
        if found is None or '...' in words or '--help' in words:
            continue
        tool, arguments = found
        module = importlib.import_module(f'softmax_splatting.cli.{tool}')
        try:
            module.build_parser().parse_args(arguments)
        except UsageError as error:
            pytest.fail(f'README: {" ".join(words)}: {error}')
        checked += 1
    assert checked >= 20, checked


def test_scripts_the_readme_runs_exist():
    for words in readme_commands():
        if words[0] == 'python' and words[1].endswith('.py'):
            assert (README.parent / words[1]).is_file(), words


def test_the_package_folder_holds_what_the_package_runs_and_the_training_records_are_in_docs():
    """weights/ (a link into the package) keeps the checkpoint and its README; the logs and curves of the CPU
    training runs live in docs/training/, and every one of them that the READMEs or plot_training.py name exists."""
    package_weights = README.parent / 'softmax_splatting' / 'weights'
    assert sorted(p.name for p in package_weights.iterdir()) == ['README.md', 'softsplat.pt']
    text = TEXT + (README.parent / 'tools' / 'plot_training.py').read_text()
    named = set(re.findall(r'(?:docs/training/)?(train_log\w*\.jsonl|training_curve\.png|chunks_4_7\.png)', text))
    assert {'train_log.jsonl', 'train_log_chunk7.jsonl', 'training_curve.png', 'chunks_4_7.png'} <= named
    assert all((README.parent / 'docs' / 'training' / name).is_file() for name in named), named
    assert not re.search(r'weights/(train_log|training_curve|chunks_4_7)', text)
