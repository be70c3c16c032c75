"""``python -m netsim``: see :mod:`netsim.cli`."""

from .cli import main
from .cli_args import exit_with

exit_with(main)
