"""The websocket answer for a path no route matches: an ``error`` and close 4404.

Without it Channels raises "No route found" for every such handshake: daphne
answers 500 and logs a full traceback each time, so anyone could flood the log
by opening sockets on made-up paths (``/ws/live/1``, ``/ws/nope/``, ``/``).
"""

import json

from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils.translation import gettext as _

from ..chat import ChatError
from . import protocol


class RouteNotFoundConsumer(AsyncWebsocketConsumer):
    """Accepts, says ``not_found`` and closes with ``CLOSE_NOT_FOUND`` (docs/protocol.md)."""

    channel_layer_alias = None  # never in a group: it only says no

    async def connect(self):
        # Accept first: a close code only reaches a client on an open socket.
        await self.accept()
        error = ChatError("not_found", _("There is no live socket at this address."))
        await self.send(text_data=json.dumps(error.as_event()))
        await self.close(code=protocol.CLOSE_NOT_FOUND)

    async def receive(self, text_data=None, bytes_data=None):
        """Frames racing the close are dropped."""
