"""``serve_ui``: the UI of ``sauci serve``, in this process, through waitress.

Why waitress: it is a production WSGI server in pure Python (no compiler, no
fork), so it runs in a thread beside SauCI's server loop and shares its store;
it buffers slow clients in its own event loop and hands requests to a bounded
thread pool, and it flushes each write of a streaming response at once
(``send_bytes=1``), which live log following needs. Gunicorn and uWSGI fork
worker processes and cannot be embedded this way; ``runserver`` is not for
production.

Static files (the UI's two and the admin's) are WhiteNoise's, each found when
first asked for: see :mod:`sauci.contrib.django.project.static`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sauci.contrib.django.project.migrations_due import migrations_due
from sauci.contrib.django.project.ui_head import create_ui_head
from sauci.core.config import Settings
from sauci.exceptions import ConfigError

__all__ = ["UIHandle", "project_settings", "serve_ui"]

ADMIN_USER = "admin"
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _secret_key(path: Path) -> str:
    """The project's SECRET_KEY: made once, kept in the data dir, readable only by us."""
    try:
        key = path.read_text().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def _allowed_hosts(host: str) -> list[str]:
    extra = [h.strip() for h in os.environ.get("SAUCI_ALLOWED_HOSTS", "").split(",") if h.strip()]
    if host in ("0.0.0.0", "::", ""):
        # Bound to every interface: any name may reach it; narrow it with
        # SAUCI_ALLOWED_HOSTS.
        return extra or ["*"]
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return sorted({shown, *_LOOPBACK, *extra} - {"::1"})


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def secure_cookies() -> bool:
    """``SAUCI_SECURE_COOKIES``: send the session and CSRF cookies over HTTPS only."""
    value = os.environ.get("SAUCI_SECURE_COOKIES", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"SAUCI_SECURE_COOKIES={value!r}: expected 1/true/yes/on or 0/false/no/off")


def trusted_proxy() -> str | None:
    """``SAUCI_TRUSTED_PROXY``: the address of the TLS-terminating proxy in front, if any."""
    return os.environ.get("SAUCI_TRUSTED_PROXY", "").strip() or None


def project_settings(
    settings: Settings, *, host: str = "127.0.0.1", store: Any = None
) -> dict[str, Any]:
    """Django settings of the built-in project, from SauCI's Settings.

    Logins are throttled by django-axes: after 5 failed attempts for one
    user name from one address, that pair is locked out for 15 minutes
    (answered 429), and a successful login resets the count. The client
    address is REMOTE_ADDR, which waitress sets from X-Forwarded-For only
    when the request comes from ``SAUCI_TRUSTED_PROXY``.
    """
    ui_dir = settings.data_dir / "ui"
    ui_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    secure = secure_cookies()
    return {
        "DEBUG": False,
        "SECRET_KEY": _secret_key(ui_dir / "secret_key"),
        "ALLOWED_HOSTS": _allowed_hosts(host),
        "INSTALLED_APPS": [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "axes",
            "sauci.contrib.django",
        ],
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            "sauci.contrib.django.project.static.StaticFilesMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
            "sauci.contrib.django.middleware.AnalyticsMiddleware",
            "sauci.contrib.django.middleware.ErrorLogMiddleware",
            # Last, as axes asks: it turns a locked-out login into its 429 answer.
            "axes.middleware.AxesMiddleware",
        ],
        "AUTHENTICATION_BACKENDS": [
            "axes.backends.AxesStandaloneBackend",
            "django.contrib.auth.backends.ModelBackend",
        ],
        "AXES_FAILURE_LIMIT": 5,
        "AXES_COOLOFF_TIME": timedelta(minutes=15),
        # The pair, not the address alone: behind a proxy or NAT many people
        # share an address, and one of them must not lock the others out.
        "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]],
        "AXES_RESET_ON_SUCCESS": True,
        "AXES_VERBOSE": False,
        "ROOT_URLCONF": "sauci.contrib.django.project.urls",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(ui_dir / "ui.sqlite3"),
            }
        },
        "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
        "USE_TZ": True,
        "STATIC_URL": "/static/",
        "WHITENOISE_USE_FINDERS": True,
        "WHITENOISE_AUTOREFRESH": False,
        "LOGIN_URL": "login",
        "LOGIN_REDIRECT_URL": "sauci:overview",
        "LOGOUT_REDIRECT_URL": "login",
        # Cookies: HTTPS only with SAUCI_SECURE_COOKIES (behind TLS), never
        # readable by scripts, not sent along with other sites' requests.
        "SESSION_COOKIE_SECURE": secure,
        "CSRF_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SAMESITE": "Lax",
        # SecurityMiddleware and XFrameOptionsMiddleware send these headers.
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
        "SAUCI": {
            "LOGIN_URL": "login",
            "STORE": store if store is not None else settings.store_url,
            "DATA_DIR": str(settings.data_dir),
            "ARTIFACTS_DIR": str(settings.artifacts_dir),
            "BROKER": settings.broker or None,  # readyz/ checks it
        },
        "SAUCI_BUILTIN_PROJECT": str(settings.data_dir),
    }


def _max_body() -> int:
    """The largest request body waitress takes in: the webhook's limit or
    Django's for a form, whichever is larger. waitress reads a whole body
    (spilling to a temporary file) before the application sees its request,
    and takes 1 GiB by default: an anonymous client could have it buffer a
    gigabyte on disk for each connection it opens, only for the application
    to refuse it. Past this, waitress answers 413 at the headers."""
    from django.conf import settings as django_settings

    from sauci.contrib.django import conf

    form = getattr(django_settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None) or 0
    return max(int(conf.config()["WEBHOOK_MAX_BODY"]), int(form), 1 << 20) + (64 << 10)


def _proxy_options(proxy: str | None) -> dict[str, Any]:
    """waitress's own handling of a reverse proxy: only a request from ``proxy``
    may say, in X-Forwarded-For and X-Forwarded-Proto, who the client is and
    that it came over HTTPS (REMOTE_ADDR for the login throttle, the scheme for
    secure redirects and CSRF); from anybody else those headers are dropped."""
    if not proxy:
        return {}
    return {
        "trusted_proxy": proxy,
        "trusted_proxy_count": 1,
        "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
        "clear_untrusted_proxy_headers": True,
    }


class UIHandle:
    """A running UI: ``url``, ``admin_password`` (set only when just created), ``stop()``."""

    def __init__(
        self,
        server: Any,
        url: str,
        admin_password: str | None,
        admin: threading.Thread | None = None,
    ):
        self._server = server
        self._admin = admin  # makes the admin login beside the start
        self._stopping = threading.Event()
        self.url = url
        self.port = int(server.effective_port)
        self.admin_password = admin_password
        self._thread = threading.Thread(target=self._run, name="sauci-ui", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        server = self._server
        # One loop round at a time, so that stop() ends the loop from this
        # thread: closing sockets under a running select() is a race.
        try:
            while not self._stopping.is_set():
                server.asyncore.loop(
                    timeout=0.5, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1
                )
        finally:
            for channel in list(server._map.values()):
                with contextlib.suppress(OSError):
                    channel.close()
            server.task_dispatcher.shutdown(timeout=2)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close connections, and wait for the server thread
        (and for the admin login to be made, if it is still being made)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._server.pull_trigger()
        deadline = time.monotonic() + timeout
        self._thread.join(timeout)
        if self._admin is not None:
            self._admin.join(max(deadline - time.monotonic(), 0.0))


def _new_admin_password(password: str | None) -> str | None:
    """A password to print once, when the admin login must be created with a random one."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    if password is not None or users.objects.filter(username=ADMIN_USER).exists():
        return None
    if users.objects.filter(is_superuser=True).exists():
        return None  # someone made their own superuser: leave it at that
    return secrets.token_urlsafe(12)


def _ensure_admin(password: str | None) -> str | None:
    """Create the admin login on first start; returns a password only when it is new to the user."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    user = users.objects.filter(username=ADMIN_USER).first()
    if user is None:
        if users.objects.filter(is_superuser=True).exists() and password is None:
            return None  # someone made their own superuser: leave it at that
        chosen = password or secrets.token_urlsafe(12)
        users.objects.create_superuser(ADMIN_USER, email="", password=chosen)
        return chosen if password is None else None
    if password is not None and not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return None


def _posts_after(ready: threading.Event, application: Any, wait: float = 30.0) -> Any:
    """``application`` whose POST requests first wait (at most ``wait`` s) for ``ready``."""

    def held(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") == "POST" and not ready.is_set():
            ready.wait(wait)
        return application(environ, start_response)

    return held


def serve_ui(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    admin_password: str | None = None,
    store: Any = None,
    threads: int = 8,
    quiet: bool = False,
) -> UIHandle:
    """Serve the UI on ``host:port`` in a background thread; returns a handle to stop it.

    Django is configured here from ``settings`` (once per process). On first
    start the login ``admin`` is created: with ``admin_password`` (or env
    ``SAUCI_ADMIN_PASSWORD``) if given, else with a random password printed
    once. ``store`` shares an open Store (the server's) instead of opening
    ``settings.store_url`` again. ``port=0`` picks a free port (see ``.port``).
    """
    try:
        import django
        import waitress
        import whitenoise  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the web UI needs {exc.name}: pip install 'sauci[django]'") from exc
    from django.conf import settings as django_settings

    if django_settings.configured:
        if getattr(django_settings, "SAUCI_BUILTIN_PROJECT", None) != str(settings.data_dir):
            raise ConfigError(
                "Django is already configured in this process; serve_ui needs a process of its own"
            )
    else:
        django_settings.configure(**project_settings(settings, host=host, store=store))
    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    # A new UI database: what `migrate` would make, at once (when the versions match).
    create_ui_head(Path(django_settings.DATABASES["default"]["NAME"]))
    if migrations_due():
        call_command("migrate", interactive=False, verbosity=0)
    password = admin_password or os.environ.get("SAUCI_ADMIN_PASSWORD") or None
    created = _new_admin_password(password)
    # Hashing a password costs about 0.4 s (PBKDF2): done beside the server's
    # start, not before it (the printed password is chosen here already).
    # Until it is done, POSTs (a login, a form) wait for it: pages are served
    # at once, and a login in the first half second is not refused (nor
    # counted as a failed attempt).
    admin_ready = threading.Event()

    def make_admin() -> None:
        try:
            _ensure_admin(created or password)
        finally:
            admin_ready.set()

    application = _posts_after(admin_ready, get_wsgi_application())
    try:
        server = waitress.create_server(
            application,
            host=host,
            port=port,
            threads=threads,
            ident="sauci",
            send_bytes=1,
            max_request_body_size=_max_body(),
            **_proxy_options(trusted_proxy()),
        )
    except OSError as exc:  # the port is taken, the address is not this machine's, ...
        raise ConfigError(
            f"cannot serve the web UI on {host}:{port}: {exc.strerror or exc}; "
            "choose another --port (or --host)"
        ) from exc
    # Started once the port is ours (a UI that cannot start makes no login
    # whose password nobody is shown). Not a daemon, and stop() waits for it:
    # a server stopped in its first second keeps the login it has printed.
    admin = threading.Thread(target=make_admin, name="sauci-admin")
    admin.start()
    shown = f"[{host}]" if ":" in host else host
    handle = UIHandle(server, f"http://{shown}:{server.effective_port}/", created, admin)
    if not quiet:
        print(f"sauci: web UI on {handle.url}", flush=True)
        if created:
            print(
                f"sauci: created the login {ADMIN_USER!r} with password {created!r} "
                "(shown only this once; change it at /admin/)",
                flush=True,
            )
    return handle
