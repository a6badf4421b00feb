"""System checks: ``manage.py check`` says clearly what a site still has to set up."""

from django.apps import apps
from django.conf import settings
from django.core import checks

from .conf import DEFAULTS, live_settings


@checks.register()
def check_installed_apps(app_configs, **kwargs):
    errors = []
    for app, why in (
        ("wagtailmedia", "recordings become wagtailmedia items"),
        ("channels", "chat, likes and viewer counts use Django Channels"),
    ):
        if not apps.is_installed(app):
            errors.append(
                checks.Error(
                    f"'{app}' is not in INSTALLED_APPS; wagtail_live needs it because {why}.",
                    hint=f"Add '{app}' to INSTALLED_APPS.",
                    id="wagtail_live.E001",
                )
            )
    return errors


@checks.register()
def check_channels_setup(app_configs, **kwargs):
    warnings = []
    if not getattr(settings, "CHANNEL_LAYERS", None):
        warnings.append(
            checks.Warning(
                "No channel layer is configured, so viewers get no live chat, likes, viewer "
                "counts or status updates.",
                hint="Set CHANNEL_LAYERS, e.g. {'default': {'BACKEND': "
                "'channels.layers.InMemoryChannelLayer'}} for one process, or channels_redis "
                "for several (see docs/installation.md).",
                id="wagtail_live.W001",
            )
        )
    if not getattr(settings, "ASGI_APPLICATION", None):
        warnings.append(
            checks.Warning(
                "ASGI_APPLICATION is not set, so the live websockets are not served.",
                hint="Point ASGI_APPLICATION at your asgi.py application and route "
                "wagtail_live.routing.websocket_urlpatterns there (see docs/installation.md).",
                id="wagtail_live.W002",
            )
        )
    return warnings


@checks.register()
def check_live_settings(app_configs, **kwargs):
    unknown = live_settings._unknown
    if not unknown:
        return []
    return [
        checks.Warning(
            f"WAGTAIL_LIVE has unknown key(s): {', '.join(unknown)}.",
            hint="Known keys: " + ", ".join(sorted(DEFAULTS)) + " (docs/settings.md).",
            id="wagtail_live.W003",
        )
    ]


# The first 100 bytes of an SQLite file are its header; bytes 18 and 19 (the file format's
# write and read versions) are 2 once the file is in WAL mode, which persists in the file
# (https://www.sqlite.org/fileformat.html, "1.3 The Database Header").
_SQLITE_HEADER = b"SQLite format 3\x00"
_WAL_VERSION = 2
#: Seconds a write waits for another process's lock before "database is locked".
MIN_SQLITE_TIMEOUT = 5


# Not tagged ``database``: it reads settings and the file's header, never a connection, so
# plain ``manage.py check`` (and every runserver/daphne start) shows it.
@checks.register()
def check_sqlite_concurrency(app_configs, **kwargs):
    """Warn (W004) when an SQLite database lacks what concurrent writers need.

    daphne, the Huey workers, the RTMP listener and nginx-rtmp's callbacks all
    write to the one file: without WAL, IMMEDIATE transactions and a busy
    timeout, some of them fail with "database is locked".
    """
    warnings = []
    for alias, config in settings.DATABASES.items():
        if config.get("ENGINE") != "django.db.backends.sqlite3" or _in_memory(config):
            continue
        missing = sqlite_missing_options(config)
        if missing:
            warnings.append(
                checks.Warning(
                    f"The SQLite database '{alias}' lacks {', '.join(missing)}: wagtail_live's "
                    "processes write to it at once and some writes will fail with "
                    "'database is locked'.",
                    hint=f"Set DATABASES['{alias}']['OPTIONS'] to {{'timeout': 20, "
                    "'transaction_mode': 'IMMEDIATE', 'init_command': "
                    "'PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL'} "
                    '(docs/installation.md, "SQLite").',
                    id="wagtail_live.W004",
                )
            )
    return warnings


def sqlite_missing_options(config):
    """What an SQLite ``DATABASES`` entry lacks of WAL, IMMEDIATE and a busy timeout (a list)."""
    options = config.get("OPTIONS") or {}
    init_command = "".join(str(options.get("init_command") or "").lower().split())
    missing = []
    if "journal_mode=wal" not in init_command and not _file_is_wal(config.get("NAME")):
        missing.append("WAL journal mode")
    if str(options.get("transaction_mode") or "").upper() not in ("IMMEDIATE", "EXCLUSIVE"):
        missing.append("'transaction_mode': 'IMMEDIATE'")
    if not _has_busy_timeout(options, init_command):
        missing.append(f"a busy timeout ('timeout' of at least {MIN_SQLITE_TIMEOUT} seconds)")
    return missing


def _has_busy_timeout(options, init_command):
    try:
        if float(options.get("timeout", 0)) >= MIN_SQLITE_TIMEOUT:
            return True
    except (TypeError, ValueError):
        pass
    # PRAGMA busy_timeout is in milliseconds.
    for part in init_command.split(";"):
        if part.startswith("pragmabusy_timeout="):
            value = part.split("=", 1)[1]
            return value.isdigit() and int(value) >= MIN_SQLITE_TIMEOUT * 1000
    return False


def _in_memory(config):
    name = str(config.get("NAME") or "")
    return name in ("", ":memory:") or "mode=memory" in name


def _file_is_wal(name):
    try:
        with open(name, "rb") as file:
            header = file.read(20)
    except (OSError, TypeError):
        return False
    return header[:16] == _SQLITE_HEADER and header[18] == header[19] == _WAL_VERSION
