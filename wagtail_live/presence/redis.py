"""Redis presence: several daphne workers (on one or many machines) share one count.

Members of a session live in a sorted set scored by their expiry time, so
counting drops the expired ones first (``ZREMRANGEBYSCORE``) and a dead worker's
connections vanish within ``ttl`` seconds. Unique viewers are a HyperLogLog
(12 KB per session whatever the audience), likes a plain counter.
"""

import asyncio
import time
import weakref

import redis.asyncio as aioredis

from .base import PresenceBackend

#: Counters of a session nobody touched for this long are dropped (likes are in the database).
KEEP_SECONDS = 24 * 3600


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

    async def join(self, session_id, connection_id, viewer_key=None):
        pipe = self.client.pipeline(transaction=False)
        members = self._key(session_id, "members")
        pipe.zadd(members, {connection_id: time.time() + self.ttl})
        pipe.expire(members, self.ttl * 4)
        if viewer_key is not None:
            viewers = self._key(session_id, "viewers")
            pipe.pfadd(viewers, viewer_key)
            pipe.expire(viewers, KEEP_SECONDS)
        await pipe.execute()

    async def leave(self, session_id, connection_id):
        await self.client.zrem(self._key(session_id, "members"), connection_id)

    async def refresh(self, session_id, connection_ids):
        if not connection_ids:
            return
        expires = time.time() + self.ttl
        members = self._key(session_id, "members")
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(members, dict.fromkeys(connection_ids, expires))
        pipe.expire(members, self.ttl * 4)
        await pipe.execute()

    async def count(self, session_id):
        members = self._key(session_id, "members")
        pipe = self.client.pipeline(transaction=False)
        pipe.zremrangebyscore(members, "-inf", time.time())
        pipe.zcard(members)
        _, count = await pipe.execute()
        return count

    async def unique_viewers(self, session_id):
        return await self.client.pfcount(self._key(session_id, "viewers"))

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
        await self.client.delete(
            *(self._key(session_id, kind) for kind in ("members", "viewers", "likes"))
        )
