"""Recordings of finished sessions, the page editors publish them on, and categories.

``Recording`` tracks one recorded file from the moment a session ends until it
is a wagtailmedia item on a draft ``RecordingPage``; the work itself lives in
``wagtail_live.recordings``.
"""

import os
import re
import uuid

from django.conf import settings
from django.core import checks
from django.db import models
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from modelcluster.contrib.taggit import ClusterTaggableManager
from modelcluster.fields import ParentalKey, ParentalManyToManyField
from taggit.models import TaggedItemBase
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.fields import RichTextField
from wagtail.images import get_image_model_string
from wagtail.models import Page
from wagtail.search import index
from wagtailmedia.edit_handlers import MediaChooserPanel
from wagtailmedia.settings import wagtailmedia_settings

from ..conf import live_settings
from ..storage import recording_source_storage


class LiveCategory(index.Indexed, models.Model):
    """A category editors put sessions and recording pages in (a snippet)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)

    search_fields = [index.SearchField("name"), index.AutocompleteField("name")]

    panels = [FieldPanel("name"), FieldPanel("slug")]

    class Meta:
        ordering = ["name"]
        verbose_name = _("live category")
        verbose_name_plural = _("live categories")

    def __str__(self):
        return self.name


#: The folder (inside a session's folder) uploaded sources are kept in.
UPLOADED_SOURCES_FOLDER = "sources"
# An upload keeps only its extension, and only one this plain (it was whitelisted already).
UPLOAD_EXTENSION = re.compile(r"\.[a-z0-9]{1,8}")


def recording_upload_to(instance, filename):
    """``<MEDIA_SUBDIR>/<session>/sources/upload-<uuid>.<ext>`` for an uploaded source.

    The uploader's name is never used: in the session's own folder it could be one of
    the outputs (``recording-<N>.mp4``, a poster, ``hls/index.m3u8``), which the
    playback grants serve and a privacy change moves (docs/security.md). A folder of
    their own and a random name keep sources and outputs apart.
    """
    extension = os.path.splitext(os.path.basename(filename))[1].lower()
    if not UPLOAD_EXTENSION.fullmatch(extension):
        extension = ""
    return instance.session.media_path(
        UPLOADED_SOURCES_FOLDER, f"upload-{uuid.uuid4().hex}{extension}"
    )


class Recording(models.Model):
    """One recorded file on its way to becoming a wagtailmedia item and a draft page."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSING = "processing", _("Processing")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    class Conversion(models.TextChoices):
        REMUX = "remux", _("Stream copy")
        AUDIO = "audio", _("Audio converted")
        TRANSCODE = "transcode", _("Transcoded")

    session = models.ForeignKey(
        "wagtail_live.LiveSession",
        on_delete=models.CASCADE,
        related_name="recordings",
        verbose_name=_("session"),
    )
    # Sources live under PRIVATE_ROOT, whatever the session's privacy: an uploaded or
    # recorded file is never served by path (docs/security.md).
    source = models.FileField(
        _("source file"),
        max_length=500,
        upload_to=recording_upload_to,
        storage=recording_source_storage,
        help_text=_("Storage name of the recorded file; kept until the result is safe."),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    conversion = models.CharField(
        _("conversion"), max_length=20, choices=Conversion.choices, blank=True
    )
    progress = models.FloatField(
        _("progress"), null=True, blank=True, help_text=_("Percent done of the conversion.")
    )
    duration = models.FloatField(_("duration (s)"), null=True, blank=True)
    source_size = models.BigIntegerField(_("source size (bytes)"), null=True, blank=True)
    size = models.BigIntegerField(_("size (bytes)"), null=True, blank=True)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("processing started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Refreshed while a worker processes the recording; a stale one means the worker died
    # and another may take the recording over (see RECORDING_LEASE).
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Counted here, not on the page: page fields live in revisions, and publishing an
    # older revision must not wind the count back.
    plays = models.PositiveIntegerField(_("plays"), default=0, editable=False)

    media = models.ForeignKey(
        wagtailmedia_settings.MEDIA_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("media"),
    )
    poster = models.ForeignKey(
        get_image_model_string(),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("poster"),
    )
    page = models.ForeignKey(
        "wagtailcore.Page",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("page"),
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("recording")
        verbose_name_plural = _("recordings")
        constraints = [
            # A session ended twice (double click, two callbacks) must not record twice.
            models.UniqueConstraint(
                fields=["session", "source"], name="wagtail_live_recording_unique_source"
            )
        ]

    def __str__(self):
        return _("Recording of %(session)s") % {"session": self.session}

    @property
    def processing_seconds(self):
        """Seconds the last attempt took, once it finished."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def can_retry(self):
        return self.status == self.Status.FAILED


class RecordingPageTag(TaggedItemBase):
    content_object = ParentalKey(
        "wagtail_live.RecordingPage", on_delete=models.CASCADE, related_name="tagged_items"
    )


class RecordingPage(Page):
    """The page a recording is published on; created as a draft when processing succeeds."""

    intro = RichTextField(_("intro"), blank=True)
    media = models.ForeignKey(
        wagtailmedia_settings.MEDIA_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("media"),
    )
    poster = models.ForeignKey(
        get_image_model_string(),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("poster"),
    )
    session = models.ForeignKey(
        "wagtail_live.LiveSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recording_pages",
        verbose_name=_("live session"),
    )
    allow_downloads = models.BooleanField(
        _("allow downloads"),
        default=False,
        help_text=_("Show visitors a link to download the recording."),
    )
    show_live_audience = models.BooleanField(
        _("show how many watched live"),
        default=False,
        help_text=_("Show visitors “N watched live”, from the figures kept when the live ended."),
    )
    tags = ClusterTaggableManager(through=RecordingPageTag, blank=True, verbose_name=_("tags"))
    categories = ParentalManyToManyField(
        LiveCategory, blank=True, related_name="recording_pages", verbose_name=_("categories")
    )

    template = "wagtail_live/recording_page.html"

    content_panels = Page.content_panels + [
        FieldPanel("intro"),
        MediaChooserPanel("media", media_type="video"),
        FieldPanel("poster"),
        MultiFieldPanel(
            [FieldPanel("tags"), FieldPanel("categories")], heading=_("Tags and categories")
        ),
        FieldPanel("allow_downloads"),
        FieldPanel("show_live_audience"),
        FieldPanel("session", read_only=True),
    ]

    search_fields = Page.search_fields + [index.SearchField("intro")]

    class Meta:
        verbose_name = _("recording page")
        verbose_name_plural = _("recording pages")

    def can_view_media(self, user):
        """Whether ``user`` may see this recording and what it is about.

        ``wagtail_live.permissions.can_watch`` of the session (its privacy and any
        ``can_watch_live_session`` hook); everyone for a page made without a session.
        """
        if self.session is None:
            return True
        from ..permissions import can_watch  # it imports models

        return can_watch(self.session, user)

    @cached_property
    def recording(self):
        """The ``Recording`` this page was made from, or None (a page made by hand)."""
        return Recording.objects.filter(page_id=self.pk).select_related("session").first()

    def visitor_media_url(self):
        """The media's own URL, or the members-only view's for a private session."""
        from ..recordings import recording_media_url

        recording = self.recording
        if recording is not None and recording.media_id == self.media_id:
            return recording_media_url(recording)
        if self.media is None:
            return ""
        if self.session is not None and self.session.privacy != self.session.Privacy.PUBLIC:
            return ""  # a media item swapped in by hand: no members-only route for it
        return self.media.url

    def visitor_poster_url(self):
        """A private session's poster frame, through the checked view ("" when the page has its image)."""
        from ..recordings import recording_poster_url

        if self.poster_id:
            return ""
        return recording_poster_url(self.recording)

    @property
    def base_template(self):
        """The template the page's template extends: the site's ``WAGTAIL_LIVE["BASE_TEMPLATE"]``.

        The app's plain ``wagtail_live/base.html`` when the site has no such template.
        """
        from django.template.loader import select_template

        return select_template([live_settings.BASE_TEMPLATE, "wagtail_live/base.html"])

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["can_view_media"] = self.can_view_media(request.user)
        context["show_download"] = self.allow_downloads and context["can_view_media"]
        context["login_url"] = resolve_url(settings.LOGIN_URL)
        context["media_url"] = self.visitor_media_url() if context["can_view_media"] else ""
        if self.recording is not None and context["media_url"]:
            context["plays_url"] = reverse(
                "wagtail_live:recording_played", args=[self.recording.pk]
            )
        return context


@checks.register()
def check_recording_parent_page(app_configs, **kwargs):
    """``manage.py check`` fails clearly when recordings would have no parent page."""
    # The check needs the service's page resolution; imported here so the model layer
    # does not depend on the service layer at import time.
    from ..recordings import check_recording_parent_page as check

    return check(app_configs, **kwargs)


def recording_page_model():
    """The page model recordings are published on (``WAGTAIL_LIVE["RECORDING_PAGE_MODEL"]``)."""
    from django.apps import apps

    return apps.get_model(live_settings.RECORDING_PAGE_MODEL)
