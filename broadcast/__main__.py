"""``python -m broadcast run ...``: see :mod:`broadcast.cli`."""

import sys

from .cli import main

sys.exit(main())
