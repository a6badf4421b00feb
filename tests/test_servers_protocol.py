"""uvicorn's protocol with remembered playback answers (wagtail_live/servers.py), on real sockets.

A real uvicorn ``httptools`` protocol (our subclass) serves the embedded verifier on a
loopback port in the test's own event loop; a counting wrapper between the server and the
verifier shows which requests took the ASGI way. The first request of a path is checked
the ASGI way; the same path again on a kept-alive connection is answered from memory with
the same bytes and uvicorn's access-log line; anything else (another spelling, a forged
grant, HEAD, a query string, a body, HTTP/1.0 or Connection: close, a paused writer,
requests pipelined behind one in progress, over --limit-concurrency, a site's middleware
around the verifier) is uvicorn's, and nothing read after a connection began closing is
answered.
"""

import asyncio
import logging

import pytest
from uvicorn.config import Config
from uvicorn.middleware.message_logger import MessageLoggerMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.server import ServerState

from tests.test_grants import PLAYLIST, SEGMENT, inner_app, private_session, roots  # noqa: F401
from wagtail_live import delivery
from wagtail_live.delivery import HLSVerifier
from wagtail_live.servers import HttpToolsProtocol, find_verifier

pytestmark = pytest.mark.django_db


SERVER_HEADERS = [(b"date", b"Mon, 30 Nov 2026 05:00:00 GMT"), (b"server", b"uvicorn")]


class Counting:
    """An ASGI wrapper (a site's own middleware) counting the requests it passes on."""

    def __init__(self, app):
        self.app = app
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        await self.app(scope, receive, send)


class CountingVerifier(HLSVerifier):
    """The verifier, counting the requests that reached it the ASGI way."""

    calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        await super().__call__(scope, receive, send)


async def serve(app, **options):
    """(server, port, protocols made) of our protocol serving ``app`` on 127.0.0.1;
    ``options`` are uvicorn's (``Config``), without proxy headers unless given."""
    options = {"lifespan": "off", "proxy_headers": False, **options}
    config = Config(app=app, http=HttpToolsProtocol, **options)
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


def exchange(url_requests, count, app=None, before=None, **options):
    """Send ``url_requests`` (bytes) on one connection, read ``count`` responses
    (``options``: uvicorn's, as for :func:`serve`).

    Returns (responses, ASGI calls, whether the server closed the connection after them).
    """
    counting = app or CountingVerifier(inner_app)

    async def scenario():
        server, port, protocols = await serve(counting, **options)
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


CLOSING = [
    pytest.param("1.0", "", id="HTTP/1.0"),
    pytest.param("1.0", "Connection: keep-alive\r\n", id="HTTP/1.0 keep-alive"),
    pytest.param("1.1", "Connection: close\r\n", id="close"),
]


@pytest.mark.parametrize("version, extra", CLOSING)
def test_a_closing_request_is_uvicorns_and_nothing_behind_it_is_answered(
    private_session,  # noqa: F811
    version,
    extra,
):
    url = private_session.playback_url.replace("index.m3u8", "seg-abc-00001.ts")
    closing = request(url, version=version, extra=extra)
    verifier = CountingVerifier(inner_app)

    async def scenario():
        server, port, protocols = await serve(verifier)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reader.asked_head = False
        writer.write(request(url))
        await read_response(reader)
        writer.write(closing * 3)  # pipelined behind the one that closes the connection
        rest = await asyncio.wait_for(reader.read(), 10)
        server.close()
        return rest, protocols[0].server_state.total_requests

    rest, total_requests = asyncio.run(scenario())
    # As by uvicorn: one answer, then the connection closes; the rest are never answered,
    # counted (--limit-max-requests) nor logged.
    assert rest.count(b"HTTP/1.1 ") == 1 and b"connection: close\r\n" in rest
    assert total_requests == 2 and verifier.calls == 2


def test_requests_read_while_the_connection_closes_are_never_answered(private_session):  # noqa: F811
    url = private_session.playback_url.replace("index.m3u8", "seg-abc-00001.ts")
    verifier = CountingVerifier(inner_app)

    async def scenario():
        server, port, protocols = await serve(verifier)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reader.asked_head = False
        writer.write(request(url))
        await read_response(reader)
        protocol = protocols[0]
        # As when a write fails (the client reset the connection) with requests still unparsed.
        protocol.transport.abort()
        protocol.data_received(request(url) * 3)
        await asyncio.sleep(0.1)
        server.close()
        return protocol.server_state.total_requests

    assert asyncio.run(scenario()) == 1 and verifier.calls == 1


def test_an_expired_grant_goes_the_asgi_way_and_is_refused(private_session, monkeypatch):  # noqa: F811
    url = private_session.playback_url
    expires = int(url.split("/")[4].split("-")[0])
    real_time, real_monotonic = delivery.time.time, delivery.time.monotonic
    counting = CountingVerifier(inner_app)

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
    counting = CountingVerifier(inner_app)

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
    url = private_session.playback_url
    responses, calls, _closed = exchange(request(url) * 3, 3, app=Counting(plain_app))
    assert [(s, b) for s, _h, b in responses] == [(299, b"django")] * 3 and calls == 3


def test_the_verifier_is_found_only_behind_uvicorns_proxy_headers():
    verifier = HLSVerifier(plain_app)
    assert find_verifier(verifier) is verifier
    assert find_verifier(ProxyHeadersMiddleware(verifier)) is verifier
    # The site's own middleware, or uvicorn's message logger (--log-level trace), must see
    # every request: no fast path past them.
    assert find_verifier(Counting(verifier)) is None
    assert find_verifier(ProxyHeadersMiddleware(Counting(verifier))) is None
    assert find_verifier(ProxyHeadersMiddleware(MessageLoggerMiddleware(verifier))) is None


class AddsHeader:
    """A site's middleware around the verifier: a CORS header on every answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def with_header(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"access-control-allow-origin", b"*")]
            await send(message)

        await self.app(scope, receive, with_header)


def test_a_sites_middleware_around_the_verifier_sees_every_request(private_session):  # noqa: F811
    url = private_session.playback_url.replace("index.m3u8", "seg-abc-00001.ts")
    wrapped = Counting(AddsHeader(HLSVerifier(inner_app)))
    responses, calls, _closed = exchange(request(url) * 3, 3, app=wrapped, before=[request(url)])
    assert calls == 4
    assert [headers.get("access-control-allow-origin") for _s, headers, _b in responses] == [
        "*"
    ] * 3


class AccessLog(logging.Handler):
    """The lines of uvicorn's access log (its Config sets the logger up, not propagating)."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.mark.parametrize(
    "options, extra",
    [
        pytest.param({}, "", id="direct"),
        pytest.param(
            {"proxy_headers": True, "forwarded_allow_ips": "127.0.0.1"},
            "X-Forwarded-For: 203.0.113.7, 198.51.100.2\r\nX-Forwarded-Proto: https\r\n",
            id="behind a proxy",
        ),
        pytest.param(
            {"proxy_headers": True, "forwarded_allow_ips": "192.0.2.1"},
            "X-Forwarded-For: 203.0.113.7\r\n",
            id="untrusted forwarded-for",
        ),
        pytest.param({"root_path": "/sub"}, "", id="root path"),
    ],
)
def test_the_access_log_line_is_uvicorns(private_session, options, extra):  # noqa: F811
    url = private_session.playback_url.replace("index.m3u8", "seg-abc-00001.ts")
    prefix = options.get("root_path", "") + "/live/delivery/"
    verifier = CountingVerifier(inner_app, prefix=prefix)
    asked = request(url, extra=extra)

    async def scenario():
        server, port, _protocols = await serve(verifier, **options)
        logging.getLogger("uvicorn.access").addHandler(log)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reader.asked_head = False
        writer.write(asked)
        answers = [await read_response(reader)]
        writer.write(asked * 2)
        answers += [await read_response(reader) for _ in range(2)]
        writer.close()
        server.close()
        return answers

    log = AccessLog()
    try:
        answers = asyncio.run(scenario())
    finally:
        logging.getLogger("uvicorn.access").removeHandler(log)
    assert [status for status, _h, _b in answers] == [200] * 3 and verifier.calls == 1
    lines = log.lines
    # The first line is uvicorn's own (the ASGI way); the ones from memory are the same.
    assert len(lines) == 3 and lines[1:] == [lines[0]] * 2, lines
    forwarded = "127.0.0.1" in options.get("forwarded_allow_ips", "")
    assert ("127.0.0.1:" not in lines[0]) == forwarded, lines[0]


def test_over_the_concurrency_limit_it_is_uvicorns_503(private_session):  # noqa: F811
    url = private_session.playback_url.replace("index.m3u8", "seg-abc-00001.ts")
    verifier = CountingVerifier(inner_app)

    async def scenario():
        server, port, _protocols = await serve(verifier, limit_concurrency=2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reader.asked_head = False
        writer.write(request(url))
        first = await read_response(reader)
        _other = await asyncio.open_connection("127.0.0.1", port)  # the second connection
        await asyncio.sleep(0.1)
        writer.write(request(url))
        second = await read_response(reader)
        server.close()
        return first[0], second[0]

    assert asyncio.run(scenario()) == (200, 503)


def test_a_root_path_uvicorn_cannot_send_gets_uvicorns_answer(private_session):  # noqa: F811
    # uvicorn answers each request 400 (its raw path is ASCII); the connection is still made.
    url = private_session.playback_url
    responses, calls, closed = exchange(request(url), 1, root_path="/vidéo")
    assert responses[0][0] == 400 and calls == 0 and closed


def test_the_protocol_imports_before_django_is_set_up():
    # uvicorn imports --http's class before (or without) the site's asgi.py: no app registry yet.
    import subprocess
    import sys

    code = "import wagtail_live.servers as s; print(s.HttpToolsProtocol.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={})
    assert (done.returncode, done.stdout.strip()) == (0, "HttpToolsProtocol"), done.stderr
