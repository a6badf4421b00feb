"""Typed messages to a session's channel-layer group, from sync or async code.

Everything that talks to viewers in real time (status changes, recording
ready, chat) goes through here, so views, tasks and signal handlers never need
to know about consumers.
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .exceptions import WagtailLiveError

logger = logging.getLogger(__name__)

#: The ``type`` of the group message consumers receive; its ``event`` key holds the payload.
GROUP_MESSAGE_TYPE = "live.event"


class RealtimeUnavailable(WagtailLiveError):
    """The channel layer cannot be reached (e.g. ``channels_redis`` and Redis is down)."""


async def subscribe(layer, group):
    """A new channel of ``layer``, added to ``group``.

    Raises ``RealtimeUnavailable`` (with the layer's error as its cause) when
    the layer fails, so a socket can tell its client instead of dying with 1011.
    """
    try:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
    except Exception as error:  # any layer failure: Redis down, refused, timed out
        raise RealtimeUnavailable(f"the channel layer failed: {error!r}") from error
    return channel


def group_name(session_pk):
    """The channel-layer group of one session."""
    return f"wagtail_live.session.{session_pk}"


def build_message(type, **data):
    """The group message ``publish`` sends: ``{"type": "live.event", "event": {"type": ..., ...}}``."""
    return {"type": GROUP_MESSAGE_TYPE, "event": {"type": type, **data}}


def publish(session, type, **data):
    """Send the event ``{"type": type, **data}`` to everyone connected to ``session``.

    ``session`` is a ``LiveSession`` or its primary key. From sync code this
    returns once the layer has the message: True, or False when the layer
    failed (e.g. ``channels_redis`` cannot reach Redis). From inside a running
    event loop it schedules the send and returns the task, whose result is that
    True or False (await it if you need to). A failed send is logged, never
    raised: the change being announced has already happened, and only its
    real-time announcement is lost. Without a configured channel layer it
    returns None and does nothing: the app still works, only without
    real-time updates.
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
        return loop.create_task(_send(layer, pk, message))
    return async_to_sync(_send)(layer, pk, message)


async def _send(layer, pk, message):
    try:
        await layer.group_send(group_name(pk), message)
    except Exception as error:  # any layer failure: Redis down, refused, timed out
        logger.error(
            "Real-time updates are unavailable: the channel layer did not take the %s event "
            "of session %s: %r",
            message["event"]["type"],
            pk,
            error,
        )
        return False
    return True
