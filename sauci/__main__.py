"""``python -m sauci``: the same as the ``sauci`` command."""

from sauci.cli._console import console

console()
