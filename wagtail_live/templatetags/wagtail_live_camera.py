"""``{% live_camera session %}``: the camera part of the Go Live screen (browser ingest)."""

from django import template
from django.utils.translation import gettext_lazy as _

from ..conf import live_settings
from ..ingest.browser import ingest_path

register = template.Library()

# Strings golive.js shows; rendered as JSON so they are translated like the rest.
CAMERA_TEXT = {
    "unsupported": _("This browser cannot stream its camera. Use OBS with the stream key below."),
    "ready": _("Camera ready. Tap Go live to start streaming."),
    "noCamera": _("No camera or microphone available. Allow access, or use OBS."),
    "camera": _("Camera"),
    "microphone": _("Microphone"),
    "connecting": _("Connecting…"),
    "live": _("You are live."),
    "reconnecting": _("Connection lost. Reconnecting…"),
    "refused": _("The server refused the stream."),
    "ending": _("Ending…"),
    "ended": _("The live has ended."),
    "switching": _("Switching camera…"),
    # Live without a picture (a camera switch that could open neither camera): stays shown.
    "noPicture": _("No picture: viewers only hear you. Tap the camera switch to try again."),
    "microphoneOff": _("Microphone off: viewers hear nothing."),
}


@register.inclusion_tag("wagtail_live/admin/includes/camera.html")
def live_camera(session):
    """Render the camera preview, device pickers and browser streaming for ``session``."""
    return {
        "session": session,
        "ingest_path": ingest_path(session),
        "reconnect_grace": live_settings.RECONNECT_GRACE,
        "camera_text": CAMERA_TEXT,
    }
