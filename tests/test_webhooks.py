"""Webhooks against a real HTTP server on 127.0.0.1 that checks every signature."""

import json
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from tests.huey_thread import running_consumer, wait_for
from tests.utils import make_session
from tests.webhook_receiver import SECRET, Receiver
from wagtail_live import signals, webhooks
from wagtail_live.models import Recording, Webhook, WebhookDelivery

ALLOW_PRIVATE = {"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT": 2}


def make_webhook(url, events=None, **fields):
    return Webhook.objects.create(
        name="Bot",
        url=url,
        secret=fields.pop("secret", SECRET),
        events=events if events is not None else [e.value for e in Webhook.Event],
        **fields,
    )


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (the Huey enqueue) as soon as the test's block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# -- URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://example.org/hook", "javascript:alert(1)", "file:///etc/passwd", "example.org"]
)
def test_only_http_and_https_urls(url):
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url(url, allow_private=True)
    assert refused.value.code in ("scheme", "host")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_addresses_are_refused(url):
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url(url)
    assert refused.value.code == "private"
    assert "private or local network" in refused.value.messages[0]


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:0:7f00:1",  # IPv4-translated loopback (RFC 2765)
        "::ffff:0:a01:203",  # IPv4-translated 10.1.2.3
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",  # NAT64 well-known prefix wrapping loopback
        "64:ff9b:1::7f00:1",  # RFC 8215 local-use NAT64
        "64:ff9b:1::5db8:d822",  # local-use NAT64 even around a public address
        "2002:7f00:1::1",  # 6to4 around loopback
        "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo
        "::127.0.0.1",  # IPv4-compatible
        "fec0::1",  # site-local
        "fc00::1",
        "fe80::1",
        "224.0.0.1",  # multicast
        "239.255.255.250",
        "233.252.0.1",
        "ff02::1",
        "ff0e::1",
        "3fff::1",  # documentation (RFC 9637)
        "2001:db8::1",
        "5f00::1",  # reserved (RFC 9602)
        "4000::1",  # outside 2000::/3, unassigned
        "100.64.0.1",
        "240.0.0.1",
        "255.255.255.255",
    ],
)
def test_only_globally_routable_unicast_addresses(address):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url(f"https://{host}/hook")
    assert refused.value.code == "private"


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:4700::1111",
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",
        "2002:5db8:d822::1",
    ],
)
def test_public_addresses_are_allowed(address):
    """Checked only: nothing connects to these outside addresses."""
    host = f"[{address}]" if ":" in address else address
    assert [str(a) for a in webhooks.check_url(f"https://{host}/hook")] == [
        str(webhooks.ipaddress.ip_address(address))
    ]


def test_private_addresses_allowed_by_setting():
    with override_settings(WAGTAIL_LIVE={"WEBHOOK_ALLOW_PRIVATE": True}):
        webhooks.check_url("http://127.0.0.1:8000/hook")


def test_public_address_is_accepted():
    webhooks.check_url("https://93.184.215.14/hook")  # an IP literal needs no DNS


def test_unresolvable_host_is_refused():
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url("https://no-such-host.invalid/hook")
    assert refused.value.code == "resolve"


# -- payload and signature ----------------------------------------------------


@pytest.mark.django_db
def test_payload_shape_and_signature(host):
    session = make_session(owner=host, scheduled_start=timezone.now() + timedelta(days=1))
    body = webhooks.build_body("session.scheduled", session)
    payload = json.loads(body)
    assert set(payload) == {"event", "session", "sent_at"}
    assert payload["event"] == "session.scheduled"
    assert payload["session"]["id"] == session.pk
    assert payload["session"]["status"] == "scheduled"
    assert payload["session"]["owner"] == "host"
    assert "stream_key" not in json.dumps(payload)
    signature = webhooks.sign(body, SECRET)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert webhooks.verify(body, SECRET, signature)
    assert not webhooks.verify(body + b" ", SECRET, signature)
    assert not webhooks.verify(body, "other", signature)


# -- events reach a real receiver ---------------------------------------------


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE)
def test_session_started_and_ended_are_delivered_signed(receiver, session, run_on_commit):
    make_webhook(receiver.url)
    with run_on_commit():
        session.start()
    with run_on_commit():
        session.end()
    assert [p["event"] for p in receiver.payloads()] == ["session.started", "session.ended"]
    assert all(request["valid"] for request in receiver.requests)
    started = receiver.requests[0]
    assert started["headers"][webhooks.EVENT_HEADER] == "session.started"
    assert receiver.payloads()[0]["session"]["status"] == "live"
    deliveries = WebhookDelivery.objects.order_by("pk")
    assert [d.state for d in deliveries] == ["succeeded", "succeeded"]
    assert deliveries[0].status_code == 200
    assert deliveries[0].duration_ms is not None
    assert started["headers"][webhooks.DELIVERY_HEADER] == str(deliveries[0].delivery_id)


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE)
def test_session_scheduled_is_sent_when_scheduled_and_rescheduled(receiver, host, run_on_commit):
    make_webhook(receiver.url)
    start = timezone.now() + timedelta(days=2)
    with run_on_commit():
        session = make_session(owner=host, scheduled_start=start)
    with run_on_commit():
        session.title = "Renamed, same time"
        session.save()
    with run_on_commit():
        session.scheduled_start = start + timedelta(hours=1)
        session.save()
    payloads = receiver.payloads()
    assert [p["event"] for p in payloads] == ["session.scheduled", "session.scheduled"]
    assert payloads[1]["session"]["scheduled_start"] == (start + timedelta(hours=1)).isoformat()


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE)
def test_recording_ready_is_delivered(receiver, session, run_on_commit):
    make_webhook(receiver.url, events=["recording.ready"])
    recording = Recording.objects.create(session=session, source="x.webm", duration=12.5)
    with run_on_commit():
        signals.recording_ready.send(sender=Recording, recording=recording)
    (payload,) = receiver.payloads()
    assert payload["event"] == "recording.ready"
    assert payload["recording"]["id"] == recording.pk
    assert payload["session"]["id"] == session.pk


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE)
def test_only_active_subscribed_webhooks_get_events(receiver, session, run_on_commit):
    make_webhook(receiver.url, events=["session.ended"])
    make_webhook(receiver.url, active=False)
    with run_on_commit():
        session.start()
    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE)
def test_wrong_secret_is_a_failed_attempt(session, run_on_commit):
    with Receiver(secret="the-receiver-expects-this") as strict:
        make_webhook(strict.url, secret="but-we-sign-with-this")
        with run_on_commit():
            session.start()
    delivery = WebhookDelivery.objects.get(attempt=1)
    assert strict.requests and not strict.requests[0]["valid"]
    assert delivery.status_code == 401
    assert delivery.state == WebhookDelivery.State.RETRYING


# -- failures: retries with backoff, then failed ------------------------------


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE={**ALLOW_PRIVATE, "WEBHOOK_RETRY_DELAYS": (60, 600)})
def test_receiver_answering_500_is_retried_then_failed(session, run_on_commit):
    with Receiver(answer=500) as failing:
        make_webhook(failing.url)
        with run_on_commit():
            session.start()
        first = WebhookDelivery.objects.get(attempt=1)
        assert first.state == WebhookDelivery.State.RETRYING
        assert first.status_code == 500
        assert "500" in first.error
        assert first.next_retry_at == first.attempted_at + timedelta(seconds=60)
        second = WebhookDelivery.objects.get(attempt=2)
        assert second.state == WebhookDelivery.State.PENDING
        assert second.due_at == first.next_retry_at
        assert second.delivery_id == first.delivery_id
        with run_on_commit():
            webhooks.deliver(second.pk)
        third = WebhookDelivery.objects.get(attempt=3)
        assert third.due_at - WebhookDelivery.objects.get(attempt=2).attempted_at == timedelta(
            seconds=600
        )
        with run_on_commit():
            webhooks.deliver(third.pk)
    assert len(failing.requests) == 3
    states = list(WebhookDelivery.objects.order_by("attempt").values_list("state", flat=True))
    assert states == ["retrying", "retrying", "failed"]
    assert not WebhookDelivery.objects.filter(attempt=4).exists()


def test_default_backoff_gives_up_within_24_hours():
    from wagtail_live.conf import DEFAULTS

    delays = DEFAULTS["WEBHOOK_RETRY_DELAYS"]
    assert list(delays) == sorted(delays)
    assert 20 * 3600 < sum(delays) <= 24 * 3600


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE={**ALLOW_PRIVATE, "WEBHOOK_TIMEOUT": 0.5})
def test_hanging_receiver_times_out_and_blocks_nothing_else(receiver, session, run_on_commit):
    with Receiver(delay=3) as hanging:
        make_webhook(hanging.url)
        make_webhook(receiver.url)
        started = time.monotonic()
        with run_on_commit():
            session.start()
        took = time.monotonic() - started
    slow, fast = WebhookDelivery.objects.filter(attempt=1).order_by("webhook_id")
    assert slow.state == WebhookDelivery.State.RETRYING
    assert "No answer within" in slow.error
    assert slow.status_code is None
    assert fast.state == WebhookDelivery.State.SUCCEEDED
    assert len(receiver.requests) == 1
    assert took < 3  # the timeout cut the hanging receiver off, not its own 3 s


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE)
def test_redirects_are_not_followed(session, run_on_commit):
    with Receiver(answer=302) as redirecting:
        make_webhook(redirecting.url)
        with run_on_commit():
            session.start()
    delivery = WebhookDelivery.objects.get(attempt=1)
    assert delivery.status_code == 302
    assert delivery.state == WebhookDelivery.State.RETRYING


@pytest.mark.django_db
def test_connection_refused_is_logged(session, run_on_commit):
    with override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE):
        with Receiver() as gone:
            url = gone.url
        make_webhook(url)
        with run_on_commit():
            session.start()
    delivery = WebhookDelivery.objects.get(attempt=1)
    assert delivery.state == WebhookDelivery.State.RETRYING
    assert "Could not connect" in delivery.error


@pytest.mark.django_db
def test_private_address_is_refused_at_delivery_time(receiver, session, run_on_commit):
    # Saved while private addresses were allowed; the setting was turned off since.
    make_webhook(receiver.url)
    with run_on_commit():
        session.start()
    delivery = WebhookDelivery.objects.get(attempt=1)
    assert receiver.requests == []
    assert "private or local network" in delivery.error
    assert delivery.state == WebhookDelivery.State.RETRYING


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE)
def test_an_attempt_is_made_once_even_if_its_task_runs_twice(receiver, session):
    make_webhook(receiver.url)
    (delivery,) = webhooks.emit("session.started", session)
    assert webhooks.deliver(delivery.pk) is not None
    assert webhooks.deliver(delivery.pk) is None
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_lost_attempts_are_found_by_the_sweep(session):
    webhook = make_webhook("https://93.184.215.14/hook")
    (delivery,) = webhooks.emit("session.started", session)
    assert not webhooks.overdue_deliveries().exists()
    later = timezone.now() + timedelta(minutes=10)
    assert list(webhooks.overdue_deliveries(now=later)) == [delivery]
    assert delivery.webhook == webhook


# -- admin --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.org/hook", "Only http:// and https:// URLs"),
        ("gopher://example.org/hook", "Enter a valid URL"),
        ("http://10.0.0.5/hook", "private or local network"),
        ("http://127.0.0.1:9000/hook", "private or local network"),
    ],
)
def test_admin_refuses_bad_urls_and_saves_nothing(client, superuser, url, message):
    client.force_login(superuser)
    response = client.post(
        reverse("wagtail_live_webhooks:add"),
        {"name": "Bot", "url": url, "secret": "x" * 20, "events": ["session.started"]},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_admin_creates_a_webhook(client, superuser):
    client.force_login(superuser)
    response = client.post(
        reverse("wagtail_live_webhooks:add"),
        {
            "name": "Newsletter",
            "url": "https://93.184.215.14/hook",
            "secret": "x" * 20,
            "events": ["session.started", "session.ended"],
            "active": "on",
        },
    )
    assert response.status_code == 302
    webhook = Webhook.objects.get()
    assert webhook.events == ["session.started", "session.ended"]
    listing = client.get(reverse("wagtail_live_webhooks:index"))
    assert "Send test" in listing.content.decode()


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE)
def test_send_test_button_delivers_and_logs(client, superuser, receiver, run_on_commit):
    webhook = make_webhook(receiver.url, events=[])
    client.force_login(superuser)
    with run_on_commit():
        response = client.post(reverse("wagtail_live_webhooks:send_test", args=[webhook.pk]))
    assert response.status_code == 302
    (payload,) = receiver.payloads()
    assert payload["event"] == "webhook.test"
    assert receiver.requests[0]["valid"]
    log = client.get(response["Location"])
    assert log.status_code == 200
    assert "webhook.test" in log.content.decode()
    assert WebhookDelivery.objects.get().state == WebhookDelivery.State.SUCCEEDED


@pytest.mark.django_db
def test_editors_cannot_manage_webhooks(client, editor):
    webhook = make_webhook("https://93.184.215.14/hook")
    client.force_login(editor)
    assert client.get(reverse("wagtail_live_webhooks:index")).status_code in (302, 403)
    client.post(reverse("wagtail_live_webhooks:send_test", args=[webhook.pk]))
    assert not WebhookDelivery.objects.exists()


# -- a real Huey consumer -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@override_settings(WAGTAIL_LIVE={**ALLOW_PRIVATE, "WEBHOOK_RETRY_DELAYS": (1, 1)})
def test_real_huey_consumer_delivers_and_retries_with_backoff(session):
    """Through the queue: the 500 is retried by the consumer's scheduler, then delivered."""
    with Receiver(answer=[500, 200]) as flaky:
        make_webhook(flaky.url)
        with running_consumer():
            session.start()  # no transaction here: the delivery is queued at once
            wait_for(lambda: WebhookDelivery.objects.filter(state="succeeded").exists())
    attempts = list(WebhookDelivery.objects.order_by("attempt"))
    assert [(d.attempt, d.state, d.status_code) for d in attempts] == [
        (1, "retrying", 500),
        (2, "succeeded", 200),
    ]
    assert attempts[1].attempted_at >= attempts[0].next_retry_at
    assert all(request["valid"] for request in flaky.requests)


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE=ALLOW_PRIVATE)
def test_retries_stop_when_the_webhook_is_deactivated(receiver, session):
    webhook = make_webhook(receiver.url)
    (delivery,) = webhooks.emit("session.started", session)
    webhook.active = False
    webhook.save()
    result = webhooks.deliver(delivery.pk)
    assert result.state == WebhookDelivery.State.FAILED
    assert "deactivated" in result.error
    assert receiver.requests == []


@pytest.mark.django_db
def test_old_finished_attempts_are_pruned(session):
    make_webhook("https://93.184.215.14/hook")
    old, pending = (webhooks.emit("session.started", session)[0] for _ in range(2))
    WebhookDelivery.objects.filter(pk=old.pk).update(state="succeeded")
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(days=31))
    assert webhooks.prune_log() == 1
    assert list(WebhookDelivery.objects.all()) == [pending]
    with override_settings(WAGTAIL_LIVE={"WEBHOOK_LOG_DAYS": None}):
        assert webhooks.prune_log() == 0
