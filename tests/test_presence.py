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


async def test_counts_people_not_sockets(backend):
    await backend.join(1, "a", "user:1")
    await backend.join(1, "b", "user:1")  # a second tab of the same person
    await backend.join(1, "c", "anon:visitor")
    await backend.join(2, "d", "user:2")
    assert await backend.counts(1) == (2, 0)
    assert await backend.count(2) == 1
    await backend.leave(1, "a", "user:1")
    await backend.leave(1, "never-joined", "user:7")
    assert await backend.count(1) == 2, "user 1 still has a tab open"
    await backend.leave(1, "b", "user:1")
    assert await backend.count(1) == 1


async def test_300_sockets_of_one_person_count_once(backend):
    for index in range(300):
        await backend.join(1, f"socket-{index}", "user:1")
    await backend.join(1, "other", "user:2")
    assert await backend.count(1) == 2


async def test_staff_are_counted_apart_and_are_not_unique_viewers(backend):
    await backend.join(1, "dashboard", "user:9", staff=True)
    await backend.join(1, "go-live", "user:9", staff=True)
    await backend.join(1, "moderator", "user:8", staff=True)
    assert await backend.counts(1) == (0, 2)
    await backend.join(1, "viewer", "user:1")
    assert await backend.counts(1) == (1, 2)
    assert await backend.unique_viewers(1) == 1
    await backend.leave(1, "dashboard", "user:9", staff=True)
    assert await backend.counts(1) == (1, 2)
    await backend.leave(1, "go-live", "user:9", staff=True)
    assert await backend.counts(1) == (1, 1)


async def test_connections_expire_unless_refreshed(backend):
    await backend.join(1, "alive", "user:1")
    await backend.join(1, "dead", "user:2")
    for _ in range(3):
        await asyncio.sleep(0.5)
        await backend.refresh(1, [("alive", "user:1", False)])
    # "dead" was never refreshed: like the viewers of a worker that died.
    assert await backend.count(1) == 1
    await asyncio.sleep(1.2)
    assert await backend.count(1) == 0


async def test_a_person_on_two_workers_stays_while_one_worker_lives(backend):
    """Tabs on two workers: the one that dies stops refreshing; the person still counts."""
    await backend.join(1, "worker-a:tab", "user:1")
    await backend.join(1, "worker-b:tab", "user:1")
    for _ in range(4):
        await asyncio.sleep(0.5)
        await backend.refresh(1, [("worker-a:tab", "user:1", False)])
    assert await backend.count(1) == 1
    await backend.leave(1, "worker-a:tab", "user:1")
    await asyncio.sleep(0.1)
    # The dead worker's socket had expired: the person's last live socket left.
    assert await backend.count(1) == 0


async def test_anonymous_people_per_address_are_capped(backend):
    for key in ("anon:a", "anon:b", "anon:c"):
        assert await backend.admit(1, "203.0.113.7", key, 3)
        await backend.join(1, f"socket-{key}", key)
    assert not await backend.admit(1, "203.0.113.7", "anon:d", 3)
    assert await backend.admit(1, "203.0.113.7", "anon:a", 3)  # already in: a new tab
    # Other addresses and other sessions have their own allowance.
    assert await backend.admit(1, "2001:db8::7", "anon:d", 3)
    assert await backend.admit(2, "203.0.113.7", "anon:d", 3)
    # Live people keep their place past the reservation while the hub refreshes them ...
    await asyncio.sleep(0.6)
    await backend.refresh(1, [(f"socket-{k}", k, False) for k in ("anon:a", "anon:b", "anon:c")])
    await asyncio.sleep(0.6)
    assert not await backend.admit(1, "203.0.113.7", "anon:d", 3)
    # ... and a person who left frees theirs once the reservation is over.
    await backend.leave(1, "socket-anon:b", "anon:b")
    await backend.refresh(1, [(f"socket-{k}", k, False) for k in ("anon:a", "anon:c")])
    assert await backend.admit(1, "203.0.113.7", "anon:d", 3)
    assert not await backend.admit(1, "203.0.113.7", "anon:e", 3)


async def test_reservations_count_before_the_join(backend):
    """Admitted but not joined yet (sockets racing in on several workers) still counts."""
    results = await asyncio.gather(
        *(backend.admit(1, "203.0.113.7", f"anon:{n}", 4) for n in range(20))
    )
    assert sum(results) == 4


async def test_unique_viewers(backend):
    for connection, viewer in [("a", "user:1"), ("b", "user:1"), ("c", "user:2"), ("d", "anon:x")]:
        await backend.join(1, connection, viewer)
    assert await backend.unique_viewers(1) == 3


async def test_rate_limits_are_shared_by_every_caller_of_a_key(backend):
    key = f"likes:1:addr:{uuid.uuid4().hex}"
    assert await backend.take(key, 4, limit=10, period=1) == 4
    assert await backend.take(key, 4, limit=10, period=1) == 4  # another socket, same person
    assert await backend.take(key, 4, limit=10, period=1) == 2
    assert await backend.take(key, 1, limit=10, period=1) == 0
    assert await backend.take(f"{key}-other", 3, limit=10, period=1) == 3
    await asyncio.sleep(1.05)
    assert await backend.take(key, 4, limit=10, period=1) == 4


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
    await backend.join(1, "b", "user:2", staff=True)
    await backend.add_likes(1, 1)
    await backend.claim("sample:1:1", 10)
    await backend.take("likes:1:user:1", 1, limit=5, period=1)
    kinds = ("people", "staff", "viewers", "likes", "sockets:user:1", "sockets:user:2")
    for kind in kinds:
        assert 0 < await backend.client.ttl(backend._key(1, kind)) <= 24 * 3600
    assert 0 < await backend.client.ttl(f"{backend.prefix}:claim:sample:1:1") <= 10
    await backend.clear(1)
    await backend.client.aclose()


# -- real websockets against a real daphne: people, staff, rate limits ---------------------

SITE_SETUP = """
from tests.utils import make_editor, make_session
host = make_editor("host")
make_editor("alice")
session = make_session("Counting people", owner=host)
session.start()
result = session.pk
"""


@pytest.fixture(
    scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.services)]
)
def counting_site(request, tmp_path_factory):
    from tests.live_site import LiveSite, migrated_database

    live_settings = {
        "CHAT_ANONYMOUS": True,
        "CHAT_RATE_LIMIT": 3,
        "CHAT_RATE_PERIOD": 60,
        "LIKE_RATE_LIMIT": 5,
        "VIEWER_SAMPLE_SECONDS": 1,
        "ANONYMOUS_VIEWERS_PER_ADDRESS": 5,
    }
    if request.param == "redis":
        require(redis_reachable(), "Redis on 127.0.0.1:6379")
        live_settings.update(
            PRESENCE_BACKEND="redis",
            PRESENCE_OPTIONS={"prefix": f"wagtail-live-test-{uuid.uuid4().hex[:8]}"},
        )
    directory = tmp_path_factory.mktemp(f"presence-{request.param}")
    site = LiveSite(directory / "site", migrated_database(directory), live_settings)
    pk = site.run(SITE_SETUP)
    site.start()
    yield site, pk
    site.stop()


def samples(site, pk):
    return site.run(
        f"from wagtail_live.models import ViewerSample\n"
        f"result = list(ViewerSample.objects.filter(session_id={pk}).values_list('viewers', "
        f"flat=True))"
    )


def test_live_count_counts_people_and_staff_apart(counting_site):
    from tests.live_client import RealSocket

    site, pk = counting_site

    async def scenario():
        host = await RealSocket.open(site, pk, "host")
        assert (host.state["viewers"], host.state["staff"]) == (0, 1)
        dashboard = await RealSocket.open(site, pk, "host")  # the host's second screen
        await asyncio.sleep(2.5)  # samples while only the host watches
        assert set(samples(site, pk)) <= {0}, "the host's screens are not audience"

        seen = []

        def counted(expected):
            def check(message):
                seen.append(message["count"])
                return message["count"] == expected

            return check

        alice = [await RealSocket.open(site, pk, "alice") for _ in range(30)]
        await host.expect("viewers", timeout=10, where=counted(1))
        tabs = [await RealSocket.open(site, pk, visitor="a" * 32) for _ in range(5)]
        await host.expect("viewers", timeout=10, where=counted(2))
        scripted = [await RealSocket.open(site, pk) for _ in range(10)]  # no cookies at all
        message = await host.expect("viewers", timeout=10, where=counted(3))
        assert message["staff"] == 1
        await asyncio.sleep(1.5)
        assert max(seen) == 3, seen
        for client in (*alice[1:], *tabs[1:], *scripted[1:]):
            await client.close()
        await asyncio.sleep(2)
        # Still three people: each kept one socket (a new screen's state says so).
        again = await RealSocket.open(site, pk, "host")
        assert (again.state["viewers"], again.state["staff"]) == (3, 1)
        await again.close()
        for client in (host, dashboard, alice[0], tabs[0], scripted[0]):
            await client.close()

    asyncio.run(scenario())
    stored = site.run(f"result = LiveSession.objects.get(pk={pk}).peak_viewers")
    assert stored == 3
    assert max(samples(site, pk)) <= 3


def test_guest_likes_and_chat_are_limited_across_sockets(counting_site):
    from tests.live_client import RealSocket

    site, pk = counting_site

    async def scenario():
        guests = [await RealSocket.open(site, pk, visitor=uuid.uuid4().hex) for _ in range(10)]
        before = guests[0].state["likes"]
        for guest in guests:
            await guest.send({"type": "like", "count": 5})
        await asyncio.sleep(2.5)
        total = (await guests[0].expect("likes", timeout=5)).get("total")
        # 5 a second for the address, whatever the sockets: at most two windows' worth.
        assert total - before <= 10, total - before

        refused = 0
        for index, guest in enumerate(guests[:6]):
            await guest.send({"type": "chat.send", "text": f"hello {index}", "name": "Guest"})
            message = await guest.expect("error" if index >= 3 else "chat.message", timeout=5)
            refused += message["type"] == "error" and message["code"] == "rate_limited"
        assert refused == 3
        for guest in guests:
            await guest.close()

    asyncio.run(scenario())


def test_one_client_cannot_inflate_the_count_with_cookies(counting_site):
    """The attack: one address, no login, 200 sockets each with its own made-up visitor
    cookie; then forged signatures; then real signed ids fetched one by one."""
    from django.core import signing

    from tests.live_client import RealSocket, visitor_cookie
    from wagtail_live.visitors import visitor_id

    site, _ = counting_site
    pk = site.run(
        """
        from tests.utils import make_session
        from django.contrib.auth import get_user_model
        session = make_session("Inflate me", owner=get_user_model().objects.get(username="host"))
        session.start()
        result = session.pk
        """
    )

    async def scenario():
        host = await RealSocket.open(site, pk, "host")
        crowd = []
        for _ in range(200):
            crowd.append(await RealSocket.open(site, pk, cookie=uuid.uuid4().hex[:16]))
        forged = [
            f"{uuid.uuid4().hex}:{'A' * 27}",
            signing.Signer(salt="other.salt").sign(uuid.uuid4().hex),
            visitor_cookie("tampered")[:-1] + "A",
        ]
        crowd += [await RealSocket.open(site, pk, cookie=cookie) for cookie in forged]
        assert crowd[-1].state["viewers"] == 1  # all of them: the one shared address
        # Every one was handed a real signed id for next time ...
        issued = [client.state["visitor"] for client in crowd]
        assert all(visitor_id(value) for value in issued) and len(set(issued)) == len(issued)
        # ... and coming back with those, they are people, but at most 5 from one address.
        crowd += [await RealSocket.open(site, pk, cookie=value) for value in issued[:30]]
        assert crowd[-1].state["viewers"] == 5
        await asyncio.sleep(2.5)  # a couple of samples
        fresh = await RealSocket.open(site, pk, "alice")
        assert fresh.state["viewers"] == 6 and fresh.state["staff"] == 1
        for client in (host, fresh, *crowd):
            await client.close()

    asyncio.run(scenario())
    assert site.run(f"result = LiveSession.objects.get(pk={pk}).peak_viewers") <= 6
    assert max(samples(site, pk)) <= 6
