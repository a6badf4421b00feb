"""A real Huey consumer for tests/services/test_huey_consumer.py: own SQLite database and queue.

The queue is SqliteHuey on a file, or RedisHuey when ``WAGTAIL_LIVE_TEST_REDIS`` is set
(a Redis URL, or ``1`` for the local default); Wagtail's own background tasks go through
Huey's Django-tasks backend onto the same queue.
"""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["WAGTAIL_LIVE_HUEY_DB"],
        "OPTIONS": {"timeout": 30},
    }
}
MEDIA_ROOT = os.environ["WAGTAIL_LIVE_HUEY_MEDIA"]

_redis = os.environ.get("WAGTAIL_LIVE_TEST_REDIS")
if _redis:
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": os.environ["WAGTAIL_LIVE_HUEY_NAME"],
        "url": _redis if "://" in _redis else "redis://127.0.0.1:6379/0",
        "immediate": False,
        "consumer": {"workers": 1, "worker_type": "thread"},
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": os.environ["WAGTAIL_LIVE_HUEY_NAME"],
        "filename": os.environ["WAGTAIL_LIVE_HUEY_QUEUE"],
        "immediate": False,
        "consumer": {"workers": 1, "worker_type": "thread"},
    }

TASKS = {"default": {"BACKEND": "huey.contrib.djhuey.tasks_backend.HueyBackend"}}

# A worker SIGKILLed mid-task stops sending heartbeats; after this many seconds the
# restarted consumer may take the recording over.
WAGTAIL_LIVE = {"RECORDING_LEASE": 3}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "huey": {"handlers": ["console"], "level": "INFO"},
        "wagtail_live": {"handlers": ["console"], "level": "INFO"},
    },
}
