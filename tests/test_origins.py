"""Websocket origins must be the site's own: same scheme, host and port (or trusted).

Unit tests of the rule, the live socket through Channels' communicator, and a
real daphne with a real websocket client sending each kind of wrong origin.
"""

import asyncio

import pytest
import websockets
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from tests.utils import make_session
from wagtail_live.consumers.origins import is_same_origin


def scope(origin, host="live.example.com", scheme="ws", extra=()):
    headers = [(b"host", host.encode())] if host is not None else []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    headers.extend(extra)
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@pytest.mark.parametrize(
    "origin, host, scheme, allowed",
    [
        ("http://live.example.com", "live.example.com", "ws", True),
        ("https://live.example.com", "live.example.com", "wss", True),
        ("http://live.example.com:8000", "live.example.com:8000", "ws", True),
        ("http://LIVE.example.com", "live.example.com", "ws", True),
        ("http://live.example.com:80", "live.example.com", "ws", True),  # the default port
        ("https://live.example.com:443", "live.example.com", "wss", True),
        ("http://[::1]:8000", "[::1]:8000", "ws", True),
        # another port of the same host
        ("http://live.example.com:8080", "live.example.com", "ws", False),
        ("http://live.example.com:8080", "live.example.com:8000", "ws", False),
        ("http://live.example.com", "live.example.com:8000", "ws", False),
        ("https://live.example.com:8443", "live.example.com", "wss", False),
        # another scheme
        ("https://live.example.com", "live.example.com", "ws", False),
        ("http://live.example.com", "live.example.com", "wss", False),
        ("ws://live.example.com", "live.example.com", "ws", False),
        ("file://live.example.com", "live.example.com", "ws", False),
        # another host
        ("http://evil.example.com", "live.example.com", "ws", False),
        ("http://live.example.com.evil.com", "live.example.com", "ws", False),
        ("http://evil.com#live.example.com", "live.example.com", "ws", False),
        ("http://live.example.com@evil.com", "live.example.com", "ws", False),
        # missing, null, malformed
        (None, "live.example.com", "ws", False),
        ("null", "live.example.com", "ws", False),
        ("", "live.example.com", "ws", False),
        ("http://live.example.com:port", "live.example.com", "ws", False),
        ("live.example.com", "live.example.com", "ws", False),
        ("http://live.example.com", None, "ws", False),
    ],
)
def test_origin_rule(origin, host, scheme, allowed):
    assert is_same_origin(scope(origin, host, scheme)) is allowed


def test_host_must_be_allowed(settings):
    settings.ALLOWED_HOSTS = ["live.example.com"]
    assert is_same_origin(scope("http://live.example.com"))
    assert not is_same_origin(scope("http://evil.example.com", host="evil.example.com"))


@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("https://studio.example.com", True),
        ("https://STUDIO.example.com", True),
        ("http://studio.example.com", False),  # trusted with https only
        ("https://studio.example.com:8443", False),
        ("https://a.partners.example.org", True),  # wildcard entry
        ("https://partners.example.org", True),
        ("http://a.partners.example.org", False),
        ("https://a.partners.example.org.evil.com", False),
    ],
)
def test_csrf_trusted_origins_are_the_allow_list(settings, origin, allowed):
    settings.CSRF_TRUSTED_ORIGINS = ["https://studio.example.com", "https://*.partners.example.org"]
    assert is_same_origin(scope(origin)) is allowed


def test_a_tls_terminating_proxy_is_believed_only_as_configured(settings):
    forwarded = [(b"x-forwarded-proto", b"https")]
    https_origin = "https://live.example.com"
    assert not is_same_origin(scope(https_origin, extra=forwarded))
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert is_same_origin(scope(https_origin, extra=forwarded))
    assert not is_same_origin(scope("http://live.example.com", extra=forwarded))
    assert not is_same_origin(scope(https_origin))  # no header: plain ws


# -- the live socket refuses at the handshake ----------------------------------------


async def handshake(pk, origin, host="testserver"):
    from wagtail_live.routing import websocket_urlpatterns

    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/live/{pk}/", headers=headers
    )
    connected, _code = await communicator.connect()
    await communicator.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("http://testserver", True),
        ("http://testserver:8080", False),
        ("https://testserver", False),
        (None, False),
        ("null", False),
        ("http://evil.example.com", False),
    ],
)
async def test_live_socket_checks_the_origin(host, origin, allowed):
    from channels.db import database_sync_to_async

    session = await database_sync_to_async(make_session)("Origins", owner=host)
    assert await handshake(session.pk, origin) is allowed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", ["http://testserver:8080", "https://testserver", None, "null"])
async def test_ingest_socket_checks_the_origin(host, origin):
    from channels.db import database_sync_to_async

    from wagtail_live.routing import websocket_urlpatterns

    session = await database_sync_to_async(make_session)("Origins", owner=host)
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/live/{session.pk}/ingest/", headers=headers
    )
    communicator.scope["user"] = host
    connected, _code = await communicator.connect()
    await communicator.disconnect()
    assert connected is False


# -- a real daphne, a real client -----------------------------------------------------


@pytest.mark.slow
def test_real_daphne_refuses_other_origins(tmp_path):
    from tests.live_site import LiveSite, migrated_database

    site = LiveSite(tmp_path, migrated_database(tmp_path))
    pk = site.run(
        """
        from tests.utils import make_editor, make_session
        result = make_session("Real", owner=make_editor("host")).pk
        """
    )
    site.start()
    url = f"{site.ws_url}/ws/live/{pk}/"
    other_port = f"http://127.0.0.1:{site.port + 1 if site.port < 65535 else site.port - 1}"
    # Where the site's pages are (the origin daphne's own clients send) is accepted; the
    # rest is refused at the handshake with 403, before any frame.
    wrong = [other_port, f"https://127.0.0.1:{site.port}", "null", None]

    async def scenario():
        async with websockets.connect(url, origin=site.url) as accepted:
            assert '"state"' in await asyncio.wait_for(accepted.recv(), 15)
        for origin in wrong:
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(url, origin=origin, open_timeout=15)
            assert refused.value.response.status_code == 403, origin

    try:
        asyncio.run(scenario())
    finally:
        site.stop()
