"""The flags of ``sauci trigger`` beyond the repository and ref (imported by every command's
parser, so nothing heavy here)."""

from __future__ import annotations

import argparse

__all__ = ["add_trigger_flags"]


def add_trigger_flags(trigger: argparse.ArgumentParser) -> None:
    trigger.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="build parameter (repeatable)"
    )
    trigger.add_argument(
        "--event",
        choices=("manual", "pull_request"),
        default="manual",
        help="pull_request: build --ref as a pull request into --base (default: manual)",
    )
    trigger.add_argument("--base", help="a pull request's base (target) branch")
    trigger.add_argument("--number", type=int, default=0, help="a pull request's number")
