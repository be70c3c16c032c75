"""``python -m proofs``: see :mod:`proofs.cli`."""

from netsim.cli_args import exit_with

from .cli import main

exit_with(main)
