"""Analytics pages: SQL queries and server time, database-aggregated vs naive.

Builds a fresh database, then measures

* the analytics page of one session with 24 h of 10-second samples (8,640 rows), and
* the site-wide report (first page of 50, and its CSV export) over 1,000 sessions,

each as shipped (``wagtail_live.analytics``: correlated subqueries, one query for the
figures) and computed naively in the same run (rows loaded and summed in Python, one
round of queries per session). Goal: at most 10 queries and 200 ms per page.

    .venv/bin/python benchmarks/analytics.py            # SQLite in a temporary file
    WAGTAIL_LIVE_TEST_DB=postgres .venv/bin/python benchmarks/analytics.py

Results go in docs/benchmarks.md ("Analytics").
"""

import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

SAMPLES = 8640
SESSIONS = 1000
SAMPLES_PER_REPORT_SESSION = 60
CHAT_PER_SESSION = 5
RUNS = 7


def setup_django():
    import django
    from django.conf import settings

    if os.environ.get("WAGTAIL_LIVE_TEST_DB") != "postgres":
        path = Path(tempfile.mkdtemp(prefix="wagtail-live-bench-")) / "bench.sqlite3"
        settings.DATABASES["default"]["NAME"] = str(path)
    else:
        settings.DATABASES["default"]["NAME"] = "wagtail_live_bench"
    settings.DEBUG = False
    django.setup()
    if os.environ.get("WAGTAIL_LIVE_TEST_DB") == "postgres":
        recreate_postgres_database(settings.DATABASES["default"])
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def recreate_postgres_database(config):
    import psycopg

    options = {"host": config["HOST"], "port": config["PORT"], "user": config["USER"]}
    with psycopg.connect(dbname="postgres", autocommit=True, **options) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}"')
        conn.execute(f'CREATE DATABASE "{config["NAME"]}"')


def make_data():
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from wagtail_live.models import ChatMessage, LiveSession, ViewerSample

    admin = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
    now = timezone.now()
    big = LiveSession.objects.create(title="A whole day", owner=admin)
    LiveSession.objects.filter(pk=big.pk).update(
        status="ended", started_at=now - timedelta(days=1), ended_at=now
    )
    ViewerSample.objects.bulk_create(
        (
            ViewerSample(
                session=big,
                at=now - timedelta(days=1) + timedelta(seconds=10 * i),
                viewers=(i * 7919) % 500,
                unique_viewers=i,
            )
            for i in range(SAMPLES)
        ),
        batch_size=2000,
    )
    sessions = LiveSession.objects.bulk_create(
        LiveSession(
            title=f"Session {n}",
            slug=f"session-{n}",
            owner=admin,
            status="ended",
            started_at=now - timedelta(hours=n),
            ended_at=now - timedelta(hours=n) + timedelta(minutes=30),
        )
        for n in range(SESSIONS)
    )
    ViewerSample.objects.bulk_create(
        (
            ViewerSample(session=s, at=s.started_at + timedelta(seconds=30 * i), viewers=i)
            for s in sessions
            for i in range(SAMPLES_PER_REPORT_SESSION)
        ),
        batch_size=5000,
    )
    ChatMessage.objects.bulk_create(
        (
            ChatMessage(session=s, display_name="v", text="hi")
            for s in sessions
            for _ in range(CHAT_PER_SESSION)
        ),
        batch_size=5000,
    )
    return admin, LiveSession.objects.get(pk=big.pk)


# -- the naive versions: what one writes without thinking about the database --


def naive_session_figures(session):
    samples = list(session.viewer_samples.all())
    viewers = [s.viewers for s in samples]
    return {
        "peak_viewers_seen": max([session.peak_viewers, *viewers]),
        "average_viewers": round(sum(viewers) / len(viewers), 1) if viewers else 0,
        "unique_viewers": max((s.unique_viewers for s in samples), default=0),
        "chat_message_count": len(list(session.chat_messages.all())),
        "likes": session.likes,
        "moderation_action_count": len(list(session.moderation_actions.all())),
        "reminder_count": len(list(session.reminders.filter(unsubscribed_at__isnull=True))),
        "sample_count": len(samples),
        "duration_seconds": 0,
    }


def naive_chart_data(session):
    samples = list(session.viewer_samples.order_by("at"))
    return {
        "times": [int(s.at.timestamp() * 1000) for s in samples],
        "viewers": [s.viewers for s in samples],
    }


def naive_report_queryset(date_from=None, date_to=None, owner=None):
    from wagtail_live.models import LiveSession

    return LiveSession.objects.filter(status__in=("live", "ended", "failed")).order_by(
        "-started_at", "-pk"
    )


def naive_decorate(sessions):
    for session in sessions:
        for name, value in naive_session_figures(session).items():
            setattr(session, name, value)
    return sessions


# -- measuring ---------------------------------------------------------------


class QueryCounter:
    """Counts every SQL statement (Django's own query log stops at 9,000)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def measure(client, url):
    """(median ms, queries) of ``RUNS`` requests through the whole stack, after a warm-up."""
    from django.db import connection

    def one():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        if response.streaming:
            b"".join(response.streaming_content)
        return response

    one()
    times = []
    for _ in range(RUNS):
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            one()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), counter.count


def main():
    setup_django()
    from unittest import mock

    from django.db import connection

    from wagtail_live import analytics
    from wagtail_live.views import analytics as views

    started = time.perf_counter()
    admin, big = make_data()
    print(f"data: {SAMPLES} samples + {SESSIONS} sessions in {time.perf_counter() - started:.1f} s")

    from django.test import Client

    client = Client()
    client.force_login(admin)
    results = []

    def row(name, url):
        ms, queries = measure(client, url)
        results.append((name, queries, ms))

    def service(name, work):
        work()
        times = []
        for _ in range(RUNS):
            counter = QueryCounter()
            with connection.execute_wrapper(counter):
                started = time.perf_counter()
                work()
                times.append((time.perf_counter() - started) * 1000)
        results.append((name, counter.count, statistics.median(times)))

    service(
        "service: one session's figures + chart",
        lambda: (analytics.session_figures(big), analytics.chart_data(big)),
    )
    service(
        "service: report rows 1-50 + count",
        lambda: (list(analytics.report_queryset()[:50]), analytics.report_queryset().count()),
    )
    page = f"/admin/live/{big.pk}/analytics/"
    row("session page (8,640 samples)", page)
    row("report, first page of 50", "/admin/live/report/")
    row("report, CSV of 1,000", "/admin/live/report/?export=csv")

    naive = [
        mock.patch.object(analytics, "with_figures", lambda queryset: queryset),
        mock.patch.object(analytics, "session_figures", naive_session_figures),
        mock.patch.object(analytics, "chart_data", naive_chart_data),
        mock.patch.object(analytics, "report_queryset", naive_report_queryset),
        mock.patch.object(
            views.LiveReportView, "decorate_paginated_queryset", lambda self, s: naive_decorate(s)
        ),
        mock.patch.object(
            views.LiveReportView,
            "to_row_dict",
            lambda self, item: views.ReportView.to_row_dict(self, naive_decorate([item])[0]),
        ),
    ]
    for patch in naive:
        patch.start()
    row("naive: session page", page)
    row("naive: report, first page of 50", "/admin/live/report/")
    row("naive: report, CSV of 1,000", "/admin/live/report/?export=csv")
    for patch in naive:
        patch.stop()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\ndatabase: {connection.vendor}; python {platform.python_version()}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}"
    )
    print(f"{'page':40} {'queries':>8} {'median ms':>10}")
    for name, queries, ms in results:
        print(f"{name:40} {queries:>8} {ms:>10.1f}")


if __name__ == "__main__":
    main()
