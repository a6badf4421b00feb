"""The example site's settings for benchmarks/chat_fanout.py: production-like, one sender allowed 1,000 frames/s."""

from example_site.settings import *  # noqa: F403

DEBUG = False  # DEBUG keeps every SQL query in memory
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"wagtail_live": {"handlers": ["console"], "level": "WARNING"}},
}
WAGTAIL_LIVE = {
    **WAGTAIL_LIVE,  # noqa: F405
    # The benchmark's single sender posts up to R messages/s on one socket; viewers only read.
    "SOCKET_RATE_LIMIT": 1000,
}
