"""The LiveSession snippet's views: Prepare Live (the add view), edit and listing with Go Live links."""

from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.timesince import timeuntil
from django.utils.translation import gettext_lazy as _
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.tables import DateColumn
from wagtail.admin.viewsets.base import ViewSet
from wagtail.admin.widgets.button import HeaderButton, ListingButton
from wagtail.snippets.views.snippets import CreateView, EditView, IndexView

from ..models import LiveSession

# Fields a link may prefill on Prepare Live, e.g. /admin/.../add/?title=Open%20day
PREFILL_FIELDS = ("title", "description")


#: The one name of the add view, in the menu, the listing's button, headings and breadcrumbs.
PREPARE_LIVE = _("Prepare live")


def time_until(value, now=None):
    """A future ``value`` as "in 7 days": the largest unit only, like Wagtail's "7 days ago"."""
    return _("in %(time_period)s") % {"time_period": timeuntil(value, now).split(",")[0]}


class ScheduledColumn(DateColumn):
    """A date column that reads as future for future dates ("in 7 days", the date on hover).

    Wagtail's ``DateColumn`` only knows the past and shows any future time as "Just now".
    """

    cell_template_name = "wagtail_live/admin/scheduled_cell.html"

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        value = context["value"]
        context["time_until"] = time_until(value) if value and value > timezone.now() else None
        return context


class PrepareLiveView(CreateView):
    """Prepare Live: ``?title=`` and ``?description=`` prefill the form; saving leads to Go Live."""

    def get_page_title(self):
        return PREPARE_LIVE

    def get_page_subtitle(self):
        # The form's visible heading is the subtitle ("Live session" by default).
        return PREPARE_LIVE

    def get_header_title(self):
        return PREPARE_LIVE

    def get_breadcrumbs_items(self):
        # Wagtail ends them with "New: Live session"; the screen is called *Prepare live*.
        items = super().get_breadcrumbs_items()
        return [*items[:-1], {"url": "", "label": PREPARE_LIVE}]

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
    @cached_property
    def add_item_label(self):
        return PREPARE_LIVE

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


class ShownToPreparers(MenuItem):
    def is_shown(self, request):
        return request.user.has_perm(f"wagtail_live.add_{LiveSession._meta.model_name}")


class PrepareLiveMenu(ViewSet):
    """*Live → Prepare live*: the menu's way to the add view (which has no URLs of its own here)."""

    name = "wagtail_live_prepare"
    icon = "plus"
    menu_label = PREPARE_LIVE
    menu_item_class = ShownToPreparers

    @cached_property
    def menu_url(self):
        return reverse("wagtailsnippets_wagtail_live_livesession:add")
