"""Settings for the SQLite stress test (tests/services/test_sqlite_stress.py).

The database is an SQLite file with **the example site's own options** (WAL, IMMEDIATE
transactions, busy timeout), read from ``example_site/settings.py``; the queue is SqliteHuey
on a file, as in the example site, consumed by a real ``run_huey`` process, and Wagtail's
background tasks (the reference index) go through Huey's Django-tasks backend.
"""

import os

from tests.settings import *  # noqa: F403

os.environ.setdefault("EXAMPLE_SITE_DATA", os.environ["WAGTAIL_LIVE_STRESS_DIR"])
from example_site import settings as example_settings  # noqa: E402

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(os.environ["WAGTAIL_LIVE_STRESS_DIR"], "db.sqlite3"),
        "OPTIONS": example_settings.DATABASES["default"]["OPTIONS"],
    }
}
MEDIA_ROOT = os.path.join(os.environ["WAGTAIL_LIVE_STRESS_DIR"], "media")
HUEY = {
    "huey_class": "huey.SqliteHuey",
    "name": "wagtail-live-stress",
    "filename": os.path.join(os.environ["WAGTAIL_LIVE_STRESS_DIR"], "queue.sqlite3"),
    "immediate": False,
    "consumer": {"workers": 2, "worker_type": "thread"},
}
TASKS = {"default": {"BACKEND": "huey.contrib.djhuey.tasks_backend.HueyBackend"}}
WAGTAIL_LIVE = {
    # The chat's session has no encoder: the clean-up task must not end it mid-test.
    "RECONNECT_GRACE": 3600,
    # Webhooks go to a closed local port: every delivery is an attempt recorded in the database.
    "WEBHOOK_ALLOW_PRIVATE": True,
    "WEBHOOK_TIMEOUT": 1,
    "CHAT_RATE_LIMIT": 100000,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"huey": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
