"""``sauci repo``: register, list and remove the repositories ``sauci serve`` builds."""

from __future__ import annotations

import argparse
from pathlib import Path

from sauci.app.repos import hook_kind, register_repo, resolve_location
from sauci.cli._context import open_cli_store, settings_from, style_from
from sauci.cli._render import duration, table
from sauci.exceptions import ConfigError

__all__ = ["cmd_repo", "register_repo", "resolve_location"]


def _delete_slots(location: str, workspaces: Path) -> list[Path]:
    """The checkout slots a local repository's builds kept, deleted (a slot in
    use by a build is left; a remote repository has none)."""
    from sauci.exceptions import SourceError
    from sauci.source.git import GitSource, is_remote
    from sauci.source.workspaces import remove_slots

    if is_remote(location):
        return []
    try:
        source = GitSource(location)
    except SourceError:  # the repository itself is gone: plain deletes
        source = None
    return remove_slots(location, workspaces, source)


def cmd_repo(args: argparse.Namespace) -> int:
    style = style_from(args)
    settings = settings_from(args)
    store = open_cli_store(settings)
    if args.repo_command == "add":
        repo = register_repo(store, settings, resolve_location(args.location), args.hook, args.poll)
        how = f"{repo.hook} hook" if repo.hook != "none" else "polling"
        print(f"added {repo.id} ({repo.location}), triggered by {how}")
        return 0
    if args.repo_command == "remove":
        from sauci.triggers import remove_hook

        for repo in store.list_registered_repos():
            if args.location in (repo.id, repo.location) or _same(args.location, repo.location):
                if repo.hook != "none" and Path(repo.location).exists():
                    remove_hook(Path(repo.location), hook_kind(repo.hook))
                store.delete_repo(repo.id)
                slots = _delete_slots(repo.location, settings.workspaces_dir)
                deleted = f"; {len(slots)} workspace slot(s) deleted" if slots else ""
                print(f"removed {repo.id}; its hook is taken out{deleted}")
                return 0
        raise ConfigError(f"no registered repository {args.location!r}; see: sauci repo list")
    repos = store.list_registered_repos()
    if not repos:
        print("no repositories registered; add one with: sauci repo add PATH")
        return 0
    rows = [
        [r.id, r.location, r.hook, duration(r.poll_interval) if r.poll_interval else "-"]
        for r in repos
    ]
    print(table(["ID", "LOCATION", "HOOK", "POLL"], rows, style))
    return 0


def _same(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False
