"""In-process presence: the embedded default, exact, for a site served by one process."""

import time

from .base import PresenceBackend


class MemoryPresence(PresenceBackend):
    """Keeps members, counters, rate windows and claims in dictionaries of this process."""

    def __init__(self, ttl=30, **options):
        super().__init__(ttl=ttl)
        self._members = {}  # session -> {connection: (viewer_key, staff, expires_at)}
        self._viewers = {}  # session -> set of audience viewer keys ever seen
        self._likes = {}  # session -> total
        self._claims = {}  # key -> expires_at
        self._windows = {}  # rate key -> (window number, used)
        self._admitted = {}  # (session, address) -> {anonymous viewer key: admitted until}

    def _live_members(self, session_id):
        members = self._members.get(session_id, {})
        now = time.monotonic()
        for connection_id in [c for c, (_, _, expires) in members.items() if expires <= now]:
            del members[connection_id]
        return members

    async def join(self, session_id, connection_id, viewer_key, staff=False):
        expires = time.monotonic() + self.ttl
        self._members.setdefault(session_id, {})[connection_id] = (viewer_key, staff, expires)
        if not staff:
            self._viewers.setdefault(session_id, set()).add(viewer_key)

    async def leave(self, session_id, connection_id, viewer_key=None, staff=False):
        members = self._members.get(session_id)
        if members is not None:
            members.pop(connection_id, None)
            if not members:
                del self._members[session_id]

    async def admit(self, session_id, address, viewer_key, limit):
        now = time.monotonic()
        live = {key for key, _, _ in self._live_members(session_id).values()}
        admitted = self._admitted.setdefault((session_id, address), {})
        for key in [k for k, until in admitted.items() if until <= now and k not in live]:
            del admitted[key]
        if viewer_key not in admitted and len(admitted) >= limit:
            return False
        admitted[viewer_key] = now + self.ttl
        return True

    async def refresh(self, session_id, members):
        known = self._members.setdefault(session_id, {})
        expires = time.monotonic() + self.ttl
        for connection_id, viewer_key, staff in members:
            known[connection_id] = (viewer_key, staff, expires)

    async def counts(self, session_id):
        audience, staff = set(), set()
        for viewer_key, is_staff, _ in self._live_members(session_id).values():
            (staff if is_staff else audience).add(viewer_key)
        return len(audience), len(staff)

    async def unique_viewers(self, session_id):
        return len(self._viewers.get(session_id, ()))

    async def take(self, key, amount, limit, period):
        window = int(time.monotonic() // period)
        known_window, used = self._windows.get(key, (window, 0))
        if known_window != window:
            used = 0
        granted = max(0, min(amount, limit - used))
        if len(self._windows) > 10000:  # windows pass: drop the old ones
            self._windows = {k: w for k, w in self._windows.items() if w[0] == window}
        self._windows[key] = (window, used + granted)
        return granted

    async def add_likes(self, session_id, amount, initial=0):
        total = self._likes.get(session_id, initial) + amount
        self._likes[session_id] = total
        return total

    async def likes(self, session_id, initial=0):
        return self._likes.setdefault(session_id, initial)

    async def claim(self, key, seconds):
        now = time.monotonic()
        if self._claims.get(key, 0) > now:
            return False
        if len(self._claims) > 1000:  # claims are per period: drop the old ones
            self._claims = {k: until for k, until in self._claims.items() if until > now}
        self._claims[key] = now + seconds
        return True

    async def clear(self, session_id):
        self._members.pop(session_id, None)
        self._viewers.pop(session_id, None)
        self._likes.pop(session_id, None)
        for key in [k for k in self._admitted if k[0] == session_id]:
            del self._admitted[key]
