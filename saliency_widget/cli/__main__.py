"""``python -m saliency_widget.cli`` (and ``torchrun -m saliency_widget.cli``): the ``saliency-widget`` command."""

import sys

from . import main

sys.exit(main())
