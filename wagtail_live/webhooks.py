"""Webhooks: signed JSON POSTs telling other systems about session events.

Every event becomes one ``WebhookDelivery`` row per subscribed webhook and is
delivered by a Huey task (``tasks.deliver_webhook``). A failed attempt is
logged and followed by a new attempt row after ``WEBHOOK_RETRY_DELAYS``; after
the last one the delivery is marked failed. Receivers check the
``X-Wagtail-Live-Signature`` header (see ``docs/webhooks.md``).
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from django.utils.translation import gettext as _

from . import __version__, signals
from .conf import live_settings
from .models import LiveSession, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Wagtail-Live-Signature"
EVENT_HEADER = "X-Wagtail-Live-Event"
DELIVERY_HEADER = "X-Wagtail-Live-Delivery"
#: The event the admin's *Send test* button sends (not subscribable).
TEST_EVENT = "webhook.test"
#: How much of a receiver's answer is kept in the log.
RESPONSE_LOG_BYTES = 500


# -- URLs ---------------------------------------------------------------------


def check_url(url, allow_private=None):
    """Check ``url`` and return the IP addresses it may be delivered to (a list).

    Raises ``ValidationError`` unless ``url`` is an http(s) URL on a public
    address. The host is resolved once and *every* address it resolves to must
    be public (not private, loopback, link-local, reserved…, nor an IPv6 form
    wrapping such an IPv4 address), unless ``allow_private`` (default
    ``WAGTAIL_LIVE["WEBHOOK_ALLOW_PRIVATE"]``): a webhook must not let an editor
    make the server probe its own network. ``post`` connects to exactly these
    addresses, never resolving the name again (a DNS-rebinding name cannot
    answer "public" to the check and "loopback" to the connection).
    """
    if allow_private is None:
        allow_private = live_settings.WEBHOOK_ALLOW_PRIVATE
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https"):
        raise ValidationError(
            _("Only http:// and https:// URLs can receive webhooks."), code="scheme"
        )
    if not parts.hostname:
        raise ValidationError(_("The URL has no host name."), code="host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError(_("The URL's port is not a number."), code="port") from None
    addresses = resolve(parts.hostname, port)
    if allow_private:
        return addresses
    for address in addresses:
        if not is_public(address):
            raise ValidationError(
                _(
                    "%(host)s is on a private or local network (%(address)s); "
                    "webhooks may only call public addresses."
                )
                % {"host": parts.hostname, "address": address},
                code="private",
            )
    return addresses


def resolve(host, port):
    """The IP addresses ``host`` resolves to, in the resolver's order, each once.

    ``ValidationError`` (code ``resolve``) when it does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise ValidationError(
            _("The host %(host)s could not be found.") % {"host": host}, code="resolve"
        ) from None
    addresses = []
    for info in infos:
        # Strip an IPv6 zone ("fe80::1%eth0") before parsing.
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ValidationError(
            _("The host %(host)s could not be found.") % {"host": host}, code="resolve"
        )
    return addresses


#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (RFC 6052 NAT64,
#: RFC 2765 IPv4-translated, RFC 4291 IPv4-compatible): only as public as the IPv4 inside.
_IPV4_IN_LOW_BITS = tuple(
    ipaddress.ip_network(prefix)
    for prefix in ("64:ff9b::/96", "::ffff:0:0:0/96", "::ffff:0:0/96", "::/96")
)

#: The IPv6 global unicast space (RFC 4291 section 2.4); everything outside it is
#: multicast, link/site-local, unique-local or unassigned (IANA IPv6 address space).
_IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")

#: Special-purpose blocks (IANA special-purpose address registries) that this
#: Python's ``is_global`` may not know yet: never a webhook receiver.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(prefix)
    for prefix in (
        "64:ff9b:1::/48",  # RFC 8215 local-use NAT64
        "fec0::/10",  # RFC 3879 deprecated site-local
        "3fff::/20",  # RFC 9637 documentation
        "5f00::/16",  # RFC 9602 SRv6 SIDs
        "2001:db8::/32",  # RFC 3849 documentation
        "2001::/23",  # RFC 2928 IETF protocol assignments, Teredo included
    )
)


def _embedded_ipv4(address):
    """The IPv4 addresses an IPv6 ``address`` carries (mapped, 6to4, Teredo, NAT64…)."""
    embedded = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        embedded.extend(address.teredo)
    if any(address in network for network in _IPV4_IN_LOW_BITS):
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [inner for inner in embedded if inner is not None]


def _is_global_unicast(address):
    """``is_global`` and not multicast, plus the special blocks ``_NOT_GLOBAL`` lists."""
    if address.is_multicast or not address.is_global:
        return False
    return not any(
        address in network for network in _NOT_GLOBAL if network.version == address.version
    )


def is_public(address):
    """Whether ``address`` (an ``ipaddress`` object) is a globally routable unicast address.

    Refuses multicast, every special-purpose block (``is_global`` and ``_NOT_GLOBAL``) and
    IPv6 outside ``2000::/3``. IPv6 forms that wrap an IPv4 address (mapped ``::ffff:a.b.c.d``,
    translated ``::ffff:0:a.b.c.d``, 6to4, NAT64 ``64:ff9b::/96``, IPv4-compatible) must
    carry a public IPv4 address; Teredo (``2001::/32``) and local-use NAT64
    (``64:ff9b:1::/48``, RFC 8215) are refused whatever they carry.
    """
    if address.version == 6:
        embedded = _embedded_ipv4(address)
        if embedded and not all(_is_global_unicast(inner) for inner in embedded):
            return False
        if any(address in network for network in _IPV4_IN_LOW_BITS):
            return bool(embedded)  # judged by the IPv4 inside alone
        if address not in _IPV6_GLOBAL_UNICAST:
            return False
    return _is_global_unicast(address)


# -- payloads -----------------------------------------------------------------


def session_data(session):
    """The ``session`` object of every payload: what a receiver needs, never the stream key."""

    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": session.pk,
        "title": session.title,
        "slug": session.slug,
        "description": session.description,
        "privacy": session.privacy,
        "status": session.status,
        "scheduled_start": iso(session.scheduled_start),
        "started_at": iso(session.started_at),
        "ended_at": iso(session.ended_at),
        "owner": session.owner.get_username() if session.owner_id else None,
        "peak_viewers": session.peak_viewers,
        "likes": session.likes,
    }


def build_body(event, session, sent_at=None, **extra):
    """The JSON bytes POSTed: ``{"event", "session": {...}, "sent_at", **extra}``."""
    payload = {
        "event": event,
        "session": session_data(session),
        "sent_at": (sent_at or timezone.now()).isoformat(),
        **extra,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def sign(body, secret):
    """The signature header value: ``sha256=<hex HMAC-SHA256 of the raw body with secret>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body, secret, header):
    """Whether ``header`` is the right signature of ``body`` (what a receiver does)."""
    return hmac.compare_digest(sign(body, secret), header or "")


# -- queueing -----------------------------------------------------------------


def emit(event, session, **extra):
    """Queue ``event`` about ``session`` for every active webhook subscribed to it.

    The deliveries are queued after the current transaction commits, so a
    rolled-back change is never announced. Returns the ``WebhookDelivery`` rows.
    """
    body = build_body(event, session, **extra).decode()
    deliveries = [
        WebhookDelivery.objects.create(webhook=webhook, event=event, body=body)
        for webhook in Webhook.objects.filter(active=True)
        if webhook.wants(event)
    ]
    for delivery in deliveries:
        transaction.on_commit(lambda pk=delivery.pk: _enqueue(pk))
    return deliveries


def send_test(webhook):
    """Queue a ``webhook.test`` delivery to ``webhook`` (the admin's *Send test*)."""
    session = LiveSession(pk=0, title=_("Test session"), slug="test", status="scheduled")
    body = build_body(TEST_EVENT, session).decode()
    delivery = WebhookDelivery.objects.create(webhook=webhook, event=TEST_EVENT, body=body)
    transaction.on_commit(lambda: _enqueue(delivery.pk))
    return delivery


def _enqueue(delivery_pk, delay=None):
    from . import tasks  # a face; imported late so this service never needs Huey to load

    if delay:
        tasks.deliver_webhook.schedule((delivery_pk,), delay=delay)
    else:
        tasks.deliver_webhook(delivery_pk)


# -- delivering ---------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to one checked IP address; ``Host`` stays the URL's host name."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        # Never the name: it was resolved (and checked) once, in check_url.
        self.sock = socket.create_connection((str(self.address), self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to one checked IP address.

    TLS still sends the host name (SNI) and verifies the certificate against it,
    as if the name had been resolved by the connection.
    """

    def __init__(self, host, port, address, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address

    def connect(self):
        sock = socket.create_connection((str(self.address), self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def tls_context():
    """The TLS settings of deliveries: the system's CAs, host names verified."""
    return ssl.create_default_context()


def open_connection(url, addresses, timeout):
    """A connected ``http.client`` connection to ``url`` through one of ``addresses``.

    The addresses are tried in order (as a resolver's answers are); the last
    connection error is raised when none answers. ``Host`` and TLS use the
    URL's host name; nothing here resolves a name.
    """
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    failure = OSError(_("no address to connect to"))
    for address in addresses:
        if https:
            connection = _PinnedHTTPSConnection(
                parts.hostname, port, address, timeout, tls_context()
            )
        else:
            connection = _PinnedHTTPConnection(parts.hostname, port, address, timeout)
        try:
            connection.connect()
        except OSError as error:  # refused, unreachable, timed out, bad certificate
            connection.close()
            failure = error
            continue
        return connection
    raise failure


def _request_target(url):
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def deliver(delivery_pk, now=None):
    """Make one attempt at a pending delivery; log it; queue the retry or mark it failed.

    Safe to call twice for the same row (a task run twice): only the caller that
    claims the pending row sends. Returns the updated row, or None if there was
    nothing to do.
    """
    now = now or timezone.now()
    # Each row is one attempt: the conditional UPDATE lets exactly one worker claim it.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_pk, state=WebhookDelivery.State.PENDING, attempted_at__isnull=True
    ).update(attempted_at=now)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_pk)
    if not delivery.webhook.active and delivery.event != TEST_EVENT:
        delivery.error = _("The webhook was deactivated; nothing was sent.")
        _give_up(delivery)
        return delivery
    delivery.status_code, delivery.error, delivery.duration_ms = post(delivery)
    if not delivery.error:
        delivery.state = WebhookDelivery.State.SUCCEEDED
        delivery.save()
    elif _retries_left(delivery):
        _schedule_retry(delivery, now)
    else:
        _give_up(delivery)
    return delivery


def _retries_left(delivery):
    # Test deliveries show the answer once; they are not worth a day of retries.
    return delivery.event != TEST_EVENT and delivery.attempt <= len(
        live_settings.WEBHOOK_RETRY_DELAYS
    )


def _schedule_retry(delivery, now):
    delay = list(live_settings.WEBHOOK_RETRY_DELAYS)[delivery.attempt - 1]
    delivery.state = WebhookDelivery.State.RETRYING
    delivery.next_retry_at = now + timedelta(seconds=delay)
    delivery.save()
    retry = _next_attempt(delivery)
    transaction.on_commit(lambda: _enqueue(retry.pk, delay=delay))


def _give_up(delivery):
    delivery.state = WebhookDelivery.State.FAILED
    delivery.save()
    logger.warning(
        "Webhook %s gave up on %s after %s attempts: %s",
        delivery.webhook,
        delivery.event,
        delivery.attempt,
        delivery.error,
    )


def _next_attempt(delivery):
    return WebhookDelivery.objects.create(
        webhook=delivery.webhook,
        delivery_id=delivery.delivery_id,
        event=delivery.event,
        body=delivery.body,
        attempt=delivery.attempt + 1,
        due_at=delivery.next_retry_at,
    )


def post(delivery):
    """POST one delivery; return ``(status_code, error, duration_ms)``. Never raises.

    ``error`` is empty only for a 2xx answer; redirects are not followed (a
    3xx could point anywhere, the private network included). The URL is checked
    again right before sending, since what a host name resolves to can change,
    and the connection goes to the addresses that check approved.
    """
    webhook = delivery.webhook
    body = delivery.body.encode()
    started = time.monotonic()

    def elapsed():
        return int((time.monotonic() - started) * 1000)

    try:
        addresses = check_url(webhook.url)
    except ValidationError as refusal:
        return None, refusal.messages[0], 0
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"wagtail-livestream/{__version__}",
        SIGNATURE_HEADER: sign(body, webhook.secret),
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.delivery_id),
    }
    connection = None
    try:
        connection = open_connection(webhook.url, addresses, live_settings.WEBHOOK_TIMEOUT)
        connection.request("POST", _request_target(webhook.url), body=body, headers=headers)
        response = connection.getresponse()
        detail = response.read(RESPONSE_LOG_BYTES).decode(errors="replace").strip()
    except TimeoutError:
        return None, _no_answer(), elapsed()
    except (OSError, http.client.HTTPException, ValueError) as failure:
        return None, _("Could not connect: %(reason)s") % {"reason": failure}, elapsed()
    finally:
        if connection is not None:
            connection.close()
    if 200 <= response.status < 300:
        return response.status, "", elapsed()
    message = _("The receiver answered %(code)s %(reason)s.") % {
        "code": response.status,
        "reason": response.reason,
    }
    return response.status, f"{message} {detail}".strip(), elapsed()


def _no_answer():
    return _("No answer within %(seconds)s s.") % {"seconds": live_settings.WEBHOOK_TIMEOUT}


def overdue_deliveries(now=None, grace=timedelta(minutes=5)):
    """Pending attempts whose task was lost (a consumer restarted): due for a while, never tried."""
    now = now or timezone.now()
    return WebhookDelivery.objects.filter(
        state=WebhookDelivery.State.PENDING, attempted_at__isnull=True, due_at__lt=now - grace
    )


def prune_log(now=None):
    """Delete finished attempts older than ``WEBHOOK_LOG_DAYS``; return how many went."""
    days = live_settings.WEBHOOK_LOG_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    finished = WebhookDelivery.objects.exclude(state=WebhookDelivery.State.PENDING)
    deleted, _ = finished.filter(created_at__lt=cutoff).delete()
    return deleted


# -- signal receivers ---------------------------------------------------------


def _remember_schedule(sender, instance, **kwargs):
    previous = None
    if instance.pk:
        previous = (
            LiveSession.objects.filter(pk=instance.pk)
            .values_list("scheduled_start", flat=True)
            .first()
        )
    instance._wagtail_live_previous_start = previous


def _session_saved(sender, instance, created, **kwargs):
    previous = getattr(instance, "_wagtail_live_previous_start", None)
    if instance.status != LiveSession.Status.SCHEDULED or not instance.scheduled_start:
        return
    if created or previous != instance.scheduled_start:
        emit(Webhook.Event.SESSION_SCHEDULED, instance)


def _session_started(sender, session, **kwargs):
    emit(Webhook.Event.SESSION_STARTED, session)


def _session_ended(sender, session, **kwargs):
    emit(Webhook.Event.SESSION_ENDED, session)


def _recording_ready(sender, recording, **kwargs):
    extra = {"recording": {"id": recording.pk, "duration": recording.duration}}
    page = getattr(recording, "page", None)
    if page is not None:
        extra["recording"]["page_id"] = page.pk
    emit(Webhook.Event.RECORDING_READY, recording.session, **extra)


def connect_signal_handlers():
    """Connect the receivers that turn session events into deliveries (called from ``ready``)."""
    uid = "wagtail_live_webhooks"
    pre_save.connect(_remember_schedule, sender=LiveSession, dispatch_uid=uid)
    post_save.connect(_session_saved, sender=LiveSession, dispatch_uid=uid)
    signals.live_session_started.connect(_session_started, dispatch_uid=uid)
    signals.live_session_ended.connect(_session_ended, dispatch_uid=uid)
    signals.recording_ready.connect(_recording_ready, dispatch_uid=uid)
