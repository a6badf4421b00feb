"""Presence backends: the same behaviour in memory and on a real Redis."""

import asyncio
import socket
import uuid

import pytest
from django.test import override_settings

from tests.utils import require
from wagtail_live import presence
from wagtail_live.presence.memory import MemoryPresence
from wagtail_live.presence.redis import RedisPresence


def redis_reachable():
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.services)])
async def backend(request):
    if request.param == "memory":
        yield MemoryPresence(ttl=1)
        return
    require(redis_reachable(), "Redis on 127.0.0.1:6379")
    backend = RedisPresence(ttl=1, prefix=f"wagtail-live-test-{uuid.uuid4().hex[:8]}")
    yield backend
    for session_id in (1, 2):
        await backend.clear(session_id)
    await backend.client.aclose()


async def test_counts_connections_per_session(backend):
    await backend.join(1, "a", "user:1")
    await backend.join(1, "b", "user:1")
    await backend.join(2, "c", "user:2")
    assert await backend.count(1) == 2
    assert await backend.count(2) == 1
    await backend.leave(1, "a")
    await backend.leave(1, "never-joined")
    assert await backend.count(1) == 1


async def test_connections_expire_unless_refreshed(backend):
    await backend.join(1, "alive")
    await backend.join(1, "dead")
    for _ in range(3):
        await asyncio.sleep(0.5)
        await backend.refresh(1, ["alive"])
    # "dead" was never refreshed: like the viewers of a worker that died.
    assert await backend.count(1) == 1
    await asyncio.sleep(1.2)
    assert await backend.count(1) == 0


async def test_unique_viewers(backend):
    for connection, viewer in [("a", "user:1"), ("b", "user:1"), ("c", "user:2"), ("d", None)]:
        await backend.join(1, connection, viewer)
    assert await backend.unique_viewers(1) == 2


async def test_likes_start_from_the_stored_total(backend):
    assert await backend.likes(1, initial=10) == 10
    assert await backend.add_likes(1, 3, initial=999) == 13
    assert await backend.add_likes(2, 1, initial=5) == 6


async def test_claims_go_to_one_caller_per_period(backend):
    key = f"sample:{uuid.uuid4().hex}"
    assert await backend.claim(key, 1) is True
    assert await backend.claim(key, 1) is False
    await asyncio.sleep(1.1)
    assert await backend.claim(key, 1) is True


def test_backend_is_picked_by_setting():
    presence._backend = None
    assert isinstance(presence.get_presence_backend(), MemoryPresence)
    with override_settings(WAGTAIL_LIVE={"PRESENCE_BACKEND": "redis", "PRESENCE_TTL": 7}):
        backend = presence.get_presence_backend()
        assert isinstance(backend, RedisPresence) and backend.ttl == 7
    assert isinstance(presence.get_presence_backend(), MemoryPresence)


@pytest.mark.services
async def test_redis_keys_expire_so_nothing_leaks():
    require(redis_reachable(), "Redis on 127.0.0.1:6379")
    backend = RedisPresence(ttl=1, prefix=f"wagtail-live-test-{uuid.uuid4().hex[:8]}")
    await backend.join(1, "a", "user:1")
    await backend.add_likes(1, 1)
    await backend.claim("sample:1:1", 10)
    for kind in ("members", "viewers", "likes"):
        assert 0 < await backend.client.ttl(backend._key(1, kind)) <= 24 * 3600
    assert 0 < await backend.client.ttl(f"{backend.prefix}:claim:sample:1:1") <= 10
    await backend.clear(1)
    await backend.client.aclose()
