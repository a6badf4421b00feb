"""The *Recordings* admin listing (a ``ModelViewSet`` under *Live*), its *Retry* action and imports."""

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseNotAllowed
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views import View
from wagtail.admin.ui.tables import Column, DateColumn, StatusTagColumn
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.snippets.views.snippets import SnippetViewSet

from ..models import LiveCategory, Recording
from ..recordings import queue_processing, retry_recording

permission_policy = ModelPermissionPolicy(Recording)


def format_duration(seconds):
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class DurationColumn(Column):
    def get_value(self, instance):
        return format_duration(instance.duration)


class SizeColumn(Column):
    def get_value(self, instance):
        size = instance.size or instance.source_size
        return filesizeformat(size) if size else ""


class ProgressColumn(Column):
    def get_value(self, instance):
        if instance.status == Recording.Status.PROCESSING and instance.progress is not None:
            return f"{instance.progress:.0f} %"
        return instance.get_conversion_display() if instance.conversion else ""


class ResultColumn(Column):
    """Links to the media and the page when ready; the error and a *Retry* button when failed."""

    cell_template_name = "wagtail_live/admin/recording_result_cell.html"

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        request = parent_context["request"]
        context.update(
            recording=instance,
            media_url=(
                reverse("wagtailmedia:edit", args=[instance.media_id]) if instance.media_id else ""
            ),
            page_url=(
                reverse("wagtailadmin_pages:edit", args=[instance.page_id])
                if instance.page_id
                else ""
            ),
            retry_url=reverse("wagtail_live_recordings:retry", args=[instance.pk]),
            can_retry=instance.can_retry
            and permission_policy.user_has_permission(request.user, "change"),
            csrf_token=get_token(request),
        )
        return context


class RecordingIndexView(generic.IndexView):
    def get_base_queryset(self):
        return super().get_base_queryset().select_related("session", "media", "page")


class RecordingCreateView(generic.CreateView):
    """Import a recording made elsewhere: upload the file, choose the session, and it is processed."""

    def save_instance(self):
        instance = super().save_instance()
        # After the commit, or a fast worker would look for a row it cannot see yet.
        transaction.on_commit(lambda: queue_processing(instance))
        return instance

    def get_success_message(self, instance):
        return _("“%(recording)s” is queued for processing.") % {"recording": instance}


class RetryView(View):
    """POST: queue a failed recording again."""

    def post(self, request, pk):
        recording = get_object_or_404(Recording, pk=pk)
        if not permission_policy.user_has_permission(request.user, "change"):
            messages.error(request, _("You may not retry recordings."))
        elif retry_recording(recording):
            messages.success(
                request, _("“%(recording)s” is queued again.") % {"recording": recording}
            )
        else:
            messages.warning(
                request,
                _("“%(recording)s” has not failed, so there is nothing to retry.")
                % {"recording": recording},
            )
        return redirect("wagtail_live_recordings:index")

    def get(self, request, pk):
        return HttpResponseNotAllowed(["POST"])


class RecordingViewSet(ModelViewSet):
    """*Live → Recordings*: status, duration, size, progress, error, media and page, *Retry*."""

    model = Recording
    icon = "media"
    name = "wagtail_live_recordings"
    url_prefix = "live/recordings"
    menu_label = _("Recordings")
    add_to_admin_menu = False
    copy_view_enabled = False
    inspect_view_enabled = True
    index_view_class = RecordingIndexView
    add_view_class = RecordingCreateView
    form_fields = ["session", "source"]

    def get_form_class(self, for_update=False):
        # Uploads are checked by extension and content before anything is stored.
        from ..forms import RecordingUploadForm

        return RecordingUploadForm

    list_filter = ["status", "conversion"]
    search_fields = ["session__title", "error"]
    ordering = ["-created_at"]
    list_display = [
        Column("session", label=_("Session"), sort_key="session__title"),
        StatusTagColumn(
            "status",
            label=_("Status"),
            accessor="get_status_display",
            primary=lambda recording: recording.status == Recording.Status.READY,
        ),
        DurationColumn("duration", label=_("Duration"), sort_key="duration"),
        SizeColumn("size", label=_("Size")),
        ProgressColumn("progress", label=_("Progress")),
        ResultColumn("result", label=_("Result")),
        DateColumn("created_at", label=_("Recorded")),
    ]
    inspect_view_fields = [
        "session",
        "source",
        "status",
        "error",
        "attempts",
        "conversion",
        "duration",
        "size",
        "source_size",
        "created_at",
        "started_at",
        "finished_at",
        "media",
        "page",
    ]

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path("retry/<int:pk>/", RetryView.as_view(), name="retry"),
        ]


class LiveCategoryViewSet(SnippetViewSet):
    """*Live → Categories*: the categories editors put sessions and recording pages in."""

    model = LiveCategory
    icon = "folder-open-inverse"
    menu_label = _("Categories")
    list_display = ["name", "slug"]
    search_fields = ["name"]
