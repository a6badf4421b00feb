"""The embedded verifier: checks a playback grant and serves the file, in front of Django.

One line in ``asgi.py`` puts it there (docs/installation.md)::

    application = HLSVerifier(ProtocolTypeRouter({...}))

Requests under the delivery prefix (``wagtail_live.grants.delivery_prefix()``, by default
``/live/delivery/``) never reach Django's request stack: the verifier parses the path with
one strict pattern, checks the grant (``wagtail_live.grants``), and sends the file from
``PRIVATE_ROOT`` with a bounded in-memory cache for playlists and segments. Everything
else goes to the wrapped application untouched.

Answers: 403 for every malformed, forged, expired or foreign grant and every other
spelling of a path (``..``, ``//``, percent-encoding, backslashes: the raw path must be
the one canonical spelling); 404 for a valid grant and a file that is not there; 405
for methods other than GET and HEAD; 206/416 for ranges of recordings.
"""

import asyncio
import os
import re
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlsplit

from django.core.signals import setting_changed

from . import grants
from .conf import live_settings
from .playback import CONTENT_TYPES
from .storage import private_root

# The one spelling of a delivered file, after the prefix: the session, the grant,
# then an HLS file of its live stream or one of its finished recordings' files.
# Only outputs match: uploaded sources live in `sources/` as `upload-<uuid>.<ext>`
# (recording_upload_to) and the pipeline's are `recording.mpegts`/`.flv`.
DELIVERY_PATH = re.compile(
    r"(?P<session>[1-9][0-9]{0,11})/(?P<token>[0-9]{1,12}-[A-Za-z0-9_-]{16,88})/"
    r"(?P<name>hls/[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(?:\.[A-Za-z0-9_-]{1,32}){0,2}"
    r"\.(?:m3u8|ts|m4s|mp4)"
    r"|recording-[0-9]{1,12}(?:-web)?\.(?:mp4|m4v|m4a)|recording-[0-9]{1,12}-poster\.jpg)"
)
MAX_PATH_BYTES = 512
# One byte range, ASCII digits only ([0-9], never \d or str.isdigit(), which take any
# script's digits), spaces allowed around the range as before.
MAX_RANGE_DIGITS = 30
RANGE_PATTERN = re.compile(
    rf"bytes= *(?P<first>[0-9]{{0,{MAX_RANGE_DIGITS}}})-(?P<last>[0-9]{{0,{MAX_RANGE_DIGITS}}}) *"
)

TYPES = {**CONTENT_TYPES, "m4v": "video/mp4", "m4a": "audio/mp4", "jpg": "image/jpeg"}

PLAYLIST_CACHE_CONTROL = "public, max-age=1"
SEGMENT_CACHE_CONTROL = "public, max-age=31536000, immutable"
RECORDING_CACHE_CONTROL = "public, max-age=3600"
# The playlist is rewritten every segment: keep a copy this long (seconds) at most.
PLAYLIST_CACHE_SECONDS = 0.5
# Segments never change once listed; a copy expires so an ended session's files go.
SEGMENT_CACHE_SECONDS = 60
# Files larger than this are streamed, never cached (recordings; a very long or very
# high-bitrate live segment).
MAX_CACHED_FILE = 8 * 1024 * 1024
TOO_BIG = object()
CHUNK = 256 * 1024
# Grants already checked, per verifier: every viewer asks with the same grant once a second
# or more, and a check costs more than a dict lookup. Forgotten all at once when full.
MAX_VERIFIED_GRANTS = 10_000
# Exact request paths already answered from the cache, for the connection-level fast path
# (wagtail_live.servers): one dict lookup instead of parsing and checking again. Forgotten
# all at once when full; each is re-checked at least this often (seconds).
MAX_REMEMBERED_PATHS = 10_000
REMEMBER_PATH_SECONDS = 60

# Bumped when settings change (tests; a site's settings are fixed while it runs): each
# verifier then forgets its prefix, cache and checked grants, which depend on them.
_settings_generation = 0


def _settings_changed(**kwargs):
    global _settings_generation
    _settings_generation += 1


setting_changed.connect(_settings_changed)


def parse_path(raw_path, prefix):
    """``(session id, token, name)`` from a raw request path, or None for any other spelling.

    ``raw_path`` is the bytes the client sent (ASGI ``raw_path``), before any decoding:
    percent signs, backslashes, doubled slashes and dot segments simply do not match.
    """
    if not isinstance(raw_path, bytes) or len(raw_path) > MAX_PATH_BYTES:
        return None
    try:
        path = raw_path.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not path.startswith(prefix):
        return None
    match = DELIVERY_PATH.fullmatch(path[len(prefix) :])
    if match is None or ".." in match["name"]:
        return None
    return match["session"], match["token"], match["name"]


def file_path(session_id, name):
    """The file ``name`` of session ``session_id`` under ``PRIVATE_ROOT``, or None if missing.

    ``name`` matched ``DELIVERY_PATH``; even so the resolved path must stay inside the
    session's folder (no symlink leads out).
    """
    folder = (private_root() / live_settings.MEDIA_SUBDIR.strip("/") / str(session_id)).resolve()
    path = (folder / name).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        return None
    return path


def content_type(name):
    """The MIME type of a delivered file: from our short list, never guessed."""
    return TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")


def cache_control(name):
    """Playlist: a second; segments: immutable; recordings: an hour."""
    if name.endswith(".m3u8"):
        return PLAYLIST_CACHE_CONTROL
    if name.startswith("hls/"):
        return SEGMENT_CACHE_CONTROL
    return RECORDING_CACHE_CONTROL


def parse_range(header, size):
    """``(start, end)`` (inclusive) of a single ``bytes=`` range (RFC 9110 §14.1.2), or
    None to send the whole file, or ``"unsatisfiable"``.

    Several ranges, or a header we do not understand, get the whole file (allowed:
    a server may ignore Range). Positions are ASCII digits, at most ``MAX_RANGE_DIGITS``
    each: ``str.isdigit()`` would also take "²", "٣" or "３", and ``int()`` then
    raises or reads them as numbers no client meant.
    """
    if not header or len(header) > 100:
        return None
    match = RANGE_PATTERN.fullmatch(header)
    if match is None:
        return None
    first, last = match["first"], match["last"]
    if first == "":
        if last == "" or int(last) == 0:
            return "unsatisfiable"
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end


class FileCache:
    """Playlists and segments in memory: at most ``max_bytes`` in all, least recently used out."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.size = 0
        self.entries = OrderedDict()  # path -> (deadline, bytes)

    def get(self, path, now):
        """The ``value`` put for ``path`` if not expired at ``now``, else None."""
        entry = self.entries.get(path)
        if entry is None or entry[0] < now:
            return None
        self.entries.move_to_end(path)
        return entry[2]

    def put(self, path, body, lifetime, now, value=None):
        """Keep ``value`` (default ``body``) for ``lifetime`` seconds; ``body`` counts its size."""
        if len(body) > self.max_bytes:
            return
        old = self.entries.pop(path, None)
        if old is not None:
            self.size -= len(old[1])
        self.entries[path] = (now + lifetime, body, body if value is None else value)
        self.size += len(body)
        while self.size > self.max_bytes:
            _, (_, dropped, _) = self.entries.popitem(last=False)
            self.size -= len(dropped)


def _read(path):
    """The whole file's bytes, or ``TOO_BIG`` when it holds more than ``MAX_CACHED_FILE``.

    Never a cut: the size is asked of the open file (no read of a big one), and a file
    that grew past the limit after that is caught by reading one byte more than allowed.
    A file that shrank gives what it holds at the read, and that is what is sent.
    """
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size > MAX_CACHED_FILE:
            return TOO_BIG
        body = handle.read(MAX_CACHED_FILE + 1)
    return TOO_BIG if len(body) > MAX_CACHED_FILE else body


def _load(session_id, name):
    """The bytes of a session's HLS file, ``TOO_BIG`` (to be streamed), or None when it
    is not there (in a thread: disk)."""
    path = file_path(session_id, name)
    if path is None:
        return None
    try:
        body = _read(path)
    except OSError:  # deleted between the check and the read (a playlist rewrite)
        return None
    return _marked_if_nginx(body, path) if name.endswith(".m3u8") else body


def _marked_if_nginx(body, path):
    """nginx-rtmp's playlist with the settings changes it leaves unmarked marked (see
    ``nginx_rtmp.mark_settings_changes``); any other playlist as it is. nginx streams are
    told by the settings note stream health keeps beside their HLS folder."""
    from .ingest import nginx_rtmp

    if body is TOO_BIG or not (path.parent.parent / nginx_rtmp.SETTINGS_FILE).exists():
        return body
    return nginx_rtmp.mark_settings_changes(body, path.parent)


def _read_part(path, start, length):
    with open(path, "rb") as handle:
        handle.seek(start)
        return handle.read(length)


class HLSVerifier:
    """ASGI middleware: serves granted files under the delivery prefix, passes the rest to ``app``.

    ``prefix`` defaults to the path of ``grants.delivery_prefix()``, looked up on the
    first request (Django's URLs are ready by then).
    """

    def __init__(self, app, prefix=None, cache_bytes=None):
        self.app = app
        self._given_prefix = prefix
        self._cache_bytes = cache_bytes
        self._forget()

    def _forget(self):
        """Drop what was derived from settings (prefix, cache, checked grants)."""
        self._generation = _settings_generation
        self._prefix = self._given_prefix
        self._cache = None
        self._verified = {}  # (session id, token) -> expires (Unix seconds)
        self._loading = {}  # (session id, name) -> the task reading it from disk
        self._answered = {}  # raw path -> (good until, monotonic s; grant expiry, Unix s; cache key)

    @property
    def prefix(self):
        # Looked up once: reverse() on every request cost more than the rest of the check.
        if self._prefix is None:
            self._prefix = urlsplit(grants.delivery_prefix()).path
        return self._prefix

    @property
    def cache(self):
        if self._cache is None:
            size = self._cache_bytes
            if size is None:
                size = live_settings.DELIVERY_CACHE_BYTES
            self._cache = FileCache(int(size))
        return self._cache

    def is_granted(self, session_id, token, name=None):
        """The grant's expiry (Unix seconds) if the URL's grant is valid now, else None; a
        valid one is remembered until it expires.

        ``name`` is ``grants.bound_name(<file>)``: None for the live stream's files (one
        grant for all of them), else the one recording file the grant must be signed for.
        Remembered per file too, so a recording's grant never vouches for another file.
        """
        now = time.time()
        key = (session_id, token) if name is None else (session_id, token, name)
        expires = self._verified.get(key)
        if expires is not None:
            return expires if now < expires else None
        grant = grants.verify(session_id, token, now, name)
        if grant is None:
            return None
        if len(self._verified) >= MAX_VERIFIED_GRANTS:
            self._verified.clear()
        self._verified[key] = grant.expires
        return grant.expires

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self._generation != _settings_generation:
            self._forget()
        prefix = self.prefix
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
        # Every spelling that decodes into the prefix is ours (and refused unless canonical).
        if not (scope["path"].startswith(prefix) or raw_path.startswith(prefix.encode())):
            return await self.app(scope, receive, send)
        status, headers, body = await self.respond(scope, raw_path, prefix)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if isinstance(body, bytes):
            await send({"type": "http.response.body", "body": body})
        else:
            await body(send)

    async def respond(self, scope, raw_path, prefix):
        """``(status, headers, body)``; ``body`` is bytes or an async ``send`` writer."""
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            return _plain(405, b"Method not allowed.", [(b"allow", b"GET, HEAD")])
        parts = parse_path(raw_path, prefix)
        if parts is None:
            return _plain(403, b"Forbidden.")
        session_id, token, name = parts
        live = name.startswith(grants.LIVE_FOLDER)
        # A live grant opens the hls/ files; a recording's file needs a grant for itself.
        expires = self.is_granted(session_id, token, None if live else name)
        if expires is None:
            return _plain(403, b"Forbidden.")
        if live:
            found = await self.cached(session_id, name)
            if found is None:
                return _plain(404, b"Not found.")
            if found is not TOO_BIG:
                self._remember_path(raw_path, (session_id, name), expires)
                headers, body, _head = found
                return 200, headers, b"" if method == "HEAD" else body
        # Recordings, and live files too big to keep in memory, go out in chunks.
        path = await asyncio.to_thread(file_path, session_id, name)
        if path is None:
            return _plain(404, b"Not found.")
        return await self.stream(scope, method, path, _file_headers(name))

    def _remember_path(self, raw_path, key, expires):
        """Note that ``raw_path`` (checked: canonical, granted until ``expires``, Unix
        seconds) is the cached file ``key``, for :meth:`answer_from_memory`."""
        now = time.monotonic()
        good_until = now + min(REMEMBER_PATH_SECONDS, expires - time.time())
        if len(self._answered) >= MAX_REMEMBERED_PATHS:
            self._answered.clear()
        self._answered[raw_path] = (good_until, expires, key)

    def answer_from_memory(self, raw_path):
        """``(head, body)`` for a GET of ``raw_path`` straight from memory, or None.

        For servers that can answer on the connection itself (``wagtail_live.servers``):
        only a path this verifier answered before (the exact bytes: every check was made
        then), whose grant is still valid (by the wall clock, as :meth:`is_granted` checks
        it) and whose file is still fresh in the cache.
        ``head`` is the response's header lines (bytes, each ending in CRLF, without the
        status line, the server's own headers or the blank line); ``body`` the file's bytes.
        Anything else is None, and the request goes the ASGI way.
        """
        if self._generation != _settings_generation:
            self._forget()
            return None
        remembered = self._answered.get(raw_path)
        if remembered is None:
            return None
        now = time.monotonic()
        # The grant's expiry is wall-clock time too: the monotonic clock stands still
        # while a machine is suspended, and the wall clock may be stepped.
        if now >= remembered[0] or time.time() >= remembered[1]:
            del self._answered[raw_path]
            return None
        found = self.cache.get(remembered[2], now)
        if found is None:
            return None
        return found[2], found[1]

    async def cached(self, session_id, name):
        """``(headers, bytes, head)`` of a playlist or segment (``head``: the headers as
        HTTP/1.1 lines), None if missing, or ``TOO_BIG``
        (over ``MAX_CACHED_FILE``: to be streamed from disk instead).

        From memory when fresh enough: a hit costs no thread, no disk and no header
        building, which is what lets one process serve thousands of viewers
        (docs/benchmarks.md). A miss reads the file in a thread, once per lifetime.
        """
        key = (session_id, name)
        found = self.cache.get(key, time.monotonic())
        if found is not None:
            return found
        # One read per file however many viewers ask at once (the playlist expires every
        # 0.5 s under all of them); shielded, so one viewer leaving does not cancel it.
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fill(key, session_id, name))
            self._loading[key] = task
            task.add_done_callback(lambda _done: self._loading.pop(key, None))
        return await asyncio.shield(task)

    async def _fill(self, key, session_id, name):
        now = time.monotonic()
        body = await asyncio.to_thread(_load, session_id, name)
        if body is None or body is TOO_BIG:
            return body
        headers = _file_headers(name)
        headers.append((b"content-length", str(len(body)).encode()))
        head = b"".join(b"%s: %s\r\n" % pair for pair in headers)
        lifetime = PLAYLIST_CACHE_SECONDS if name.endswith(".m3u8") else SEGMENT_CACHE_SECONDS
        self.cache.put(key, body, lifetime, now, (headers, body, head))
        return headers, body, head

    async def stream(self, scope, method, path, headers):
        """A recording's file, whole or one byte range, read in chunks off the event loop."""
        try:
            size = os.stat(path).st_size
        except OSError:  # moved away since the check (a privacy change)
            return _plain(404, b"Not found.")
        range_header = _header(scope, b"range")
        span = parse_range(range_header, size)
        headers.append((b"accept-ranges", b"bytes"))
        if span == "unsatisfiable":
            return _plain(
                416, b"Range not satisfiable.", [(b"content-range", f"bytes */{size}".encode())]
            )
        if span is None:
            status, start, end = 200, 0, size - 1
        else:
            status, (start, end) = 206, span
            headers.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
        length = end - start + 1 if size else 0
        headers.append((b"content-length", str(length).encode()))
        if method == "HEAD":
            return status, headers, b""
        return status, headers, _file_writer(path, start, length)


def _file_headers(name):
    return [
        (b"content-type", content_type(name).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", cache_control(name).encode()),
    ]


def _file_writer(path, start, length):
    async def write(send):
        position, left = start, length
        while left > 0:
            chunk = await asyncio.to_thread(_read_part, Path(path), position, min(CHUNK, left))
            if not chunk:
                break
            position += len(chunk)
            left -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
        if left > 0 or length == 0:
            await send({"type": "http.response.body", "body": b""})

    return write


def _header(scope, name):
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _plain(status, text, extra=()):
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(text)).encode()),
        *extra,
    ]
    return status, headers, text


# -- nginx as the verifier (manage.py live_nginx_config --http) ---------------------------

NGINX_KEY = re.compile(r"[A-Za-z0-9_.:+=-]{16,200}")

NGINX_SERVER = """\
# wagtail_live signed playback (docs/delivery.md): nginx checks every grant itself with
# ngx_http_secure_link_module (https://nginx.org/en/docs/http/ngx_http_secure_link_module.html)
# and sends the files from PRIVATE_ROOT; Django is not asked per request.
# Requires WAGTAIL_LIVE["GRANT_SIGNER"] = "nginx-md5" on the site.
server {{
    listen {listen};
    server_name {server_name};

    location ^~ {prefix} {{
        # The one spelling of each kind of file; anything else under the prefix is 403.
        location ~ "^{prefix}(?<wl_session>[1-9][0-9]{{0,11}})/(?<wl_expires>[0-9]{{1,12}})-(?<wl_signature>[A-Za-z0-9_-]{{22}})/(?<wl_file>hls/[A-Za-z0-9_][A-Za-z0-9_-]{{0,63}}(\\.[A-Za-z0-9_-]{{1,32}}){{0,2}}\\.m3u8)$" {{
            secure_link $wl_signature,$wl_expires;
            secure_link_md5 "$wl_expires/$wl_session {key}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 403; }}
            alias {live_root}/$wl_session/$wl_file;
            types {{ }}
            default_type application/vnd.apple.mpegurl;
            add_header Cache-Control "{playlist_cache}" always;
            add_header X-Content-Type-Options nosniff always;
        }}
        location ~ "^{prefix}(?<wl_session>[1-9][0-9]{{0,11}})/(?<wl_expires>[0-9]{{1,12}})-(?<wl_signature>[A-Za-z0-9_-]{{22}})/(?<wl_file>hls/[A-Za-z0-9_][A-Za-z0-9_-]{{0,63}}(\\.[A-Za-z0-9_-]{{1,32}}){{0,2}}\\.(ts|m4s|mp4))$" {{
            secure_link $wl_signature,$wl_expires;
            secure_link_md5 "$wl_expires/$wl_session {key}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 403; }}
            alias {live_root}/$wl_session/$wl_file;
            types {{ video/mp2t ts; video/iso.segment m4s; video/mp4 mp4; }}
            default_type application/octet-stream;
            add_header Cache-Control "{segment_cache}" always;
            add_header X-Content-Type-Options nosniff always;
        }}
        location ~ "^{prefix}(?<wl_session>[1-9][0-9]{{0,11}})/(?<wl_expires>[0-9]{{1,12}})-(?<wl_signature>[A-Za-z0-9_-]{{22}})/(?<wl_file>recording-[0-9]{{1,12}}(-web)?\\.(mp4|m4v|m4a))$" {{
            # A recording's grant is signed for its file (grants.bound_name), so it
            # opens no other recording of the session.
            secure_link $wl_signature,$wl_expires;
            secure_link_md5 "$wl_expires/$wl_session/$wl_file {key}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 403; }}
            alias {live_root}/$wl_session/$wl_file;
            types {{ video/mp4 mp4 m4v; audio/mp4 m4a; }}
            default_type application/octet-stream;
            add_header Cache-Control "{recording_cache}" always;
            add_header X-Content-Type-Options nosniff always;
        }}
        return 403;
    }}

    # Everything else is the site.
    location / {{
        proxy_pass {site_url};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $http_connection;
    }}
}}
"""


def nginx_server_block(*, live_root, key, site_url, listen="80", server_name="_", prefix=None):
    """An nginx ``server {}`` that verifies playback grants itself and proxies the rest.

    ``live_root`` is ``PRIVATE_ROOT/<MEDIA_SUBDIR>`` as nginx sees it; ``key`` the grant
    key (``grants.grant_key()``), which must be plain (letters, digits, ``_.:+=-``) as it
    is written into the configuration. Raises ``ValueError`` for a key or path nginx
    could misread.
    """
    prefix = prefix or urlsplit(grants.delivery_prefix()).path
    if not NGINX_KEY.fullmatch(key):
        raise ValueError("The grant key must be 16-200 letters, digits or _.:+=- for nginx.")
    if not re.fullmatch(r"/[A-Za-z0-9_./-]*/", prefix) or "//" in prefix or ".." in prefix:
        raise ValueError(f"Unusable delivery prefix for nginx: {prefix!r}")
    live_root = str(live_root).rstrip("/")
    if re.search(r"[\s;{}\"'$\\]", live_root):
        raise ValueError(f"Unusable folder for nginx: {live_root!r}")
    return NGINX_SERVER.format(
        listen=listen,
        server_name=server_name,
        prefix=prefix,
        key=key,
        live_root=live_root,
        site_url=site_url.rstrip("/"),
        playlist_cache=PLAYLIST_CACHE_CONTROL,
        segment_cache=SEGMENT_CACHE_CONTROL,
        recording_cache=RECORDING_CACHE_CONTROL,
    )
