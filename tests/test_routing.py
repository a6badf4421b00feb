"""Websocket paths no route matches close cleanly with 4404, never a 500 and a traceback.

Channels answers an unrouted handshake with "No route found": daphne turns it into
HTTP 500 and a full traceback in its log per attempt, which lets anyone flood the
log. ``websocket_urlpatterns`` ends with a catch-all that closes with 4404.
"""

import asyncio
import json

import pytest
import websockets
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from wagtail_live.consumers.protocol import CLOSE_NOT_FOUND

UNROUTED = [
    "/ws/live/1",
    "/ws/live/1//",
    "/ws/live/+1/",
    "/ws/live/-1/",
    "/ws/live/abc/",
    "/ws/live/1/ingest",
    "/ws/live/1/ingest/x/",
    "/ws/live/",
    "/ws/nope/",
    "/ws/",
    "/",
    "/%00/",
    "/ws/live/1/%2e%2e/",
]


@pytest.mark.parametrize("path", UNROUTED)
async def test_unrouted_paths_close_with_4404(path):
    from wagtail_live.routing import websocket_urlpatterns

    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    connected, _ = await communicator.connect()
    assert connected
    error = json.loads(await communicator.receive_from())
    assert error["type"] == "error" and error["code"] == "not_found"
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4404}
    await communicator.wait()


@pytest.mark.slow
def test_real_daphne_closes_unrouted_paths_without_a_traceback(tmp_path):
    from tests.live_site import LiveSite, migrated_database

    site = LiveSite(tmp_path, migrated_database(tmp_path))
    pk = site.run(
        """
        from tests.utils import make_editor, make_session
        result = make_session("Routed", owner=make_editor("host")).pk
        """
    )
    site.start()

    async def close_code(path):
        frames = []
        async with websockets.connect(f"{site.ws_url}{path}", origin=site.url) as socket:
            with pytest.raises(websockets.ConnectionClosed):  # 4404 is not a normal closure
                while True:
                    frames.append(await socket.recv())
        return socket.close_code, frames

    async def scenario():
        for path in UNROUTED:
            for _attempt in range(3):  # every time, not only the first
                code, frames = await asyncio.wait_for(close_code(path), 15)
                assert code == CLOSE_NOT_FOUND, path
                assert json.loads(frames[0])["code"] == "not_found", path
        # The real route still answers.
        async with websockets.connect(f"{site.ws_url}/ws/live/{pk}/", origin=site.url) as live:
            assert '"state"' in await asyncio.wait_for(live.recv(), 15)

    try:
        asyncio.run(scenario())
    finally:
        site.stop()
    log = site.log()
    assert "Traceback" not in log
    assert "No route found" not in log
    assert " 500 " not in log and "HTTP 500" not in log
