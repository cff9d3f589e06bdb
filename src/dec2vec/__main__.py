"""``python -m dec2vec``: the same as the ``dec2vec`` command."""

import sys

from .cli import main

sys.exit(main())
