"""Two real daphne processes sharing one session over Redis (channels_redis + redis presence)."""

import asyncio
import os
import signal
import socket
import uuid

import pytest
import websockets

from tests.live_client import RealSocket as Socket
from tests.live_site import LiveSite, migrated_database
from tests.utils import require

pytestmark = [pytest.mark.services, pytest.mark.slow]

REDIS_URL = os.environ.get("WAGTAIL_LIVE_REDIS_URL", "redis://127.0.0.1:6379/0")
TTL = 3  # seconds; short so the dead-worker case stays quick

SETUP = """
from tests.utils import make_editor, make_session
host = make_editor("host")
make_editor("alice")
make_editor("bob")
# Site-wide bans need moderate_chat: a host may only mute in their own session.
make_editor("moderator", "moderate_chat")
session = make_session("Two workers", owner=host)
session.start()
result = session.pk
"""


def redis_reachable():
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    require(redis_reachable(), "Redis on 127.0.0.1:6379")
    directory = tmp_path_factory.mktemp("two-daphne")
    prefix = f"wagtail-live-test-{uuid.uuid4().hex[:8]}"
    live_settings = {
        "PRESENCE_BACKEND": "redis",
        "PRESENCE_OPTIONS": {"prefix": prefix},
        "PRESENCE_TTL": TTL,
        "REDIS_URL": REDIS_URL,
    }
    template = migrated_database(directory)
    first = LiveSite(directory / "a", template, live_settings)
    second = LiveSite(directory / "b", template, live_settings)
    # Both workers serve one site: the same database, the same Redis.
    for site in (first, second):
        site.env = {
            **first.env,
            "DJANGO_SETTINGS_MODULE": "tests.services.redis_site_settings",
            "WAGTAIL_LIVE_REDIS_PREFIX": prefix,
            "WAGTAIL_LIVE_REDIS_URL": REDIS_URL,
        }
    session_pk = first.run(SETUP)
    first.start()
    second.start()
    yield first, second, session_pk
    second.stop()
    first.stop()


def test_chat_and_counts_cross_workers(sites):
    first, second, pk = sites

    async def scenario():
        alice = await Socket.open(first, pk, "alice")
        bob = await Socket.open(second, pk, "bob")
        # Four anonymous browsers (viewers count people: each has its own visitor cookie).
        guests = [await Socket.open(first, pk, visitor=uuid.uuid4().hex) for _ in range(2)]
        guests += [await Socket.open(second, pk, visitor=uuid.uuid4().hex) for _ in range(2)]

        # A message sent through one worker reaches viewers on the other.
        await alice.send({"type": "chat.send", "text": "hello from worker A"})
        message = await bob.expect("chat.message")
        assert message["text"] == "hello from worker A"
        await bob.send({"type": "chat.send", "text": "hello back from B"})
        await alice.expect("chat.message", where=lambda m: m["text"] == "hello back from B")
        await guests[3].expect("chat.message", where=lambda m: m["text"] == "hello from worker A")

        # Counts sum both workers: 3 people on each.
        for client in (alice, bob):
            await client.expect("viewers", where=lambda m: m["count"] == 6)
        await alice.send({"type": "like", "count": 5})
        await bob.send({"type": "like", "count": 3})
        for client in (alice, bob):
            await client.expect("likes", where=lambda m: m["total"] == 8)

        # A site moderator's ban made on worker A closes bob's socket on worker B.
        moderator = await Socket.open(first, pk, "moderator")
        await moderator.send({"type": "mod.ban", "user_id": bob.state["user"]["id"], "reason": "x"})
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await bob.receive(5)
        assert closed.value.rcvd.code == 4403
        for client in (alice, moderator, *guests):
            await client.close()

    asyncio.run(scenario())
    stored = first.run(f"s = LiveSession.objects.get(pk={pk}); result = [s.likes, s.peak_viewers]")
    assert stored[0] == 8 and stored[1] >= 6


def test_a_dead_workers_viewers_drop_out_of_the_count(sites):
    first, second, pk = sites

    async def scenario():
        watcher = await Socket.open(first, pk, visitor=uuid.uuid4().hex)
        doomed = [await Socket.open(second, pk, visitor=uuid.uuid4().hex) for _ in range(3)]
        await watcher.expect("viewers", where=lambda m: m["count"] == 4)
        # SIGKILL: the worker gets no chance to say goodbye.
        os.killpg(second.process.pid, signal.SIGKILL)
        second.process.wait()
        await watcher.expect("viewers", timeout=TTL + 5, where=lambda m: m["count"] == 1)
        for client in doomed:
            client.connection.transport.abort()
        await watcher.close()

    asyncio.run(scenario())
