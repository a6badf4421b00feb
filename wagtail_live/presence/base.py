"""The presence interface: who is watching a session, and the session's live counters.

A backend counts *connections*, not processes: every open socket is a member of
its session with an expiry time. The per-process hub refreshes its own
members well inside that expiry, so a worker that dies simply stops refreshing
and its viewers drop out of the count after ``PRESENCE_TTL`` seconds, without
anyone having to clean up after it.

The same backend keeps the counters every process of a session must agree on
(the like total, unique viewers) and hands out "claims" so that exactly one
process does a periodic job (such as the 10 s viewer sample) per period.
"""


class PresenceBackend:
    """One backend interface; ``memory`` for one process, ``redis`` for several."""

    #: Seconds after its last refresh that a connection stops counting.
    ttl = 30

    def __init__(self, ttl=30, **options):
        self.ttl = ttl

    async def join(self, session_id, connection_id, viewer_key=None):
        """Count ``connection_id`` as watching; ``viewer_key`` identifies the person."""
        raise NotImplementedError

    async def leave(self, session_id, connection_id):
        """Stop counting ``connection_id``."""
        raise NotImplementedError

    async def refresh(self, session_id, connection_ids):
        """Push back the expiry of these connections (the hub calls this every few seconds)."""
        raise NotImplementedError

    async def count(self, session_id):
        """Number of live connections watching the session, across every process."""
        raise NotImplementedError

    async def unique_viewers(self, session_id):
        """Number of distinct viewers ever seen in the session (approximate on Redis)."""
        raise NotImplementedError

    async def add_likes(self, session_id, amount, initial=0):
        """Add ``amount`` likes and return the new total; ``initial`` seeds an unknown total."""
        raise NotImplementedError

    async def likes(self, session_id, initial=0):
        """The session's like total (seeded from ``initial`` when not known yet)."""
        raise NotImplementedError

    async def claim(self, key, seconds):
        """Return True for exactly one caller per ``key`` within ``seconds``."""
        raise NotImplementedError

    async def clear(self, session_id):
        """Forget everything about a session (after it ended)."""
        raise NotImplementedError
