"""The live dashboard: one admin page to watch, count and moderate a session while it runs."""

from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from .. import chat, permissions
from .base import SessionScreenMixin

#: The mute choices of the dashboard, in seconds (None: for the rest of the stream).
MUTE_CHOICES = [(300, "5 min"), (3600, "1 h"), (86400, "24 h"), (None, "rest")]


class DashboardView(SessionScreenMixin, TemplateView):
    """Preview, viewer count, likes and the chat with moderation buttons.

    The page itself only renders; everything live (counts, chat, moderation)
    goes over the same websocket and protocol viewers use, so there is one
    code path for moderation: ``wagtail_live.chat``.
    """

    template_name = "wagtail_live/admin/dashboard.html"
    header_icon = "media"

    refusal = _("Only the host and chat moderators can open this dashboard.")

    def may_open(self, user, session):
        return session.can_moderate(user) or session.can_go_live(user)

    def get_page_title(self):
        return _("Live dashboard")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        room = chat.chat_room(self.session)
        context.update(
            session=self.session,
            can_go_live=self.session.can_go_live(user),
            can_moderate=self.session.can_moderate(user),
            # The ban list, chat message list and bans reach every session: site moderators only.
            can_moderate_site=permissions.can_moderate_site(user),
            playback_url=self.session.playback_url,
            slow_mode=room.slow_mode_seconds,
            reason_max_length=chat.REASON_MAX_LENGTH,
            slow_choices=[0, 5, 10, 30, 60, 120],
            messages_url=reverse("wagtail_live_chat_messages:index")
            + f"?session={self.session.pk}",
            bans_url=reverse("wagtail_live_bans:index"),
        )
        return context
