"""``python -m saliency_widget.mine`` / ``torchrun --nproc_per_node=N -m saliency_widget.mine``.

The documented module path of the mining command (see :mod:`saliency_widget.cli.mine`); kept
because torchrun launches a module, and scripts use this one.
"""

import sys

from .cli.mine import main

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
