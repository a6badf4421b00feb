"""The app's settings: one ``WAGTAIL_LIVE`` dict, read through ``live_settings``.

Every key and its default is documented in ``docs/settings.md``. The object is
lazy and re-reads Django's settings whenever ``WAGTAIL_LIVE`` changes (as
``override_settings`` does in tests), so nothing caches a stale value.
"""

from datetime import timedelta

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS = {
    # Folder, relative to MEDIA_ROOT / the default storage (public sessions' recordings) and to
    # PRIVATE_ROOT (live HLS, recording sources, private sessions' recordings), per session.
    "MEDIA_SUBDIR": "uploads/live",
    # Local folder no by-path server serves: every session's live HLS and recording sources,
    # and private sessions' MP4s and posters. None: "live-private" beside MEDIA_ROOT.
    "PRIVATE_ROOT": None,
    # A key of Django's STORAGES for private sessions' finished recordings (e.g. a private
    # S3 bucket); None: a FileSystemStorage at PRIVATE_ROOT.
    "PRIVATE_STORAGE": None,
    # Path of the ffmpeg binary; None finds ``ffmpeg`` on PATH, then imageio-ffmpeg's.
    "FFMPEG": None,
    # How long a stream key stays valid after it is issued (or after the scheduled start).
    "STREAM_KEY_TTL": timedelta(hours=24),
    # Which RTMP ingest serves OBS: "embedded" (manage.py live_rtmp) or "nginx".
    "RTMP": "embedded",
    # The rtmp:// server URL shown to hosts for OBS; None derives it from the request host.
    "RTMP_PUBLIC_URL": None,
    # Target HLS segment length in seconds.
    "HLS_SEGMENT_SECONDS": 1,
    # Stream health (docs/going-live.md): the bitrate, in kbit/s, viewers can take; the host
    # is warned when the encoder sends far more. None or 0: no bitrate warning.
    "HEALTH_MAX_BITRATE_KBPS": 6000,
    # Seconds a dropped encoder may take to come back into the same session.
    "RECONNECT_GRACE": 30,
    # The embedded RTMP listener (manage.py live_rtmp): address it binds by default.
    "RTMP_HOST": "127.0.0.1",
    "RTMP_PORT": 1935,
    # Seconds an RTMP client may take from connecting to publishing (and may stay silent after).
    "RTMP_TIMEOUT": 10,
    # Connections the embedded RTMP listener holds at once (encoders and clients still
    # handshaking); more are closed at once, before a byte is read.
    "RTMP_MAX_CONNECTIONS": 100,
    # ... and from one IP address (an encoder reconnecting needs 2).
    "RTMP_MAX_CONNECTIONS_PER_ADDRESS": 8,
    # Shared secret nginx-rtmp sends with its callbacks (manage.py live_nginx_config); None
    # refuses every callback, so an unconfigured site cannot be published to through nginx.
    "NGINX_SECRET": None,
    # --- WebRTC through Janus (issue 15; see docs/ingest-backends.md "Janus") ---
    # None (off) or "janus": WHIP ingest and WebRTC playback through a Janus server.
    "WEBRTC": None,
    # Janus's HTTP API, reachable from the ASGI processes and the RTMP listener only (never
    # from browsers); ffmpeg sends RTP to Streaming mountpoints bound to its host.
    "JANUS_URL": "http://127.0.0.1:8088/janus",
    # Janus's api_secret and the VideoRoom/Streaming admin_key (live_janus_config makes them).
    "JANUS_API_SECRET": None,
    "JANUS_ADMIN_KEY": None,
    # Address Janus forwards RTP to, where the ASGI process's ffmpeg listens.
    "JANUS_FORWARD_HOST": "127.0.0.1",
    # VideoRoom room and Streaming mountpoint ids are this plus the session id (share one
    # Janus between sites).
    "JANUS_ROOM_OFFSET": 0,
    # WebRTC viewers per session (sub-second playback); more, and every failure, get HLS.
    "WEBRTC_MAX_VIEWERS": 50,
    # Base URL of the WHIP endpoints shown to hosts (e.g. "https://live.example.com");
    # None derives it from the request.
    "WHIP_PUBLIC_URL": None,
    # --- browser ingest and playback (issue 4 part B; see docs/settings.md "Playback") ---
    # Seconds an ingest websocket may stay silent before it counts as a dropped encoder.
    "INGEST_IDLE_TIMEOUT": 20,
    # Serve public sessions' HLS from MEDIA_URL (a CDN or nginx) instead of the checked view.
    "PLAYBACK_FROM_MEDIA_URL": False,
    # nginx internal location mapped to MEDIA_ROOT/MEDIA_SUBDIR; set it to answer private
    # playback with X-Accel-Redirect instead of streaming the file from Django.
    "ACCEL_REDIRECT_PREFIX": None,
    # --- delivery (issue 13; see docs/delivery.md) ---
    # Where signed playback URLs point: None is the app's own "delivery/" route (e.g.
    # /live/delivery/), answered by the embedded verifier in asgi.py; or nginx's or a CDN's URL.
    "DELIVERY_URL": None,
    # Seconds a playback grant lives past the end of its window (viewers renew before).
    "GRANT_SECONDS": 120,
    # Everyone whom can_watch allows within one window shares a grant (one cached copy).
    "GRANT_WINDOW_SECONDS": 60,
    # Seconds a recording's signed URL lives (a viewer seeks through it for that long).
    "RECORDING_GRANT_SECONDS": 4 * 3600,
    # "hmac-sha256", "nginx-md5" (live_nginx_config --http) or a dotted path to
    # a function (message, key) -> signature, for a CDN's own token scheme.
    "GRANT_SIGNER": "hmac-sha256",
    # The signing key; None derives one from SECRET_KEY.
    "GRANT_KEY": None,
    # Bytes of playlists and segments the embedded verifier keeps in memory.
    "DELIVERY_CACHE_BYTES": 64 * 1024 * 1024,
    # --- realtime (issue 5; see docs/settings.md "Chat, likes and presence") ---
    # Let visitors who are not logged in chat under a display name.
    "CHAT_ANONYMOUS": False,
    # Longest chat message, in characters, after trimming.
    "CHAT_MAX_LENGTH": 500,
    # Per-user chat rate limit: at most this many messages ...
    "CHAT_RATE_LIMIT": 5,
    # ... within this many seconds.
    "CHAT_RATE_PERIOD": 10,
    # How many recent messages a joining socket receives in ``state``.
    "CHAT_HISTORY": 50,
    # Most likes one user (all their tabs; per socket for guests) may add per second.
    "LIKE_RATE_LIMIT": 10,
    # Frames one socket may send per second before getting ``rate_limited`` errors ...
    "SOCKET_RATE_LIMIT": 10,
    # ... and how many over-limit frames close it with code 4008 (a flood).
    "SOCKET_FLOOD_CLOSE": 30,
    # "memory" (one process), "redis" (several workers) or a dotted class path.
    "PRESENCE_BACKEND": "memory",
    # Extra keyword arguments for the presence backend class.
    "PRESENCE_OPTIONS": {},
    # Seconds a viewer of a dead worker keeps counting (heartbeats refresh at a third of it).
    "PRESENCE_TTL": 30,
    # Anonymous sockets from one client address count as at most this many viewers
    # (one person per signed visitor id below it; the rest count together as one).
    "ANONYMOUS_VIEWERS_PER_ADDRESS": 20,
    # Redis for the "redis" presence backend.
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    # Longest wait (seconds) before the hub delivers a batch of chat when traffic is high.
    "FANOUT_TICK": 0.1,
    # Seconds between stored viewer-count samples (analytics).
    "VIEWER_SAMPLE_SECONDS": 10,
    # --- recordings (issue 6; see docs/settings.md "Recordings") ---
    # Where draft recording pages go: a page id, a URL path on the default site
    # ("/recordings/"), a callable taking the session, or None for the default site's root page.
    "RECORDING_PARENT_PAGE": None,
    # The page model recordings are published on ("app_label.ModelName").
    "RECORDING_PAGE_MODEL": "wagtail_live.RecordingPage",
    # Publish the recording page at once instead of leaving a draft for an editor.
    "RECORDING_AUTO_PUBLISH": False,
    # Keep the recorded source file after the MP4 is safely stored.
    "KEEP_SOURCE": True,
    # Seconds without a heartbeat after which another worker may take over a recording
    # whose worker died mid-task.
    "RECORDING_LEASE": 300,
    # The site's base template the recording page extends (its "title" and "content" blocks),
    # so it has the site's header and footer; "wagtail_live/base.html" when the site has none.
    "BASE_TEMPLATE": "base.html",
    # --- audience (issue 7; see docs/settings.md "Reminders, webhooks and analytics") ---
    # How long before the scheduled start reminder e-mails go out.
    "REMINDER_LEAD": timedelta(minutes=15),
    # Failed sends of one reminder (broken e-mail backend) before it is given up.
    "REMINDER_MAX_ATTEMPTS": 5,
    # Sender of reminder e-mails; None uses DEFAULT_FROM_EMAIL.
    "REMINDER_FROM_EMAIL": None,
    # Let webhooks call addresses on private networks / loopback (refused by default: SSRF).
    "WEBHOOK_ALLOW_PRIVATE": False,
    # Seconds a webhook receiver may take to connect and to answer each read.
    "WEBHOOK_TIMEOUT": 5,
    # Seconds to wait before each retry of a failed delivery; the sum stays under 24 h.
    "WEBHOOK_RETRY_DELAYS": (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600),
    # Days the webhook delivery log keeps finished attempts (None: for ever).
    "WEBHOOK_LOG_DAYS": 30,
}


class LiveSettings:
    """Attribute access to ``WAGTAIL_LIVE`` with defaults filled in."""

    def __init__(self):
        self._cache = None

    def _load(self):
        user = getattr(settings, "WAGTAIL_LIVE", {}) or {}
        unknown = set(user) - set(DEFAULTS)
        merged = {**DEFAULTS, **user}
        merged["_unknown"] = sorted(unknown)
        return merged

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if self._cache is None:
            self._cache = self._load()
        try:
            return self._cache[name]
        except KeyError:
            raise AttributeError(f"WAGTAIL_LIVE has no setting {name!r}") from None

    def reload(self):
        self._cache = None


live_settings = LiveSettings()


@receiver(setting_changed)
def _reload_live_settings(*, setting, **kwargs):
    if setting == "WAGTAIL_LIVE":
        live_settings.reload()
