"""Two processes ending the same session at once: exactly one wins (PostgreSQL, real processes)."""

import os
import subprocess
import sys
import textwrap

import pytest
from django.db import connection

from tests.utils import make_session, require
from wagtail_live.models import LiveSession

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

RACER = textwrap.dedent(
    """
    import os, sys, time
    import django
    django.setup()
    from django.db import connections
    from wagtail_live.exceptions import InvalidTransition
    from wagtail_live.models import LiveSession
    session = LiveSession.objects.get(pk=int(sys.argv[1]))
    connections["default"].ensure_connection()
    start_at = float(sys.argv[2])
    while time.time() < start_at:
        pass
    try:
        session.end() if sys.argv[3] == "end" else session.start()
        print("won")
    except InvalidTransition as error:
        print("lost:", error)
    """
)


def race(session, action, contenders=4):
    import time

    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "WAGTAIL_LIVE_TEST_DB": "postgres",
        "PGDATABASE": db["NAME"],
    }
    start_at = str(time.time() + 3)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(session.pk), start_at, action],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(contenders)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    for (_out, err), process in zip(outputs, processes, strict=True):
        assert process.returncode == 0, err
    return [out.strip() for out, _ in outputs]


@pytest.fixture
def postgres():
    require(connection.vendor == "postgresql", "PostgreSQL (set WAGTAIL_LIVE_TEST_DB=postgres)")


def test_concurrent_end_has_one_winner(postgres):
    session = make_session()
    session.start()
    results = race(session, "end")
    assert results.count("won") == 1, results
    assert all(r.startswith("lost:") and "already ended" in r for r in results if r != "won")
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.ENDED


def test_concurrent_start_has_one_winner(postgres):
    session = make_session()
    results = race(session, "start")
    assert results.count("won") == 1, results
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.LIVE
