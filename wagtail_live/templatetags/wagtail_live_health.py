"""``{% live_stream_health session %}``: the stream health panel of the Go Live screen and dashboard."""

from django import template
from django.utils.translation import gettext_lazy as _

from .. import health

register = template.Library()

# Words stream-health.js needs when it redraws the panel from a ``health`` message.
HEALTH_TEXT = {
    "noVideo": _("none (audio only)"),
    "noAudio": _("none"),
    "channels": _("%(count)s channel(s)"),
}


@register.inclusion_tag("wagtail_live/admin/includes/stream_health.html")
def live_stream_health(session):
    """Render what the encoder sends and what to fix (``wagtail_live.health``; updated live by
    ``stream-health.js`` from the ``health`` websocket messages)."""
    report = health.latest_report(session) if session.is_live else None
    return {"session": session, "report": report, "health_text": HEALTH_TEXT}
