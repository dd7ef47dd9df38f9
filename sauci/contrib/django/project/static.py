"""How the built-in project serves its static files: WhiteNoise, each file found
when it is first asked for.

Why WhiteNoise: Django itself serves static files only with DEBUG on and says
not to in production; WhiteNoise serves them from the installed apps
(``WHITENOISE_USE_FINDERS``, so no ``collectstatic`` step and no writable
static directory) with caching headers, in the same WSGI app, with no CDN or
second server.

Why on first request: WhiteNoise's middleware builds its whole table of files
when it is made, before the first request: a stat, the headers and the
compressed variants of each of the 129 files of the installed apps (127 of
them the admin's, whose pages most starts of ``sauci serve`` never show),
about 25 ms of CPU of every start on a busy 2-core machine. Here a file is
looked up with WhiteNoise's own ``find_file`` (canonical URLs only, then
Django's finders) on its first request and kept in the same table, so every
later request is answered as before, with the same headers.
"""

from __future__ import annotations

from typing import Any

from whitenoise.middleware import WhiteNoiseMiddleware

__all__ = ["StaticFilesMiddleware"]


class StaticFilesMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]
    """WhiteNoise's middleware with its table of files filled on demand.

    Only files that exist are kept (a URL that finds none falls through to
    Django, a 404, and adds nothing), so the table never holds more entries
    than the installed apps have static files.
    """

    def add_files_from_finders(self) -> None:
        """Nothing is scanned when the middleware is made: see ``__call__``."""

    def __call__(self, request: Any) -> Any:
        path = request.path_info
        if path.startswith(self.static_prefix) and path not in self.files:
            found = self.find_file(path)
            if found is not None:
                self.files[path] = found
        return super().__call__(request)
