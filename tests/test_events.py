"""events.publish reaches the session's channel-layer group from sync and async code."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from wagtail_live import events


def subscribe(pk):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.group_name(pk), channel)
    return layer, channel


def test_publish_from_sync_code():
    layer, channel = subscribe(7)
    events.publish(7, "status", state="live")
    message = async_to_sync(layer.receive)(channel)
    assert message == {"type": "live.event", "event": {"type": "status", "state": "live"}}


async def test_publish_from_async_code():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.group_name(8), channel)
    task = events.publish(8, "likes", total=3)
    await task
    message = await layer.receive(channel)
    assert message["event"] == {"type": "likes", "total": 3}
    # And from sync code running in a worker thread of the same loop (views, tasks).
    await sync_to_async(events.publish)(8, "viewers", count=2)
    message = await layer.receive(channel)
    assert message["event"] == {"type": "viewers", "count": 2}


@pytest.mark.django_db
def test_transitions_publish_status(session):
    layer, channel = subscribe(session.pk)
    session.start()
    assert async_to_sync(layer.receive)(channel)["event"] == {"type": "status", "state": "live"}
    session.end()
    assert async_to_sync(layer.receive)(channel)["event"]["state"] == "ended"


def test_publish_without_a_channel_layer_is_harmless(settings):
    settings.CHANNEL_LAYERS = {}
    assert events.publish(1, "status", state="live") is None
