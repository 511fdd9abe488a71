"""Running CUDA C sources through CuPy on PyTorch tensors: backend choice, argument packing, launching.

The softmax splatting operator (``softsplat.py``) and PWC-Net's cost volume (``pwc/cost_volume.py``) are both plain
CUDA C kernels with grid-stride loops. Both run here: the source is compiled once per scalar type and device, and
launched on PyTorch's current stream so that it orders with the surrounding PyTorch work. CuPy is optional: without
it (or on CPU tensors) the callers take their pure-PyTorch paths.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Callable, Optional, Sequence

import numpy as np
import torch

__all__ = ['Launcher', 'cupy_launcher', 'import_cupy', 'kernel_arg', 'launch_cupy', 'resolve_backend']


@functools.lru_cache(maxsize=None)
def import_cupy():
    """Return ``(cupy, None)`` if CuPy imports, else ``(None, the exception)``; tried once per process."""
    try:
        import cupy  # noqa: PLC0415 - optional dependency, only for CUDA tensors
        return cupy, None
    except Exception as error:  # CuPy raises more than ImportError when the CUDA runtime is unusable
        return None, error


def resolve_backend(backend: Optional[str], device: torch.device, env_var: str) -> str:
    """Choose ``'cupy'`` or ``'torch'`` for tensors on ``device``.

    ``backend`` (``'auto'``, ``'cupy'``, ``'torch'`` or None) wins over the environment variable ``env_var``;
    ``'auto'`` picks CuPy for CUDA tensors when it imports. CPU tensors always use PyTorch, except that an
    explicit ``backend='cupy'`` on CPU tensors is an error.
    """
    explicit = backend is not None
    choice = (backend if explicit else os.environ.get(env_var, 'auto')).strip().lower()
    if choice not in ('auto', 'cupy', 'torch'):
        source = 'backend' if explicit else f'environment variable {env_var}'
        raise ValueError(f"{source} must be 'auto', 'cupy' or 'torch', got {choice!r}")
    if choice == 'torch':
        return 'torch'
    if device.type != 'cuda':
        if choice == 'cupy' and explicit:
            raise ValueError(f"backend='cupy' runs CUDA tensors only; the tensors are on {device}")
        return 'torch'
    cupy, error = import_cupy()
    if cupy is None:
        if choice == 'cupy':
            raise RuntimeError(f'the CuPy backend was requested but CuPy does not import ({error}); install it '
                               f'with `pip install -r requirements-cuda.txt`')
        return 'torch'
    return 'cupy'


def kernel_arg(value: object) -> np.generic:
    """Pack a kernel argument: tensors (or None) as raw device pointers, Python ints as 64-bit integers.

    Kernels take pointers, ``long long`` sizes and ``int`` dimensions; give ``int`` parameters as ``np.int32``.
    """
    if value is None:
        return np.uint64(0)
    if isinstance(value, torch.Tensor):
        if not value.is_contiguous():
            raise ValueError('kernel arguments must be contiguous tensors')
        return np.uint64(value.data_ptr())
    if isinstance(value, np.generic):
        return value
    if isinstance(value, int):
        return np.int64(value)
    raise TypeError(f'cannot pass {type(value).__name__} to a kernel')


@functools.lru_cache(maxsize=None)
def _cupy_module(source: str, scalar: str, device_index: int):
    cupy, _ = import_cupy()
    with cupy.cuda.Device(device_index):
        return cupy.RawModule(code=f'typedef {scalar} scalar_t;\n{source}', options=('--std=c++14',))


_SCALAR_NAMES = {torch.float32: 'float', torch.float64: 'double'}


def launch_cupy(source: str, name: str, dtype: torch.dtype, device: torch.device, n: int,
                args: Sequence[object]) -> None:
    """Run kernel ``name`` of ``source`` over ``n`` items on PyTorch's current stream of ``device``.

    The module is compiled once per (source, dtype, device); ``scalar_t`` is typedef'd to ``dtype``. Kernels must
    use grid-stride loops over ``n`` (the grid is capped).
    """
    cupy, _ = import_cupy()
    index = device.index if device.index is not None else torch.cuda.current_device()
    function = _cupy_module(source, _SCALAR_NAMES[dtype], index).get_function(name)
    threads = 256
    blocks = max(1, min((n + threads - 1) // threads, 65535 * 32))
    with cupy.cuda.Device(index):
        stream = _external_stream(torch.cuda.current_stream(index).cuda_stream, index)
        function((blocks,), (threads,), tuple(kernel_arg(arg) for arg in args), stream=stream)


@functools.lru_cache(maxsize=64)
def _external_stream(pointer: int, index: int):
    """CuPy's view of PyTorch's stream ``pointer`` on GPU ``index``, made once per stream rather than per launch.

    CuPy 14 marks ``ExternalStream`` deprecated in favour of ``Stream.from_external``, which takes an object with the
    CUDA stream protocol; PyTorch's streams do not all offer it, so the raw pointer is wrapped as before and the
    warning, which says nothing the user can act on, is kept out of their output."""
    cupy, _ = import_cupy()
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='ExternalStream is deprecated', category=DeprecationWarning)
        return cupy.cuda.ExternalStream(pointer, index)


# A launcher runs one kernel: launcher(name, dtype, device, n, args). The CuPy one is launch_cupy bound to the
# source; tests substitute one that runs the same source compiled for the CPU.
Launcher = Callable[[str, torch.dtype, torch.device, int, Sequence[object]], None]


def cupy_launcher(source: str) -> Launcher:
    """A launcher that runs kernels of ``source`` through CuPy on PyTorch's current CUDA stream."""
    return functools.partial(launch_cupy, source)
