"""uvicorn's HTTP protocol with the embedded verifier's answers sent straight from the connection.

Run the site with::

    uvicorn mysite.asgi:application --http wagtail_live.servers:HttpToolsProtocol --lifespan off

and nothing else changes: every request is handled as by uvicorn's own ``httptools``
protocol, except a keep-alive ``GET`` of a signed playback URL that the site's
:class:`~wagtail_live.delivery.HLSVerifier` (the app uvicorn serves, see
:func:`find_verifier`) answered before from memory
(:meth:`~wagtail_live.delivery.HLSVerifier.answer_from_memory`: same exact path, grant
still valid, file still fresh). That one is written to the socket at once, status line,
headers and body in one write, without building an ASGI scope, a task and two ``send``
messages per request.

Why our own code here: a viewer asks for a playlist or segment about twice a second, and
measured per CPU-second uvicorn's ASGI round trip costs 2-3 times what nginx spends on the
whole request (docs/benchmarks.md), before the verifier does anything. No maintained server
or library answers from an ASGI app's memory below the ASGI layer, so this subclass does it,
for the one kind of request that needs it, and hands every other request to uvicorn.

It leans on uvicorn's protocol internals (``on_headers_complete``, ``cycle``,
``on_response_complete``), which are not a public API: it was written for uvicorn 0.54 and
falls back to uvicorn's own path whenever what it expects is missing.
"""

import copy

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as UvicornHttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

STATUS_OK = b"HTTP/1.1 200 OK\r\n"


def find_verifier(app):
    """The :class:`~wagtail_live.delivery.HLSVerifier` uvicorn serves, directly or behind its
    own ``ProxyHeadersMiddleware`` (``--proxy-headers``, on by default), or None.

    Any other wrapper (the site's own middleware, uvicorn's message logger at
    ``--log-level trace``) may change, refuse or log each request, so an answer from
    memory must not skip it: with one, every request goes the ASGI way.

    Told by its ``answer_from_memory`` method, not by class: uvicorn imports this module
    before the site's ``asgi.py`` has set Django up, when ``wagtail_live.delivery`` (which
    needs the app registry) cannot be imported yet.
    """
    if type(app) is ProxyHeadersMiddleware:
        app = app.app
    return app if callable(getattr(app, "answer_from_memory", None)) else None


async def _nothing(scope, receive, send):
    pass


def forwarding_only(app):
    """A copy of uvicorn's ``ProxyHeadersMiddleware`` ``app`` in front of an app that does
    nothing (for :func:`_as_forwarded`), or None when ``app`` is not that middleware."""
    if type(app) is not ProxyHeadersMiddleware:
        return None
    middleware = copy.copy(app)
    middleware.app = _nothing
    return middleware


def _as_forwarded(middleware, scope):
    """Set ``scope``'s client and scheme as uvicorn's proxy-headers code does, by running
    ``middleware`` (:func:`forwarding_only`'s); False if it did not finish at once (then
    the ASGI way logs the request)."""
    call = middleware(scope, None, None)
    try:
        call.send(None)
    except StopIteration:
        return True
    call.close()
    return False


class HttpToolsProtocol(UvicornHttpToolsProtocol):
    """uvicorn's ``httptools`` protocol; remembered playback answers skip the ASGI round trip."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.verifier = find_verifier(self.app)
        # Made once per connection, not per request: the access log's forwarded client.
        self.forwarding = forwarding_only(self.app)
        try:
            self.root_path_bytes = self.root_path.encode("ascii")
        except UnicodeEncodeError:  # uvicorn answers every request 400: so it stays
            self.verifier = None

    def on_headers_complete(self):
        # A request read after its connection began closing (a write failed) is never
        # answered, as by uvicorn, which queues it behind the answer that closed it.
        closing = self.cycle is not None and self.transport.is_closing()
        if closing and not self.parser.should_upgrade():
            return
        if not self.answered_from_memory():
            super().on_headers_complete()

    def answered_from_memory(self):
        """Send the verifier's remembered answer for this request, if it has one; True if sent.

        Only for a keep-alive ``GET`` (closing a connection stays uvicorn's) with no query
        string and no body, between responses (no request of this connection still being
        answered, none queued: HTTP/1.1 answers go out in order), with the transport not
        pushing back (a reader that does not read gets uvicorn's flow control) and the
        server under ``--limit-concurrency`` (over it, uvicorn's 503).
        """
        if not self._may_answer_from_memory():
            return False
        found = self.verifier.answer_from_memory(self.root_path_bytes + self.url)
        if found is None:
            return False
        scope = self._access_log_scope() if self.access_log else None
        if self.access_log and scope is None:
            return False
        head, body = found
        server_headers = b"".join(
            b"%s: %s\r\n" % pair for pair in self.server_state.default_headers
        )
        self.transport.writelines((STATUS_OK, server_headers, head, b"\r\n", body))
        if scope is not None:  # uvicorn's line (its access log has the path, grant included)
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),
                "GET",
                get_path_with_query_string(scope),
                self.parser.get_http_version(),
                200,
            )
        self.on_response_complete()
        return True

    def _may_answer_from_memory(self):
        if self.verifier is None or self.parser.get_method() != b"GET":
            return False
        cycle = self.cycle
        if cycle is None or not cycle.response_complete or self.pipeline:
            return False
        if self.flow.write_paused or self.parser.should_upgrade() or self._over_limit():
            return False
        if self.parser.get_http_version() == "1.0" or not self.parser.should_keep_alive():
            return False
        return not (b"?" in self.url or self.expect_100_continue or self._has_body())

    def _over_limit(self):
        limit = self.limit_concurrency
        return limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)

    def _has_body(self):
        for name, value in self.headers:
            if name == b"content-length" and value.strip() != b"0":
                return True
            if name == b"transfer-encoding":
                return True
        return False

    def _access_log_scope(self):
        """What uvicorn's access log line is made of (client, path), as uvicorn's scope
        would have it, or None when that cannot be known without the ASGI way."""
        scope = {
            "type": "http",
            "client": self.client,
            "scheme": self.scheme,
            "headers": self.headers,
            "path": self.root_path + self.url.decode("ascii"),
            "query_string": b"",
        }
        if self.forwarding is not None and not _as_forwarded(self.forwarding, scope):
            return None
        return scope
