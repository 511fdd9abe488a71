"""The SoftSplat model of the authors' 2022 release (sniklaus/softmax-splatting, ``run.py --model l1|lf``), so that
its weights run here, on a CPU too, and can be fine-tuned.

* ``flow.py``: its six-level PWC-Net-like flow network (``netFlow``);
* ``synthesis.py``: encoder, importance metric, softmax splatting of features and metric, 3 x 6 GridNet
  (``netSynthesis``);
* ``network.py``: :class:`PublishedNet`, the two together with the release's input handling (even padding, BGR,
  joint normalisation) and its files.

Our own reimplementation of the paper's model is ``main_net.MainNet``; this package reproduces the released
network as it is, built from our operator (``softsplat``) and cost volume (``pwc.correlation``).
"""

from .network import (EXPECTED_PARAMETERS, EXPECTED_TENSORS, PublishedNet, is_published_layout, published_keys)

__all__ = ['PublishedNet', 'is_published_layout', 'published_keys', 'EXPECTED_TENSORS', 'EXPECTED_PARAMETERS']
