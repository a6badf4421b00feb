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


class RecordingUploadForm(forms.ModelForm):
    """*Live → Recordings → Add*: a recording made elsewhere, checked before it is kept.

    The file must be a video in a whitelisted container by its extension *and* its
    first bytes (``wagtail_live.media_input``): a playlist, a concat list, an image,
    a page or a file whose name lies is refused with a message, and nothing is stored.
    Accepted files go under ``PRIVATE_ROOT`` (``Recording.source``), never served by path.
    """

    class Meta:
        from .models import Recording

        model = Recording
        fields = ["session", "source"]
        # Not the clearable input: it links to the file's URL, and a source has none
        # (it lives under PRIVATE_ROOT, served to nobody).
        widgets = {"source": forms.FileInput}

    def __init__(self, *args, for_user=None, **kwargs):
        # Wagtail's generic views pass the user; this form has nothing per user.
        super().__init__(*args, **kwargs)
        from .media_input import UPLOAD_EXTENSIONS

        self.fields["source"].widget.attrs["accept"] = ",".join(UPLOAD_EXTENSIONS)
        self.fields["source"].help_text = _(
            "A video file: %(extensions)s. It is converted to an MP4 for the web."
        ) % {"extensions": ", ".join(UPLOAD_EXTENSIONS)}

    def clean_source(self):
        from .media_input import SNIFF_BYTES, UnsupportedMedia, check_upload

        upload = self.cleaned_data.get("source")
        if upload is None or not hasattr(upload, "read"):
            return upload
        position = upload.tell() if hasattr(upload, "tell") else 0
        upload.seek(0)
        head = upload.read(SNIFF_BYTES)
        upload.seek(position)
        try:
            check_upload(upload.name, head)
        except UnsupportedMedia as exc:
            raise forms.ValidationError(str(exc), code="unsupported_media") from exc
        return upload
