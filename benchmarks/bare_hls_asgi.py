"""The anchor for benchmarks/playback_delivery.py: a bare ASGI app serving HLS files from memory.

No Django, no grant, no path checks: ``GET /<session>/hls/<name>`` answers the bytes of
``$BARE_HLS_ROOT/<session>/hls/<name>`` from a dict (a playlist is re-read after 0.5 s, as the
embedded verifier does; a segment is read once). It is the least an ASGI server can do per
request, so "embedded verifier / bare" is what the verifier's checks cost under that server.

Usage: uvicorn benchmarks.bare_hls_asgi:application  (or daphne), with BARE_HLS_ROOT set.
"""

import os
import time

ROOT = os.environ.get("BARE_HLS_ROOT", ".")
PLAYLIST_SECONDS = 0.5
cache = {}  # path -> (read at, headers, body)


def load(path):
    """(headers, body) of a file, or None when it is not there."""
    now = time.monotonic()
    entry = cache.get(path)
    if entry is not None and (not path.endswith(".m3u8") or now - entry[0] < PLAYLIST_SECONDS):
        return entry[1], entry[2]
    try:
        with open(ROOT + path, "rb") as handle:
            body = handle.read()
    except OSError:
        return None
    kind = b"application/vnd.apple.mpegurl" if path.endswith(".m3u8") else b"video/mp2t"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    cache[path] = (now, headers, body)
    return headers, body


async def application(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    found = None if ".." in path else load(path)
    if found is None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": found[0]})
    await send({"type": "http.response.body", "body": found[1]})
