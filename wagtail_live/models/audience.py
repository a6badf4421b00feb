"""The audience around a session: reminders, webhooks and the figures kept after it ends.

The work lives in ``wagtail_live.reminders``, ``wagtail_live.webhooks`` and
``wagtail_live.analytics``; these models only hold the records.
"""

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def new_unsubscribe_token():
    return secrets.token_urlsafe(24)


def new_webhook_secret():
    return secrets.token_hex(32)


class LiveReminderQuerySet(models.QuerySet):
    def waiting(self):
        """Reminders of people who still want to hear about the session."""
        return self.filter(unsubscribed_at__isnull=True)


class LiveReminder(models.Model):
    """A visitor asked to be told before a session starts and when it goes live."""

    session = models.ForeignKey(
        "wagtail_live.LiveSession",
        verbose_name=_("live session"),
        on_delete=models.CASCADE,
        related_name="reminders",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="live_reminders",
    )
    created_at = models.DateTimeField(_("asked at"), default=timezone.now)
    #: The page the visitor asked from: the e-mails link back to it.
    page_url = models.URLField(_("page"), max_length=500, blank=True)
    #: When the "starts in 15 minutes" e-mail went out, and for which start time.
    lead_sent_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)
    lead_sent_for = models.DateTimeField(_("reminder sent for start"), null=True, blank=True)
    #: When the "it is live now" e-mail went out.
    live_sent_at = models.DateTimeField(_("went-live notice sent at"), null=True, blank=True)
    unsubscribe_token = models.CharField(
        max_length=64, unique=True, default=new_unsubscribe_token, editable=False
    )
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)
    #: Failed sends (a broken e-mail backend); retried by the periodic task up to a limit.
    failures = models.PositiveIntegerField(_("failed sends"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    objects = LiveReminderQuerySet.as_manager()

    class Meta:
        verbose_name = _("live reminder")
        verbose_name_plural = _("live reminders")
        ordering = ["session", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "user"], name="wagtail_live_reminder_once_per_user"
            )
        ]

    def __str__(self):
        return f"{self.user} → {self.session}"


class Webhook(models.Model):
    """An external URL told about session events with signed JSON POSTs."""

    class Event(models.TextChoices):
        SESSION_SCHEDULED = "session.scheduled", _("Session scheduled")
        SESSION_STARTED = "session.started", _("Session started")
        SESSION_ENDED = "session.ended", _("Session ended")
        RECORDING_READY = "recording.ready", _("Recording ready")

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(
        _("URL"),
        max_length=500,
        help_text=_("http:// or https:// address that receives the JSON POSTs."),
    )
    secret = models.CharField(
        _("secret"),
        max_length=128,
        default=new_webhook_secret,
        help_text=_(
            "Signs every request (header X-Wagtail-Live-Signature). "
            "Keep it private; the receiver needs it to check the signature."
        ),
    )
    events = models.JSONField(
        _("events"), default=list, blank=True, help_text=_("Events this URL is told about.")
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def wants(self, event):
        """Whether this webhook is active and subscribed to ``event``."""
        return self.active and event in (self.events or [])


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one webhook; retries are further rows."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Delivered")
        RETRYING = "retrying", _("Failed, will retry")
        FAILED = "failed", _("Failed")

    webhook = models.ForeignKey(
        Webhook, verbose_name=_("webhook"), on_delete=models.CASCADE, related_name="deliveries"
    )
    #: The same for every attempt at one message; sent as X-Wagtail-Live-Delivery.
    delivery_id = models.UUIDField(_("delivery"), default=uuid.uuid4, db_index=True)
    event = models.CharField(_("event"), max_length=40)
    body = models.TextField(_("body"))
    attempt = models.PositiveIntegerField(_("attempt"), default=1)
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.PENDING, db_index=True
    )
    created_at = models.DateTimeField(_("queued at"), default=timezone.now)
    #: When a pending attempt should run (retries wait out their backoff).
    due_at = models.DateTimeField(_("due at"), default=timezone.now, db_index=True)
    attempted_at = models.DateTimeField(_("attempted at"), null=True, blank=True)
    status_code = models.PositiveIntegerField(_("status code"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    next_retry_at = models.DateTimeField(_("next retry"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.event} → {self.webhook} (#{self.attempt})"


class SessionFigures(models.Model):
    """A session's audience figures, computed once when it ends and kept with it."""

    session = models.OneToOneField(
        "wagtail_live.LiveSession",
        verbose_name=_("live session"),
        on_delete=models.CASCADE,
        related_name="figures",
    )
    peak_viewers = models.PositiveIntegerField(_("peak viewers"), default=0)
    average_viewers = models.FloatField(_("average viewers"), default=0)
    unique_viewers = models.PositiveIntegerField(_("unique viewers"), default=0)
    chat_message_count = models.PositiveIntegerField(_("chat messages"), default=0)
    likes = models.PositiveBigIntegerField(_("likes"), default=0)
    moderation_action_count = models.PositiveIntegerField(_("moderation actions"), default=0)
    reminder_count = models.PositiveIntegerField(_("reminders"), default=0)
    duration_seconds = models.PositiveIntegerField(_("duration (s)"), default=0)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("session figures")
        verbose_name_plural = _("session figures")

    def __str__(self):
        return str(self.session)
