"""Settings for a real daphne the tests start (tests/live_site.py): its own SQLite file."""

import json
import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["WAGTAIL_LIVE_SITE_DB"],
        # daphne serves requests from several threads: wait for a lock, don't fail.
        "OPTIONS": {"timeout": 20},
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
