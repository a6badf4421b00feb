"""uvicorn's HTTP protocol with the embedded verifier's answers sent straight from the connection.

Run the site with::

    uvicorn mysite.asgi:application --http wagtail_live.servers:HttpToolsProtocol --lifespan off

and nothing else changes: every request is handled as by uvicorn's own ``httptools``
protocol, except a ``GET`` of a signed playback URL that the site's
:class:`~wagtail_live.delivery.HLSVerifier` answered before from memory
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

import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as UvicornHttpToolsProtocol

logger = logging.getLogger(__name__)

STATUS_OK = b"HTTP/1.1 200 OK\r\n"
# How deep to look through the server's wrappers (proxy headers, message logger) for the verifier.
MAX_WRAPPERS = 8


def find_verifier(app):
    """The :class:`~wagtail_live.delivery.HLSVerifier` ``app`` is or wraps (through ``.app``
    attributes), or None.

    Told by its ``answer_from_memory`` method, not by class: uvicorn imports this module
    before the site's ``asgi.py`` has set Django up, when ``wagtail_live.delivery`` (which
    needs the app registry) cannot be imported yet.
    """
    for _ in range(MAX_WRAPPERS):
        if callable(getattr(app, "answer_from_memory", None)):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class HttpToolsProtocol(UvicornHttpToolsProtocol):
    """uvicorn's ``httptools`` protocol; remembered playback answers skip the ASGI round trip."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.verifier = find_verifier(self.app)
        self.root_path_bytes = self.root_path.encode("ascii")

    def on_headers_complete(self):
        if not self.answered_from_memory():
            super().on_headers_complete()

    def answered_from_memory(self):
        """Send the verifier's remembered answer for this request, if it has one; True if sent.

        Only between responses (no request of this connection still being answered, none
        queued: HTTP/1.1 answers go out in order), with the transport not pushing back
        (a reader that does not read gets uvicorn's flow control), for a plain ``GET``
        with no query string and no body.
        """
        verifier = self.verifier
        if verifier is None or self.parser.get_method() != b"GET":
            return False
        cycle = self.cycle
        if cycle is None or not cycle.response_complete or self.pipeline:
            return False
        if self.flow.write_paused or self.parser.should_upgrade():
            return False
        if b"?" in self.url or self.expect_100_continue or self._has_body():
            return False
        found = verifier.answer_from_memory(self.root_path_bytes + self.url)
        if found is None:
            return False
        head, body = found
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        server_headers = b"".join(
            b"%s: %s\r\n" % pair for pair in self.server_state.default_headers
        )
        close = b"" if keep_alive else b"connection: close\r\n"
        self.transport.writelines((STATUS_OK, server_headers, head, close, b"\r\n", body))
        if (
            self.access_log
        ):  # as uvicorn logs a request (its access log has the path, grant included)
            version = self.parser.get_http_version()
            path = self.url.decode("latin-1")
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d', self._client_text(), "GET", path, version, 200
            )
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()
        return True

    def _has_body(self):
        for name, value in self.headers:
            if name == b"content-length" and value.strip() != b"0":
                return True
            if name == b"transfer-encoding":
                return True
        return False

    def _client_text(self):
        return f"{self.client[0]}:{self.client[1]}" if self.client else "-"
