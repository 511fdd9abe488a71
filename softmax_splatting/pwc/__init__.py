"""PWC-Net optical flow (Sun et al., "PWC-Net: CNNs for Optical Flow Using Pyramid, Warping, and Cost Volume",
CVPR 2018), the flow estimator of Softmax Splatting (Niklaus & Liu, CVPR 2020, Sec. 4).

The network loads the widely used PyTorch checkpoint ``network-default.pytorch`` unchanged (place it at
``pwc/weights/network-default.pytorch``; nothing is downloaded) and stays trainable. Contents:

* ``PWCNet``: the network (``pwc/network.py``); ``estimate``: flow between RGB images of any size
  (``pwc/inference.py``); ``correlation``: the cost volume, CuPy kernels or PyTorch (``pwc/cost_volume.py``).
* Flow utilities: ``read_flo`` / ``write_flo`` (``pwc/flo.py``), ``flow_to_color`` (``pwc/colorwheel.py``),
  ``backwarp`` (``pwc/warp.py``), ``endpoint_error`` (``pwc/loss.py``).
* Files: ``_io.py`` (safe checkpoint reading, atomic writes) and ``_checks.py`` (argument checks), its own, so that
  the package works when copied out of this project; only the CuPy cost-volume kernels need the project around it.

Training (``softsplat-train-flow``) and its data (``chairs.py``, ``synthetic_flow.py``) live in the project, outside
this package.
"""

from .colorwheel import flow_to_color
from .cost_volume import correlation
from .flo import read_flo, write_flo
from .inference import estimate
from .loss import endpoint_error, multiscale_loss
from .network import DEFAULT_WEIGHTS, CheckpointError, PWCNet
from .warp import backwarp

__all__ = ['PWCNet', 'correlation', 'estimate', 'read_flo', 'write_flo', 'flow_to_color', 'backwarp',
           'endpoint_error', 'multiscale_loss', 'CheckpointError', 'DEFAULT_WEIGHTS']
