"""A test daphne on channels_redis, for the multi-process tests (tests/services/)."""

import os

from tests.live_site_settings import *  # noqa: F403

REDIS_URL = os.environ.get("WAGTAIL_LIVE_REDIS_URL", "redis://127.0.0.1:6379/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # A per-test prefix keeps concurrent runs on one Redis apart.
        "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ["WAGTAIL_LIVE_REDIS_PREFIX"]},
    }
}
