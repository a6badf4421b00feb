"""What every admin view about one live session shares: loading it, refusing, its breadcrumbs."""

from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.views.generic import WagtailAdminTemplateMixin

from ..models import LiveSession


def refuse(request, reason):
    """A plain 403 with the reason, rather than Wagtail's redirect to the dashboard.

    A forged or stale POST must visibly fail and change nothing.
    """
    return TemplateResponse(
        request, "wagtail_live/admin/forbidden.html", {"reason": reason}, status=403
    )


class SessionMixin:
    """Load the session named by the URL's ``pk``; answer 403 to users ``may_open`` refuses."""

    refusal = _("You may not open this live session's screen.")

    def get_session_queryset(self):
        return LiveSession.objects.all()

    def may_open(self, user, session):
        raise NotImplementedError

    def dispatch(self, request, pk, *args, **kwargs):
        self.session = get_object_or_404(self.get_session_queryset(), pk=pk)
        if not self.may_open(request.user, self.session):
            return refuse(request, self.refusal)
        return super().dispatch(request, *args, **kwargs)


class SessionScreenMixin(SessionMixin, WagtailAdminTemplateMixin):
    """An admin page about one session: its title as subtitle, *Live › session › page* breadcrumbs."""

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
            {"url": "", "label": self.get_page_title()},
        ]
