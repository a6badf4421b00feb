"""Playback: who gets the HLS files, the player's status JSON, and the .ics invite."""

from datetime import UTC

import pytest
from django.test import override_settings
from django.urls import reverse
from icalendar import Calendar
from wagtail import hooks

from tests.utils import make_session
from wagtail_live.models import LiveSession

PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg-abc-00001.ts\n"


def write_hls(session):
    """Put a playlist and a segment where the pipeline writes them."""
    directory = session.media_dir / "hls"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.m3u8").write_text(PLAYLIST)
    (directory / "seg-abc-00001.ts").write_bytes(b"\x47" + b"\0" * 187)
    # Something next to the HLS files that must never be served through it.
    (session.media_dir / "recording.mpegts").write_bytes(b"\x47" + b"\0" * 187)
    return directory


def hls_url(session, name):
    return reverse("wagtail_live:hls", args=[session.pk, name])


@pytest.fixture
def private_session(host):
    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    write_hls(session)
    return session


@pytest.fixture
def public_session(host):
    session = make_session(owner=host)
    write_hls(session)
    return session


def test_public_playlist_and_segment_for_anyone(client, public_session):
    response = client.get(hls_url(public_session, "index.m3u8"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apple.mpegurl"
    assert b"".join(response.streaming_content).decode() == PLAYLIST
    assert "no-cache" in response["Cache-Control"]
    segment = client.get(hls_url(public_session, "seg-abc-00001.ts"))
    assert segment.status_code == 200
    assert segment["Content-Type"] == "video/mp2t"


GUESSES = [
    "index.m3u8",
    "seg-abc-00001.ts",
    "seg-abc-00002.ts",
    "../recording.mpegts",
    "..%2frecording.mpegts",
    "..",
    "../../../../etc/passwd",
    "/etc/passwd",
    ".hidden.ts",
    "index.m3u8/../../recording.mpegts",
]


@pytest.mark.parametrize("name", GUESSES)
def test_private_files_are_403_for_anonymous_whatever_the_name(client, private_session, name):
    url = f"/live/sessions/{private_session.pk}/hls/{name}"
    response = client.get(url)
    assert response.status_code == 403
    assert b"members only" in response.content


def test_private_files_for_logged_in_members(client, private_session, editor):
    client.force_login(editor)
    assert client.get(hls_url(private_session, "index.m3u8")).status_code == 200
    assert client.get(hls_url(private_session, "seg-abc-00001.ts")).status_code == 200


@pytest.mark.parametrize(
    "name", ["../recording.mpegts", "..", "../../../../etc/passwd", "nope.ts", "index.m3u8.bak"]
)
def test_members_get_404_outside_the_hls_files(client, private_session, editor, name):
    client.force_login(editor)
    response = client.get(f"/live/sessions/{private_session.pk}/hls/{name}")
    assert response.status_code == 404


def test_a_symlink_out_of_the_hls_directory_is_not_followed(client, public_session):
    (public_session.media_dir / "hls" / "leak.ts").symlink_to(
        public_session.media_dir / "recording.mpegts"
    )
    assert client.get(hls_url(public_session, "leak.ts")).status_code == 404


def test_unknown_session_is_403_for_anonymous_and_404_for_members(client, editor):
    assert client.get("/live/sessions/999999/hls/index.m3u8").status_code == 403
    client.force_login(editor)
    assert client.get("/live/sessions/999999/hls/index.m3u8").status_code == 404


def test_only_get(client, public_session):
    assert client.post(hls_url(public_session, "index.m3u8")).status_code == 405


@override_settings(WAGTAIL_LIVE={"ACCEL_REDIRECT_PREFIX": "/protected-live/"})
def test_x_accel_redirect_hands_the_file_to_nginx(client, private_session, editor):
    client.force_login(editor)
    response = client.get(hls_url(private_session, "seg-abc-00001.ts"))
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == (
        f"/protected-live/{private_session.pk}/hls/seg-abc-00001.ts"
    )
    assert response["Content-Type"] == "video/mp2t"
    assert response.content == b""


@override_settings(WAGTAIL_LIVE={"ACCEL_REDIRECT_PREFIX": "/protected-live/"})
def test_x_accel_redirect_still_refuses_anonymous(client, private_session):
    response = client.get(hls_url(private_session, "index.m3u8"))
    assert response.status_code == 403
    assert "X-Accel-Redirect" not in response


def test_a_hook_can_narrow_who_watches(client, private_session, editor, superuser):
    def staff_only(session, user):
        return bool(user and user.is_superuser)

    with hooks.register_temporarily("can_watch_live_session", staff_only):
        client.force_login(editor)
        assert client.get(hls_url(private_session, "index.m3u8")).status_code == 403
        client.force_login(superuser)
        assert client.get(hls_url(private_session, "index.m3u8")).status_code == 200


def test_a_hook_returning_none_leaves_the_default(client, private_session):
    with hooks.register_temporarily("can_watch_live_session", lambda session, user: None):
        assert client.get(hls_url(private_session, "index.m3u8")).status_code == 403


# -- playback_url ---------------------------------------------------------------------


def test_playback_url_is_the_checked_view_by_default(public_session, private_session):
    assert public_session.playback_url == f"/live/sessions/{public_session.pk}/hls/index.m3u8"
    assert private_session.playback_url == f"/live/sessions/{private_session.pk}/hls/index.m3u8"


@override_settings(WAGTAIL_LIVE={"PLAYBACK_FROM_MEDIA_URL": True})
def test_public_sessions_may_play_from_media_url(public_session, private_session):
    assert public_session.playback_url == (
        f"/media/uploads/live/{public_session.pk}/hls/index.m3u8"
    )
    # Private sessions never bypass the check.
    assert private_session.playback_url.startswith("/live/sessions/")


# -- status JSON ------------------------------------------------------------------------


def test_status_json_has_no_playback_url_until_live(client, public_session):
    url = reverse("wagtail_live:session_status", args=[public_session.pk])
    data = client.get(url).json()
    assert data["status"] == "ready"
    assert data["playback_url"] is None
    public_session.start()
    data = client.get(url).json()
    assert data["status"] == "live"
    assert data["playback_url"] == public_session.playback_url
    assert data["started_at"]


def test_status_json_is_403_for_anonymous_on_private(client, private_session):
    private_session.start()
    response = client.get(reverse("wagtail_live:session_status", args=[private_session.pk]))
    assert response.status_code == 403
    assert b"m3u8" not in response.content


# -- .ics -----------------------------------------------------------------------------


def test_calendar_file_for_a_scheduled_session(client, host):
    from datetime import datetime

    start = datetime(2030, 5, 17, 18, 30, tzinfo=UTC)
    session = make_session("Spring launch", owner=host, scheduled_start=start)
    response = client.get(reverse("wagtail_live:session_calendar", args=[session.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert "attachment" in response["Content-Disposition"]
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert str(event["summary"]) == "Spring launch"
    assert event.decoded("dtstart") == start
    assert event.decoded("dtend") > start
    assert str(event["uid"]).startswith(f"live-session-{session.pk}@")


def test_calendar_file_needs_a_scheduled_start(client, public_session):
    response = client.get(reverse("wagtail_live:session_calendar", args=[public_session.pk]))
    assert response.status_code == 404


def test_calendar_file_of_a_private_session_is_for_members(client, host):
    from datetime import datetime

    session = make_session(
        owner=host,
        privacy=LiveSession.Privacy.PRIVATE,
        scheduled_start=datetime(2030, 1, 1, tzinfo=UTC),
    )
    response = client.get(reverse("wagtail_live:session_calendar", args=[session.pk]))
    assert response.status_code == 403


# -- the live folder by path (example_site routes MEDIA_URL/uploads/live/ here in DEBUG) ----


def live_media(user, path):
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from wagtail_live.views.playback import live_media as view

    request = RequestFactory().get(f"/media/uploads/live/{path}")
    request.user = user or AnonymousUser()
    return view(request, path)


def test_live_folder_by_path_serves_public_sessions(public_session):
    response = live_media(None, f"{public_session.pk}/hls/index.m3u8")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode() == PLAYLIST


@pytest.mark.parametrize(
    "path",
    ["{pk}/hls/index.m3u8", "{pk}/hls/seg-abc-00001.ts", "{pk}/recording.mpegts", "{pk}/../x"],
)
def test_live_folder_by_path_refuses_private_sessions_to_anonymous(private_session, path):
    response = live_media(None, path.format(pk=private_session.pk))
    assert response.status_code == 403


def test_live_folder_by_path_serves_members(private_session, editor):
    response = live_media(editor, f"{private_session.pk}/recording.mpegts")
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["", "x/hls/index.m3u8", "999999/hls/index.m3u8", "../etc"])
def test_live_folder_by_path_refuses_what_is_no_session(db, path):
    assert live_media(None, path).status_code == 403


def test_live_folder_by_path_does_not_climb_out(public_session, editor):
    from django.http import Http404

    with pytest.raises(Http404):
        live_media(editor, f"{public_session.pk}/../../../../etc/passwd")
