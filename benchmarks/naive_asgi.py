"""The naive baseline for benchmarks/chat_fanout.py: one ``group_send`` per message, one channel per socket.

This is how the Channels tutorial builds a chat room. Every viewer's consumer
joins the group, so each chat message becomes one channel-layer message per
viewer. Same settings and channel layer as the example site.
"""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.fanout_settings")

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402

django_asgi_app = get_asgi_application()

GROUP = "naive-chat"


class NaiveChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        message = json.loads(text_data)
        await self.channel_layer.group_send(
            GROUP, {"type": "chat.message", "text": message.get("text", "")}
        )

    async def chat_message(self, event):
        await self.send(text_data=json.dumps({"type": "chat.message", "text": event["text"]}))


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/naive/", NaiveChatConsumer.as_asgi())]),
    }
)
