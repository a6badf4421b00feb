"""StreamField blocks: the live player a page shows before, during and after a live."""

from urllib.parse import urlencode

from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail import blocks, hooks
from wagtail.snippets.blocks import SnippetChooserBlock

from . import playback
from .permissions import can_watch

#: ``@hooks.register("construct_live_player_context")`` functions get
#: ``(context, session, request)`` and may add to or change the context in place.
CONTEXT_HOOK = "construct_live_player_context"


# Strings player.js shows; rendered as JSON so they are translated like the rest.
PLAYER_TEXT = {
    "startingNow": _("Starting any moment now…"),
    "startsIn": _("Starts in %(time)s"),
    "days": _("%(count)s d"),
    "playbackError": _("The video could not be played. Retrying…"),
    "ended": _("This live stream has ended."),
    "recordingPage": _("Open the recording's page"),  # recordings (issue 6)
    # The viewer (issue 14): the immersive phone view and the wide-screen controls.
    "play": _("Play"),
    "pause": _("Pause"),
    "unmute": _("Unmute"),
    "mute": _("Mute"),
    "theatre": _("Theatre mode"),
    "exitTheatre": _("Leave theatre mode"),
    "fullScreen": _("Full screen"),
    "exitFullScreen": _("Leave full screen"),
    "hideChat": _("Hide chat"),
    "showChat": _("Show chat"),
}

#: ``LivePlayerBlock``'s ``layout`` choices: how the stream's picture is framed.
LAYOUT_CHOICES = [
    ("auto", _("Automatic (from the stream's picture)")),
    ("portrait", _("Portrait (a phone held upright)")),
    ("landscape", _("Landscape (16:9)")),
]


class LivePlayerBlock(blocks.StructBlock):
    """Shows one live session by its state, updating without a page reload.

    *Scheduled*: a countdown, the local start time and *Add to calendar*.
    *Live*: a low-latency HLS player plus the chat, likes and viewer slots.
    *Ended*: a notice (and the recording, once it exists). Private sessions show
    visitors who may not watch a members-only notice and never a playback URL.

    ``layout`` (``auto``, ``portrait``, ``landscape``; default ``auto``) frames the picture:
    on a phone the immersive view covers the screen with a portrait stream and letterboxes
    a landscape one; ``auto`` decides from the stream's own width and height (docs/watching.md).
    """

    session = SnippetChooserBlock("wagtail_live.LiveSession", label=_("Live session"))
    show_chat = blocks.BooleanBlock(
        required=False, default=True, label=_("Show chat, likes and viewer count")
    )
    layout = blocks.ChoiceBlock(
        choices=LAYOUT_CHOICES,
        default="auto",
        required=False,
        label=_("Layout"),
        help_text=_(
            "Portrait streams fill a phone's screen; landscape ones are letterboxed. "
            "Automatic reads the stream's picture."
        ),
    )

    class Meta:
        icon = "media"
        label = _("Live player")
        template = "wagtail_live/blocks/live_player.html"

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        session = value.get("session")
        request = (parent_context or {}).get("request")
        page = (parent_context or {}).get("page")
        context.update(player_context(session, request, page=page))
        if session is not None:
            for fn in hooks.get_hooks(CONTEXT_HOOK):
                fn(context, session, request)
        return context


def player_context(session, request, page=None):
    """What the player template needs; the playback URL only for those who may watch.

    ``page`` is the page the block is on (None outside a page): the *Add to calendar*
    invite links back to it.
    """
    if session is None:
        return {"live_session": None}
    user = getattr(request, "user", None)
    allowed = can_watch(session, user)
    context = {
        "live_session": session,
        "can_watch": allowed,
        "status_url": reverse("wagtail_live:session_status", args=[session.pk]),
        "playback_url": playback.playback_url(session) if allowed and session.is_live else "",
        "hlsjs_url": static("wagtail_live/vendor/hls.min.js"),
        "player_text": PLAYER_TEXT,
        # Shown under the title in the immersive phone view (the chat's name for the owner).
        "host_name": _host_name(session),
    }
    if allowed and session.has_ended:
        # Recordings (issue 6): the published recording replaces the "ended" notice.
        from .recordings import published_recording_page

        context["recording_page"] = published_recording_page(session)
    if allowed and session.scheduled_start:
        calendar_url = reverse("wagtail_live:session_calendar", args=[session.pk])
        if getattr(page, "pk", None):
            calendar_url += f"?{urlencode({'page': page.pk})}"
        context["calendar_url"] = calendar_url
    # For "Log in to watch" (members only) and, in live_chat.html, "Log in to chat".
    next_path = request.get_full_path() if request is not None else "/"
    context["login_url"] = f"{_login_url()}?{urlencode({'next': next_path})}"
    return context


def _host_name(session):
    # Imported here: chat pulls in the channel layer, which a page's models need not load.
    from .chat import display_name

    return display_name(session.owner) if session.owner_id else ""


def _login_url():
    # Wagtail's front-end login for private pages, unless the site has its own.
    login = getattr(settings, "WAGTAIL_FRONTEND_LOGIN_URL", None) or settings.LOGIN_URL
    return login if login.startswith("/") else reverse(login)


# -- audience (issue 7) --


class UpcomingLiveBlock(blocks.StructBlock):
    """The next public live sessions with countdowns and *Remind me* (live ones first)."""

    heading = blocks.CharBlock(required=False, default=_("Upcoming live"), label=_("Heading"))
    count = blocks.IntegerBlock(
        min_value=1, max_value=50, default=5, label=_("How many sessions to list")
    )

    class Meta:
        icon = "date"
        label = _("Upcoming live sessions")
        template = "wagtail_live/blocks/upcoming_live.html"

    def get_context(self, value, parent_context=None):
        from . import schedule

        context = super().get_context(value, parent_context=parent_context)
        user = getattr((parent_context or {}).get("request"), "user", None)
        # Public sessions only, and of those the ones this visitor may watch (a hook may say no).
        context["upcoming_sessions"] = [
            session
            for session in schedule.upcoming_public_sessions(limit=value["count"])
            if can_watch(session, user)
        ]
        context["upcoming_text"] = UPCOMING_TEXT
        return context


# Strings upcoming.js shows in the countdowns.
UPCOMING_TEXT = {
    "startsIn": _("Starts in %(time)s"),
    "startingNow": _("Starting any moment now…"),
    "days": _("%(count)s d"),
}
