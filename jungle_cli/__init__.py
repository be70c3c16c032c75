"""The ``jungle`` console script: one entry point whose subcommands dispatch to the packages'
own command lines (``python -m netsim``, later ``python -m agreement``, ``proofs``,
``learning``)."""
