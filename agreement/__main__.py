"""``python -m agreement simulate|node|launch ...``: see :mod:`agreement.cli`."""

import sys

from .cli import main

sys.exit(main())
