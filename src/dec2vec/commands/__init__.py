"""Handlers of the ``dec2vec`` subcommands that have no package of their own to live in.

Each module registers its subcommands (``register``) and holds their handlers, as
``search/commands.py``, ``serving/commands.py`` and ``bench/commands.py`` do; ``dec2vec.cli``
builds the parser from them. Modules import only light things at the top: ``dec2vec --help``
must not pay for torch.
"""
