"""uvicorn's protocol with remembered playback answers (wagtail_live/servers.py), on real sockets.

A real uvicorn ``httptools`` protocol (our subclass) serves the embedded verifier on a
loopback port in the test's own event loop; a counting wrapper between the server and the
verifier shows which requests took the ASGI way. The first request of a path is checked
the ASGI way; the same path again on a kept-alive connection is answered from memory with
the same bytes; anything else (another spelling, a forged grant, HEAD, a query string, a
body, HTTP/1.0, a paused writer, requests pipelined behind one in progress) is uvicorn's.
"""

import asyncio

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from tests.test_grants import PLAYLIST, SEGMENT, inner_app, private_session, roots  # noqa: F401
from wagtail_live import delivery
from wagtail_live.delivery import HLSVerifier
from wagtail_live.servers import HttpToolsProtocol, find_verifier

pytestmark = pytest.mark.django_db


SERVER_HEADERS = [(b"date", b"Mon, 30 Nov 2026 05:00:00 GMT"), (b"server", b"uvicorn")]


class Counting:
    """An ASGI wrapper (as uvicorn's own middlewares are) counting the requests it passes on."""

    def __init__(self, app):
        self.app = app
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        await self.app(scope, receive, send)


async def serve(app):
    """(server, port, protocols made) of our protocol serving ``app`` on 127.0.0.1."""
    config = Config(app=app, http=HttpToolsProtocol, lifespan="off", proxy_headers=False)
    config.load()
    state, protocols = ServerState(), []
    state.default_headers = SERVER_HEADERS  # uvicorn's Server sets these (date: every second)

    def make():
        protocol = HttpToolsProtocol(config=config, server_state=state, app_state={})
        protocols.append(protocol)
        return protocol

    server = await asyncio.get_running_loop().create_server(make, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], protocols


async def read_response(reader):
    """(status, headers dict, body) of one response; headers lower-cased (a HEAD's: no body)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    pairs = (line.split(": ", 1) for line in lines[1:] if line)
    headers = {name.lower(): value for name, value in pairs}
    length = 0 if reader.asked_head else int(headers.get("content-length", 0))
    body = await asyncio.wait_for(reader.readexactly(length), 10)
    return status, headers, body


def request(path, method="GET", version="1.1", extra=""):
    return f"{method} {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


def forged(url):
    signature = url.split("/")[4].split("-", 1)[1]
    return url.replace(signature, ("A" if signature[0] != "A" else "B") + signature[1:])


def exchange(url_requests, count, app=None, before=None):
    """Send ``url_requests`` (bytes) on one connection, read ``count`` responses.

    Returns (responses, ASGI calls, whether the server closed the connection after them).
    """
    counting = Counting(app or HLSVerifier(inner_app))

    async def scenario():
        server, port, protocols = await serve(counting)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            reader.asked_head = False
            if before is not None:
                for data in before:
                    writer.write(data)
                    await read_response(reader)
            writer.write(url_requests)
            reader.asked_head = url_requests.startswith(b"HEAD ")
            responses = [await read_response(reader) for _ in range(count)]
            try:
                closed = await asyncio.wait_for(reader.read(1), 0.5) == b""
            except TimeoutError:
                closed = False
            writer.close()
            return responses, counting.calls, closed
        finally:
            server.close()

    return asyncio.run(scenario())


def test_the_same_path_again_is_answered_from_memory_with_the_same_bytes(private_session):  # noqa: F811
    url = private_session.playback_url
    segment = url.replace("index.m3u8", "seg-abc-00001.ts")
    data = request(url)
    responses, calls, _closed = exchange(data, 1, before=[request(url), request(segment)])
    status, headers, body = responses[0]
    assert calls == 2  # the two first requests only: the third never reached the ASGI app
    assert (status, body.decode()) == (200, PLAYLIST)
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    assert headers["cache-control"] == "public, max-age=1"
    assert headers["x-content-type-options"] == "nosniff"
    assert (headers["date"], headers["server"]) == ("Mon, 30 Nov 2026 05:00:00 GMT", "uvicorn")
    responses, calls, _closed = exchange(request(segment) * 3, 3, before=[request(segment)])
    assert calls == 1
    assert [(s, b) for s, _h, b in responses] == [(200, SEGMENT)] * 3


def test_pipelined_requests_are_answered_in_order(private_session):  # noqa: F811
    url = private_session.playback_url
    segment = url.replace("index.m3u8", "seg-abc-00001.ts")
    pipelined = request(url) + request(forged(url)) + request(segment) + request(url)
    responses, _calls, _closed = exchange(pipelined, 4, before=[request(url), request(segment)])
    assert [status for status, _h, _b in responses] == [200, 403, 200, 200]
    assert [body for _s, _h, body in responses] == [
        PLAYLIST.encode(),
        b"Forbidden.",
        SEGMENT,
        PLAYLIST.encode(),
    ]


@pytest.mark.parametrize(
    "again",
    [
        pytest.param(lambda url: request(url, method="HEAD"), id="HEAD"),
        pytest.param(lambda url: request(url + "?x=1"), id="query string"),
        pytest.param(lambda url: request(url.replace("/hls/", "//hls/")), id="other spelling"),
        pytest.param(lambda url: request(forged(url)), id="forged grant"),
        pytest.param(
            lambda url: request(url, method="POST", extra="Content-Length: 2\r\n") + b"{}",
            id="POST with a body",
        ),
        pytest.param(
            lambda url: request(url, extra="Content-Length: 3\r\n") + b"abc", id="GET with a body"
        ),
    ],
)
def test_other_requests_go_the_asgi_way(private_session, again):  # noqa: F811
    url = private_session.playback_url
    responses, calls, _closed = exchange(again(url), 1, before=[request(url)])
    assert calls == 2
    assert responses[0][0] in (200, 403, 405)


@pytest.mark.parametrize(
    "version, extra", [("1.0", ""), ("1.1", "Connection: close\r\n")], ids=["HTTP/1.0", "close"]
)
def test_a_closing_request_is_answered_from_memory_then_closed(private_session, version, extra):  # noqa: F811
    url = private_session.playback_url
    responses, calls, closed = exchange(request(url, version=version, extra=extra), 1,
                                        before=[request(url)])  # fmt: skip
    assert calls == 1 and closed
    assert responses[0][0] == 200 and responses[0][1]["connection"] == "close"


def test_an_expired_grant_goes_the_asgi_way_and_is_refused(private_session, monkeypatch):  # noqa: F811
    url = private_session.playback_url
    expires = int(url.split("/")[4].split("-")[0])
    real_time, real_monotonic = delivery.time.time, delivery.time.monotonic
    counting = Counting(HLSVerifier(inner_app))

    async def scenario():
        server, port, _protocols = await serve(counting)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reader.asked_head = False
        writer.write(request(url))
        first = await read_response(reader)
        offset = expires - real_time() + 1
        monkeypatch.setattr(delivery.time, "time", lambda: real_time() + offset)
        monkeypatch.setattr(delivery.time, "monotonic", lambda: real_monotonic() + offset)
        writer.write(request(url))
        second = await read_response(reader)
        writer.close()
        server.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert first[0] == 200 and second[0] == 403 and counting.calls == 2


def test_a_paused_writer_gets_uvicorns_flow_control(private_session):  # noqa: F811
    url = private_session.playback_url
    counting = Counting(HLSVerifier(inner_app))

    async def scenario():
        server, port, protocols = await serve(counting)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reader.asked_head = False
        writer.write(request(url))
        await read_response(reader)
        # As when the client stops reading: the transport's buffer is over its high-water mark.
        protocols[0].flow.pause_writing()
        writer.write(request(url))
        for _ in range(100):
            if counting.calls == 2:
                break
            await asyncio.sleep(0.02)
        waiting = counting.calls
        protocols[0].flow.resume_writing()
        answer = await read_response(reader)
        writer.close()
        server.close()
        return waiting, answer

    waiting, answer = asyncio.run(scenario())
    # Not written from memory past the mark: the ASGI task waits for the reader instead.
    assert waiting == 2 and answer[0] == 200


async def plain_app(scope, receive, send):
    headers = [(b"content-length", b"6")]
    await send({"type": "http.response.start", "status": 299, "headers": headers})
    await send({"type": "http.response.body", "body": b"django"})


def test_without_a_verifier_it_is_uvicorns_protocol(private_session):  # noqa: F811
    assert find_verifier(Counting(Counting(plain_app))) is None
    verifier = HLSVerifier(plain_app)
    assert find_verifier(Counting(Counting(verifier))) is verifier
    url = private_session.playback_url
    responses, calls, _closed = exchange(request(url) * 3, 3, app=plain_app)
    assert [(s, b) for s, _h, b in responses] == [(299, b"django")] * 3 and calls == 3


def test_the_protocol_imports_before_django_is_set_up():
    # uvicorn imports --http's class before (or without) the site's asgi.py: no app registry yet.
    import subprocess
    import sys

    code = "import wagtail_live.servers as s; print(s.HttpToolsProtocol.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={})
    assert (done.returncode, done.stdout.strip()) == (0, "HttpToolsProtocol"), done.stderr
