"""SQLite holds under the app's own processes (issue 10 §2).

One SQLite file with the example site's options (WAL, IMMEDIATE, busy timeout), and at the
same time, each a real process:

- a Huey consumer (``manage.py run_huey``, two worker threads) delivering webhooks,
  processing recordings into media and pages, and running Wagtail's reference-index tasks;
- a chat process: three threads posting chat messages, storing viewer samples and peaks,
  and queueing reference-index updates;
- a transitions process: 30 sessions started and ended back to back, each handing off a real
  recording, twice.

Then: zero "database is locked" anywhere (in each process's output and in the database's
error fields), every session ended with its figures and webhook, every recording present,
queued once and processed. Bounded: the writers run about 20 s, processing is given 60 s.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.recording_media import make_media
from tests.utils import require
from wagtail_live.ffmpeg import ffmpeg_binary

pytestmark = [pytest.mark.services, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = 30
CHAT_SECONDS = 20
CHAT_THREADS = 3
LOCKED = "database is locked"


@pytest.fixture
def stress_env(tmp_path, db):
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.services.sqlite_stress_settings",
        PYTHONPATH=str(ROOT),
        WAGTAIL_LIVE_STRESS_DIR=str(tmp_path),
    )
    env.pop("WAGTAIL_LIVE_TEST_DB", None)  # this test is about SQLite, whatever the suite uses
    from django.db import connection

    if connection.vendor == "sqlite":
        # The suite's test database is migrated already: copy it (a migrate takes minutes).
        connection.ensure_connection()
        target = sqlite3.connect(tmp_path / "db.sqlite3")
        connection.connection.backup(target)
        target.close()
        return env
    migrate = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return env


def step(env, *args, timeout=120):
    """Run one step of tests/services/sqlite_stress.py to the end; its JSON and its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.services.sqlite_stress", *map(str, args)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def start(env, *args, log):
    return subprocess.Popen(
        [sys.executable, "-m", *map(str, args)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE if log is None else log,
        stderr=subprocess.PIPE if log is None else subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finished(process, timeout):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), err


def test_sqlite_holds_under_the_apps_own_processes(stress_env, tmp_path):
    source = make_media(tmp_path / "source.ts", "h264_aac", seconds=1, size="160x120")
    setup, _ = step(stress_env, "setup")

    consumer_log = open(tmp_path / "consumer.log", "w")
    consumer = start(stress_env, "django", "run_huey", "--workers", "2", log=consumer_log)
    try:
        started = time.monotonic()
        chatting = start(
            stress_env,
            "tests.services.sqlite_stress",
            "chat",
            setup["session"],
            CHAT_SECONDS,
            CHAT_THREADS,
            log=None,
        )
        switching = start(
            stress_env, "tests.services.sqlite_stress", "transitions", SESSIONS, source, log=None
        )
        transitions, transitions_err = finished(switching, timeout=120)
        chat, chat_err = finished(chatting, timeout=120)
        writers_took = time.monotonic() - started

        assert transitions["errors"] == [], transitions["errors"][:3]
        assert chat["errors"] == [], chat["errors"][:3]
        pks = transitions["sessions"]
        assert len(pks) == SESSIONS

        # Every recording is there and queued once; the consumer turns each into media.
        deadline = time.monotonic() + 60
        while True:
            report, report_err = step(stress_env, "report", *pks)
            statuses = [s for found in report["recordings"].values() for s in found]
            if statuses.count("ready") == SESSIONS or time.monotonic() > deadline:
                break
            time.sleep(2)
    finally:
        if consumer.poll() is None:
            os.killpg(consumer.pid, signal.SIGINT)  # a graceful stop: workers finish their task
            try:
                consumer.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(consumer.pid, signal.SIGKILL)
                consumer.wait(10)
        consumer_log.close()
    consumer_output = (tmp_path / "consumer.log").read_text()

    for name, output in (
        ("consumer", consumer_output),
        ("chat", chat_err),
        ("transitions", transitions_err),
        ("report", report_err),
    ):
        assert LOCKED not in output, f"{name}: {output[output.find(LOCKED) - 1500 :][:3000]}"
    assert not [error for error in report["recording_errors"] if LOCKED in error]

    assert all(len(found) == 1 for found in report["recordings"].values()), report["recordings"]
    assert statuses.count("ready") == SESSIONS, report["recordings"]
    assert report["ended"] == SESSIONS
    assert report["figures"] == SESSIONS
    assert report["ended_webhooks"] == sorted(pks)
    assert not [error for error in report["webhook_errors"] if LOCKED in error]
    assert report["webhook_attempts"] > 0, "the consumer delivered webhooks meanwhile"
    assert report["chat_messages"] == chat["sent"] > 0
    assert report["samples"] == chat["samples"] > 0
    assert chat["indexed"] > 0 and report["references"] > 0
    assert writers_took < 120
