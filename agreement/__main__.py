"""``python -m agreement simulate ...``: see :mod:`agreement.cli`."""

import sys

from .cli import main

sys.exit(main())
