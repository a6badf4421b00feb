"""`make test` runs the PostgreSQL tests wherever PostgreSQL answers (WAGTAIL_LIVE_TEST_DB=auto)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils import require

ROOT = Path(__file__).resolve().parent.parent
SHOW_ENGINE = (
    "import os; from django.conf import settings; "
    "print(settings.DATABASES['default']['ENGINE'], os.environ['WAGTAIL_LIVE_TEST_DB'])"
)


def engine_chosen(**env):
    """(database engine, the choice passed on to child processes) for tests.settings under ``env``."""
    result = subprocess.run(
        [sys.executable, "-c", SHOW_ENGINE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return tuple(result.stdout.split())


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])  # nothing listens once the socket closes


def test_auto_falls_back_to_sqlite_when_postgres_does_not_answer():
    assert engine_chosen(WAGTAIL_LIVE_TEST_DB="auto", PGPORT=closed_port()) == (
        "django.db.backends.sqlite3",
        "sqlite",
    )


def test_a_bare_pytest_stays_on_sqlite():
    env = {key: value for key, value in os.environ.items() if key != "WAGTAIL_LIVE_TEST_DB"}
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; "
         "print(settings.DATABASES['default']['ENGINE'])"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.stdout.strip() == "django.db.backends.sqlite3", result.stderr


@pytest.mark.services
def test_auto_uses_postgres_when_it_answers():
    reachable = True
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        reachable = False
    require(reachable, "PostgreSQL on 127.0.0.1:5432")
    assert engine_chosen(WAGTAIL_LIVE_TEST_DB="auto", PGPORT="5432") == (
        "django.db.backends.postgresql",
        "postgres",
    )
