"""The whole audience story through the public faces, as an outside check would drive it.

A host schedules a session in the admin, a webhook on a real loopback receiver hears of it,
a visitor asks to be reminded, the reminders go out, the session runs and ends, and the
host reads the analytics.
"""

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from tests.webhook_receiver import Receiver
from wagtail_live import reminders
from wagtail_live.models import LiveSession, ViewerSample, WebhookDelivery


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE={"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT": 2})
def test_schedule_remind_notify_and_analyse(client, superuser, django_capture_on_commit_callbacks):
    with Receiver(secret="shared-secret") as receiver:
        client.force_login(superuser)
        # The webhook, through the admin form.
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("wagtail_live_webhooks:add"),
                {
                    "name": "Bot",
                    "url": receiver.url,
                    "secret": "shared-secret",
                    "events": ["session.scheduled", "session.started", "session.ended"],
                    "active": "on",
                },
            )
        assert response.status_code == 302
        # The session, through Prepare Live, 20 minutes ahead.
        start = timezone.localtime() + timedelta(minutes=20)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                reverse("wagtailsnippets_wagtail_live_livesession:add"),
                {
                    "title": "Launch",
                    "description": "",
                    "privacy": "public",
                    "tags": "",
                    "scheduled_start": start.strftime("%Y-%m-%d %H:%M"),
                },
            )
        session = LiveSession.objects.get()
        assert session.status == LiveSession.Status.SCHEDULED

        # A visitor presses Remind me.
        visitor = get_user_model().objects.create_user("fan", "fan@example.com", "pw")
        fan = Client()
        fan.force_login(visitor)
        answer = fan.post(
            reverse("wagtail_live:remind_me", args=[session.pk]),
            {"next": "/launch/"},
            HTTP_ACCEPT="application/json",
        )
        assert answer.json()["ok"] is True

        # Fifteen minutes before: the reminder; then the session runs and ends.
        reminders.send_due_reminders(now=session.scheduled_start - timedelta(minutes=14))
        with django_capture_on_commit_callbacks(execute=True):
            session.start()
        ViewerSample.objects.create(session=session, viewers=3, unique_viewers=3)
        ViewerSample.objects.create(session=session, viewers=5, unique_viewers=6)
        with django_capture_on_commit_callbacks(execute=True):
            session.end()

    events = [json.loads(request["body"])["event"] for request in receiver.requests]
    assert events == ["session.scheduled", "session.started", "session.ended"]
    assert all(request["valid"] for request in receiver.requests)
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"succeeded"}
    assert [email.subject for email in mail.outbox] == ["Starting soon: Launch", "Live now: Launch"]
    assert "http://testserver/launch/" in mail.outbox[0].body

    page = client.get(reverse("wagtail_live_admin:analytics", args=[session.pk])).content.decode()
    assert 'data-figure="peak">5<' in page
    assert 'data-figure="unique">6<' in page
    assert session.figures.peak_viewers == 5
