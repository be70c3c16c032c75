"""``python -m learning train|compare|sweep|demo ...``: see :mod:`learning.cli`."""

from netsim.cli_args import exit_with

from .cli import main

exit_with(main)
