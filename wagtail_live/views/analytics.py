"""Analytics in the admin: one page per session (chart, figures, CSV) and the site-wide report."""

import django_filters
from django.contrib.auth import get_user_model
from django.http import HttpResponse, JsonResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.tables import Column, DateColumn, TitleColumn
from wagtail.admin.views.reports import ReportView
from wagtail.admin.viewsets.base import ViewSet
from wagtail.admin.widgets import AdminDateInput

from .. import analytics, schedule
from ..bounds import OutOfBounds, bounded_epoch_ms
from ..exports import SafeSpreadsheetExportMixin
from ..models import LiveSession
from .base import SessionMixin, SessionScreenMixin, refuse


def can_view_analytics(user, session):
    """Hosts, moderators of the session and those who see every session."""
    return (
        session.can_go_live(user)
        or session.can_moderate(user)
        or schedule.can_see_all_sessions(user)
    )


class SessionAnalyticsMixin(SessionMixin):
    refusal = _("Only the host and moderators can see these figures.")

    def get_session_queryset(self):
        return analytics.with_figures(LiveSession.objects.select_related("owner"))

    def may_open(self, user, session):
        return can_view_analytics(user, session)


class SessionAnalyticsView(SessionAnalyticsMixin, SessionScreenMixin, TemplateView):
    """Viewers over time (a Chart.js line), peak/average/unique viewers, chat, likes, moderation."""

    template_name = "wagtail_live/admin/analytics.html"
    header_icon = "view"

    def get_page_title(self):
        return _("Analytics")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        figures = analytics.session_figures(self.session)
        context.update(
            session=self.session,
            figures=figures,
            csv_url=reverse("wagtail_live_admin:analytics_csv", args=[self.session.pk]),
            dashboard_url=reverse("wagtail_live_admin:dashboard", args=[self.session.pk]),
            duration=_format_duration(figures["duration_seconds"]),
            recording_plays=figures["recording_plays"],
        )
        return context


def _format_duration(seconds):
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class SessionAnalyticsCSVView(SessionAnalyticsMixin, View):
    """Every viewer sample of the session as CSV."""

    def get(self, request, *args, **kwargs):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        filename = f"live-{self.session.slug or self.session.pk}-viewers.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        analytics.write_samples_csv(self.session, response)
        return response


class SessionSamplesView(SessionAnalyticsMixin, View):
    """JSON of the samples after ``?after=<epoch ms>``: the live dashboard's chart polls it."""

    def get(self, request, *args, **kwargs):
        try:
            after = bounded_epoch_ms(request.GET.get("after", "0"), "after")
        except OutOfBounds as error:
            return JsonResponse({"error": error.message, "field": error.field}, status=400)
        return JsonResponse(analytics.chart_data(self.session, after_ms=after))


# -- the site-wide report ------------------------------------------------------


class LiveReportFilterSet(WagtailFilterSet):
    date_from = django_filters.DateFilter(
        label=gettext_lazy("Started on or after"), method="filter_nothing", widget=AdminDateInput
    )
    date_to = django_filters.DateFilter(
        label=gettext_lazy("Started on or before"), method="filter_nothing", widget=AdminDateInput
    )
    owner = django_filters.ModelChoiceFilter(
        label=gettext_lazy("Host"),
        queryset=lambda request: (
            get_user_model()
            .objects.filter(live_sessions__isnull=False)
            .distinct()
            .order_by("username")
        ),
    )

    class Meta:
        model = LiveSession
        fields = ["date_from", "date_to", "owner"]

    def filter_nothing(self, queryset, name, value):
        # The dates are applied by analytics.report_queryset (started_at, whole days).
        return queryset


class NumberColumn(Column):
    def get_value(self, instance):
        value = super().get_value(instance)
        return round(value, 1) if isinstance(value, float) else value


class LiveReportView(SafeSpreadsheetExportMixin, ReportView):
    """*Reports → Live sessions*: every session that went live with its figures; CSV/XLSX."""

    page_title = gettext_lazy("Live sessions")
    header_icon = "media"
    filterset_class = LiveReportFilterSet
    index_url_name = "wagtail_live_report:index"
    index_results_url_name = "wagtail_live_report:results"
    paginate_by = 50
    model = LiveSession
    list_export = [
        "title",
        "owner",
        "started_at",
        "ended_at",
        "peak_viewers_seen",
        "average_viewers",
        "unique_viewers",
        "chat_message_count",
        "likes",
        "moderation_action_count",
        "reminder_count",
    ]
    export_headings = {
        "owner": gettext_lazy("Host"),
        "peak_viewers_seen": gettext_lazy("Peak viewers"),
        "average_viewers": gettext_lazy("Average viewers"),
        "unique_viewers": gettext_lazy("Unique viewers"),
        "chat_message_count": gettext_lazy("Chat messages"),
        "moderation_action_count": gettext_lazy("Moderation actions"),
        "reminder_count": gettext_lazy("Reminders"),
    }
    columns = [
        TitleColumn(
            "title",
            label=gettext_lazy("Session"),
            get_url=lambda session: reverse("wagtail_live_admin:analytics", args=[session.pk]),
        ),
        Column("owner", label=gettext_lazy("Host")),
        DateColumn("started_at", label=gettext_lazy("Started")),
        NumberColumn("peak_viewers_seen", label=gettext_lazy("Peak")),
        NumberColumn("average_viewers", label=gettext_lazy("Average")),
        NumberColumn("unique_viewers", label=gettext_lazy("Unique")),
        NumberColumn("chat_message_count", label=gettext_lazy("Chat")),
        NumberColumn("likes", label=gettext_lazy("Likes")),
        NumberColumn("moderation_action_count", label=gettext_lazy("Moderation")),
    ]

    def dispatch(self, request, *args, **kwargs):
        if not schedule.can_see_all_sessions(request.user):
            return refuse(request, _("Only those who see every host's sessions see this report."))
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        data = self.filters.form.cleaned_data if self.filters and self.filters.is_valid() else {}
        return analytics.report_queryset(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            owner=data.get("owner"),
        )

    def filter_queryset(self, queryset):
        # The filters are applied in get_queryset, where the figures are annotated.
        return queryset


class ShownToAllSessionViewers(MenuItem):
    def is_shown(self, request):
        return schedule.can_see_all_sessions(request.user)


class LiveReportViewSet(ViewSet):
    """The site-wide report, in the *Live* menu."""

    name = "wagtail_live_report"
    url_prefix = "live/report"
    icon = "table"
    menu_label = gettext_lazy("Analytics report")
    menu_item_class = ShownToAllSessionViewers

    def get_urlpatterns(self):
        return [
            path("", LiveReportView.as_view(), name="index"),
            path("results/", LiveReportView.as_view(results_only=True), name="results"),
        ]
