"""Websocket routes. Sites add them to their ASGI router (see docs/installation.md)::

URLRouter(wagtail_live.routing.websocket_urlpatterns)
"""

from django.urls import path

from .consumers.ingest import IngestConsumer
from .consumers.live import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/<int:session_id>/", LiveConsumer.as_asgi(), name="wagtail_live_socket"),
    path("ws/live/<int:pk>/ingest/", IngestConsumer.as_asgi()),
]
