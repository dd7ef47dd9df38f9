"""Sources: where a build's code comes from.

:mod:`sauci.source.git` reads commits and files of a git repository,
:mod:`sauci.source.mirrors` keeps bare mirrors of remote repositories, and
:mod:`sauci.source.workspaces` checks a commit out into a build's workspace.
"""
