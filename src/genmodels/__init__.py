"""genmodels: the helper package of week 13, deep generative models.

Modules: `profiles` (quick/full), `data` (MNIST and Fashion-MNIST), `device` (device, seeds, mixed precision),
`training` (the training loop), `plotting` (image grids, learning curves). The Keras parts are imported on demand,
so `import genmodels` never loads TensorFlow.
"""

import os

# Before anything imports TensorFlow: keep its C++ logging and oneDNN notices out of notebook outputs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from .profiles import Profile, get_profile  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Profile", "get_profile", "__version__"]
