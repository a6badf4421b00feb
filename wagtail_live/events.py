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
    pk = getattr(session, "pk", session)
    return send_to_group(group_name(pk), build_message(type, **data))


def send_to_group(group, message):
    """Send the group ``message`` to channel-layer ``group``, as ``publish`` does.

    For the few messages that are not one session's events (e.g. ``hub``'s
    per-user group). Returns True/False (a task from inside an event loop), None
    without a layer; a layer failure is logged, never raised.
    """
    layer = get_channel_layer()
    if layer is None:
        logger.debug("No channel layer configured; dropping %s", message["event"]["type"])
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        return loop.create_task(_send(layer, group, message))
    return async_to_sync(_send)(layer, group, message)


async def _send(layer, group, message):
    try:
        await layer.group_send(group, message)
    except Exception as error:  # any layer failure: Redis down, refused, timed out
        logger.error(
            "Real-time updates are unavailable: the channel layer did not take the %s event "
            "for %s: %r",
            message["event"]["type"],
            group,
            error,
        )
        return False
    return True
