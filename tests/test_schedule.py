"""The schedule: the admin's Upcoming agenda, the Upcoming live block, JSON-LD, Remind me."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from tests.utils import make_editor, make_session
from wagtail_live import reminders, schedule
from wagtail_live.blocks import LivePlayerBlock, UpcomingLiveBlock
from wagtail_live.models import LiveSession

pytestmark = pytest.mark.django_db


def in_hours(hours):
    return timezone.now() + timedelta(hours=hours)


def request_for(user=None, path="/events/"):
    request = RequestFactory().get(path)
    request.user = user or AnonymousUser()
    return request


def json_ld(html):
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    return [json.loads(block) for block in blocks]


# -- the admin agenda ---------------------------------------------------------


def test_upcoming_shows_own_sessions_by_day_with_waiting_counts(client, host):
    tomorrow = make_session("Tomorrow", owner=host, scheduled_start=in_hours(24))
    make_session("Next week", owner=host, scheduled_start=in_hours(24 * 7))
    make_session("Someone else's", owner=make_editor("other"), scheduled_start=in_hours(2))
    make_session("Over", owner=host).end()
    reminders.remind_me(tomorrow, get_user_model().objects.create_user("fan", "fan@example.com"))
    client.force_login(host)
    response = client.get(reverse("wagtail_live_upcoming:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Tomorrow" in html and "Next week" in html
    assert "Someone else" not in html and "Over" not in html
    row = re.search(rf'data-live-agenda-session="{tomorrow.pk}".*?</tr>', html, re.S).group(0)
    assert re.search(r"data-live-waiting>1<", row)
    day = timezone.localtime(tomorrow.scheduled_start).strftime("%A")
    assert day in html
    assert "All hosts" not in html  # a plain editor may not see every host's sessions


def test_upcoming_shows_every_session_to_those_allowed_and_mine_narrows(client, superuser, host):
    # The default is all the user may see: a session without a host is not hidden from them.
    make_session("Host's", owner=host, scheduled_start=in_hours(3))
    make_session("Nobody's", scheduled_start=in_hours(4))
    make_session("Mine", owner=superuser, scheduled_start=in_hours(5))
    client.force_login(superuser)
    html = client.get(reverse("wagtail_live_upcoming:index")).content.decode()
    assert "Host&#x27;s" in html and "Nobody&#x27;s" in html and "Mine" in html
    assert 'href="?mine=1"' in html
    html = client.get(reverse("wagtail_live_upcoming:index") + "?mine=1").content.decode()
    assert "Mine" in html
    assert "Host&#x27;s" not in html and "Nobody&#x27;s" not in html


def test_upcoming_all_is_ignored_for_others(client, host):
    make_session("Secret plans", owner=make_editor("other"), scheduled_start=in_hours(3))
    client.force_login(host)
    for query in ("", "?all=1", "?mine=0"):
        html = client.get(reverse("wagtail_live_upcoming:index") + query).content.decode()
        assert "Secret plans" not in html


def test_agenda_orders_live_first_then_by_start_then_unscheduled(host):
    later = make_session("Later", owner=host, scheduled_start=in_hours(5))
    sooner = make_session("Sooner", owner=host, scheduled_start=in_hours(1))
    ready = make_session("Whenever", owner=host)
    live = make_session("Now", owner=host)
    live.start()
    sessions = schedule.agenda_sessions(host)
    assert [s.title for s in sessions] == ["Now", "Sooner", "Later", "Whenever"]
    days = schedule.agenda_by_day(sessions)
    assert days[0] == (None, [live])
    assert days[-1] == (None, [ready])
    assert later in sum((group for _, group in days), [])
    assert sooner.pk


# -- the Upcoming live block --------------------------------------------------


def test_upcoming_block_lists_next_public_sessions(host):
    make_session("Public soon", owner=host, scheduled_start=in_hours(1))
    make_session("Members only", owner=host, scheduled_start=in_hours(2), privacy="private")
    make_session("Far away", owner=host, scheduled_start=in_hours(48))
    make_session("Ended", owner=host, scheduled_start=in_hours(1)).end()
    block = UpcomingLiveBlock()
    value = block.to_python({"heading": "Coming up", "count": 5})
    html = block.render(value, context={"request": request_for()})
    assert "Coming up" in html
    assert html.index("Public soon") < html.index("Far away")
    assert "Members only" not in html and "Ended" not in html
    assert "data-live-countdown" in html
    assert "Log in to get a reminder" in html
    assert "calendar.ics" in html
    assert [item["name"] for item in json_ld(html)] == ["Public soon", "Far away"]
    assert all("url" not in item for item in json_ld(html))  # the listing is no session's page


def test_upcoming_block_respects_count_and_is_empty_gracefully(host):
    block = UpcomingLiveBlock()
    html = block.render(block.to_python({"heading": "", "count": 2}), {"request": request_for()})
    assert "No live sessions are scheduled" in html
    for n in range(3):
        make_session(f"S{n}", owner=host, scheduled_start=in_hours(n + 1))
    html = block.render(block.to_python({"heading": "", "count": 2}), {"request": request_for()})
    assert "S0" in html and "S1" in html and "S2" not in html


def test_upcoming_block_remind_me_for_logged_in_visitors(host):
    session = make_session("Soon", owner=host, scheduled_start=in_hours(1))
    visitor = get_user_model().objects.create_user("v", "v@example.com")
    block = UpcomingLiveBlock()
    value = block.to_python({"heading": "", "count": 5})
    html = block.render(value, {"request": request_for(visitor)})
    assert ">Remind me<" in html
    assert reverse("wagtail_live:remind_me", args=[session.pk]) in html
    reminders.remind_me(session, visitor)
    html = block.render(value, {"request": request_for(visitor)})
    assert "We will remind you." in html and "Cancel reminder" in html


# -- JSON-LD and Remind me on the player block --------------------------------


def render_player(session, user=None):
    block = LivePlayerBlock()
    value = block.to_python({"session": session.pk, "show_chat": False})
    return block.render(value, context={"request": request_for(user)})


def test_player_carries_broadcast_event_json_ld(host):
    start = in_hours(2)
    session = make_session("Launch <party>", owner=host, scheduled_start=start)
    (data,) = json_ld(render_player(session))
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "BroadcastEvent"
    assert data["isLiveBroadcast"] is True
    assert data["name"] == "Launch <party>"
    assert data["startDate"] == start.isoformat()
    assert data["endDate"] == (start + timedelta(hours=1)).isoformat()
    assert data["url"] == "http://testserver/events/"


def test_json_ld_cannot_break_out_of_its_script(host):
    session = make_session("</script><script>alert(1)</script>", owner=host)
    html = render_player(session)
    assert "<script>alert(1)" not in html
    assert json_ld(html)[0]["name"] == "</script><script>alert(1)</script>"


def test_json_ld_dates_follow_the_session(host):
    session = make_session("Show", owner=host, scheduled_start=in_hours(1))
    session.start()
    live = schedule.broadcast_event(session)
    assert live["startDate"] == session.started_at.isoformat()
    assert "endDate" not in live  # still running
    session.end()
    ended = schedule.broadcast_event(session)
    assert ended["endDate"] == session.ended_at.isoformat()


def test_player_shows_remind_me_only_before_the_start(host):
    session = make_session("Show", owner=host, scheduled_start=in_hours(1))
    visitor = get_user_model().objects.create_user("v", "v@example.com")
    assert ">Remind me<" in render_player(session, visitor)
    session.start()
    session = LiveSession.objects.get(pk=session.pk)
    assert ">Remind me<" not in render_player(session, visitor)


def test_go_live_screen_tells_the_host_how_many_wait(client, host):
    session = make_session("Launch", owner=host, scheduled_start=in_hours(1))
    for n in range(3):
        fan = get_user_model().objects.create_user(f"fan{n}", f"fan{n}@example.com")
        reminders.remind_me(session, fan)
    client.force_login(host)
    html = client.get(reverse("wagtail_live_admin:go_live", args=[session.pk])).content.decode()
    assert "3 people are waiting for a reminder." in html


def test_live_menu_items_follow_permissions(client, superuser, editor):
    client.force_login(superuser)
    menu = client.get(reverse("wagtailadmin_home")).content.decode()
    for label in ("Upcoming", "Analytics report", "Webhooks", "Webhook deliveries"):
        assert label in menu
    client.force_login(editor)
    menu = client.get(reverse("wagtailadmin_home")).content.decode()
    assert "Upcoming" in menu
    for label in ("Analytics report", "Webhooks", "Webhook deliveries"):
        assert label not in menu
