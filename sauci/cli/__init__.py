"""Command line."""

def main() -> int:
    raise SystemExit("not yet")
