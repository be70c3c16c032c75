"""``python -m broadcast run ...``: see :mod:`broadcast.cli`."""

from netsim.cli_args import exit_with

from .cli import main

exit_with(main)
