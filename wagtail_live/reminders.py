"""Reminders: *Remind me* on a session, e-mails before it starts and when it goes live.

``send_due_reminders`` runs every minute from Huey (``tasks.send_live_reminders``)
and right after a session goes live. Each e-mail goes at most once per
reminder and start time: a row is claimed with a conditional UPDATE before
sending, and released again when the e-mail backend fails, so the next run
retries it (up to ``REMINDER_MAX_ATTEMPTS``) while everybody else still gets
theirs.
"""

import logging
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from . import signals
from .conf import live_settings
from .exceptions import WagtailLiveError
from .models import LiveReminder, LiveSession
from .permissions import can_watch

logger = logging.getLogger(__name__)


class ReminderError(WagtailLiveError):
    """*Remind me* refused; ``code`` tells a client what to do (e.g. ``login_required``)."""

    def __init__(self, message, code):
        super().__init__(message)
        self.message = message
        self.code = code


# -- asking -------------------------------------------------------------------


def remind_me(session, user, page_url=""):
    """Remember that ``user`` wants e-mails about ``session``; return ``(reminder, created)``.

    Idempotent: asking twice keeps one reminder (and renews one that was
    unsubscribed). Raises ``ReminderError`` for anonymous visitors
    (``login_required``), sessions that are live (``live``) or over (``ended``),
    users without an e-mail address (``no_email``) and private sessions the
    user may not watch (``forbidden``).
    """
    check_can_remind(session, user)
    reminder, created = LiveReminder.objects.get_or_create(
        session=session, user=user, defaults={"page_url": page_url}
    )
    if not created and (reminder.unsubscribed_at or (page_url and not reminder.page_url)):
        reminder.unsubscribed_at = None
        reminder.page_url = reminder.page_url or page_url
        reminder.save(update_fields=["unsubscribed_at", "page_url"])
    return reminder, created


def check_can_remind(session, user):
    """Raise ``ReminderError`` unless ``user`` may ask for reminders about ``session``."""
    if not (user and user.is_authenticated):
        raise ReminderError(_("Log in to get a reminder."), "login_required")
    if session.has_ended:
        raise ReminderError(
            _("“%(title)s” has already ended; there is nothing to remind you of.")
            % {"title": session.title},
            "ended",
        )
    if session.is_live:
        raise ReminderError(_("“%(title)s” is live now.") % {"title": session.title}, "live")
    if not can_watch(session, user):
        raise ReminderError(_("This live session is for members only."), "forbidden")
    if not user.email:
        raise ReminderError(
            _("Your account has no e-mail address to send the reminder to."), "no_email"
        )


def forget(session, user):
    """Stop reminding ``user`` of ``session``; returns whether there was a reminder."""
    return bool(
        LiveReminder.objects.waiting()
        .filter(session=session, user=user)
        .update(unsubscribed_at=timezone.now())
    )


def reminder_for_token(token):
    """The reminder an unsubscribe link's ``token`` belongs to, or None; changes nothing.

    What the link's GET shows: mail scanners and link previews fetch links, so
    only a POST (RFC 8058 one-click, or the confirmation page's button) acts.
    """
    if not isinstance(token, str) or not token:
        return None
    return LiveReminder.objects.select_related("session").filter(unsubscribe_token=token).first()


def unsubscribe(token):
    """The one-click unsubscribe: return the reminder for ``token`` (now off), or None.

    Idempotent. Called for a POST only (see ``reminder_for_token``).
    """
    reminder = reminder_for_token(token)
    if reminder is not None and reminder.unsubscribed_at is None:
        reminder.unsubscribed_at = timezone.now()
        reminder.save(update_fields=["unsubscribed_at"])
    return reminder


def waiting_count(session):
    """How many people wait for ``session`` (what the host sees)."""
    return LiveReminder.objects.waiting().filter(session=session).count()


def is_waiting(session, user):
    """Whether ``user`` already asked to be reminded of ``session``."""
    if not (user and user.is_authenticated):
        return False
    return LiveReminder.objects.waiting().filter(session=session, user=user).exists()


# -- sending ------------------------------------------------------------------


def reminder_lead():
    """``REMINDER_LEAD`` as a timedelta (a number in the settings is read as seconds)."""
    lead = live_settings.REMINDER_LEAD
    return lead if isinstance(lead, timedelta) else timedelta(seconds=lead)


def due_lead_reminders(now):
    """Reminders whose "starts soon" e-mail is due: within ``REMINDER_LEAD`` of the start.

    A session rescheduled after the e-mail went out gets one more, for the new
    time; one that already went live or ended gets none.
    """
    lead = reminder_lead()
    return (
        _sendable()
        .filter(
            session__status=LiveSession.Status.SCHEDULED,
            session__scheduled_start__lte=now + lead,
            # Not for a start long gone (a queue that was down for hours).
            session__scheduled_start__gt=now - lead,
        )
        .exclude(lead_sent_for=F("session__scheduled_start"))
    )


def due_live_notices(session=None):
    """Reminders whose "live now" e-mail is due: the session is live and it was not sent."""
    due = _sendable().filter(session__status=LiveSession.Status.LIVE, live_sent_at__isnull=True)
    return due.filter(session=session) if session is not None else due


def _sendable():
    return (
        LiveReminder.objects.waiting()
        .filter(failures__lt=live_settings.REMINDER_MAX_ATTEMPTS)
        .exclude(Q(user__email="") | Q(user__is_active=False))
        .select_related("session", "user")
    )


def send_due_reminders(now=None):
    """Send every due reminder and went-live notice; return counts ``{"lead", "live", "failed"}``."""
    now = now or timezone.now()
    counts = {"lead": 0, "live": 0, "failed": 0}
    connection = get_connection()
    for reminder in _still_allowed(due_lead_reminders(now)):
        _count(counts, "lead", _send_lead(reminder, now, connection))
    for reminder in _still_allowed(due_live_notices()):
        _count(counts, "live", _send_live(reminder, now, connection))
    return counts


def _still_allowed(reminders):
    # Who may watch can change after asking (a hook, the session made private):
    # an e-mail about a session must not reach someone who may no longer watch it.
    return (r for r in reminders if can_watch(r.session, r.user))


def send_went_live_notices(session, now=None):
    """Send the went-live notices of one session (right after it goes live)."""
    now = now or timezone.now()
    counts = {"lead": 0, "live": 0, "failed": 0}
    connection = get_connection()
    for reminder in _still_allowed(due_live_notices(session)):
        _count(counts, "live", _send_live(reminder, now, connection))
    return counts


def _count(counts, kind, outcome):
    if outcome is True:
        counts[kind] += 1
    elif outcome is False:
        counts["failed"] += 1


def _send_lead(reminder, now, connection):
    start = reminder.session.scheduled_start
    # Claim: only the worker whose UPDATE matches the old value sends.
    claim = LiveReminder.objects.filter(pk=reminder.pk, lead_sent_for=reminder.lead_sent_for)
    if reminder.lead_sent_for is None:
        claim = LiveReminder.objects.filter(pk=reminder.pk, lead_sent_for__isnull=True)
    if not claim.update(lead_sent_at=now, lead_sent_for=start):
        return None
    release = {"lead_sent_at": reminder.lead_sent_at, "lead_sent_for": reminder.lead_sent_for}
    return _deliver(reminder, "lead", connection, release)


def _send_live(reminder, now, connection):
    claimed = LiveReminder.objects.filter(pk=reminder.pk, live_sent_at__isnull=True).update(
        live_sent_at=now
    )
    if not claimed:
        return None
    return _deliver(reminder, "live", connection, {"live_sent_at": None})


def _deliver(reminder, kind, connection, release):
    """Send one e-mail; on failure undo the claim so a later run retries. True/False."""
    try:
        build_email(reminder, kind, connection).send()
    except Exception as error:  # any backend failure: SMTP, network, a custom backend's bug
        LiveReminder.objects.filter(pk=reminder.pk).update(
            failures=F("failures") + 1, last_error=f"{type(error).__name__}: {error}", **release
        )
        logger.warning(
            "Could not send the %s reminder of %s to user %s (will retry): %s",
            kind,
            reminder.session_id,
            reminder.user_id,
            error,
        )
        return False
    LiveReminder.objects.filter(pk=reminder.pk).update(failures=0, last_error="")
    return True


def build_email(reminder, kind, connection=None):
    """The e-mail for ``kind`` (``"lead"`` or ``"live"``), with a one-click unsubscribe link.

    The link in the body opens a confirmation page (GET changes nothing); the
    ``List-Unsubscribe`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
    headers let mail clients POST to the same URL, which unsubscribes (RFC 8058).
    """
    unsubscribe_url = absolute_url(
        reminder, reverse("wagtail_live:unsubscribe", args=[reminder.unsubscribe_token])
    )
    context = {
        "session": reminder.session,
        "user": reminder.user,
        "page_url": reminder.page_url,
        "unsubscribe_url": unsubscribe_url,
    }
    subject = render_to_string(f"wagtail_live/emails/{kind}_subject.txt", context)
    body = render_to_string(f"wagtail_live/emails/{kind}_body.txt", context)
    return EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=body,
        from_email=live_settings.REMINDER_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL,
        to=[reminder.user.email],
        connection=connection,
        # RFC 8058: mail clients offer their own one-click unsubscribe button.
        headers={
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def absolute_url(reminder, path):
    """``path`` on the site the visitor asked from, else on ``WAGTAILADMIN_BASE_URL``."""
    if reminder.page_url:
        parts = urlsplit(reminder.page_url)
        return f"{parts.scheme}://{parts.netloc}{path}"
    return urljoin(getattr(settings, "WAGTAILADMIN_BASE_URL", "") or "", path)


# -- signal receiver ----------------------------------------------------------


def _session_started(sender, session, **kwargs):
    from . import tasks  # a face; imported late so this service never needs Huey to load

    transaction.on_commit(lambda: tasks.send_went_live_notices(session.pk))


def connect_signal_handlers():
    """Send went-live notices as soon as a session starts (called from ``ready``)."""
    signals.live_session_started.connect(_session_started, dispatch_uid="wagtail_live_reminders")
