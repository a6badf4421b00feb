"""The live dashboard: one admin page to watch, count and moderate a session while it runs."""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.generic import TemplateView
from wagtail.admin.views.generic import WagtailAdminTemplateMixin

from .. import chat
from ..models import LiveSession
from .go_live import refuse

#: The mute choices of the dashboard, in seconds (None: for the rest of the stream).
MUTE_CHOICES = [(300, "5 min"), (3600, "1 h"), (86400, "24 h"), (None, "rest")]


class DashboardView(WagtailAdminTemplateMixin, TemplateView):
    """Preview, viewer count, likes and the chat with moderation buttons.

    The page itself only renders; everything live (counts, chat, moderation)
    goes over the same websocket and protocol viewers use, so there is one
    code path for moderation: ``wagtail_live.chat``.
    """

    template_name = "wagtail_live/admin/dashboard.html"
    header_icon = "media"

    def dispatch(self, request, pk, *args, **kwargs):
        self.session = get_object_or_404(LiveSession, pk=pk)
        if not (self.session.can_moderate(request.user) or self.session.can_go_live(request.user)):
            return refuse(request, _("Only the host and chat moderators can open this dashboard."))
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self):
        return _("Live dashboard")

    def get_page_subtitle(self):
        return self.session.title

    def get_breadcrumbs_items(self):
        return [
            *super().get_breadcrumbs_items(),
            {"url": reverse("wagtailsnippets_wagtail_live_livesession:list"), "label": _("Live")},
            {
                "url": reverse(
                    "wagtailsnippets_wagtail_live_livesession:edit", args=[self.session.pk]
                ),
                "label": self.session.title,
            },
            {"url": "", "label": _("Dashboard")},
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        room = chat.chat_room(self.session)
        context.update(
            session=self.session,
            can_go_live=self.session.can_go_live(user),
            can_moderate=self.session.can_moderate(user),
            playback_url=self.session.playback_url,
            slow_mode=room.slow_mode_seconds,
            slow_choices=[0, 5, 10, 30, 60, 120],
            messages_url=reverse("wagtail_live_chat_messages:index")
            + f"?session={self.session.pk}",
            bans_url=reverse("wagtail_live_bans:index"),
        )
        return context
