"""``python -m nbharness.cli``: the same as the ``nbharness`` command."""

import sys

from . import main

sys.exit(main())
