"""Stand-in `torchvision` for the parity-oracle venv (see ../README.md).

The reference audio packages import image names at module level (CLIP image paths of
open_clip that LAION-CLAP inherited); none is used for audio. Every name is importable and
raises NotImplementedError when used.
"""

__version__ = "0.0.0+genau-parity-standin"
IS_STANDIN = True

from . import datasets, ops, transforms  # noqa: E402,F401
