"""Typed messages to a session's channel-layer group, from sync or async code.

Everything that talks to viewers in real time (status changes, recording
ready, chat) goes through here, so views, tasks and signal handlers never need
to know about consumers.
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

#: The ``type`` of the group message consumers receive; its ``event`` key holds the payload.
GROUP_MESSAGE_TYPE = "live.event"


def group_name(session_pk):
    """The channel-layer group of one session."""
    return f"wagtail_live.session.{session_pk}"


def build_message(type, **data):
    """The group message ``publish`` sends: ``{"type": "live.event", "event": {"type": ..., ...}}``."""
    return {"type": GROUP_MESSAGE_TYPE, "event": {"type": type, **data}}


def publish(session, type, **data):
    """Send the event ``{"type": type, **data}`` to everyone connected to ``session``.

    ``session`` is a ``LiveSession`` or its primary key. From sync code this
    returns once the layer has the message; from inside a running event loop it
    schedules the send and returns the task (await it if you need to). Without
    a configured channel layer it logs and does nothing: the app still works,
    only without real-time updates.
    """
    layer = get_channel_layer()
    if layer is None:
        logger.debug("No channel layer configured; dropping %s event", type)
        return None
    pk = getattr(session, "pk", session)
    message = build_message(type, **data)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        return loop.create_task(layer.group_send(group_name(pk), message))
    async_to_sync(layer.group_send)(group_name(pk), message)
    return None
