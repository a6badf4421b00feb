"""Presence backends, picked by ``WAGTAIL_LIVE["PRESENCE_BACKEND"]``."""

from django.utils.module_loading import import_string

from wagtail_live.conf import live_settings

#: Short names for the bundled backends; any other value is a dotted class path.
BACKENDS = {
    "memory": "wagtail_live.presence.memory.MemoryPresence",
    "redis": "wagtail_live.presence.redis.RedisPresence",
}

_backend = None
_backend_config = None


def get_presence_backend():
    """The configured presence backend (one instance per process, rebuilt when settings change)."""
    global _backend, _backend_config
    config = (live_settings.PRESENCE_BACKEND, repr(live_settings.PRESENCE_OPTIONS))
    if _backend is None or config != _backend_config:
        name, options = live_settings.PRESENCE_BACKEND, dict(live_settings.PRESENCE_OPTIONS)
        options.setdefault("ttl", live_settings.PRESENCE_TTL)
        if name == "redis":
            options.setdefault("url", live_settings.REDIS_URL)
        _backend = import_string(BACKENDS.get(name, name))(**options)
        _backend_config = config
    return _backend
