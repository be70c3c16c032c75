"""The ``jungle`` console script: one entry point whose subcommands dispatch to the packages'
own command lines (``python -m netsim``, ``broadcast``, ``agreement``, ``proofs``,
``learning``); see :mod:`jungle_cli.main`."""
