"""``python -m learning train|compare|sweep|demo ...``: see :mod:`learning.cli`."""

import sys

from .cli import main

sys.exit(main())
