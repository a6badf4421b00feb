"""A transition finishes all of its parts, once, through transient database errors (issue 10 §2).

Each test makes one write fail with SQLite's ``database is locked`` at a point where
the old code had already committed part of the work, and shows that every part
(status, stream keys, log entry, final figures, webhooks, hooks, the viewers' event,
the recording hand-off) still happens, exactly once.
"""

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.messages import get_messages
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone
from wagtail import hooks
from wagtail.models import ModelLogEntry

from tests.utils import make_session
from wagtail_live import analytics, events, recordings, transient, webhooks
from wagtail_live.ingest import base as ingest
from wagtail_live.models import LiveSession, Recording, SessionFigures, Webhook, WebhookDelivery
from wagtail_live.models import sessions as session_models

pytestmark = pytest.mark.django_db

SECRET = "nginx-shared-secret-for-tests"


def locked():
    return OperationalError("database is locked")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """Retries without the back-off sleeps: the tests are about what happens, not when."""
    monkeypatch.setattr(transient.time, "sleep", lambda seconds: None)


@pytest.fixture
def queued(monkeypatch):
    """What reached the task queue: webhook deliveries and recordings, by primary key."""
    seen = {"webhooks": [], "recordings": []}
    monkeypatch.setattr(webhooks, "_enqueue", lambda pk, delay=None: seen["webhooks"].append(pk))
    monkeypatch.setattr(
        recordings, "queue_processing", lambda recording: seen["recordings"].append(recording.pk)
    )
    return seen


@pytest.fixture
def webhook(db):
    return Webhook.objects.create(
        name="Bot",
        url="https://hooks.example.com/live",
        secret="s" * 32,
        events=[e.value for e in Webhook.Event],
    )


def fail_after(monkeypatch, owner, name, times=1):
    """Make ``owner.name`` do its work and then raise ``database is locked`` ``times`` times."""
    real = getattr(owner, name)
    calls = []

    def flaky(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) <= times:
            raise locked()
        return result

    monkeypatch.setattr(owner, name, flaky)
    return calls


def subscribe(pk):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.group_name(pk), channel)
    return layer, channel


def received(layer, channel):
    """Every event waiting on ``channel`` (stops after 0.2 s of silence)."""

    async def drain():
        found = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), 0.2)
            except TimeoutError:
                return found
            found.append(message["event"])

    return async_to_sync(drain)()


def end_log_entries(session, action="wagtail_live.end"):
    return ModelLogEntry.objects.filter(object_id=str(session.pk), action=action).count()


INJECTION_POINTS = {
    # The old code's failure: the status was committed, then the figures write raised.
    "final figures": lambda mp: fail_after(mp, analytics, "store_final_figures"),
    "webhook deliveries": lambda mp: fail_after(mp, webhooks, "emit"),
    "log entry": lambda mp: fail_after(mp, session_models, "log"),
}


@pytest.mark.parametrize("point", [*INJECTION_POINTS, "after_live_session_end hook"])
def test_end_finishes_every_part_once_through_a_locked_database(
    point, monkeypatch, session, webhook, queued, django_capture_on_commit_callbacks
):
    session.issue_stream_key()
    session.start()
    layer, channel = subscribe(session.pk)
    hook_runs = []

    def hook(ended):
        if point == "after_live_session_end hook" and not hook_runs:
            hook_runs.append("failed")
            raise locked()
        hook_runs.append(ended.status)

    if point in INJECTION_POINTS:
        INJECTION_POINTS[point](monkeypatch)
    deliveries_before = WebhookDelivery.objects.count()
    with hooks.register_temporarily("after_live_session_end", hook):
        with django_capture_on_commit_callbacks(execute=True):
            session.end()

    session.refresh_from_db()
    assert session.status == LiveSession.Status.ENDED and session.ended_at is not None
    assert not session.stream_keys.filter(revoked_at__isnull=True).exists()
    assert end_log_entries(session) == 1
    assert SessionFigures.objects.filter(session=session).count() == 1
    ended = WebhookDelivery.objects.filter(event=Webhook.Event.SESSION_ENDED)
    assert ended.count() == 1
    assert WebhookDelivery.objects.count() == deliveries_before + 1
    assert queued["webhooks"] == [ended.get().pk]  # queued once, after the commit
    assert hook_runs[-1] == LiveSession.Status.ENDED and hook_runs.count("ended") == 1
    assert received(layer, channel) == [{"type": "status", "state": "ended"}]
    assert session.announced is True


def test_start_finishes_every_part_once_through_a_locked_database(
    monkeypatch, session, webhook, queued, django_capture_on_commit_callbacks
):
    fail_after(monkeypatch, webhooks, "emit")
    layer, channel = subscribe(session.pk)
    with django_capture_on_commit_callbacks(execute=True):
        session.start()
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.LIVE
    assert WebhookDelivery.objects.filter(event=Webhook.Event.SESSION_STARTED).count() == 1
    assert len(queued["webhooks"]) == 1
    assert end_log_entries(session, "wagtail_live.start") == 1
    assert received(layer, channel) == [{"type": "status", "state": "live"}]


def test_a_transition_that_stays_locked_changes_nothing_and_says_so(
    monkeypatch, session, webhook, queued
):
    session.start()
    layer, channel = subscribe(session.pk)
    fail_after(monkeypatch, analytics, "store_final_figures", times=100)
    with pytest.raises(OperationalError, match="database is locked"):
        session.end()
    # All or nothing: still live (the clean-up task or the host ends it later), nothing stored.
    assert session.status == LiveSession.Status.LIVE and session.ended_at is None
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.LIVE
    assert not SessionFigures.objects.filter(session=session).exists()
    assert not WebhookDelivery.objects.filter(event=Webhook.Event.SESSION_ENDED).exists()
    assert end_log_entries(session) == 0
    assert received(layer, channel) == []
    # The next attempt, with the database free again, does it all.
    monkeypatch.undo()
    session.end()
    assert SessionFigures.objects.filter(session=session).count() == 1


def test_other_errors_are_not_retried(monkeypatch, session):
    session.start()
    calls = []

    def broken(ended):
        calls.append(1)
        raise OperationalError("no such table: wagtail_live_sessionfigures")

    monkeypatch.setattr(analytics, "store_final_figures", broken)
    with pytest.raises(OperationalError, match="no such table"):
        session.end()
    assert calls == [1]
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.LIVE


def test_end_live_in_the_admin_answers_with_the_result_not_a_500(
    client, monkeypatch, host, session, queued
):
    session.start()
    fail_after(monkeypatch, analytics, "store_final_figures", times=2)
    client.force_login(host)
    response = client.post(reverse("wagtail_live_admin:end_live", args=[session.pk]))
    assert response.status_code == 302
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.ENDED
    assert SessionFigures.objects.filter(session=session).count() == 1
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(texts) == 1 and "ended" in texts[0] and "unavailable" not in texts[0]


# -- the recording hand-off ----------------------------------------------------------------


def recorded(session, size=4096):
    """A finished recording where the pipeline leaves it."""
    path = ingest.recording_path(session)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x47" * size)
    return path


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path


@pytest.mark.parametrize("point", ["end", "recording row"])
def test_finish_session_hands_off_once_through_a_locked_database(
    point, monkeypatch, media, session, queued, django_capture_on_commit_callbacks
):
    session.start()
    recorded(session)
    if point == "end":
        fail_after(monkeypatch, analytics, "store_final_figures")
    else:
        fail_after(monkeypatch, Recording.objects, "get_or_create")
    with django_capture_on_commit_callbacks(execute=True):
        ingest.finish_session(LiveSession.objects.get(pk=session.pk))
    # A second delivery of the same hand-off (a repeated callback, the clean-up task).
    with django_capture_on_commit_callbacks(execute=True):
        ingest.finish_session(LiveSession.objects.get(pk=session.pk))

    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.ENDED
    recording = Recording.objects.get(session=session)
    assert recording.source.name == session.media_path(ingest.RECORDING_NAME)
    assert queued["recordings"] == [recording.pk]


def test_a_recording_whose_hand_off_was_lost_is_found_by_the_clean_up(
    monkeypatch, media, session, queued, django_capture_on_commit_callbacks
):
    session.start()
    recorded(session)
    monkeypatch.setattr(ingest, "hand_off_recording", lambda *a: (_ for _ in ()).throw(locked()))
    with pytest.raises(OperationalError):
        ingest.finish_session(LiveSession.objects.get(pk=session.pk))
    monkeypatch.undo()
    monkeypatch.setattr(transient.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(
        recordings, "queue_processing", lambda recording: queued["recordings"].append(recording.pk)
    )
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.ENDED
    assert not Recording.objects.exists()
    assert ingest.recording_path(session).stat().st_size == 4096  # the file is kept

    # Too soon: the encoder's last callback may still be closing the file.
    assert ingest.hand_off_missed_recordings() == []
    later = timezone.now() + timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        assert [s.pk for s in ingest.hand_off_missed_recordings(now=later)] == [session.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest.hand_off_missed_recordings(now=later) == []
    recording = Recording.objects.get(session=session)
    assert queued["recordings"] == [recording.pk]


# -- nginx-rtmp's callbacks: sent once, so retried inside ----------------------------------


@pytest.fixture
def nginx(settings, media):
    settings.WAGTAIL_LIVE = {"NGINX_SECRET": SECRET, "RECONNECT_GRACE": 0}
    return settings


def callback(client, name, data):
    return client.post(
        reverse(f"wagtail_live:{name}"),
        data,
        HTTP_X_WAGTAIL_LIVE_SECRET=SECRET,
    )


def nginx_recorded(session):
    """The file nginx-rtmp closed: ``<pk>%2Fhls.flv`` beside the session's folder."""
    directory = session.media_dir
    directory.mkdir(parents=True, exist_ok=True)
    path = directory.parent / ingest.nginx_recording_name(session)
    path.write_bytes(b"FLV" + b"\0" * 4096)
    return path


@pytest.mark.parametrize("point", ["end", "recording row", "both"])
def test_on_record_done_retries_and_a_second_delivery_does_nothing_twice(
    point, client, monkeypatch, nginx, session, queued, django_capture_on_commit_callbacks
):
    session.start()
    ingest.hls_playlist_path(session).parent.mkdir(parents=True, exist_ok=True)
    ingest.hls_playlist_path(session).write_text("#EXTM3U\n#EXTINF:1.000,\n0.ts\n")
    path = nginx_recorded(session)
    if point in ("end", "both"):
        fail_after(monkeypatch, analytics, "store_final_figures")
    if point in ("recording row", "both"):
        fail_after(monkeypatch, Recording.objects, "get_or_create", times=2)
    layer, channel = subscribe(session.pk)
    form = {"app": "live", "name": f"{session.pk}/hls", "path": str(path)}
    with django_capture_on_commit_callbacks(execute=True):
        assert callback(client, "rtmp_on_record_done", form).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert callback(client, "rtmp_on_record_done", form).status_code == 200

    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.ENDED
    recording = Recording.objects.get(session=session)
    assert recording.source.name == session.media_path("recording.flv")
    assert queued["recordings"] == [recording.pk]
    assert SessionFigures.objects.filter(session=session).count() == 1
    assert end_log_entries(session) == 1
    assert received(layer, channel) == [{"type": "status", "state": "ended"}]


def test_a_callback_that_stays_locked_answers_503_not_500(
    client, monkeypatch, nginx, session, queued
):
    session.start()
    path = nginx_recorded(session)
    fail_after(monkeypatch, analytics, "store_final_figures", times=100)
    form = {"app": "live", "name": f"{session.pk}/hls", "path": str(path)}
    response = callback(client, "rtmp_on_record_done", form)
    assert response.status_code == 503
    # Nothing half-done: the session is still live, so the clean-up task finishes it later.
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.LIVE
    assert not Recording.objects.exists()


def test_retries_do_not_multiply_when_nested(monkeypatch):
    attempts = []

    def inner():
        attempts.append("inner")
        raise locked()

    def outer():
        attempts.append("outer")
        transient.retry_transient(inner)

    with pytest.raises(OperationalError):
        transient.retry_transient(outer, attempts=3)
    assert attempts == ["outer", "inner"] * 3


def test_is_transient_knows_sqlite_and_postgres_errors():
    assert transient.is_transient(locked())
    assert transient.is_transient(OperationalError("database table is locked: x"))
    assert not transient.is_transient(OperationalError("no such table: x"))
    assert not transient.is_transient(ValueError("database is locked"))

    class Deadlock(Exception):
        sqlstate = "40P01"

    error = OperationalError("deadlock detected")
    error.__cause__ = Deadlock()
    assert transient.is_transient(error)


def test_the_clean_up_task_goes_on_past_a_session_it_cannot_end_yet(monkeypatch, media):
    stuck, other = make_session("Stuck"), make_session("Other")
    for session in (stuck, other):
        session.start()
    real = ingest.finish_session

    def finish(session):
        if session.pk == stuck.pk:
            raise locked()
        real(session)

    monkeypatch.setattr(ingest, "finish_session", finish)
    ended = ingest.end_stale_sessions(now=time.time() + 3600)
    assert [s.pk for s in ended] == [other.pk]
    assert LiveSession.objects.get(pk=stuck.pk).status == LiveSession.Status.LIVE  # next round
    assert LiveSession.objects.get(pk=other.pk).status == LiveSession.Status.ENDED


def test_a_failing_hook_is_logged_and_does_not_keep_the_session_from_ending(session, caplog):
    from wagtail_live.models import ChatMessage

    ran = []

    def broken(ended):
        ChatMessage.objects.create(session=ended, text="half done")  # undone with the hook
        raise ValueError("a bug in the site's hook")

    session.start()
    with hooks.register_temporarily(
        [
            ("after_live_session_end", broken),
            ("after_live_session_end", lambda ended: ran.append(ended.pk)),
        ]
    ):
        session.end()
    assert LiveSession.objects.get(pk=session.pk).status == LiveSession.Status.ENDED
    assert SessionFigures.objects.filter(session=session).count() == 1
    assert ran == [session.pk], "the other hooks still run"
    assert not ChatMessage.objects.filter(text="half done").exists()
    assert any("after_live_session_end hook" in r.getMessage() for r in caplog.records)
