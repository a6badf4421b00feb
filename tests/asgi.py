"""The ASGI application tests serve with daphne, composed exactly as docs/installation.md says."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

import wagtail_live.routing  # noqa: E402
from wagtail_live.delivery import HLSVerifier  # noqa: E402

# HLSVerifier answers signed playback URLs (live HLS, private recordings) before Django's
# request stack; everything else passes through (docs/delivery.md).
application = HLSVerifier(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(wagtail_live.routing.websocket_urlpatterns))
            ),
        }
    )
)
