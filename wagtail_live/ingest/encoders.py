"""Which encoder feeds a live session: noted when one connects, read by the Go Live screen.

The encoder may run in another process than the admin (the ``live_rtmp`` listener,
nginx's callbacks), so the note goes in the session's history (a Wagtail log entry,
``wagtail_live.encoder``) rather than in memory.
"""

import logging

from django.db import DatabaseError
from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import log

logger = logging.getLogger("wagtail_live.ingest")

#: The log action of a connecting encoder; its data is ``{"encoder": <one of ENCODERS>}``.
ENCODER_ACTION = "wagtail_live.encoder"

#: What each encoder is called on the Go Live screen.
ENCODERS = {
    "rtmp": _("OBS or another RTMP encoder, through the embedded RTMP listener"),
    "nginx": _("OBS or another RTMP encoder, through nginx-rtmp"),
    "browser": _("The camera of a browser's Go Live screen"),
    "whip": _("A WebRTC (WHIP) encoder, such as OBS's WHIP service, through Janus"),
}

#: Which encoder sends each format the embedded pipeline reads.
ENCODER_OF_INPUT_FORMAT = {"flv": "rtmp", "webm": "browser"}


def note_encoder(session, encoder):
    """Record that ``encoder`` (a key of ``ENCODERS``) now feeds ``session``.

    Never stops a stream: a database that is busy at this moment only loses the note.
    """
    try:
        log(instance=session, action=ENCODER_ACTION, data={"encoder": encoder})
    except DatabaseError:
        logger.warning("session %s: could not note its encoder %s", session.pk, encoder)


def current_encoder(session):
    """The key of the encoder that last connected to ``session``, or None."""
    from wagtail.models import ModelLogEntry

    entry = (
        ModelLogEntry.objects.for_instance(session)
        .filter(action=ENCODER_ACTION)
        .order_by("-timestamp", "-pk")
        .first()
    )
    encoder = (entry.data or {}).get("encoder") if entry else None
    return encoder if encoder in ENCODERS else None
