"""A real Huey consumer (``manage.py run_huey``) on a real queue, SIGKILLed mid-task and restarted.

The queue is SqliteHuey locally, RedisHuey when ``WAGTAIL_LIVE_TEST_REDIS`` is set (CI sets
it). The consumer has its own SQLite database, migrated by a subprocess, so nothing here
shares state with the rest of the suite.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.recording_media import make_media
from tests.utils import REQUIRE_ALL, require

pytestmark = [pytest.mark.services, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.services.huey_settings"


@pytest.fixture
def consumer_env(tmp_path):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        PYTHONPATH=str(ROOT),
        WAGTAIL_LIVE_HUEY_DB=str(tmp_path / "db.sqlite3"),
        WAGTAIL_LIVE_HUEY_MEDIA=str(tmp_path / "media"),
        WAGTAIL_LIVE_HUEY_QUEUE=str(tmp_path / "queue.sqlite3"),
        WAGTAIL_LIVE_HUEY_NAME=f"wagtail-live-test-{uuid.uuid4().hex[:8]}",
    )
    if REQUIRE_ALL and not env.get("WAGTAIL_LIVE_TEST_REDIS"):
        env["WAGTAIL_LIVE_TEST_REDIS"] = "1"  # CI: the real queue is Redis
    if env.get("WAGTAIL_LIVE_TEST_REDIS"):
        require(redis_is_up(), "Redis on 127.0.0.1:6379")
    migrate = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    return env


def redis_is_up():
    import redis

    try:
        return redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping()
    except redis.RedisError:
        return False


def scenario(env, *args):
    done = subprocess.run(
        [sys.executable, "-m", "tests.services.huey_scenario", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_consumer(env, log_path):
    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process below
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "run_huey", "--workers", "1"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGKILL reaches ffmpeg too
    )
    process.log = log
    return process


def kill(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    process.log.close()


def recording_row(env):
    with sqlite3.connect(env["WAGTAIL_LIVE_HUEY_DB"], timeout=30) as db:
        row = db.execute("select status, progress, attempts from wagtail_live_recording").fetchone()
    return dict(zip(("status", "progress", "attempts"), row, strict=True)) if row else None


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_consumer_killed_mid_task_and_restarted_leaves_one_media_and_one_page(
    consumer_env, tmp_path
):
    # VP8/Opus must be transcoded: long enough to kill the worker while ffmpeg runs.
    source = make_media(tmp_path / "source.webm", "vp8_opus", seconds=30, size="1280x720")
    log_path = tmp_path / "consumer.log"
    scenario(consumer_env, "enqueue", str(source))

    first = start_consumer(consumer_env, log_path)
    try:
        wait_for(
            lambda: (
                (row := recording_row(consumer_env))
                and row["status"] == "processing"
                and (row["progress"] or 0) > 0
            ),
            120,
            "the first consumer to be converting",
        )
    finally:
        kill(first)
    row = recording_row(consumer_env)
    assert row["status"] == "processing" and row["attempts"] == 1, row
    assert scenario(consumer_env, "counts")["media"] == 0

    time.sleep(4)  # RECORDING_LEASE = 3: the dead worker's claim runs out
    second = start_consumer(consumer_env, log_path)
    try:
        wait_for(
            lambda: recording_row(consumer_env)["status"] in ("ready", "failed"),
            240,
            "the restarted consumer to finish the recording",
        )
    finally:
        kill(second)
    result = scenario(consumer_env, "counts")
    assert result == {"status": "ready", "attempts": 2, "error": "", "media": 1, "pages": 1}, (
        result,
        log_path.read_text(errors="replace")[-3000:],
    )


def test_wagtails_own_background_tasks_run_on_the_same_queue(consumer_env, tmp_path):
    media = Path(consumer_env["WAGTAIL_LIVE_HUEY_MEDIA"])
    media.mkdir(parents=True, exist_ok=True)
    (media / "doomed.txt").write_text("delete me")
    queued = scenario(consumer_env, "wagtail", "doomed.txt")
    assert queued["backend"] == "default"
    assert (media / "doomed.txt").exists(), "queued, not run in the web process"
    consumer = start_consumer(consumer_env, tmp_path / "consumer.log")
    try:
        wait_for(lambda: not (media / "doomed.txt").exists(), 60, "the consumer to run the task")
    finally:
        kill(consumer)
