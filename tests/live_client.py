"""Helpers for talking the live protocol in tests (channels' communicator or a real websocket)."""

import asyncio
import json

import websockets
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator


class Closed(Exception):
    """The server closed the socket; ``code`` is its close code."""

    def __init__(self, code):
        super().__init__(f"closed with {code}")
        self.code = code


def flatten(frame_text):
    """A frame is one message or a JSON array of them: always return a list."""
    data = json.loads(frame_text)
    return data if isinstance(data, list) else [data]


class LiveClient:
    """A ``WebsocketCommunicator`` on ``ws/live/<pk>/`` with a user in its scope."""

    def __init__(self, session_id, user=None, path=None):
        from wagtail_live.routing import websocket_urlpatterns

        # A browser on the site's own page: same scheme, host and port (consumers/origins.py).
        self.communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns),
            path or f"/ws/live/{session_id}/",
            headers=[(b"host", b"testserver"), (b"origin", b"http://testserver")],
        )
        if user is not None:
            self.communicator.scope["user"] = user
        self.buffer = []

    async def connect(self):
        """Connect and return the ``state`` message."""
        connected, _code = await self.communicator.connect()
        assert connected
        return await self.expect("state")

    async def send(self, message):
        await self.communicator.send_to(text_data=json.dumps(message))

    async def send_raw(self, text=None, data=None):
        await self.communicator.send_to(text_data=text, bytes_data=data)

    async def receive(self, timeout=2):
        """The next protocol message (unpacking batched frames)."""
        while not self.buffer:
            # Not receive_output(): its timeout cancels the application.
            if self.communicator.future.done():
                self.communicator.future.result()
            output = await asyncio.wait_for(self.communicator.output_queue.get(), timeout)
            if output["type"] == "websocket.close":
                raise Closed(output.get("code"))
            self.buffer.extend(flatten(output["text"]))
        return self.buffer.pop(0)

    async def expect(self, type, timeout=5, **fields):
        """Skip messages until one of ``type`` (matching ``fields``) arrives; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.receive(max(0.01, deadline - loop.time()))
            if message["type"] == type and all(message.get(k) == v for k, v in fields.items()):
                return message

    async def collect(self, seconds):
        """Every message received within ``seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        messages = []
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return messages
            try:
                messages.append(await self.receive(remaining))
            except TimeoutError:
                return messages

    async def expect_close(self, timeout=5):
        """Read until the server closes; return the close code."""
        try:
            while True:
                await self.receive(timeout)
        except Closed as closed:
            return closed.code

    async def disconnect(self):
        await self.communicator.disconnect()


def visitor_cookie(visitor):
    """The cookie value the server would issue for visitor id ``visitor`` (signed; the
    test sites share the test settings' ``SECRET_KEY``)."""
    from django.core import signing

    from wagtail_live.visitors import SALT

    return signing.Signer(salt=SALT).sign(visitor)


class RealSocket:
    """A real websocket client speaking the live protocol."""

    def __init__(self, connection):
        self.connection = connection
        self.buffer = []

    @classmethod
    async def open(cls, site, pk, user=None, visitor=None, cookie=None):
        """Open ``ws/live/<pk>/`` as ``user`` (a username) or, with ``visitor``, as an
        anonymous browser whose cookie holds that visitor id signed as the server would
        (see ``LiveConsumer.identify``); ``cookie`` sends a raw cookie value instead."""
        cookies = [site.login_cookie(user)] if user else []
        if visitor:
            cookie = visitor_cookie(visitor)
        if cookie is not None:
            cookies.append(f"wagtail_live_visitor={cookie}")
        headers = {"Cookie": "; ".join(cookies)} if cookies else {}
        connection = await websockets.connect(
            f"{site.ws_url}/ws/live/{pk}/", origin=site.url, additional_headers=headers
        )
        client = cls(connection)
        # The first state of a room reads the database; a loaded machine may take a while.
        client.state = await client.expect("state", timeout=15)
        return client

    async def send(self, message):
        await self.connection.send(json.dumps(message))

    async def receive(self, timeout):
        while not self.buffer:
            self.buffer.extend(flatten(await asyncio.wait_for(self.connection.recv(), timeout)))
        return self.buffer.pop(0)

    async def expect(self, type, timeout=5, where=lambda m: True):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.receive(max(0.01, deadline - loop.time()))
            if message["type"] == type and where(message):
                return message

    async def close(self):
        await self.connection.close()
