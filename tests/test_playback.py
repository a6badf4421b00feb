"""Playback: who gets the HLS files, the player's status JSON, and the .ics invite."""

import re
from datetime import UTC

import pytest
from django.test import override_settings
from django.urls import reverse
from icalendar import Calendar
from wagtail import hooks

from tests.utils import make_session
from wagtail_live import grants
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


def test_playback_url_is_a_granted_delivery_url_by_default(public_session, private_session):
    # One scheme for public and private sessions: /live/delivery/<id>/<expires>-<signature>/…
    for session in (public_session, private_session):
        match = re.fullmatch(r"/live/delivery/(\d+)/([^/]+)/hls/index\.m3u8", session.playback_url)
        assert match and match[1] == str(session.pk), session.playback_url
        assert grants.verify(match[1], match[2]) is not None


@override_settings(WAGTAIL_LIVE={"PLAYBACK_FROM_MEDIA_URL": True})
def test_public_sessions_may_play_from_media_url(public_session, private_session):
    assert public_session.playback_url == (
        f"/media/uploads/live/{public_session.pk}/hls/index.m3u8"
    )
    # Private sessions never bypass the check.
    assert private_session.playback_url.startswith(f"/live/delivery/{private_session.pk}/")


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


def _page_with_player(title, session=None):
    """A published page of the test project, holding a live player of ``session`` if given."""
    from wagtail.models import ReferenceIndex, Site

    from example_site.home.models import HomePage

    body = [("live_player", {"session": session, "show_chat": True})] if session else []
    root = Site.objects.get(is_default_site=True).root_page
    page = root.add_child(instance=HomePage(title=title, body=body))
    # Wagtail indexes references in a background task, after the commit this test never makes.
    ReferenceIndex.create_or_update_for_object(page)
    return page


def _calendar_url(client, session, **params):
    response = client.get(reverse("wagtail_live:session_calendar", args=[session.pk]), params)
    assert response.status_code == 200
    return str(Calendar.from_ical(response.content).walk("VEVENT")[0]["url"])


def test_calendar_invite_links_to_the_page_with_the_player(client, host):
    from datetime import datetime

    session = make_session("Launch", owner=host, scheduled_start=datetime(2031, 1, 1, tzinfo=UTC))
    unrelated = _page_with_player("About us")
    first = _page_with_player("Launch night", session)
    second = _page_with_player("Launch, again", session)
    assert _calendar_url(client, session, page=first.pk) == first.full_url
    assert _calendar_url(client, session, page=second.pk) == second.full_url
    # Without a page, or with one that does not show this session: a page that does.
    assert _calendar_url(client, session) in (first.full_url, second.full_url)
    assert _calendar_url(client, session, page=unrelated.pk) in (first.full_url, second.full_url)
    assert _calendar_url(client, session, page="x") in (first.full_url, second.full_url)
    # A Referer is never trusted for it.
    response = client.get(
        reverse("wagtail_live:session_calendar", args=[session.pk]),
        HTTP_REFERER="https://elsewhere.example/",
    )
    assert b"elsewhere" not in response.content
    # An unpublished page is not a place to send people; with no page at all, the site root.
    first.unpublish()
    second.unpublish()
    assert _calendar_url(client, session) == "http://testserver/"


def test_the_player_block_names_its_page_in_the_calendar_link(host):
    from datetime import datetime

    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    session = make_session("Launch", owner=host, scheduled_start=datetime(2031, 1, 1, tzinfo=UTC))
    page = _page_with_player("Launch night", session)
    request = RequestFactory().get(page.url)
    request.user = AnonymousUser()
    html = page.body[0].render(context={"request": request, "page": page})
    assert f'href="/live/sessions/{session.pk}/calendar.ics?page={page.pk}"' in html


# The live folder is no longer under MEDIA_ROOT, so no by-path route exists to test here:
# tests/test_private_files.py tries every spelling of one against the example site's URLs.


def test_hls_files_are_never_sniffed(client, public_session):
    response = client.get(hls_url(public_session, "index.m3u8"))
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
