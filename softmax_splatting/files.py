"""Files: atomic writes, safe checkpoint reading, file-name ordering, and where the checkout keeps its data.

No tool leaves a half-written file behind: outputs go to a temporary name in the same folder and are renamed into
place when complete. Every checkpoint of the project (MainNet weights, training states) is read with
``torch.load(weights_only=True)``, so none can execute code from a file, and every failure reads the same way:
PyTorch's own messages for a corrupt or foreign file are long and, for a weights-only refusal, suggest turning the
safety off, which is the wrong advice. (``pwc/`` keeps its own two small equivalents so that it works on its own.)
A checkpoint holding NaN or infinite values (written by a run that diverged) is refused as well: a model loaded from
it would turn every frame black.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, List, Mapping, Optional, Union

import torch

from .errors import UsageError

__all__ = ['NonFiniteWeights', 'atomic_path', 'check_writable', 'load_checkpoint', 'natural_key', 'non_finite',
           'not_a_file', 'remove_stale_temporaries', 'state_mismatch', 'write_json', 'CHECKOUT', 'EXAMPLE_IMAGES',
           'SHARED_DATA']

PathLike = Union[str, os.PathLike]

# The repository root when running from a checkout, and the data folder the project's README describes beside it.
CHECKOUT = Path(__file__).resolve().parents[1]
SHARED_DATA = CHECKOUT.parent / 'shared' / 'data'
# The example pair, installed with the package (``example_img/`` of the checkout links here).
EXAMPLE_IMAGES = Path(__file__).resolve().parent / 'example_img'


class NonFiniteWeights(ValueError):
    """A checkpoint that reads well but holds NaN or infinite values (:func:`load_checkpoint`)."""


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success, delete it on failure.

    The temporary name keeps the destination's suffix, from which tools infer the format (``.png``, ``.mp4``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f'.{path.stem}.', suffix=path.suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; the result should be an ordinary file
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def not_a_file(path: PathLike, kind: str = 'file') -> Optional[str]:
    """Why ``path`` is not a regular file to read, for an error line (``'no such file'``, ``'is a folder, not a
    file'``, ``'is a named pipe (FIFO), not a regular file'``...), or None when it is one. Devices such as /dev/zero
    never end and a FIFO blocks until someone writes to it, so neither is read as a file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f'no such {kind}'
    except OSError as error:
        return f'cannot be read ({error.strerror or error})'
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f'is a folder, not {"an" if kind[0] in "aeiou" else "a"} {kind}'
    what = ('a named pipe (FIFO)' if stat.S_ISFIFO(mode) else 'a character device' if stat.S_ISCHR(mode) else
            'a block device' if stat.S_ISBLK(mode) else 'a socket' if stat.S_ISSOCK(mode) else 'a special file')
    return f'is {what}, not a regular {kind}'


def remove_stale_temporaries(path: PathLike) -> List[Path]:
    """Delete the temporaries that :func:`atomic_path` left beside ``path`` when a process was killed while writing
    it (SIGKILL, an out-of-memory kill, a power cut: no ``finally`` runs); returns them.

    Only for files that one process owns, such as a training run's checkpoints: another process writing ``path`` at
    the same moment would lose its temporary.
    """
    path = Path(path)
    # mkstemp's names: the prefix, eight characters of [a-z0-9_], the suffix
    pattern = re.compile(rf'\.{re.escape(path.stem)}\.[a-z0-9_]{{8}}{re.escape(path.suffix)}')
    if not path.parent.is_dir():
        return []
    stale = [p for p in path.parent.iterdir() if pattern.fullmatch(p.name) and p.is_file()]
    for temporary in stale:
        temporary.unlink(missing_ok=True)
    return stale


def check_writable(out: PathLike, parent: PathLike) -> None:
    """UsageError unless ``out`` can be created in ``parent`` (or in its nearest existing ancestor, which must be a
    folder): a real write is tried, since permission bits do not tell (root, read-only file systems)."""
    existing = Path(parent)
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f'--out {out}: {existing} is not a folder')
    try:
        probe = tempfile.NamedTemporaryFile(dir=existing, prefix='.write-test-')
        probe.close()
    except OSError as error:
        raise UsageError(f'--out {out}: cannot write in {existing} ({error.strerror or error})') from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = 'cpu') -> object:
    """Load ``path`` with ``weights_only=True``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file is truncated or corrupt, or is not a checkpoint of tensors and plain containers;
            :class:`NonFiniteWeights` (a ValueError) when a floating-point tensor holds NaN or infinite values.
    """
    path = Path(path)
    problem = not_a_file(path, 'checkpoint file')
    if problem is not None:
        raise FileNotFoundError(f'{path}: {problem}')
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        reason = ('not a checkpoint of tensors: corrupt, or holding pickled objects that safe loading refuses')
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError):
        reason = 'truncated or corrupt file'
    except (KeyError, IndexError, TypeError, AttributeError):  # the legacy unpickler meeting a file of another kind
        reason = 'not a checkpoint file at all'
    else:
        bad = non_finite(payload)
        if not bad:
            return payload
        more = f' and {len(bad) - 1} more' if len(bad) > 1 else ''
        raise NonFiniteWeights(f'{path}: holds NaN or infinite weights ({bad[0]}{more}), written by a training run '
                               f'that diverged; use an earlier checkpoint')
    raise ValueError(f'{path}: cannot be read as a PyTorch checkpoint ({reason})')


def non_finite(payload: object, name: str = '') -> List[str]:
    """The names (``key.key``, ``[index]`` for lists) of the floating-point tensors in ``payload``, a tensor or
    dicts, lists and tuples of them, that hold a NaN or an infinity."""
    if isinstance(payload, torch.Tensor):
        finite = not payload.is_floating_point() or bool(torch.isfinite(payload).all())
        return [] if finite else [name or 'the tensor']
    if isinstance(payload, Mapping):
        items = ((f'{name}.{key}' if name else str(key), value) for key, value in payload.items())
    elif isinstance(payload, (list, tuple)):
        items = ((f'{name}[{index}]', value) for index, value in enumerate(payload))
    else:
        return []
    return [bad for inner, value in items for bad in non_finite(value, inner)]


def state_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> str:
    """How ``given`` fails to fit the state_dict ``expected`` of a network, for a one-line error: ``'missing: ...;
    unexpected: ...'`` or ``'wrong shapes: ...'`` (a few names each); ``''`` when it fits. PyTorch's own message
    puts the wrong shapes on lines after a heading that says nothing."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    if missing or unexpected:
        return f'missing: {_some(missing)}; unexpected: {_some(unexpected)}'
    wrong = [f'{k} {list(given[k].shape)} (expected {list(expected[k].shape)})' for k in expected
             if given[k].shape != expected[k].shape]
    return f'wrong shapes: {_some(wrong, 3)}' if wrong else ''


def _some(names: List[str], limit: int = 5) -> str:
    if not names:
        return 'none'
    more = f', ... ({len(names)} in all)' if len(names) > limit else ''
    return ', '.join(names[:limit]) + more


def natural_key(path: Path) -> List[object]:
    """Sort key putting ``frame2`` before ``frame10`` (digits compare as numbers, the rest case-insensitively)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', Path(path).name)]


def write_json(path: PathLike, data: object) -> None:
    """Write ``data`` as indented JSON (a trailing newline included), atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2) + '\n', encoding='utf-8')
