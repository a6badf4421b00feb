"""Analytics: figures aggregated in the database, the session page, CSV and the site report."""

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.utils import make_editor, make_session
from wagtail_live import analytics
from wagtail_live.models import (
    ChatMessage,
    LiveReminder,
    LiveSession,
    ModerationAction,
    SessionFigures,
    ViewerSample,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "wagtail_live" / "static" / "wagtail_live" / "vendor"


def add_samples(session, counts, start=None, step=10):
    start = start or session.started_at or timezone.now()
    unique = 0
    rows = []
    for i, viewers in enumerate(counts):
        unique += viewers  # a plausible "unique so far": only grows
        rows.append(
            ViewerSample(
                session=session,
                at=start + timedelta(seconds=i * step),
                viewers=viewers,
                unique_viewers=unique,
            )
        )
    ViewerSample.objects.bulk_create(rows)


def busy_session(owner, title="Busy"):
    """A session that went live, with samples, chat, likes, moderation and reminders."""
    session = make_session(title, owner=owner)
    session.start()
    add_samples(session, [2, 4, 6, 8])
    for text in ("hi", "hello", "bye"):
        ChatMessage.objects.create(session=session, display_name="v", text=text)
    ModerationAction.objects.create(session=session, action=ModerationAction.Action.SLOW)
    LiveSession.objects.filter(pk=session.pk).update(likes=42, peak_viewers=5)
    session.refresh_from_db()
    return session


def test_figures_of_a_session_in_one_query(host, django_assert_num_queries):
    session = busy_session(host)
    with django_assert_num_queries(1):
        figures = analytics.session_figures(session)
    assert figures["peak_viewers_seen"] == 8
    assert figures["average_viewers"] == 5.0
    assert figures["unique_viewers"] == 20
    assert figures["chat_message_count"] == 3
    assert figures["likes"] == 42
    assert figures["moderation_action_count"] == 1
    assert figures["sample_count"] == 4


def test_stored_peak_wins_over_sparser_samples(host):
    session = busy_session(host)
    LiveSession.objects.filter(pk=session.pk).update(peak_viewers=50)
    assert analytics.session_figures(session)["peak_viewers_seen"] == 50


def test_figures_of_a_session_with_no_samples(session):
    figures = analytics.session_figures(session)
    assert figures == {
        "peak_viewers_seen": 0,
        "average_viewers": 0,
        "unique_viewers": 0,
        "chat_message_count": 0,
        "likes": 0,
        "moderation_action_count": 0,
        "reminder_count": 0,
        "sample_count": 0,
        "duration_seconds": 0,
        "recording_plays": None,  # no published recording yet
    }
    assert analytics.chart_data(session) == {"times": [], "viewers": []}


def test_final_figures_are_stored_when_the_session_ends(host):
    session = busy_session(host)
    LiveReminder.objects.create(session=session, user=host)
    session.end()
    stored = SessionFigures.objects.get(session=session)
    assert stored.peak_viewers == 8
    assert stored.unique_viewers == 20
    assert stored.chat_message_count == 3
    assert stored.likes == 42
    assert stored.reminder_count == 1
    # Later samples (a late worker) do not change what was kept.
    add_samples(session, [100], start=timezone.now())
    assert SessionFigures.objects.get(session=session).peak_viewers == 8


def test_failed_sessions_keep_figures_too(host):
    session = busy_session(host)
    session.fail("encoder vanished")
    assert session.figures.peak_viewers == 8


# -- the admin page -----------------------------------------------------------


def analytics_url(session):
    return reverse("wagtail_live_admin:analytics", args=[session.pk])


def test_analytics_page_shows_figures_and_chart_data(client, host):
    session = busy_session(host)
    client.force_login(host)
    response = client.get(analytics_url(session))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-figure="peak">8<', html)
    assert re.search(r'data-figure="chat">3<', html)
    assert "data-live-viewer-chart" in html
    assert "chart.umd.min.js" in html
    data = json.loads(re.search(r'id="wagtail-live-chart-data"[^>]*>(.*?)</script>', html).group(1))
    assert data["viewers"] == [2, 4, 6, 8]
    assert len(data["times"]) == 4


def test_analytics_page_for_a_session_with_no_samples(client, host, session):
    client.force_login(host)
    response = client.get(analytics_url(session))
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-live-no-samples" in html
    assert "<canvas" not in html
    assert "appear here once the session is live" in html


def test_analytics_page_is_for_hosts_and_moderators(client, session):
    client.force_login(make_editor("other"))
    response = client.get(analytics_url(session))
    assert response.status_code == 403
    client.force_login(make_editor("moderator", "moderate_chat"))
    assert client.get(analytics_url(session)).status_code == 200


def test_analytics_page_queries_do_not_grow_with_samples(
    client, host, django_assert_max_num_queries
):
    session = busy_session(host)
    add_samples(session, list(range(500)), start=timezone.now() + timedelta(hours=1))
    client.force_login(host)
    with django_assert_max_num_queries(10):
        assert client.get(analytics_url(session)).status_code == 200


def test_csv_download(client, host):
    session = busy_session(host)
    client.force_login(host)
    response = client.get(reverse("wagtail_live_admin:analytics_csv", args=[session.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["at", "viewers", "unique_viewers"]
    assert [row[1] for row in rows[1:]] == ["2", "4", "6", "8"]


def test_csv_of_a_session_with_no_samples(client, host, session):
    client.force_login(host)
    response = client.get(reverse("wagtail_live_admin:analytics_csv", args=[session.pk]))
    assert response.content.decode().strip() == "at,viewers,unique_viewers"


def test_csv_is_refused_to_others(client, session):
    client.force_login(make_editor("other"))
    response = client.get(reverse("wagtail_live_admin:analytics_csv", args=[session.pk]))
    assert response.status_code == 403


# -- the site-wide report -----------------------------------------------------


def report_url(**params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return reverse("wagtail_live_report:index") + (f"?{query}" if query else "")


def test_report_lists_sessions_with_figures(client, superuser, host):
    busy_session(host, "First")
    make_session("Never went live", owner=host)
    client.force_login(superuser)
    response = client.get(report_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "First" in html
    assert "Never went live" not in html


def test_report_filters_by_owner_and_date(client, superuser, host):
    other = make_editor("otherhost")
    busy_session(host, "Mine")
    busy_session(other, "Theirs")
    old = busy_session(host, "Last year")
    LiveSession.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=365))
    client.force_login(superuser)
    html = client.get(report_url(owner=other.pk)).content.decode()
    assert "Theirs" in html and "Mine" not in html
    today = timezone.localdate().isoformat()
    html = client.get(report_url(date_from=today, date_to=today)).content.decode()
    assert "Mine" in html and "Theirs" in html and "Last year" not in html


def test_report_exports_csv(client, superuser, host):
    busy_session(host, "Exported")
    client.force_login(superuser)
    response = client.get(report_url(export="csv"))
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][0] == "Title"
    assert "Peak viewers" in rows[0]
    exported = dict(zip(rows[0], rows[1], strict=True))
    assert exported["Title"] == "Exported"
    assert exported["Peak viewers"] == "8"
    assert exported["Chat messages"] == "3"


def test_report_queries_do_not_grow_with_sessions(
    client, superuser, host, django_assert_max_num_queries
):
    for n in range(30):
        busy_session(host, f"Session {n}")
    client.force_login(superuser)
    with django_assert_max_num_queries(10):
        assert client.get(report_url()).status_code == 200


def test_report_is_refused_to_editors(client, editor):
    client.force_login(editor)
    assert client.get(report_url()).status_code == 403


# -- Chart.js is vendored from npm, like hls.js -------------------------------


def test_chartjs_build_matches_the_pinned_version():
    package = json.loads((ROOT / "package.json").read_text())
    pinned = package["devDependencies"]["chart.js"]
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/chart.js"]["version"] == pinned
    assert f"Chart.js v{pinned}" in (VENDOR / "chart.umd.min.js").read_text()[:200]
    assert (VENDOR / "chart.js.version").read_text().strip() == pinned
    assert "MIT" in (VENDOR / "chart.js.LICENSE").read_text()


# -- live: the dashboard's chart keeps up -------------------------------------


def test_samples_json_returns_only_newer_samples(client, host):
    session = busy_session(host)
    client.force_login(host)
    url = reverse("wagtail_live_admin:analytics_samples", args=[session.pk])
    everything = client.get(url).json()
    assert everything["viewers"] == [2, 4, 6, 8]
    newer = client.get(url, {"after": everything["times"][1]}).json()
    assert newer["viewers"] == [6, 8]
    assert client.get(url, {"after": "soon"}).status_code == 400


def test_dashboard_and_listing_link_to_analytics(client, host):
    session = busy_session(host)
    client.force_login(host)
    html = client.get(reverse("wagtail_live_admin:dashboard", args=[session.pk])).content.decode()
    assert "data-live-viewer-chart" in html
    assert reverse("wagtail_live_admin:analytics_samples", args=[session.pk]) in html
    listing = client.get(reverse("wagtailsnippets_wagtail_live_livesession:list"))
    assert analytics_url(session) in listing.content.decode()


def test_watched_live_tag_shows_kept_figures(host):
    from django.template import Context, Template

    template = Template("{% load wagtail_live_audience %}{% live_watched session %}")
    session = busy_session(host)
    assert template.render(Context({"session": session})).strip() == ""  # not ended yet
    session.end()
    session = LiveSession.objects.get(pk=session.pk)
    assert "20 watched live" in template.render(Context({"session": session}))


def test_recording_page_shows_watched_live_only_when_the_editor_wants(host, client):
    from wagtail.models import Site

    from wagtail_live.models import RecordingPage

    session = busy_session(host)
    session.end()
    root = Site.objects.get(is_default_site=True).root_page
    page = root.add_child(instance=RecordingPage(title="Busy, recorded", session=session))
    assert "watched live" not in client.get(page.url).content.decode()
    page.show_live_audience = True
    page.save_revision().publish()
    assert "20 watched live" in client.get(page.url).content.decode()
