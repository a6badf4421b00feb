"""Websocket routes. Sites add them to their ASGI router (see docs/installation.md)::

URLRouter(wagtail_live.routing.websocket_urlpatterns)

The last route catches every other path and closes it with 4404 (docs/protocol.md),
so an unknown path is neither a 500 nor a traceback in the log: a site with websocket
routes of its own puts them *before* these (``my_routes + websocket_urlpatterns``).
"""

from django.urls import path, re_path

from .consumers.ingest import IngestConsumer
from .consumers.live import LiveConsumer
from .consumers.not_found import RouteNotFoundConsumer

websocket_urlpatterns = [
    path("ws/live/<int:session_id>/", LiveConsumer.as_asgi(), name="wagtail_live_socket"),
    path("ws/live/<int:pk>/ingest/", IngestConsumer.as_asgi()),
    # Keep last: everything else (``ws/live/1``, ``/``, ``ws/nope/``) closes with 4404.
    re_path(r"", RouteNotFoundConsumer.as_asgi(), name="wagtail_live_socket_not_found"),
]
