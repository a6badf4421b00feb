"""The admin: Live menu, Prepare Live, the Go Live screen and its actions, stream-key secrecy."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone
from wagtail.images.models import Image
from wagtail.images.tests.utils import get_test_image_file

from tests.utils import make_editor, make_session
from wagtail_live.models import LiveSession

pytestmark = pytest.mark.django_db

ADD_URL = reverse("wagtailsnippets_wagtail_live_livesession:add")
LIST_URL = reverse("wagtailsnippets_wagtail_live_livesession:list")


def go_live_url(session, name="go_live"):
    return reverse(f"wagtail_live_admin:{name}", args=[session.pk])


def prepare_form(**fields):
    data = {"title": "Open day", "description": "", "privacy": "public", "tags": ""}
    data.update(fields)
    return data


class TestMenu:
    def test_live_menu_and_listing(self, client, superuser):
        client.force_login(superuser)
        make_session("Science fair")
        response = client.get(reverse("wagtailadmin_home"))
        assert b"Live" in response.content
        response = client.get(LIST_URL)
        assert response.status_code == 200
        assert b"Science fair" in response.content
        assert b"Go live" in response.content

    def test_listing_filters_by_status(self, client, superuser):
        client.force_login(superuser)
        make_session("Waiting")
        make_session("Over").end()
        response = client.get(LIST_URL, {"status": "ended"})
        assert b"Over" in response.content
        assert b"Waiting" not in response.content

    def test_permissions_appear_in_the_group_editor(self, client, superuser):
        client.force_login(superuser)
        group = Group.objects.create(name="Teachers")
        response = client.get(reverse("wagtailusers_groups:edit", args=[group.pk]))
        content = response.content.decode()
        for codename in ("go_live", "moderate_chat"):
            permission = Permission.objects.get(codename=codename)
            assert f'value="{permission.pk}"' in content


class TestPrepareLive:
    def test_prefill_from_query_string(self, client, host):
        client.force_login(host)
        response = client.get(
            ADD_URL, {"title": "Maths revision", "description": "Bring questions"}
        )
        assert response.status_code == 200
        assert b'value="Maths revision"' in response.content
        assert b"Bring questions" in response.content
        assert b"Prepare live" in response.content

    def test_saving_leads_to_go_live_with_a_key(self, client, host):
        client.force_login(host)
        response = client.post(ADD_URL, prepare_form())
        session = LiveSession.objects.get()
        assert response.status_code == 302
        assert response.url == go_live_url(session)
        assert session.owner == host
        assert session.status == LiveSession.Status.READY
        assert session.current_stream_key is not None

    def test_schedule(self, client, host):
        client.force_login(host)
        start = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
        client.post(ADD_URL, prepare_form(scheduled_start=start))
        assert LiveSession.objects.get().status == LiveSession.Status.SCHEDULED

    @pytest.mark.parametrize(
        "fields, error",
        [
            ({"title": ""}, b"This field is required"),
            ({"title": "x" * 300}, b"at most 255 characters"),
            ({"scheduled_start": "2001-01-01 10:00"}, b"The scheduled start is in the past"),
            ({"thumbnail": "999999"}, b"Select a valid choice"),
            ({"privacy": "secret"}, b"Select a valid choice"),
        ],
    )
    def test_bad_input_is_a_form_error(self, client, host, fields, error):
        client.force_login(host)
        response = client.post(ADD_URL, prepare_form(**fields))
        assert response.status_code == 200
        assert error in response.content
        assert not LiveSession.objects.exists()

    def test_non_image_thumbnail_is_refused(self, client, host):
        from django.core.files.base import ContentFile
        from wagtail.documents.models import Document

        document = Document.objects.create(title="notes", file=ContentFile(b"hi", name="notes.txt"))
        client.force_login(host)
        response = client.post(ADD_URL, prepare_form(thumbnail=str(document.pk + 1000)))
        assert b"Select a valid choice" in response.content
        assert not LiveSession.objects.exists()

    def test_image_thumbnail(self, client, host):
        image = Image.objects.create(title="cover", file=get_test_image_file())
        client.force_login(host)
        client.post(ADD_URL, prepare_form(thumbnail=str(image.pk)))
        assert LiveSession.objects.get().thumbnail == image


class TestGoLiveScreen:
    def test_owner_sees_key_masked_with_show_and_copy(self, client, host, session):
        key = session.issue_stream_key()
        client.force_login(host)
        response = client.get(go_live_url(session))
        content = response.content.decode()
        assert response.status_code == 200
        assert 'type="password"' in content and key in content
        assert "data-live-reveal" in content and "data-live-copy" in content
        assert "rtmp://" in content
        assert "Go live" in content

    def test_go_live_and_end_live(self, client, host, session):
        client.force_login(host)
        response = client.post(go_live_url(session))
        assert response.status_code == 302
        session.refresh_from_db()
        assert session.status == LiveSession.Status.LIVE
        client.post(go_live_url(session, "end_live"))
        session.refresh_from_db()
        assert session.status == LiveSession.Status.ENDED
        ended_at = session.ended_at
        # The double click: a second End live changes nothing and says why.
        response = client.post(go_live_url(session, "end_live"), follow=True)
        assert b"already ended" in response.content
        session.refresh_from_db()
        assert session.ended_at == ended_at

    def test_regenerate_and_revoke_key(self, client, host, session):
        old = session.issue_stream_key()
        client.force_login(host)
        client.post(go_live_url(session, "stream_key"), {"action": "issue"})
        assert LiveSession.objects.for_stream_key(old) is None
        assert session.current_stream_key is not None
        client.post(go_live_url(session, "stream_key"), {"action": "revoke"})
        assert session.current_stream_key is None

    def test_status_json(self, client, host, session):
        client.force_login(host)
        data = client.get(go_live_url(session, "status")).json()
        assert data["status"] == "ready"

    @pytest.mark.parametrize("name", ["go_live", "end_live", "stream_key"])
    def test_forged_post_by_another_editor_is_refused(self, client, session, name):
        session.start()
        key = session.issue_stream_key()
        client.force_login(make_editor("intruder"))
        response = client.post(go_live_url(session, name), {"action": "revoke"})
        assert response.status_code == 403
        session.refresh_from_db()
        assert session.status == LiveSession.Status.LIVE
        assert LiveSession.objects.for_stream_key(key) == session

    def test_forged_start_on_a_ready_session_is_refused(self, client, session):
        client.force_login(make_editor("intruder"))
        assert client.post(go_live_url(session)).status_code == 403
        session.refresh_from_db()
        assert session.status == LiveSession.Status.READY

    def test_anonymous_is_sent_to_login(self, client, session):
        response = client.post(go_live_url(session))
        assert response.status_code == 302 and "login" in response.url
        session.refresh_from_db()
        assert session.status == LiveSession.Status.READY

    def test_go_live_permission_without_ownership(self, client, session):
        granted = make_editor("granted", "go_live")
        key = session.issue_stream_key()
        client.force_login(granted)
        response = client.get(go_live_url(session))
        assert response.status_code == 200
        assert key not in response.content.decode()
        assert b"Only the host can see the stream key" in response.content
        client.post(go_live_url(session))
        session.refresh_from_db()
        assert session.status == LiveSession.Status.LIVE


def test_stream_key_is_absent_from_every_page_another_editor_can_reach(client, session):
    """Walk every admin page another editor can get to (following links) and look for the key."""
    key = session.issue_stream_key()
    session.start()
    other = make_editor("other", "go_live", "moderate_chat")
    client.force_login(other)
    start = [
        reverse("wagtailadmin_home"),
        LIST_URL,
        reverse("wagtailsnippets_wagtail_live_livesession:edit", args=[session.pk]),
        reverse("wagtailsnippets_wagtail_live_livesession:history", args=[session.pk]),
        go_live_url(session),
        go_live_url(session, "status"),
        reverse("wagtailadmin_reports:site_history"),
    ]
    seen, queue = set(), list(start)
    import re

    while queue and len(seen) < 150:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        if response.status_code != 200:
            continue
        if response.streaming:
            body = b"".join(response.streaming_content).decode(errors="replace")
        else:
            body = response.content.decode(errors="replace")
        assert key not in body, f"the stream key leaked on {url}"
        for link in re.findall(r'href="(/admin/[^"#]*)"', body):
            if "logout" not in link and "delete" not in link:
                queue.append(link.replace("&amp;", "&"))
    assert len(seen) > 20


# -- what a new user tripped on (issue 10) --------------------------------------


class TestScheduledColumn:
    def test_a_start_a_week_ahead_reads_as_future(self, client, superuser):
        client.force_login(superuser)
        make_session("Next week", scheduled_start=timezone.now() + timedelta(days=7, minutes=5))
        make_session("Last week", scheduled_start=timezone.now() - timedelta(days=7, minutes=5))
        html = client.get(LIST_URL).content.decode()
        assert "Just now" not in html
        assert re.search(r"data-live-scheduled>\s*In 1\xa0week\s*<", html), html
        assert re.search(r">\s*1\xa0week ago\s*<", html)

    def test_time_until_names_the_largest_unit(self):
        from wagtail_live.views.sessions import time_until

        now = timezone.now()
        assert time_until(now + timedelta(days=7, hours=3), now) == "in 1\xa0week"
        assert time_until(now + timedelta(hours=2, minutes=10), now) == "in 2\xa0hours"


class TestSessionTitleInTheHeader:
    """Like Wagtail's edit views, each screen about one session names it in its header."""

    @pytest.mark.parametrize("name", ["go_live", "dashboard", "analytics"])
    def test_screen_header_names_the_session(self, client, superuser, name):
        client.force_login(superuser)
        session = make_session("Science fair")
        html = client.get(go_live_url(session, name)).content.decode()
        # Visible (the slim header's h1 is for screen readers only), where edit views put it.
        heading = re.search(r'id="header-title"[^>]*>(.*?)</h2>', html, re.S).group(1)
        assert "Science fair" in heading
        assert re.search(r"<title>[^<]*Science fair", html)


class TestPrepareLiveName:
    """One name, *Prepare live*: the listing's button, the menu, the add view's header."""

    def test_listing_button_menu_and_add_view(self, client, superuser):
        client.force_login(superuser)
        listing = client.get(LIST_URL).content.decode()
        assert "Add live session" not in listing
        assert re.search(rf'href="{ADD_URL}"[^>]*>.*?Prepare live', listing, re.S)
        add = client.get(ADD_URL).content.decode()
        assert "New: Live session" not in add
        assert re.search(r'id="header-title"[^>]*>.*?<span>Prepare live</span>', add, re.S)
        assert re.search(r"<title>\s*Prepare live - ", add)
        home = client.get(reverse("wagtailadmin_home")).content.decode()
        assert "Prepare live" in home and ADD_URL in home  # the Live menu's entry

    def test_menu_entry_only_for_those_who_may_prepare(self, client, db):
        viewer = make_editor("viewer")
        viewer.user_permissions.remove(Permission.objects.get(codename="add_livesession"))
        for user, shown in [(make_editor("preparer"), True), (viewer, False)]:
            client.force_login(user)
            home = client.get(reverse("wagtailadmin_home")).content.decode()
            assert ("Prepare live" in home) is shown

    def test_docs_use_the_same_name(self):
        from pathlib import Path

        docs = Path(__file__).resolve().parent.parent / "docs"
        for page in docs.glob("*.md"):
            text = page.read_text()
            assert "Add live session" not in text and "New: Live session" not in text, page


class TestWebhookDeliverySession:
    def test_delivery_log_names_the_session(self, client, superuser):
        from wagtail_live import webhooks
        from wagtail_live.models import Webhook, WebhookDelivery

        client.force_login(superuser)
        session = make_session("Science fair")
        webhook = Webhook.objects.create(name="CRM", url="https://example.com/hook")
        body = webhooks.build_body("session.started", session).decode()
        WebhookDelivery.objects.create(webhook=webhook, event="session.started", body=body)
        WebhookDelivery.objects.create(webhook=webhook, event="session.started", body="not json")
        html = client.get(reverse("wagtail_live_webhook_deliveries:index")).content.decode()
        assert re.search(r"<th[^>]*>.*?Session.*?</th>", html, re.S)
        edit = reverse("wagtailsnippets_wagtail_live_livesession:edit", args=[session.pk])
        assert re.search(rf'data-live-delivery-session>\s*<a href="{edit}">Science fair</a>', html)
        assert re.search(r"data-live-delivery-session>\s*—\s*</td>", html)  # a body it can't read


class TestViewerChartLabels:
    """The analytics chart's time axis: distinct labels whatever the session's length."""

    SCRIPT = """
    import { timeAxis } from %s;
    const out = {};
    for (const span of %s) {
      const { stepSize, format } = timeAxis(span);
      const start = Date.UTC(2026, 10, 29, 14, 3, 17);
      const labels = [];
      for (let t = Math.ceil(start / stepSize) * stepSize; t <= start + span; t += stepSize) {
        labels.push(format(t));
      }
      out[span] = labels;
    }
    console.log(JSON.stringify(out));
    """

    def labels(self, spans):
        import json
        import shutil
        import subprocess
        from pathlib import Path

        from tests.utils import require

        node = shutil.which("node")
        require(node, "node (to run the chart's label function)")
        module = Path(__file__).resolve().parent.parent / "wagtail_live/static/wagtail_live/js"
        script = self.SCRIPT % (json.dumps((module / "analytics.js").as_uri()), json.dumps(spans))
        done = subprocess.run(
            [node, "--input-type=module", "-e", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
            check=True,
        )
        return {int(span): labels for span, labels in json.loads(done.stdout).items()}

    def test_ticks_are_distinct_and_few_for_every_span(self):
        minute, hour = 60_000, 3_600_000
        spans = [
            40_000,
            3 * minute,
            12 * minute,
            hour,
            3 * hour + 7 * minute,
            30 * hour,
            9 * 24 * hour,
        ]
        for span, labels in self.labels(spans).items():
            assert 2 <= len(labels) <= 9, (span, labels)
            assert len(set(labels)) == len(labels), (span, labels)

    def test_labels_suit_the_span(self):
        minute, hour = 60_000, 3_600_000
        labels = self.labels([3 * minute, 3 * hour, 30 * hour])
        assert re.fullmatch(r"\d\d:\d\d:\d\d( [AP]M)?", labels[3 * minute][0])  # seconds
        assert re.fullmatch(r"\d\d:\d\d( [AP]M)?", labels[3 * hour][0])  # hours and minutes
        assert re.search(r"Nov", labels[30 * hour][0])  # a day and more: the date


class TestGoLiveWhileAnEncoderFeedsIt:
    """A live session's Go Live screen previews the stream and names its encoder, not the camera."""

    def test_live_session_shows_preview_and_encoder(self, client, host, session):
        from wagtail_live.ingest.encoders import note_encoder

        client.force_login(host)
        session.start()
        note_encoder(session, "nginx")
        html = client.get(go_live_url(session)).content.decode()
        assert "data-camera-preview" not in html and "golive.js" not in html
        assert f'data-playback-url="{session.playback_url}"' in html
        assert re.search(r'data-live-encoder="nginx">.*?through nginx-rtmp', html, re.S)

    def test_latest_encoder_wins_and_unknown_notes_are_ignored(self, client, host, session):
        from wagtail_live.ingest.encoders import current_encoder, note_encoder

        session.start()
        assert current_encoder(session) is None
        note_encoder(session, "browser")
        note_encoder(session, "rtmp")
        assert current_encoder(session) == "rtmp"
        note_encoder(session, "something else")
        assert current_encoder(session) is None
        client.force_login(host)
        html = client.get(go_live_url(session)).content.decode()
        assert 'data-live-encoder=""' in html and "did not say which" in html

    def test_before_going_live_the_camera_is_offered(self, client, host, session):
        client.force_login(host)
        html = client.get(go_live_url(session)).content.decode()
        assert "data-camera-preview" in html and "data-live-encoder" not in html
