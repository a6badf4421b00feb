"""The Prepare Live form: one screen, only the title required."""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm


class LiveSessionForm(WagtailAdminModelForm):
    def clean_scheduled_start(self):
        scheduled_start = self.cleaned_data.get("scheduled_start")
        unchanged = (
            self.instance.pk is not None and scheduled_start == self.instance.scheduled_start
        )
        # A start time in the past is almost always a typo; an existing past
        # time that the editor did not touch is left alone.
        if scheduled_start and scheduled_start < timezone.now() and not unchanged:
            raise forms.ValidationError(
                _("The scheduled start is in the past. Pick a later time, or leave it empty.")
            )
        return scheduled_start
