"""The example site: wagtail_live on its embedded defaults (SQLite, in-memory channel layer, SqliteHuey).

Everything here is what docs/installation.md tells a site to add; nothing else
is needed for a single-machine site.
"""

import os
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("EXAMPLE_SITE_DATA", BASE_DIR.parent / ".demo"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-site-only-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = True

INSTALLED_APPS = [
    "example_site.home",
    # wagtail_live and what it needs (docs/installation.md)
    "wagtail_live",
    "wagtailmedia",
    "channels",
    "huey.contrib.djhuey",
    # Wagtail
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.settings",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    # daphne's runserver serves websockets too; it must come before staticfiles.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    # Static files straight from the ASGI process, as a site without a front server needs
    # (docs/installation.md): right after SecurityMiddleware, before everything else.
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "example_site.urls"
ASGI_APPLICATION = "example_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# daphne, the Huey workers, the RTMP listener and nginx's callbacks all write to this one file
# (docs/installation.md, "SQLite"): WAL lets readers carry on while one process writes;
# IMMEDIATE transactions take the write lock when they begin, so a busy database makes them
# wait (up to ``timeout`` seconds) instead of failing at once with "database is locked".
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
}

# One process: the in-memory layer. Several daphne workers: channels_redis (docs/scaling-chat.md).
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Background work (recording processing, clean-up) on Huey, stored in SQLite.
HUEY = {
    "huey_class": "huey.SqliteHuey",
    "name": "wagtail_live_example",
    "filename": str(DATA_DIR / "huey.sqlite3"),
    "immediate": False,
    # max_delay: an idle consumer polls SQLite at least every second, so a recording
    # starts processing right after the stream ends.
    "consumer": {"workers": 2, "worker_type": "thread", "max_delay": 1.0},
}

# Wagtail's own background tasks (Django's tasks framework) run on the same Huey queue.
TASKS = {
    "default": {
        "BACKEND": "huey.contrib.djhuey.tasks_backend.HueyBackend",
        "ENQUEUE_ON_COMMIT": True,
    }
}

STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
# WhiteNoise serves STATIC_ROOT (filled by collectstatic, which `manage.py demo` runs) with
# compressed copies and content-hashed names that browsers may cache forever.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Files browsers ask for at the site root (favicon.ico), served by WhiteNoise too.
WHITENOISE_ROOT = BASE_DIR / "public"
# As deployed, even with DEBUG on: only what collectstatic put in STATIC_ROOT, indexed once at
# start (WhiteNoise would otherwise search the apps' folders on each request when DEBUG is on).
WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
# Under ASGI, Django reads WhiteNoise's file responses through a thread and warns once that
# the iterator is synchronous; that is expected for WhiteNoise, and not worth a user's alarm.
warnings.filterwarnings(
    "ignore", message="StreamingHttpResponse must consume synchronous iterators"
)
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"

WAGTAIL_SITE_NAME = "Wagtail Live example"
# The demo works offline and calls no third party: no Gravatar images, no Wagtail update check.
WAGTAIL_GRAVATAR_PROVIDER_URL = None
WAGTAIL_ENABLE_UPDATE_CHECK = False
WAGTAILADMIN_BASE_URL = "http://localhost:8000"
LOGIN_URL = "/admin/login/"

WAGTAIL_LIVE = {
    # The embedded RTMP listener that `make demo` starts (manage.py live_rtmp).
    "RTMP_PUBLIC_URL": "rtmp://localhost:1935/live",
    # Webhooks to private addresses (a receiver on this machine) only when asked for.
    "WEBHOOK_ALLOW_PRIVATE": os.environ.get("WAGTAIL_LIVE_WEBHOOK_ALLOW_PRIVATE") == "1",
}

# Reminder and go-live e-mails are printed by the Huey consumer instead of being sent.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "live@example.com"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"wagtail_live": {"handlers": ["console"], "level": "INFO"}},
}
