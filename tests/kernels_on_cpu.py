"""Run the project's CUDA kernels on the CPU, for tests on machines without a GPU.

The kernels are written with grid-stride loops, no shared memory and no headers, so the same source compiles as
C++ once a few CUDA built-ins are defined: one "thread" then walks the whole grid. Atomics become plain
read-modify-writes, which is exact here because that thread is alone. What this checks is the kernels' arithmetic
and indexing and the autograd wiring around them; what it cannot check (races, the real atomics, NVRTC) is left to
the CUDA tests and to `nvcc` compiling the same text (tests/test_kernels_compile.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import torch

SHIM = r'''
#include <cmath>
#include <cstring>
#include <math.h>
using std::isfinite; using std::floor; using std::exp; using std::fabs; using std::sqrt;
#define __global__
#define __device__
#define __forceinline__ inline
struct Dim3 { unsigned int x, y, z; };
static const Dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
template <typename T> inline T atomicAdd(T* a, T v) { T old = *a; *a = old + v; return old; }
template <typename T> inline T atomicMax(T* a, T v) { T old = *a; if (v > old) *a = v; return old; }
template <typename T> inline T atomicMin(T* a, T v) { T old = *a; if (v < old) *a = v; return old; }
template <typename T> inline T atomicCAS(T* a, T compare, T v) { T old = *a; if (old == compare) *a = v; return old; }
template <typename To, typename From> inline To bits_as(From v) { To o; std::memcpy(&o, &v, sizeof(o)); return o; }
inline int __float_as_int(float v) { return bits_as<int>(v); }
inline unsigned int __float_as_uint(float v) { return bits_as<unsigned int>(v); }
inline long long __double_as_longlong(double v) { return bits_as<long long>(v); }
inline float __int_as_float(int v) { return bits_as<float>(v); }
inline double __longlong_as_double(long long v) { return bits_as<double>(v); }
'''

_SCALARS = {torch.float32: 'float', torch.float64: 'double'}
_BUILD_DIR = Path(tempfile.gettempdir()) / 'softsplat-cpu-kernels'


def compiler() -> str | None:
    return shutil.which('g++') or shutil.which('c++')


class CpuKernels:
    """``launcher(name, dtype, device, n, args)`` with the signature of ``cupy_launch.launch_cupy``, on CPU tensors."""

    def __init__(self, source: str):
        self.source = source
        self._libraries: Dict[torch.dtype, ctypes.CDLL] = {}

    def _library(self, dtype: torch.dtype) -> ctypes.CDLL:
        if dtype not in self._libraries:
            text = f'{SHIM}\ntypedef {_SCALARS[dtype]} scalar_t;\n{self.source}'
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            _BUILD_DIR.mkdir(parents=True, exist_ok=True)
            library = _BUILD_DIR / f'kernels-{digest}.so'
            if not library.exists():
                source_file = _BUILD_DIR / f'kernels-{digest}.cpp'
                source_file.write_text(text)
                partial = library.with_suffix('.tmp.so')
                subprocess.run([compiler(), '-O1', '-shared', '-fPIC', '-fno-strict-aliasing', '-std=c++14',
                                '-o', str(partial), str(source_file)], check=True, capture_output=True, text=True)
                partial.replace(library)
            self._libraries[dtype] = ctypes.CDLL(str(library))
        return self._libraries[dtype]

    def __call__(self, name: str, dtype: torch.dtype, device: torch.device, n: int, args: Sequence[object]) -> None:
        from softmax_splatting.cupy_launch import kernel_arg  # noqa: PLC0415 - keeps this helper importable on its own

        assert device.type == 'cpu', 'CpuKernels runs CPU tensors only'
        converted = []
        for arg in (kernel_arg(a) for a in args):
            if isinstance(arg, np.int32):
                converted.append(ctypes.c_int(int(arg)))
            elif isinstance(arg, np.int64):
                converted.append(ctypes.c_longlong(int(arg)))
            elif isinstance(arg, np.uint64):
                converted.append(ctypes.c_void_p(int(arg) or None))
            else:
                raise TypeError(f'unsupported kernel argument {arg!r}')
        getattr(self._library(dtype), name)(*converted)
