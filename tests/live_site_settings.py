"""Settings for a real daphne the tests start (tests/live_site.py): its own SQLite file."""

import json
import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["WAGTAIL_LIVE_SITE_DB"],
        # The example site's SQLite options (WAL, IMMEDIATE, a busy timeout): daphne's threads,
        # Huey and the ingest callbacks write at once (docs/installation.md, "SQLite").
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
}
# The example site's page templates and assets, so the home page with the player renders.
TEMPLATES[0]["DIRS"] = [str(BASE_DIR.parent / "example_site" / "templates")]  # noqa: F405
STATICFILES_DIRS = [str(BASE_DIR.parent / "example_site" / "static")]  # noqa: F405
WAGTAIL_LIVE = json.loads(os.environ.get("WAGTAIL_LIVE_SITE_SETTINGS") or "{}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"wagtail_live": {"level": "INFO"}},
}
