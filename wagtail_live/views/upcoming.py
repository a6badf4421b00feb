"""*Live → Upcoming*: the agenda of sessions to come, by day, with how many people wait."""

from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.admin.viewsets.base import ViewSet

from .. import schedule


class UpcomingView(WagtailAdminTemplateMixin, TemplateView):
    """Every session the user may see; ``?mine=1`` narrows it to their own.

    Those who may not see every host's sessions only ever see their own.
    """

    template_name = "wagtail_live/admin/upcoming.html"
    header_icon = "date"
    page_title = gettext_lazy("Upcoming live sessions")

    def get_breadcrumbs_items(self):
        return [*super().get_breadcrumbs_items(), {"url": "", "label": _("Upcoming")}]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        may_see_all = schedule.can_see_all_sessions(user)
        show_all = may_see_all and self.request.GET.get("mine") != "1"
        sessions = schedule.agenda_sessions(user, show_all=show_all)
        for session in sessions:
            session.admin_links = self._links(session)
        context.update(
            agenda=schedule.agenda_by_day(sessions),
            show_all=show_all,
            may_see_all=may_see_all,
            add_url=reverse("wagtailsnippets_wagtail_live_livesession:add"),
        )
        return context

    def _links(self, session):
        user = self.request.user
        links = {"analytics": reverse("wagtail_live_admin:analytics", args=[session.pk])}
        if session.can_go_live(user):
            links["go_live"] = reverse("wagtail_live_admin:go_live", args=[session.pk])
        return links


class UpcomingViewSet(ViewSet):
    """Puts the agenda in the *Live* menu."""

    name = "wagtail_live_upcoming"
    url_prefix = "live/upcoming"
    icon = "date"
    menu_label = gettext_lazy("Upcoming")

    def get_urlpatterns(self):
        return [path("", UpcomingView.as_view(), name="index")]
