"""The presence interface: who is watching a session, and the session's live counters.

A backend counts *people*, not sockets. Every open socket is a member of its
session with a ``viewer_key`` naming the person behind it (``user:<pk>`` for a
logged-in user, ``anon:<visitor>`` for an anonymous browser: see
``LiveConsumer.viewer_key``) and an expiry time; the session's count is the number
of distinct viewer keys with at least one live socket, so one person with five
tabs (or 300 scripted sockets) counts once. Sockets of the session's staff (its
host and moderators, whose admin screens open the same socket) are counted
apart: they are not audience.

The per-process hub refreshes its own members well inside the expiry, so a
worker that dies simply stops refreshing and its viewers drop out of the count
after ``PRESENCE_TTL`` seconds, without anyone having to clean up after it.

The same backend keeps the counters every process of a session must agree on
(the like total, unique viewers), rate limits shared by all of one person's
sockets (:meth:`take`), and hands out "claims" so that exactly one process does
a periodic job (such as the 10 s viewer sample) per period.
"""


class PresenceBackend:
    """One backend interface; ``memory`` for one process, ``redis`` for several."""

    #: Seconds after its last refresh that a connection stops counting.
    ttl = 30

    def __init__(self, ttl=30, **options):
        self.ttl = ttl

    async def join(self, session_id, connection_id, viewer_key, staff=False):
        """Count ``connection_id`` as one of ``viewer_key``'s sockets (``staff``: not audience)."""
        raise NotImplementedError

    async def leave(self, session_id, connection_id, viewer_key, staff=False):
        """Stop counting ``connection_id``; its person stops counting with their last socket."""
        raise NotImplementedError

    async def admit(self, session_id, address, viewer_key, limit):
        """Whether anonymous ``viewer_key`` may count as its own person from ``address``.

        At most ``limit`` distinct anonymous viewer keys of one client address count
        apart in a session, across every process; a key stays admitted while any of
        its sockets is live (or for ``ttl`` seconds after being admitted, the time to
        join). Refused keys are counted together by the caller (``addr:<address>``).
        """
        raise NotImplementedError

    async def refresh(self, session_id, members):
        """Push back the expiry of ``members``: ``(connection_id, viewer_key, staff)`` tuples."""
        raise NotImplementedError

    async def counts(self, session_id):
        """``(viewers, staff)``: distinct people watching, audience and staff, in every process."""
        raise NotImplementedError

    async def count(self, session_id):
        """Distinct people in the audience (staff not included), across every process."""
        viewers, _ = await self.counts(session_id)
        return viewers

    async def unique_viewers(self, session_id):
        """Number of distinct audience members ever seen in the session (approximate on Redis)."""
        raise NotImplementedError

    async def take(self, key, amount, limit, period):
        """Take up to ``amount`` of the ``limit`` actions ``key`` may do per ``period`` seconds.

        Returns how many were granted (0 when the limit is reached). Shared by every
        socket and process that uses the same ``key``: a person's tabs, an address's
        guests. Fixed windows of ``period`` seconds.
        """
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
