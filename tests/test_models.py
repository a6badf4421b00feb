"""LiveSession: state transitions, stream keys, permissions."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone
from wagtail import hooks
from wagtail.models import ModelLogEntry

from tests.utils import make_editor, make_session
from wagtail_live import signals
from wagtail_live.exceptions import InvalidTransition
from wagtail_live.models import LiveSession, StreamKey
from wagtail_live.storage import private_root

pytestmark = pytest.mark.django_db


class TestStatus:
    def test_new_session_is_ready_or_scheduled(self):
        assert make_session().status == LiveSession.Status.READY
        later = timezone.now() + timedelta(days=1)
        assert make_session(scheduled_start=later).status == LiveSession.Status.SCHEDULED

    def test_slug_is_unique(self):
        assert make_session("Open day").slug == "open-day"
        assert make_session("Open day").slug == "open-day-2"

    def test_start_and_end(self, session):
        session.start()
        session.refresh_from_db()
        assert session.status == LiveSession.Status.LIVE
        assert session.started_at is not None
        session.end()
        session.refresh_from_db()
        assert session.status == LiveSession.Status.ENDED
        assert session.ended_at >= session.started_at

    def test_end_twice_ends_once(self, session):
        session.start()
        session.end()
        ended_at = LiveSession.objects.get(pk=session.pk).ended_at
        with pytest.raises(InvalidTransition, match="already ended"):
            session.end()
        # A stale copy (the second tab) is refused too.
        stale = LiveSession.objects.get(pk=session.pk)
        stale.status = LiveSession.Status.LIVE
        with pytest.raises(InvalidTransition):
            stale.end()
        assert LiveSession.objects.get(pk=session.pk).ended_at == ended_at

    def test_start_twice_is_refused(self, session):
        session.start()
        with pytest.raises(InvalidTransition, match="already live"):
            session.start()

    def test_ended_session_cannot_go_live(self, session):
        session.end()
        with pytest.raises(InvalidTransition, match="cannot go live"):
            session.start()

    def test_fail_records_the_error(self, session):
        session.start()
        session.fail("ffmpeg exited with code 1")
        session.refresh_from_db()
        assert session.status == LiveSession.Status.FAILED
        assert session.error == "ffmpeg exited with code 1"
        with pytest.raises(InvalidTransition):
            session.end()

    def test_several_sessions_live_at_once(self):
        first, second = make_session("One"), make_session("Two")
        first.start()
        second.start()
        assert LiveSession.objects.filter(status="live").count() == 2

    def test_status_follows_schedule_until_live(self, session):
        session.scheduled_start = timezone.now() + timedelta(hours=1)
        session.save()
        assert session.status == LiveSession.Status.SCHEDULED
        session.scheduled_start = None
        session.save()
        assert session.status == LiveSession.Status.READY


class TestSignalsAndHooks:
    def test_start_and_end_fire_signals_and_hooks(self, session):
        seen = []

        def on_started(sender, session, **kwargs):
            seen.append(("signal-start", session.pk))

        def on_ended(sender, session, **kwargs):
            seen.append(("signal-end", session.pk))

        signals.live_session_started.connect(on_started)
        signals.live_session_ended.connect(on_ended)
        try:
            with hooks.register_temporarily(
                [
                    ("after_live_session_start", lambda s: seen.append(("hook-start", s.pk))),
                    ("after_live_session_end", lambda s: seen.append(("hook-end", s.pk))),
                ]
            ):
                session.start()
                session.end()
                with pytest.raises(InvalidTransition):
                    session.end()
        finally:
            signals.live_session_started.disconnect(on_started)
            signals.live_session_ended.disconnect(on_ended)
        assert seen == [
            ("signal-start", session.pk),
            ("hook-start", session.pk),
            ("signal-end", session.pk),
            ("hook-end", session.pk),
        ]


class TestStreamKeys:
    def test_issue_returns_a_urlsafe_key_of_128_bits_or_more(self, session):
        key = session.issue_stream_key()
        assert len(key) * 6 >= 128
        assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert LiveSession.objects.for_stream_key(key) == session

    def test_issue_revokes_the_previous_key(self, session):
        old = session.issue_stream_key()
        new = session.issue_stream_key()
        assert old != new
        assert LiveSession.objects.for_stream_key(old) is None
        assert LiveSession.objects.for_stream_key(new) == session

    def test_revoke(self, session):
        key = session.issue_stream_key()
        assert session.revoke_stream_key() is True
        assert LiveSession.objects.for_stream_key(key) is None
        assert session.current_stream_key is None

    def test_key_of_ended_session_is_refused(self, session):
        key = session.issue_stream_key()
        session.start()
        session.end()
        assert LiveSession.objects.for_stream_key(key) is None
        with pytest.raises(InvalidTransition):
            session.issue_stream_key()

    def test_key_expires_after_the_ttl(self, session):
        key = session.issue_stream_key()
        StreamKey.objects.filter(session=session).update(
            issued_at=timezone.now() - timedelta(hours=25)
        )
        assert LiveSession.objects.for_stream_key(key) is None

    def test_ttl_setting_is_honoured(self, session):
        key = session.issue_stream_key()
        StreamKey.objects.filter(session=session).update(
            issued_at=timezone.now() - timedelta(hours=2)
        )
        assert LiveSession.objects.for_stream_key(key) == session
        with override_settings(WAGTAIL_LIVE={"STREAM_KEY_TTL": 3600}):
            assert LiveSession.objects.for_stream_key(key) is None

    def test_ttl_runs_from_the_scheduled_start_when_later(self):
        session = make_session(scheduled_start=timezone.now() + timedelta(days=3))
        key = session.issue_stream_key()
        StreamKey.objects.filter(session=session).update(
            issued_at=timezone.now() - timedelta(hours=30)
        )
        assert LiveSession.objects.for_stream_key(key) == session

    @pytest.mark.parametrize(
        "bad",
        ["", None, "x" * 10_240, "not a key!", "../../etc/passwd", 12345, b"bytes", "a" * 43],
    )
    def test_bad_keys_return_none(self, session, bad):
        session.issue_stream_key()
        assert LiveSession.objects.for_stream_key(bad) is None

    def test_key_never_in_str_or_logs(self, session):
        key = session.issue_stream_key(user=None)
        session.revoke_stream_key()
        stream_key = StreamKey.objects.get(session=session)
        assert key not in str(stream_key)
        entries = ModelLogEntry.objects.filter(object_id=str(session.pk))
        assert {e.action for e in entries} >= {
            "wagtail_live.stream_key.issue",
            "wagtail_live.stream_key.revoke",
        }
        for entry in entries:
            assert key not in str(entry.data) and key not in entry.label

    def test_key_is_stored_apart_from_the_session(self, session):
        key = session.issue_stream_key()
        from django.core import serializers

        assert key not in serializers.serialize("json", [session])


class TestPermissions:
    def test_owner_superuser_and_go_live_permission(self, session, host, superuser):
        other = make_editor("other")
        granted = make_editor("granted", "go_live")
        assert session.can_go_live(host)
        assert session.can_go_live(superuser)
        assert session.can_go_live(granted)
        assert not session.can_go_live(other)

    def test_stream_key_only_for_owner_and_superuser(self, session, host, superuser):
        granted = make_editor("granted", "go_live")
        assert session.can_see_stream_key(host)
        assert session.can_see_stream_key(superuser)
        assert not session.can_see_stream_key(granted)

    def test_moderation(self, session, host):
        assert session.can_moderate(host)
        assert session.can_moderate(make_editor("mod", "moderate_chat"))
        assert not session.can_moderate(make_editor("other"))

    def test_private_sessions_need_a_login(self, session, host):
        from django.contrib.auth.models import AnonymousUser

        session.privacy = LiveSession.Privacy.PRIVATE
        assert not session.can_view(AnonymousUser())
        assert session.can_view(host)
        session.privacy = LiveSession.Privacy.PUBLIC
        assert session.can_view(AnonymousUser())


class TestPaths:
    def test_media_path_uses_the_setting(self, session, settings):
        assert (
            session.media_path("hls", "index.m3u8") == f"uploads/live/{session.pk}/hls/index.m3u8"
        )
        with override_settings(WAGTAIL_LIVE={"MEDIA_SUBDIR": "streams/"}):
            assert session.media_path() == f"streams/{session.pk}"
            # Working files live under PRIVATE_ROOT, beside MEDIA_ROOT and never in it.
            assert session.media_dir == private_root() / f"streams/{session.pk}"
            assert not session.media_dir.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
