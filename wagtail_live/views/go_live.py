"""The Go Live screen and the actions a host takes on it (start, end, stream key)."""

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from .. import chat, permissions
from ..exceptions import InvalidTransition
from ..ingest import rtmp_publish_url
from ..ingest.base import get_rtmp_backend
from ..ingest.encoders import ENCODERS, current_encoder
from ..playback import playback_url
from .base import SessionMixin, SessionScreenMixin, refuse


def warn_if_not_announced(request, session):
    """The change was saved, but the channel layer (e.g. Redis) did not take its announcement."""
    if session.announced is False:
        messages.warning(
            request,
            _(
                "Real-time updates are unavailable: the change is saved, but viewers will see "
                "it only when they reload the page."
            ),
        )


class SessionActionMixin(SessionMixin):
    """Actions on a session for those who may stream to it (403 for others, nothing changes)."""

    refusal = _("Only the host, a superuser or someone allowed to go live can do this.")

    def may_open(self, user, session):
        return session.can_go_live(user)

    def back_to_screen(self):
        return redirect("wagtail_live_admin:go_live", self.session.pk)


class GoLiveView(SessionActionMixin, SessionScreenMixin, TemplateView):
    """GET: the Go Live screen. POST: go live now."""

    template_name = "wagtail_live/admin/go_live.html"
    header_icon = "media"

    def get_page_title(self):
        return _("Go live")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        stream_key = None
        if self.session.can_see_stream_key(user):
            current = self.session.current_stream_key
            # What the encoder's Stream key field takes (nginx: <pk>/hls?key=<key>).
            stream_key = (
                get_rtmp_backend().encoder_stream_key(self.session, current.key)
                if current
                else None
            )
        context.update(
            session=self.session,
            can_see_stream_key=self.session.can_see_stream_key(user),
            stream_key=stream_key,
            rtmp_url=rtmp_publish_url(self.request),
            status_url=reverse("wagtail_live_admin:status", args=[self.session.pk]),
            # The phone studio's moderation sheet: Ban (and its reason dialog) for site moderators only.
            can_moderate_site=permissions.can_moderate_site(user),
            reason_max_length=chat.REASON_MAX_LENGTH,
        )
        if self.session.is_live:
            # An encoder feeds it already: show what viewers get, and from where, not the camera.
            encoder = current_encoder(self.session)
            context.update(
                playback_url=playback_url(self.session),
                encoder=encoder,
                encoder_label=ENCODERS.get(encoder),
            )
        return context

    def post(self, request):
        try:
            self.session.start(user=request.user)
        except InvalidTransition as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("You are live."))
            warn_if_not_announced(request, self.session)
        return self.back_to_screen()


class EndLiveView(SessionActionMixin, View):
    """POST only. A second click (or a second tab) is told it already ended; nothing happens twice."""

    def post(self, request):
        try:
            self.session.end(user=request.user)
        except InvalidTransition as error:
            messages.info(request, str(error))
        else:
            messages.success(request, _("The live has ended."))
            warn_if_not_announced(request, self.session)
        return self.back_to_screen()


class StreamKeyView(SessionActionMixin, View):
    """POST ``action=issue`` (a new key, the old one stops working) or ``action=revoke``."""

    def post(self, request):
        if not self.session.can_see_stream_key(request.user):
            return refuse(request, _("Only the host or a superuser can manage the stream key."))
        action = request.POST.get("action")
        if action == "issue":
            try:
                self.session.issue_stream_key(user=request.user)
            except InvalidTransition as error:
                messages.error(request, str(error))
            else:
                messages.success(request, _("New stream key issued. The old one no longer works."))
        elif action == "revoke":
            self.session.revoke_stream_key(user=request.user)
            messages.success(request, _("Stream key revoked. Encoders using it are refused."))
        else:
            messages.error(request, _("Unknown stream key action."))
        return self.back_to_screen()


class SessionStatusView(SessionActionMixin, View):
    """A small JSON status for the Go Live screen's script."""

    def get(self, request):
        session = self.session
        return JsonResponse(
            {
                "id": session.pk,
                "status": session.status,
                "status_label": session.get_status_display(),
                "started_at": session.started_at.isoformat() if session.started_at else None,
                "ended_at": session.ended_at.isoformat() if session.ended_at else None,
            }
        )
