"""Reminders: *Remind me*, e-mails before the start and at go-live, unsubscribe, failures."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from tests.huey_thread import running_consumer, wait_for
from tests.utils import make_session
from wagtail_live import reminders
from wagtail_live.models import LiveReminder

pytestmark = pytest.mark.django_db

BROKEN_ADDRESS = "broken@example.com"


class PartlyBrokenBackend(LocmemBackend):
    """Locmem, except that sending to ``BROKEN_ADDRESS`` fails like a dead SMTP server."""

    def send_messages(self, messages):
        for message in messages:
            if BROKEN_ADDRESS in message.to:
                raise ConnectionRefusedError("SMTP server refused the connection")
        return super().send_messages(messages)


class BrokenBackend(LocmemBackend):
    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server refused the connection")


def make_visitor(username, email=None):
    email = f"{username}@example.com" if email is None else email
    return get_user_model().objects.create_user(username, email, "password")


@pytest.fixture
def visitor(db):
    return make_visitor("visitor")


@pytest.fixture
def soon(host):
    """A public session that starts in 20 minutes."""
    return make_session(
        "Launch", owner=host, scheduled_start=timezone.now() + timedelta(minutes=20)
    )


def lead_time(session, minutes_before=10):
    return session.scheduled_start - timedelta(minutes=minutes_before)


# -- asking -------------------------------------------------------------------


def test_remind_me_twice_keeps_one_reminder(soon, visitor):
    first, created = reminders.remind_me(soon, visitor)
    again, created_again = reminders.remind_me(soon, visitor)
    assert created and not created_again
    assert first.pk == again.pk
    assert LiveReminder.objects.count() == 1
    assert reminders.waiting_count(soon) == 1


@pytest.mark.parametrize("end", ["end", "fail"])
def test_remind_me_on_an_ended_session_is_refused(soon, visitor, end):
    if end == "end":
        soon.end()
    else:
        soon.fail("encoder vanished")
    with pytest.raises(reminders.ReminderError) as refused:
        reminders.remind_me(soon, visitor)
    assert refused.value.code == "ended"
    assert "already ended" in refused.value.message
    assert not LiveReminder.objects.exists()


def test_remind_me_on_a_live_session_is_refused(soon, visitor):
    soon.start()
    with pytest.raises(reminders.ReminderError) as refused:
        reminders.remind_me(soon, visitor)
    assert refused.value.code == "live"


def test_anonymous_visitors_are_asked_to_log_in(soon):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(reminders.ReminderError) as refused:
        reminders.remind_me(soon, AnonymousUser())
    assert refused.value.code == "login_required"


def test_a_user_without_email_is_told_so(soon):
    with pytest.raises(reminders.ReminderError) as refused:
        reminders.remind_me(soon, make_visitor("noaddress", email=""))
    assert refused.value.code == "no_email"


# -- the view -----------------------------------------------------------------


def remind_url(session):
    return reverse("wagtail_live:remind_me", args=[session.pk])


def test_view_remind_me_twice_json(client, soon, visitor):
    client.force_login(visitor)
    for _ in range(2):
        response = client.post(
            remind_url(soon), {"next": "/some-page/"}, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 200
        assert response.json()["ok"] is True
        assert response.json()["waiting"] is True
    reminder = LiveReminder.objects.get()
    assert reminder.page_url == "http://testserver/some-page/"


def test_view_anonymous_gets_a_login_link(client, soon):
    response = client.post(remind_url(soon), {"next": "/some-page/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=%2Fsome-page%2F"
    response = client.post(
        remind_url(soon), {"next": "/some-page/"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "login_required"
    assert response.json()["login_url"].startswith("/admin/login/?next=")
    assert not LiveReminder.objects.exists()


def test_view_ended_session_gives_a_clear_message(client, soon, visitor):
    soon.end()
    client.force_login(visitor)
    response = client.post(remind_url(soon))
    assert response.status_code == 400
    assert "has already ended" in response.content.decode()
    response = client.post(remind_url(soon), HTTP_ACCEPT="application/json")
    assert response.json()["error"] == "ended"
    assert not LiveReminder.objects.exists()


def test_view_refuses_get_and_foreign_next(client, soon, visitor):
    client.force_login(visitor)
    assert client.get(remind_url(soon)).status_code == 405
    client.post(remind_url(soon), {"next": "https://evil.example/phish"})
    assert LiveReminder.objects.get().page_url == ""


def test_view_cancel(client, soon, visitor):
    client.force_login(visitor)
    client.post(remind_url(soon))
    response = client.post(remind_url(soon), {"cancel": "1"}, HTTP_ACCEPT="application/json")
    assert response.json()["waiting"] is False
    assert reminders.waiting_count(soon) == 0


# -- sending ------------------------------------------------------------------


def test_lead_reminder_goes_out_once_at_the_lead_time(soon, visitor):
    reminders.remind_me(soon, visitor, page_url="http://testserver/launch/")
    too_early = soon.scheduled_start - timedelta(minutes=16)
    assert reminders.send_due_reminders(now=too_early)["lead"] == 0
    assert mail.outbox == []
    assert reminders.send_due_reminders(now=lead_time(soon))["lead"] == 1
    assert reminders.send_due_reminders(now=lead_time(soon, 5))["lead"] == 0
    (email,) = mail.outbox
    assert email.to == ["visitor@example.com"]
    assert "Starting soon: Launch" == email.subject
    assert "http://testserver/launch/" in email.body
    reminder = LiveReminder.objects.get()
    assert reminder.lead_sent_for == soon.scheduled_start
    assert reminder.unsubscribe_token in email.body


@pytest.mark.parametrize("lead", [timedelta(hours=1), 3600])
def test_reminder_lead_is_a_setting(soon, visitor, lead):
    reminders.remind_me(soon, visitor)
    assert reminders.send_due_reminders()["lead"] == 0  # 20 minutes ahead: not yet by default
    with override_settings(WAGTAIL_LIVE={"REMINDER_LEAD": lead}):
        assert reminders.send_due_reminders()["lead"] == 1


def test_went_live_notice_is_sent_when_the_session_starts(
    soon, visitor, django_capture_on_commit_callbacks
):
    reminders.remind_me(soon, visitor)
    with django_capture_on_commit_callbacks(execute=True):
        soon.start()
    (email,) = mail.outbox
    assert email.subject == "Live now: Launch"
    # The periodic sweep does not send it again.
    assert reminders.send_due_reminders()["live"] == 0
    assert len(mail.outbox) == 1


def test_no_lead_reminder_once_live(soon, visitor):
    reminders.remind_me(soon, visitor)
    soon.start()
    counts = reminders.send_due_reminders(now=lead_time(soon))
    assert counts == {"lead": 0, "live": 1, "failed": 0}


def test_rescheduled_before_the_reminder_sends_at_the_new_time(soon, visitor):
    reminders.remind_me(soon, visitor)
    old_lead = lead_time(soon)
    soon.scheduled_start += timedelta(hours=1)
    soon.save()
    assert reminders.send_due_reminders(now=old_lead)["lead"] == 0
    assert reminders.send_due_reminders(now=lead_time(soon))["lead"] == 1


def test_rescheduled_after_the_reminder_sends_one_for_the_new_time(soon, visitor):
    reminders.remind_me(soon, visitor)
    reminders.send_due_reminders(now=lead_time(soon))
    soon.scheduled_start += timedelta(minutes=30)
    soon.save()
    assert reminders.send_due_reminders(now=lead_time(soon))["lead"] == 1
    assert reminders.send_due_reminders(now=lead_time(soon, 2))["lead"] == 0
    assert len(mail.outbox) == 2


def test_deleted_session_sends_nothing(soon, visitor):
    reminders.remind_me(soon, visitor)
    when = lead_time(soon)
    soon.delete()
    assert reminders.send_due_reminders(now=when) == {"lead": 0, "live": 0, "failed": 0}
    assert mail.outbox == []


def test_failing_backend_is_retried_logged_and_others_still_sent(soon, visitor, caplog):
    broken = make_visitor("broken", email=BROKEN_ADDRESS)
    reminders.remind_me(soon, broken)
    reminders.remind_me(soon, visitor)
    with override_settings(EMAIL_BACKEND="tests.test_reminders.PartlyBrokenBackend"):
        counts = reminders.send_due_reminders(now=lead_time(soon))
    assert counts == {"lead": 1, "live": 0, "failed": 1}
    assert [email.to for email in mail.outbox] == [["visitor@example.com"]]
    failed = LiveReminder.objects.get(user=broken)
    assert failed.failures == 1 and failed.lead_sent_at is None
    assert "refused the connection" in failed.last_error
    assert "will retry" in caplog.text
    # The server is back: the next run sends the one that failed, and only it.
    counts = reminders.send_due_reminders(now=lead_time(soon, 9))
    assert counts == {"lead": 1, "live": 0, "failed": 0}
    assert mail.outbox[-1].to == [BROKEN_ADDRESS]
    failed.refresh_from_db()
    assert failed.failures == 0 and failed.last_error == ""


@override_settings(
    EMAIL_BACKEND="tests.test_reminders.BrokenBackend",
    WAGTAIL_LIVE={"REMINDER_MAX_ATTEMPTS": 2},
)
def test_a_reminder_is_given_up_after_max_attempts(soon, visitor):
    reminders.remind_me(soon, visitor)
    for minute in (10, 9, 8):
        reminders.send_due_reminders(now=lead_time(soon, minute))
    assert LiveReminder.objects.get().failures == 2


# -- unsubscribe --------------------------------------------------------------


def test_one_click_unsubscribe(soon, visitor):
    reminders.remind_me(soon, visitor, page_url="http://testserver/launch/")
    reminders.send_due_reminders(now=lead_time(soon))
    (email,) = mail.outbox
    link = reminders.absolute_url(
        LiveReminder.objects.get(),
        reverse("wagtail_live:unsubscribe", args=[LiveReminder.objects.get().unsubscribe_token]),
    )
    assert link in email.body
    assert email.extra_headers["List-Unsubscribe"] == f"<{link}>"
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = link.replace("http://testserver", "")
    response = Client().get(path)  # a mail scanner's prefetch, or the visitor's click
    assert response.status_code == 200
    assert "data-live-unsubscribe-form" in response.content.decode()
    assert reminders.waiting_count(soon) == 1, "a GET changes nothing"
    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "no more reminders" in response.content.decode()
    assert reminders.waiting_count(soon) == 0
    soon.start()
    assert reminders.send_due_reminders()["live"] == 0
    assert len(mail.outbox) == 1


def test_unsubscribe_by_post_needs_no_csrf_token(soon, visitor):
    reminder, _ = reminders.remind_me(soon, visitor)
    client = Client(enforce_csrf_checks=True)
    url = reverse("wagtail_live:unsubscribe", args=[reminder.unsubscribe_token])
    assert client.post(url, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert reminders.waiting_count(soon) == 0


@pytest.mark.parametrize("method", ["get", "head", "options"])
def test_fetching_the_unsubscribe_link_changes_nothing(soon, visitor, method):
    """Mail scanners and link previews GET (or HEAD) every link of an e-mail."""
    reminder, _ = reminders.remind_me(soon, visitor, page_url="http://testserver/launch/")
    url = reverse("wagtail_live:unsubscribe", args=[reminder.unsubscribe_token])
    for _attempt in range(3):
        response = getattr(Client(), method)(url)
        assert response.status_code in (200, 405)
    assert reminders.waiting_count(soon) == 1
    reminder.refresh_from_db()
    assert reminder.unsubscribed_at is None


def test_unsubscribe_confirmation_page_posts_back_to_itself(soon, visitor):
    reminder, _ = reminders.remind_me(soon, visitor, page_url="http://testserver/launch/")
    url = reverse("wagtail_live:unsubscribe", args=[reminder.unsubscribe_token])
    response = Client().get(url)
    html = response.content.decode()
    assert "Stop e-mails about “Launch”?" in html
    assert '<form method="post" data-live-unsubscribe-form>' in html  # no action: this URL
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize(
    "body, content_type",
    [
        ("List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"),  # RFC 8058
        ("", "application/x-www-form-urlencoded"),
        (None, "multipart/form-data"),
    ],
)
def test_one_click_post_unsubscribes_without_cookies_or_csrf(soon, visitor, body, content_type):
    reminder, _ = reminders.remind_me(soon, visitor)
    url = reverse("wagtail_live:unsubscribe", args=[reminder.unsubscribe_token])
    client = Client(enforce_csrf_checks=True)
    if body is None:
        response = client.post(url, {"List-Unsubscribe": "One-Click"})
    else:
        response = client.post(url, body, content_type=content_type)
    assert response.status_code == 200
    assert reminders.waiting_count(soon) == 0
    # Twice is fine (a client retrying), and the page then says so on GET too.
    assert client.post(url).status_code == 200
    assert "no more reminders" in Client().get(url).content.decode()


def test_unknown_token_post_changes_nothing(soon, visitor):
    reminders.remind_me(soon, visitor)
    response = Client().post(reverse("wagtail_live:unsubscribe", args=["not-a-token"]))
    assert response.status_code == 404
    assert reminders.waiting_count(soon) == 1


def test_unknown_unsubscribe_token(client, db):
    response = client.get(reverse("wagtail_live:unsubscribe", args=["not-a-token"]))
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_remind_me_again_after_unsubscribing(soon, visitor):
    reminder, _ = reminders.remind_me(soon, visitor)
    reminders.unsubscribe(reminder.unsubscribe_token)
    reminders.remind_me(soon, visitor)
    assert reminders.waiting_count(soon) == 1


# -- a real Huey consumer -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_huey_consumer_sends_through_locmem(host):
    """Tasks go through Huey's queue to a consumer's worker thread, e-mail to locmem."""
    from wagtail_live import tasks

    session = make_session(
        "Consumer", owner=host, scheduled_start=timezone.now() + timedelta(minutes=5)
    )
    reminders.remind_me(session, make_visitor("queued"))
    with running_consumer():
        tasks.send_live_reminders()  # the periodic task, queued by hand
        wait_for(lambda: len(mail.outbox) == 1)
        session.start()  # queues the went-live notice (no transaction: at once)
        wait_for(lambda: len(mail.outbox) == 2)
    assert [email.subject for email in mail.outbox] == [
        "Starting soon: Consumer",
        "Live now: Consumer",
    ]
