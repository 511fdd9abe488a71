"""Softmax Splatting for Video Frame Interpolation (Niklaus & Liu, CVPR 2020), reimplemented in PyTorch.

The layers, from the bottom up (imports point down):

* ``softsplat``: the softmax splatting operator (Sec. 3), CuPy kernels and a PyTorch path; ``cupy_launch`` runs
  CUDA sources through CuPy for it and for PWC-Net's cost volume.
* ``pwc``: PWC-Net optical flow (Sun et al., 2018); usable on its own.
* ``gridnet``, ``main_net``: the paper's model (Sec. 3.1-3.4); ``classical``: the training-free interpolator.
* ``interpolator``: picks one of them for the tools; ``cli``: the command-line tools.

The Python API in two calls::

    interpolator = load_interpolator('classical', device)   # or the path of a MainNet checkpoint
    frames = interpolator.interpolate(one, two, [0.25, 0.5])  # [N, 3, H, W] float RGB in [0, 1] in and out
"""

import importlib

__all__ = ['CLASSICAL', 'Interpolator', 'load_interpolator', 'select_device']

# Imported on first use (PEP 562), so that importing a tool's launcher does not import PyTorch (cli/__init__.py).
_HOMES = {'CLASSICAL': 'interpolator', 'Interpolator': 'interpolator', 'load_interpolator': 'interpolator',
          'select_device': 'resources'}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f'.{_HOMES[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
