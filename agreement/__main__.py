"""``python -m agreement simulate|node|launch ...``: see :mod:`agreement.cli`."""

from netsim.cli_args import exit_with

from .cli import main

exit_with(main)
