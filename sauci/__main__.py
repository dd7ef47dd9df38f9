"""``python -m sauci``: the same as the ``sauci`` command."""

import sys

from sauci.cli import main

sys.exit(main())
