"""Settings for the test suite: the embedded defaults, PostgreSQL when asked for."""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "wagtail-live-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "wagtail_live",
    "example_site.home",
    "wagtailmedia",
    "channels",
    "wagtail.contrib.forms",
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
    "huey.contrib.djhuey",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def _postgres_answers():
    """Whether the PostgreSQL the suite would use accepts a connection (within 2 seconds)."""
    try:
        import psycopg

        psycopg.connect(
            dbname=os.environ.get("PGDATABASE", "test"),
            user=os.environ.get("PGUSER", "postgres"),
            host=os.environ.get("PGHOST", "127.0.0.1"),
            port=os.environ.get("PGPORT", "5432"),
            connect_timeout=2,
        ).close()
    except Exception:
        return False
    return True


# WAGTAIL_LIVE_TEST_DB: "postgres" (CI: required), "sqlite", or "auto" (what `make test` passes:
# PostgreSQL when it answers, so its tests run wherever it does). Unset means SQLite, so a bare
# `pytest` never reaches for a shared server.
_test_db = os.environ.get("WAGTAIL_LIVE_TEST_DB", "sqlite")
if _test_db == "auto":
    _test_db = "postgres" if _postgres_answers() else "sqlite"
    # Processes the tests start (settings imported again) choose the same without asking again.
    os.environ["WAGTAIL_LIVE_TEST_DB"] = _test_db

if _test_db == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "test"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": os.environ.get("WAGTAIL_LIVE_TEST_DB_NAME", "test_wagtail_live")},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "test.sqlite3"),
            "TEST": {"NAME": ""},
        }
    }

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

HUEY = {
    "huey_class": "huey.MemoryHuey",
    "immediate": True,
}
# Wagtail's background tasks on Huey, as in the example site (inline here: immediate mode).
TASKS = {"default": {"BACKEND": "huey.contrib.djhuey.tasks_backend.HueyBackend"}}

STATIC_URL = "/static/"
STATIC_ROOT = str(BASE_DIR / "static-collected")
# A folder of its own per run: PRIVATE_ROOT defaults to "live-private" beside MEDIA_ROOT.
MEDIA_ROOT = os.environ.get("WAGTAIL_LIVE_TEST_MEDIA") or os.path.join(
    tempfile.mkdtemp(prefix="wagtail-live-media-"), "media"
)
MEDIA_URL = "/media/"

WAGTAIL_SITE_NAME = "wagtail_live tests"
WAGTAILADMIN_BASE_URL = "http://testserver"
WAGTAILMEDIA = {"MEDIA_MODEL": "wagtailmedia.Media"}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "/admin/login/"

WAGTAIL_LIVE = {}
