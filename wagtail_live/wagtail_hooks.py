"""Admin registration: the *Live* menu, the LiveSession snippet, admin URLs and log actions."""

from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.panels import FieldPanel, FieldRowPanel, MultiFieldPanel, ObjectList
from wagtail.admin.ui.tables import Column, StatusTagColumn
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import SnippetViewSet, SnippetViewSetGroup

from . import admin_urls, chat
from .forms import LiveSessionForm
from .ingest.encoders import ENCODER_ACTION
from .models import LiveSession
from .recordings import connect_signal_handlers as connect_recording_signal_handlers
from .views.analytics import LiveReportViewSet  # audience (issue 7)
from .views.chat_admin import BanViewSet, BlockedTermViewSet, ChatMessageViewSet  # chat (issue 5)
from .views.recordings import LiveCategoryViewSet, RecordingViewSet  # recordings (issue 6)
from .views.sessions import (
    LiveSessionEditView,
    LiveSessionIndexView,
    PrepareLiveMenu,
    PrepareLiveView,
    ScheduledColumn,
)
from .views.upcoming import UpcomingViewSet
from .views.webhooks import WebhookDeliveryViewSet, WebhookViewSet


class LiveSessionViewSet(SnippetViewSet):
    model = LiveSession
    icon = "media"
    menu_label = _("Sessions")
    index_view_class = LiveSessionIndexView
    add_view_class = PrepareLiveView
    edit_view_class = LiveSessionEditView
    list_display = [
        "title",
        StatusTagColumn(
            "status",
            label=_("Status"),
            accessor="get_status_display",
            primary=lambda session: session.status == LiveSession.Status.LIVE,
        ),
        Column("privacy", label=_("Audience"), accessor="get_privacy_display"),
        ScheduledColumn("scheduled_start", label=_("Scheduled")),
        Column("owner", label=_("Host")),
    ]
    list_filter = ["status", "privacy"]
    search_fields = ["title", "description"]
    ordering = ["-created_at"]
    edit_handler = ObjectList(
        [
            FieldPanel("title"),
            FieldPanel("description"),
            FieldPanel("thumbnail"),
            MultiFieldPanel(
                [FieldRowPanel([FieldPanel("privacy"), FieldPanel("scheduled_start")])],
                heading=_("Audience and schedule"),
            ),
            MultiFieldPanel(
                [FieldPanel("tags"), FieldPanel("categories"), FieldPanel("allow_downloads")],
                heading=_("For the recording"),
            ),
        ],
        base_form_class=LiveSessionForm,
    )


class LiveViewSetGroup(SnippetViewSetGroup):
    """The *Live* admin menu. Other parts of the app add their viewsets to ``items``."""

    menu_label = _("Live")
    menu_icon = "media"
    menu_order = 250
    items = [
        PrepareLiveMenu,
        LiveSessionViewSet,
        RecordingViewSet,
        LiveCategoryViewSet,
        ChatMessageViewSet,  # chat (issue 5)
        BanViewSet,
        BlockedTermViewSet,
        UpcomingViewSet,  # audience (issue 7)
        LiveReportViewSet,
        WebhookViewSet,
        WebhookDeliveryViewSet,
    ]


register_snippet(LiveViewSetGroup)

# Recordings (issue 6): viewers switch to a recording when its page is published.
connect_recording_signal_handlers()


@hooks.register("register_admin_urls")
def register_live_admin_urls():
    return [path("live/", include(admin_urls, namespace="wagtail_live_admin"))]


@hooks.register("register_log_actions")
def register_live_log_actions(actions):
    actions.register_action("wagtail_live.start", _("Go live"), _("Went live"))
    actions.register_action("wagtail_live.end", _("End live"), _("Ended the live"))
    actions.register_action("wagtail_live.fail", _("Live failed"), _("The live failed"))
    actions.register_action(ENCODER_ACTION, _("Encoder connected"), _("An encoder connected"))
    actions.register_action(
        "wagtail_live.stream_key.issue", _("Issue stream key"), _("Issued a new stream key")
    )
    actions.register_action(
        "wagtail_live.stream_key.revoke", _("Revoke stream key"), _("Revoked the stream key")
    )


# -- realtime chat (issue 5) --

# The blocked-terms filter is an ordinary before_live_chat_message hook, like a site's own.
hooks.register("before_live_chat_message", chat.reject_blocked_terms)


@hooks.register("register_log_actions")
def register_chat_log_actions(actions):
    for action, label, message in [
        ("remove", _("Remove chat message"), _("Removed a chat message")),
        ("mute", _("Mute in chat"), _("Muted a user in chat")),
        ("unmute", _("Unmute in chat"), _("Unmuted a user in chat")),
        ("ban", _("Ban from chat"), _("Banned a user from live chat")),
        ("unban", _("Unban from chat"), _("Lifted a live chat ban")),
        ("slow", _("Chat slow mode"), _("Changed chat slow mode")),
        ("pin", _("Pin chat message"), _("Pinned a chat message")),
    ]:
        actions.register_action(f"wagtail_live.chat.{action}", label, message)
