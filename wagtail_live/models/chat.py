"""Chat, moderation and audience records of a live session."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ChatMessageQuerySet(models.QuerySet):
    def visible(self):
        """Messages viewers see: not removed by a moderator or by a ban."""
        return self.filter(removed_at__isnull=True)


class ChatMessage(models.Model):
    """One chat message, stored as plain text exactly as it was broadcast."""

    # High-volume rows nothing in Wagtail links to: keep them out of the reference index.
    wagtail_reference_index_ignore = True

    session = models.ForeignKey(
        "wagtail_live.LiveSession",
        verbose_name=_("live session"),
        on_delete=models.CASCADE,
        related_name="chat_messages",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="live_chat_messages",
    )
    display_name = models.CharField(_("display name"), max_length=150)
    badge = models.CharField(_("badge"), max_length=32, blank=True)
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(_("sent at"), default=timezone.now, db_index=True)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("removed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = ChatMessageQuerySet.as_manager()

    class Meta:
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["session", "user", "created_at"])]

    def __str__(self):
        return f"{self.display_name}: {self.text[:50]}"

    @property
    def is_removed(self):
        return self.removed_at is not None

    def as_event(self):
        """The protocol's ``chat.message`` payload (plain text, never to be parsed as HTML)."""
        return {
            "type": "chat.message",
            "id": self.pk,
            "user_id": self.user_id,
            "display_name": self.display_name,
            "badge": self.badge,
            "text": self.text,
            "time": self.created_at.isoformat(),
        }


class ChatRoom(models.Model):
    """Per-session chat state every worker must agree on: slow mode and the pinned message."""

    # High-volume rows nothing in Wagtail links to: keep them out of the reference index.
    wagtail_reference_index_ignore = True

    session = models.OneToOneField(
        "wagtail_live.LiveSession", on_delete=models.CASCADE, related_name="chat_room"
    )
    slow_mode_seconds = models.PositiveIntegerField(_("slow mode (seconds)"), default=0)
    pinned = models.ForeignKey(
        ChatMessage,
        verbose_name=_("pinned message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("chat room")
        verbose_name_plural = _("chat rooms")

    def __str__(self):
        return str(self.session)


class ModerationActionQuerySet(models.QuerySet):
    def in_force(self, now=None):
        """Mutes and bans that still apply: not lifted and not expired."""
        now = now or timezone.now()
        return self.filter(
            action__in=(ModerationAction.Action.MUTE, ModerationAction.Action.BAN),
            lifted_at__isnull=True,
        ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def bans(self):
        return self.in_force().filter(action=ModerationAction.Action.BAN)

    def mutes(self, session):
        return self.in_force().filter(action=ModerationAction.Action.MUTE, session=session)


class ModerationAction(models.Model):
    """A moderator's action, kept forever: who did what to whom, why, and until when."""

    # High-volume rows nothing in Wagtail links to: keep them out of the reference index.
    wagtail_reference_index_ignore = True

    class Action(models.TextChoices):
        REMOVE = "remove", _("Remove message")
        MUTE = "mute", _("Mute")
        UNMUTE = "unmute", _("Unmute")
        BAN = "ban", _("Ban")
        UNBAN = "unban", _("Unban")
        SLOW = "slow", _("Slow mode")
        PIN = "pin", _("Pin message")

    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    session = models.ForeignKey(
        "wagtail_live.LiveSession",
        verbose_name=_("live session"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="moderation_actions",
        help_text=_("Empty for site-wide actions such as bans made outside a session."),
    )
    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("moderator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="live_moderation_actions",
    )
    message = models.ForeignKey(
        ChatMessage,
        verbose_name=_("message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True)
    value = models.PositiveIntegerField(
        _("seconds"), null=True, blank=True, help_text=_("Slow-mode interval.")
    )
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(
        _("until"),
        null=True,
        blank=True,
        help_text=_("Empty: a ban never expires; a mute lasts until the session ends."),
    )
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("lifted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = ModerationActionQuerySet.as_manager()

    class Meta:
        verbose_name = _("moderation action")
        verbose_name_plural = _("moderation actions")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_action_display()} {self.target_user or self.message_id or ''}".strip()


class ChatBanManager(models.Manager):
    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .filter(action=ModerationAction.Action.BAN, lifted_at__isnull=True)
        )


class ChatBan(ModerationAction):
    """The bans in force (site-wide), as listed in the admin's ban list."""

    objects = ChatBanManager()

    class Meta:
        proxy = True
        verbose_name = _("chat ban")
        verbose_name_plural = _("chat bans")


class ViewerSample(models.Model):
    """The viewer count of a session at one moment, stored every 10 s while it is live."""

    # High-volume rows nothing in Wagtail links to: keep them out of the reference index.
    wagtail_reference_index_ignore = True

    session = models.ForeignKey(
        "wagtail_live.LiveSession",
        verbose_name=_("live session"),
        on_delete=models.CASCADE,
        related_name="viewer_samples",
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    viewers = models.PositiveIntegerField(_("viewers"))
    unique_viewers = models.PositiveIntegerField(_("unique viewers so far"), default=0)

    class Meta:
        verbose_name = _("viewer sample")
        verbose_name_plural = _("viewer samples")
        ordering = ["session", "at"]
        indexes = [models.Index(fields=["session", "at"])]

    def __str__(self):
        return f"{self.session_id} {self.at:%H:%M:%S}: {self.viewers}"


class BlockedTerm(models.Model):
    """A word or phrase refused in chat (case-insensitive), managed as a snippet."""

    term = models.CharField(
        _("word or phrase"),
        max_length=200,
        unique=True,
        help_text=_("Matched case-insensitively, as a whole word or phrase."),
    )
    created_at = models.DateTimeField(_("added"), auto_now_add=True)

    class Meta:
        verbose_name = _("blocked term")
        verbose_name_plural = _("blocked terms")
        ordering = ["term"]

    def __str__(self):
        return self.term

    def save(self, *args, **kwargs):
        self.term = " ".join(self.term.split()).lower()
        super().save(*args, **kwargs)
