"""``python -m netsim``: see :mod:`netsim.cli`."""

import sys

from .cli import main

sys.exit(main())
