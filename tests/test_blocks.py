"""The live player block renders each state, and private sessions leak no playback URL."""

import json
import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from wagtail import hooks

from tests.utils import make_session
from wagtail_live.blocks import LivePlayerBlock
from wagtail_live.models import LiveSession


def render(session, user=None, show_chat=True):
    request = RequestFactory().get("/some/page/?x=1")
    request.user = user or AnonymousUser()
    block = LivePlayerBlock()
    value = block.to_python({"session": session.pk, "show_chat": show_chat})
    return block.render(value, context={"request": request})


def test_scheduled_shows_countdown_local_time_and_calendar(host):
    start = datetime(2031, 3, 4, 18, 0, tzinfo=UTC)
    session = make_session("Launch", owner=host, scheduled_start=start)
    html = render(session)
    assert 'data-status="scheduled"' in html
    assert 'datetime="2031-03-04T18:00:00+00:00"' in html  # player.js shows it in local time
    assert "data-live-countdown" in html
    assert f'href="/live/sessions/{session.pk}/calendar.ics"' in html
    assert "Add to calendar" in html
    assert f'data-status-url="/live/sessions/{session.pk}/status.json"' in html
    assert "data-playback-url" not in html


def test_live_public_session_carries_its_playback_url(host):
    session = make_session(owner=host)
    session.start()
    html = render(session)
    assert f'data-playback-url="{session.playback_url}"' in html
    assert 'data-hlsjs-url="/static/wagtail_live/vendor/hls.min.js"' in html
    live_part = re.search(r'<div data-live-state="live"\s*>', html)
    assert live_part, "the live part is visible"
    assert "wagtail_live/js/player.js" in html


def test_realtime_slots_are_there_for_the_chat_part(host):
    session = make_session(owner=host)
    session.start()
    html = render(session)
    for slot in ("data-live-chat", "data-live-likes", "data-live-viewers"):
        assert slot in html
    assert "data-live-chat" not in render(session, show_chat=False)


def test_controls_are_labelled(host):
    session = make_session("Town hall", owner=host)
    session.start()
    html = render(session)
    assert re.search(r"<video[^>]*\bcontrols\b", html)
    assert 'aria-label="Live video: Town hall"' in html


def test_ended_says_so(host):
    session = make_session(owner=host)
    session.start()
    session.end()
    html = render(session)
    assert re.search(r'<div data-live-state="ended"\s*>', html)
    assert "This live stream has ended." in html
    assert "data-playback-url" not in html


@pytest.mark.parametrize("status", ["ready", "live", "ended"])
def test_private_session_shows_anonymous_visitors_a_members_notice_only(host, status):
    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    if status != "ready":
        session.start()
    if status == "ended":
        session.end()
    html = render(session)
    assert "This live stream is for members only." in html
    assert 'href="/admin/login/?next=%2Fsome%2Fpage%2F%3Fx%3D1"' in html
    # No way to the video: no playlist, no HLS view, no status endpoint that would hand one out.
    for leak in ("m3u8", "/hls/", "status.json", "data-playback-url", "<video"):
        assert leak not in html


def test_private_session_plays_for_members(host, editor):
    session = make_session(owner=host, privacy=LiveSession.Privacy.PRIVATE)
    session.start()
    html = render(session, user=editor)
    assert "members only" not in html
    assert f'data-playback-url="{session.playback_url}"' in html


def test_player_strings_are_json_for_the_script(host):
    html = render(make_session(owner=host))
    payload = re.search(
        r'<div hidden data-live-player-text><script type="application/json">(.*?)</script>',
        html,
        re.S,
    ).group(1)
    assert json.loads(payload)["ended"] == "This live stream has ended."


def test_construct_live_player_context_hook_can_change_the_context(host):
    def add_note(context, session, request):
        context["live_session"].title = f"{session.title} (members' edition)"

    session = make_session("Gala", owner=host)
    with hooks.register_temporarily("construct_live_player_context", add_note):
        assert "Gala (members&#x27; edition)" in render(session)


def test_block_without_a_session_renders_nothing():
    block = LivePlayerBlock()
    assert block.render(block.to_python({"session": None})).strip() == ""


# -- the viewer (issue 14) --


def render_layout(session, **value):
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    block = LivePlayerBlock()
    return block.render(block.to_python({"session": session.pk, **value}), {"request": request})


def test_layout_defaults_to_auto_and_frames_the_picture(host):
    session = make_session("Run", owner=host)
    session.start()
    assert LivePlayerBlock().child_blocks["layout"].get_default() == "auto"
    # A value saved before the option existed reads as auto (and starts landscape until the
    # stream's first frame says otherwise).
    html = render_layout(session, show_chat=True)
    assert 'data-layout="auto" data-picture="landscape"' in html
    html = render_layout(session, show_chat=True, layout="portrait")
    assert 'data-layout="portrait" data-picture="portrait"' in html
    html = render_layout(session, show_chat=True, layout="landscape")
    assert 'data-layout="landscape" data-picture="landscape"' in html


def test_layout_refuses_an_unknown_value():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        LivePlayerBlock().child_blocks["layout"].clean("sideways")


def test_the_phone_view_names_the_host_isolated_and_its_strings_are_translatable(host):
    host.first_name, host.last_name = "\u05d3\u05e0\u05d4", "Host"
    host.save()
    session = make_session("Run", owner=host)
    session.start()
    html = render_layout(session, show_chat=True)
    assert (
        '<bdi dir="auto" class="wagtail-live-player__heading-host">\u05d3\u05e0\u05d4 Host</bdi>'
        in html
    )
    assert '<bdi dir="auto" class="wagtail-live-player__heading-title">Run</bdi>' in html
    for text in ("Watch full screen", "Leave the full-screen view", "Hide chat", "Theatre mode"):
        assert text in html
    player_text = json.loads(
        re.search(r"data-live-player-text><script[^>]*>(.*?)</script>", html).group(1)
    )
    assert player_text["showChat"] == "Show chat" and player_text["exitFullScreen"]
    # The comments about the stage are template comments, not text on the page.
    assert "{#" not in html and "viewer.js" not in html
