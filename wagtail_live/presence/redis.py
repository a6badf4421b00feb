"""Redis presence: several daphne workers (on one or many machines) share one count.

For each session, ``people`` and ``staff`` are sorted sets of viewer keys scored
by their expiry time, and each person's sockets are a sorted set of connection
ids scored the same way. Counting drops the expired people first
(``ZREMRANGEBYSCORE``), so a dead worker's viewers vanish within ``ttl`` seconds;
a person leaves the count when their last socket leaves (an atomic script, so a
tab opening on another worker at the same moment is not lost). Unique viewers
are a HyperLogLog (12 KB per session whatever the audience), likes a plain
counter, rate limits one counter per fixed window.
"""

import asyncio
import time
import weakref

import redis.asyncio as aioredis

from .base import PresenceBackend

#: Counters of a session nobody touched for this long are dropped (likes are in the database).
KEEP_SECONDS = 24 * 3600

# KEYS: the person's sockets, the people (or staff) set. ARGV: connection id, viewer key, now.
LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[1]) == 0 then
    redis.call('ZREM', KEYS[2], ARGV[2])
end
return 0
"""

# KEYS: the window's counter. ARGV: amount, limit, seconds to keep the counter.
TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local granted = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used))
if granted > 0 then
    redis.call('INCRBY', KEYS[1], granted)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return granted
"""


# KEYS: the address's admitted keys, the people set. ARGV: viewer key, limit, now, until, keep.
# A key stays admitted while its person is in ``people`` (refreshed by the hub) or
# until its own reservation ends; the set holds at most ``limit`` keys.
ADMIT = """
local now = tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
    for _, key in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
        local alive = tonumber(redis.call('ZSCORE', KEYS[2], key) or '0')
        local reserved = tonumber(redis.call('ZSCORE', KEYS[1], key) or '0')
        if alive <= now and reserved <= now then
            redis.call('ZREM', KEYS[1], key)
        end
    end
    if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
        return 0
    end
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisPresence(PresenceBackend):
    """Presence in Redis; ``url`` as for ``redis.from_url``, ``prefix`` namespaces the keys."""

    def __init__(self, ttl=30, url="redis://127.0.0.1:6379/0", prefix="wagtail_live", **options):
        super().__init__(ttl=ttl)
        self.url = url
        self.prefix = prefix
        # redis.asyncio clients belong to the event loop that made them; tests and
        # async_to_sync callers run several loops in one process.
        self._clients = weakref.WeakKeyDictionary()

    @property
    def client(self):
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = aioredis.from_url(self.url)
        return client

    def _key(self, session_id, kind):
        return f"{self.prefix}:presence:{session_id}:{kind}"

    def _sockets_key(self, session_id, viewer_key):
        return self._key(session_id, f"sockets:{viewer_key}")

    def _people_key(self, session_id, staff):
        return self._key(session_id, "staff" if staff else "people")

    def _add(self, pipe, session_id, connection_id, viewer_key, staff, expires):
        sockets = self._sockets_key(session_id, viewer_key)
        people = self._people_key(session_id, staff)
        pipe.zadd(sockets, {connection_id: expires})
        pipe.expire(sockets, self.ttl * 4)
        pipe.zadd(people, {viewer_key: expires}, gt=True)
        pipe.expire(people, self.ttl * 4)

    async def join(self, session_id, connection_id, viewer_key, staff=False):
        pipe = self.client.pipeline(transaction=False)
        self._add(pipe, session_id, connection_id, viewer_key, staff, time.time() + self.ttl)
        if not staff:
            viewers = self._key(session_id, "viewers")
            pipe.pfadd(viewers, viewer_key)
            pipe.expire(viewers, KEEP_SECONDS)
        await pipe.execute()

    async def leave(self, session_id, connection_id, viewer_key, staff=False):
        keys = [self._sockets_key(session_id, viewer_key), self._people_key(session_id, staff)]
        await self.client.eval(LEAVE, 2, *keys, connection_id, viewer_key, time.time())

    async def admit(self, session_id, address, viewer_key, limit):
        now = time.time()
        keys = [self._key(session_id, f"address:{address}"), self._people_key(session_id, False)]
        # The set outlives idle spells: entries leave by liveness, not by the key expiring.
        args = (viewer_key, limit, now, now + self.ttl, KEEP_SECONDS)
        return bool(await self.client.eval(ADMIT, 2, *keys, *args))

    async def refresh(self, session_id, members):
        members = list(members)
        if not members:
            return
        expires = time.time() + self.ttl
        pipe = self.client.pipeline(transaction=False)
        for connection_id, viewer_key, staff in members:
            self._add(pipe, session_id, connection_id, viewer_key, staff, expires)
        await pipe.execute()

    async def counts(self, session_id):
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for staff in (False, True):
            people = self._people_key(session_id, staff)
            pipe.zremrangebyscore(people, "-inf", now)
            pipe.zcard(people)
        _, viewers, _, staff_count = await pipe.execute()
        return viewers, staff_count

    async def unique_viewers(self, session_id):
        return await self.client.pfcount(self._key(session_id, "viewers"))

    async def take(self, key, amount, limit, period):
        window = int(time.time() // period)
        counter = f"{self.prefix}:rate:{key}:{window}"
        return int(await self.client.eval(TAKE, 1, counter, amount, limit, int(period) + 1))

    async def add_likes(self, session_id, amount, initial=0):
        key = self._key(session_id, "likes")
        pipe = self.client.pipeline(transaction=False)
        pipe.set(key, initial, nx=True)
        pipe.incrby(key, amount)
        pipe.expire(key, KEEP_SECONDS)
        _, total, _ = await pipe.execute()
        return total

    async def likes(self, session_id, initial=0):
        key = self._key(session_id, "likes")
        pipe = self.client.pipeline(transaction=False)
        pipe.set(key, initial, nx=True, ex=KEEP_SECONDS)
        pipe.get(key)
        _, total = await pipe.execute()
        return int(total)

    async def claim(self, key, seconds):
        return bool(await self.client.set(f"{self.prefix}:claim:{key}", 1, nx=True, ex=seconds))

    async def clear(self, session_id):
        # Each person's sockets set expires on its own within 4 × ttl.
        await self.client.delete(
            *(self._key(session_id, kind) for kind in ("people", "staff", "viewers", "likes"))
        )
