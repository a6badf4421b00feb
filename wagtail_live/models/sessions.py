"""Live sessions and their stream keys: the core every ingest, chat and recording part builds on."""

import hashlib
import hmac
import logging
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from taggit.managers import TaggableManager
from taggit.models import TaggedItemBase
from wagtail import hooks
from wagtail.images import get_image_model_string
from wagtail.log_actions import log
from wagtail.search import index

from ..conf import live_settings
from ..exceptions import InvalidTransition

logger = logging.getLogger(__name__)

# token_urlsafe(32) gives 43 characters carrying 256 bits. Anything that is not
# plausibly one of ours is refused before it reaches the database.
STREAM_KEY_BYTES = 32
STREAM_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,128}")


def _stream_key_digest(key):
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def _as_timedelta(value):
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


@sensitive_variables("key")
def find_stream_key(key):
    """The ``StreamKey`` that is ``key`` (revoked and expired ones too), or None. Never raises."""
    if not isinstance(key, str) or not STREAM_KEY_PATTERN.fullmatch(key):
        return None
    # Look the key up by its digest so the database never compares secrets,
    # then confirm with a constant-time comparison.
    stream_key = (
        StreamKey.objects.select_related("session").filter(digest=_stream_key_digest(key)).first()
    )
    if stream_key is None or not hmac.compare_digest(stream_key.key, key):
        return None
    return stream_key


class LiveSessionQuerySet(models.QuerySet):
    # Keep keys out of production error reports (Django hides these locals there).
    @sensitive_variables("key", "stream_key")
    def for_stream_key(self, key):
        """Return the session an encoder may publish to with ``key``, or None.

        None for anything that is not a current key: empty, malformed, unknown,
        revoked, expired, or belonging to a session that has ended. Never raises.
        """
        stream_key = find_stream_key(key)
        if stream_key is None or not stream_key.is_usable():
            return None
        return stream_key.session

    def active(self):
        """Sessions that have not finished: scheduled, ready or live."""
        return self.filter(status__in=LiveSession.OPEN_STATUSES)


class LiveSessionTag(TaggedItemBase):
    content_object = models.ForeignKey(
        "wagtail_live.LiveSession", on_delete=models.CASCADE, related_name="tagged_items"
    )


class LiveSession(index.Indexed, models.Model):
    """One live stream: prepared in the admin, streamed, ended, then recorded."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        READY = "ready", _("Ready")
        LIVE = "live", _("Live")
        ENDED = "ended", _("Ended")
        FAILED = "failed", _("Failed")

    class Privacy(models.TextChoices):
        PUBLIC = "public", _("Public")
        PRIVATE = "private", _("Private (logged-in members only)")

    OPEN_STATUSES = (Status.SCHEDULED, Status.READY, Status.LIVE)

    title = models.CharField(_("title"), max_length=255)
    slug = models.SlugField(_("slug"), max_length=255, unique=True, blank=True, editable=False)
    description = models.TextField(_("description"), blank=True)
    thumbnail = models.ForeignKey(
        get_image_model_string(),
        verbose_name=_("thumbnail"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    privacy = models.CharField(
        _("audience"), max_length=16, choices=Privacy.choices, default=Privacy.PUBLIC
    )
    scheduled_start = models.DateTimeField(
        _("scheduled start"),
        null=True,
        blank=True,
        help_text=_("Optional. Leave empty to go live whenever you are ready."),
    )
    allow_downloads = models.BooleanField(
        _("allow downloads"),
        default=False,
        help_text=_("Let visitors download the recording once it is published."),
    )
    tags = TaggableManager(through=LiveSessionTag, blank=True, verbose_name=_("tags"))
    # Recordings (issue 6): carried over to the recording page, like the tags.
    categories = models.ManyToManyField(
        "wagtail_live.LiveCategory",
        blank=True,
        related_name="sessions",
        verbose_name=_("categories"),
    )

    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.READY, editable=False
    )
    started_at = models.DateTimeField(_("started at"), null=True, blank=True, editable=False)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True, editable=False)
    error = models.TextField(_("error"), blank=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("host"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="live_sessions",
    )
    peak_viewers = models.PositiveIntegerField(_("peak viewers"), default=0, editable=False)
    likes = models.PositiveBigIntegerField(_("likes"), default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = LiveSessionQuerySet.as_manager()

    #: After ``start``/``end``/``fail``: whether the channel layer took the ``status``
    #: event (None before any, or without a channel layer). See ``end``.
    announced = None

    search_fields = [
        index.SearchField("title"),
        index.SearchField("description"),
        index.FilterField("status"),
    ]

    class Meta:
        verbose_name = _("live session")
        verbose_name_plural = _("live sessions")
        ordering = ["-created_at"]
        permissions = [
            ("go_live", _("Can go live")),
            ("moderate_chat", _("Can moderate live chat")),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = self._unique_slug()
        if self.status in (self.Status.SCHEDULED, self.Status.READY):
            # Before going live the status only says whether a start time is set.
            self.status = self.Status.SCHEDULED if self.scheduled_start else self.Status.READY
        super().save(*args, **kwargs)

    def _unique_slug(self):
        base = slugify(self.title)[:240] or "live"
        slug, n = base, 1
        while LiveSession.objects.filter(slug=slug).exclude(pk=self.pk).exists():
            n += 1
            slug = f"{base}-{n}"
        return slug

    # -- state transitions: the only place ``status`` changes after creation --

    def start(self, user=None):
        """Go live. Allowed from *scheduled* or *ready*; raises ``InvalidTransition`` otherwise.

        See :meth:`end` for what happens around the change of status.
        """
        self._change_status(
            self.Status.LIVE,
            allowed_from=(self.Status.SCHEDULED, self.Status.READY),
            action="wagtail_live.start",
            user=user,
            started_at=timezone.now(),
        )

    def end(self, user=None):
        """End the session (a live one, or one that never started).

        Exactly one caller wins even when two processes end it at once; the
        others get ``InvalidTransition``. Stream keys stop working.

        The new status, the log entry, the ``live_session_ended`` receivers
        (final figures, webhooks) and the ``after_live_session_end`` hooks are
        one transaction, retried whole on a transient database error ("database
        is locked"): either all of them happen, once, or none does and the
        error reaches the caller. The viewers' ``status`` event follows the
        commit; ``self.announced`` then says whether the channel layer took it
        (False: the change stands, but viewers were not told in real time).
        """
        self._change_status(
            self.Status.ENDED,
            allowed_from=self.OPEN_STATUSES,
            action="wagtail_live.end",
            user=user,
            ended_at=timezone.now(),
        )

    def fail(self, error, user=None):
        """Mark the session failed with a readable ``error`` (e.g. the encoder pipeline broke)."""
        self._change_status(
            self.Status.FAILED,
            allowed_from=self.OPEN_STATUSES,
            action="wagtail_live.fail",
            user=user,
            log_data={"error": str(error)},
            ended_at=timezone.now(),
            error=str(error),
        )

    def _change_status(self, to, allowed_from, action, user=None, log_data=None, **fields):
        from ..transient import in_retry, retry_transient

        before = {name: getattr(self, name) for name in ("status", *fields)}
        try:
            retry_transient(
                self._transition_and_follow_ups, to, allowed_from, action, user, log_data, fields
            )
        except BaseException:
            # The transaction rolled back: the instance says what the database says.
            for name, value in before.items():
                setattr(self, name, value)
            raise
        state = "live" if to == self.Status.LIVE else "ended"
        if in_retry():
            # An enclosing retry (an nginx callback) may roll this back and run it again:
            # announce once, when its transaction commits.
            transaction.on_commit(lambda: self._broadcast_status(state), robust=True)
        else:
            self.announced = self._broadcast_status(state)

    def _transition_and_follow_ups(self, to, allowed_from, action, user, log_data, fields):
        # Runs inside one (retried) transaction: see ``end``.
        self._transition(to, allowed_from, **fields)
        if to != self.Status.LIVE:
            self.stream_keys.filter(revoked_at__isnull=True).update(revoked_at=self.ended_at)
        log(instance=self, action=action, user=user, data=log_data)
        if to == self.Status.LIVE:
            self._follow_up("live_session_started", "after_live_session_start")
        else:
            self._follow_up("live_session_ended", "after_live_session_end")

    def _transition(self, to, allowed_from, **fields):
        # A conditional UPDATE is atomic on every database: of two concurrent
        # callers only one matches the old status, so only one wins.
        updated = LiveSession.objects.filter(pk=self.pk, status__in=allowed_from).update(
            status=to, **fields
        )
        if not updated:
            self.refresh_from_db()
            raise InvalidTransition(self._refusal(to))
        self.status = to
        for name, value in fields.items():
            setattr(self, name, value)

    def _refusal(self, to):
        current = self.get_status_display()
        if to == self.Status.LIVE:
            if self.status == self.Status.LIVE:
                return _("“%(title)s” is already live.") % {"title": self.title}
            return _("“%(title)s” cannot go live: it is %(status)s.") % {
                "title": self.title,
                "status": current.lower(),
            }
        if self.status in (self.Status.ENDED, self.Status.FAILED):
            return _("“%(title)s” has already ended.") % {"title": self.title}
        return _("“%(title)s” cannot change from %(from)s to %(to)s.") % {
            "title": self.title,
            "from": current.lower(),
            "to": self.Status(to).label.lower(),
        }

    def _follow_up(self, signal_name, hook_name):
        from .. import signals

        getattr(signals, signal_name).send(sender=LiveSession, session=self)
        for fn in hooks.get_hooks(hook_name):
            self._run_hook(hook_name, fn)

    def _run_hook(self, hook_name, fn):
        # A site's hook must not keep a session from ending: one that fails is logged and
        # its own writes are undone (its savepoint), the transition stands. A transient
        # database error still rolls the whole transition back, to be retried.
        from ..transient import is_transient

        try:
            with transaction.atomic():
                fn(self)
        except Exception as error:
            if is_transient(error):
                raise
            logger.exception(
                "%s hook %s failed for live session %s",
                hook_name,
                getattr(fn, "__qualname__", fn),
                self.pk,
            )

    def _broadcast_status(self, state):
        """Tell the session's viewers; True/False whether the channel layer took it (None: no layer)."""
        from .. import events

        return events.publish(self, "status", state=state)

    # -- stream keys --

    @sensitive_variables("key")
    def issue_stream_key(self, user=None):
        """Create a new stream key for this session, revoking any previous one, and return it."""
        if self.status not in self.OPEN_STATUSES:
            raise InvalidTransition(
                _("“%(title)s” has ended; it cannot get a new stream key.") % {"title": self.title}
            )
        key = secrets.token_urlsafe(STREAM_KEY_BYTES)
        now = timezone.now()
        self.stream_keys.filter(revoked_at__isnull=True).update(revoked_at=now)
        StreamKey.objects.create(
            session=self, key=key, digest=_stream_key_digest(key), issued_at=now, issued_by=user
        )
        log(instance=self, action="wagtail_live.stream_key.issue", user=user)
        return key

    def revoke_stream_key(self, user=None):
        """Revoke the current stream key, if any: encoders using it are refused from now on."""
        revoked = self.stream_keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        if revoked:
            log(instance=self, action="wagtail_live.stream_key.revoke", user=user)
        return bool(revoked)

    @property
    def current_stream_key(self):
        """The usable ``StreamKey`` row, or None. Show its ``key`` only to ``can_see_stream_key`` users."""
        stream_key = self.stream_keys.filter(revoked_at__isnull=True).order_by("-issued_at").first()
        if stream_key is not None and stream_key.is_usable():
            return stream_key
        return None

    # -- who may do what --

    def can_go_live(self, user):
        """The owner, superusers and holders of ``wagtail_live.go_live`` may stream to it."""
        if not (user and user.is_authenticated and user.is_active):
            return False
        return (
            user.is_superuser
            or (self.owner_id is not None and self.owner_id == user.pk)
            or user.has_perm("wagtail_live.go_live")
        )

    def can_moderate(self, user):
        """The owner, superusers and holders of ``wagtail_live.moderate_chat`` may moderate its chat.

        The same answer as ``wagtail_live.permissions.can_moderate_session``, which decides.
        """
        from ..permissions import can_moderate_session  # it imports models

        return can_moderate_session(self, user)

    def can_see_stream_key(self, user):
        """Only the owner and superusers ever see the stream key."""
        if not (user and user.is_authenticated and user.is_active):
            return False
        return user.is_superuser or (self.owner_id is not None and self.owner_id == user.pk)

    def can_view(self, user):
        """The privacy rule alone: anyone for public sessions, logged-in users for private ones.

        Faces ask ``wagtail_live.permissions.can_watch``, which also runs the
        ``can_watch_live_session`` hooks and falls back to this.
        """
        if self.privacy == self.Privacy.PUBLIC:
            return True
        return bool(user and user.is_authenticated and user.is_active)

    # -- where its files go --

    def media_path(self, *parts):
        """Storage-relative name under ``<MEDIA_SUBDIR>/<pk>/``, e.g. ``media_path("hls", "index.m3u8")``."""
        return "/".join([live_settings.MEDIA_SUBDIR.strip("/"), str(self.pk), *parts])

    @property
    def media_dir(self):
        """Absolute local directory of this session's working files (live HLS, recording sources).

        Under ``PRIVATE_ROOT``, never under ``MEDIA_ROOT``: no by-path file server reaches
        it, whatever the session's privacy (docs/security.md "Where private files live").
        """
        from ..storage import private_root

        return private_root() / self.media_path()

    @property
    def playback_url(self):
        """URL of the live HLS playlist, signed with a fresh playback grant (docs/delivery.md).

        The grant is shared by every viewer in its window, so this is the same URL for
        all of them; public sessions come from ``MEDIA_URL`` when
        ``PLAYBACK_FROM_MEDIA_URL`` is on. Show it only to users
        ``wagtail_live.permissions.can_watch`` allows.
        """
        from django.core.files.storage import default_storage

        from ..grants import grant_url

        if live_settings.PLAYBACK_FROM_MEDIA_URL and self.privacy == self.Privacy.PUBLIC:
            return default_storage.url(self.media_path("hls", "index.m3u8"))
        return grant_url(self, "hls/index.m3u8")

    @property
    def is_live(self):
        return self.status == self.Status.LIVE

    @property
    def has_ended(self):
        return self.status in (self.Status.ENDED, self.Status.FAILED)


class StreamKey(models.Model):
    """A secret an encoder presents to publish to a session.

    Kept apart from ``LiveSession`` so that session revisions, logs and
    serialisations never carry it.
    """

    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="stream_keys")
    key = models.CharField(max_length=128, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    issued_at = models.DateTimeField(default=timezone.now, editable=False)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("stream key")
        verbose_name_plural = _("stream keys")

    def __str__(self):
        # Never the key itself: this string may end up in logs.
        return f"Stream key for {self.session_id} issued {self.issued_at:%Y-%m-%d %H:%M}"

    @property
    def expires_at(self):
        """24 h (``STREAM_KEY_TTL``) after issue or after the scheduled start, whichever is later."""
        start = self.issued_at
        if self.session.scheduled_start and self.session.scheduled_start > start:
            start = self.session.scheduled_start
        return start + _as_timedelta(live_settings.STREAM_KEY_TTL)

    def is_usable(self):
        return (
            self.revoked_at is None
            and self.session.status in LiveSession.OPEN_STATUSES
            and timezone.now() < self.expires_at
        )
