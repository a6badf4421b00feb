"""The LiveSession snippet's views: Prepare Live (the add view), edit and listing with Go Live links."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.widgets.button import HeaderButton, ListingButton
from wagtail.snippets.views.snippets import CreateView, EditView, IndexView

# Fields a link may prefill on Prepare Live, e.g. /admin/.../add/?title=Open%20day
PREFILL_FIELDS = ("title", "description")


class PrepareLiveView(CreateView):
    """Prepare Live: ``?title=`` and ``?description=`` prefill the form; saving leads to Go Live."""

    def get_page_title(self):
        return _("Prepare live")

    def get_initial(self):
        initial = super().get_initial()
        for field in PREFILL_FIELDS:
            value = self.request.GET.get(field)
            if value:
                initial[field] = value
        return initial

    def save_instance(self):
        instance = self.form.instance
        instance.owner = self.request.user
        instance = super().save_instance()
        instance.issue_stream_key(user=self.request.user)
        return instance

    def get_success_url(self):
        return reverse("wagtail_live_admin:go_live", args=[self.object.pk])

    def get_success_message(self, instance):
        return _("“%(title)s” is ready. Go live when you are.") % {"title": instance.title}


class LiveSessionEditView(EditView):
    @property
    def header_buttons(self):
        buttons = list(super().header_buttons)
        if self.object.can_go_live(self.request.user) and not self.object.has_ended:
            buttons.append(
                HeaderButton(
                    _("Go live"),
                    url=reverse("wagtail_live_admin:go_live", args=[self.object.pk]),
                    icon_name="media",
                )
            )
        # Recordings (issue 6): link to the session's recording(s) once there is one.
        recording = self.object.recordings.first()
        if recording is not None:
            buttons.append(
                HeaderButton(
                    _("Recording"),
                    url=reverse("wagtail_live_recordings:inspect", args=[recording.pk]),
                    icon_name="media",
                )
            )
        return buttons


class LiveSessionIndexView(IndexView):
    def get_list_more_buttons(self, instance):
        buttons = super().get_list_more_buttons(instance)
        if instance.can_go_live(self.request.user) and not instance.has_ended:
            buttons.insert(
                0,
                ListingButton(
                    _("Go live"),
                    url=reverse("wagtail_live_admin:go_live", args=[instance.pk]),
                    icon_name="media",
                    attrs={"aria-label": _("Go live: %(title)s") % {"title": instance.title}},
                    priority=0,
                ),
            )
        # Realtime (issue 5): the live dashboard, for hosts and chat moderators.
        if instance.can_moderate(self.request.user) or instance.can_go_live(self.request.user):
            buttons.append(
                ListingButton(
                    _("Live dashboard"),
                    url=reverse("wagtail_live_admin:dashboard", args=[instance.pk]),
                    icon_name="view",
                    priority=5,
                )
            )
            # Audience (issue 7): viewer chart and figures.
            buttons.append(
                ListingButton(
                    _("Analytics"),
                    url=reverse("wagtail_live_admin:analytics", args=[instance.pk]),
                    icon_name="table",
                    priority=6,
                )
            )
        return buttons
