"""The live websocket (``ws/live/<pk>/``): protocol, bad input, fan-out, counts, moderation."""

import asyncio
import json
import uuid
from datetime import datetime

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import override_settings
from django.utils import timezone

from tests.live_client import LiveClient, visitor_cookie
from tests.utils import make_editor, make_session
from wagtail_live import chat, events, presence
from wagtail_live.models import ChatMessage, LiveSession, ViewerSample

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_presence():
    """Each test gets its own in-memory presence (session pks repeat across tests)."""
    presence._backend = None
    yield
    presence._backend = None


@pytest.fixture
def viewer(db):
    return get_user_model().objects.create_user("viewer", "viewer@example.com", "password")


@pytest.fixture
def other_viewer(db):
    return get_user_model().objects.create_user("other", "other@example.com", "password")


@pytest.fixture
def moderator(db):
    return make_editor("moderator", "moderate_chat")


async def connected(session, user=None, visitor=None):
    """A joined client; ``visitor`` is an anonymous browser's visitor cookie (one person each)."""
    client = LiveClient(session.pk, user)
    if visitor:
        client.communicator.scope["cookies"] = {"wagtail_live_visitor": visitor_cookie(visitor)}
    client.state = await client.connect()
    return client


async def disconnect_all(*clients):
    for client in clients:
        await client.disconnect()


# -- joining -----------------------------------------------------------------


async def test_state_on_join(session, viewer, other_viewer):
    message = await database_sync_to_async(chat.send_message)(session, other_viewer, "earlier")
    client = await connected(session, viewer)
    state = client.state
    assert state["status"] == "ready"
    assert state["viewers"] == 1
    assert state["likes"] == 0
    assert state["pinned"] is None
    assert state["slow_mode"] == 0
    assert state["messages"] == [message.as_event()]
    assert state["user"] == {"id": viewer.pk, "name": "viewer"}
    assert state["can"]["chat"] is True and state["can"]["moderate"] is False
    await client.disconnect()


async def test_unknown_session_closes_4404(db):
    client = LiveClient(987654)
    connected, _ = await client.communicator.connect()
    assert connected  # accepted so the close code reaches the browser
    error = await client.receive()
    assert error["code"] == "not_found"
    assert await client.expect_close() == 4404


async def test_private_session_refuses_anonymous_sockets(host, viewer):
    private = await database_sync_to_async(make_session)(
        "Members", owner=host, privacy=LiveSession.Privacy.PRIVATE
    )
    client = LiveClient(private.pk, AnonymousUser())
    await client.communicator.connect()
    assert (await client.receive())["code"] == "login_required"
    assert await client.expect_close() == 4403
    member = await connected(private, viewer)
    assert member.state["status"] == "ready"
    await member.disconnect()


async def test_banned_user_cannot_connect(session, viewer, moderator):
    await database_sync_to_async(chat.ban)(moderator, viewer.pk)
    client = LiveClient(session.pk, viewer)
    await client.communicator.connect()
    assert (await client.receive())["code"] == "banned"
    assert await client.expect_close() == 4403


# -- chat --------------------------------------------------------------------


async def test_chat_reaches_every_viewer(session, viewer, other_viewer):
    sender, watcher = await connected(session, viewer), await connected(session, other_viewer)
    anonymous = await connected(session, AnonymousUser())
    await sender.send({"type": "chat.send", "text": "<img src=x onerror=alert(1)>"})
    for client in (sender, watcher, anonymous):
        message = await client.expect("chat.message")
        assert message["text"] == "<img src=x onerror=alert(1)>"
        assert message["user_id"] == viewer.pk
    await disconnect_all(sender, watcher, anonymous)


async def test_anonymous_socket_may_watch_but_not_chat(session):
    client = await connected(session, AnonymousUser())
    assert client.state["can"]["login_required"] is True
    await client.send({"type": "chat.send", "text": "hi"})
    assert (await client.expect("error"))["code"] == "login_required"
    await client.disconnect()


@override_settings(WAGTAIL_LIVE={"CHAT_ANONYMOUS": True})
async def test_guests_chat_with_a_name_when_allowed(session):
    client = await connected(session, AnonymousUser())
    await client.send({"type": "chat.send", "text": "hi", "name": "Ann"})
    message = await client.expect("chat.message")
    assert (message["display_name"], message["user_id"]) == ("Ann", None)
    await client.disconnect()


async def test_muted_user_gets_error_with_end_time(session, viewer, moderator):
    muted = await connected(session, viewer)
    mod = await connected(session, moderator)
    await mod.send({"type": "mod.mute", "user_id": viewer.pk, "seconds": 300})
    await asyncio.sleep(0.2)
    await muted.send({"type": "chat.send", "text": "hi"})
    error = await muted.expect("error")
    assert error["code"] == "muted" and error["until"]
    await mod.send({"type": "mod.mute", "user_id": viewer.pk, "seconds": None})
    await asyncio.sleep(0.2)
    await muted.send({"type": "chat.send", "text": "hi"})
    assert (await muted.expect("error"))["until"] == "session_end"
    await disconnect_all(muted, mod)


async def test_muted_viewer_is_told_at_once_with_the_end_time(session, viewer, moderator):
    muted, elsewhere = await connected(session, viewer), await connected(session, viewer)
    bystander = await connected(session, AnonymousUser())
    other = await database_sync_to_async(make_session)("Other", owner=moderator)
    other_session = await connected(other, viewer)
    mod = await connected(session, moderator)
    await mod.send({"type": "mod.mute", "user_id": viewer.pk, "seconds": 300})
    for client in (muted, elsewhere):  # every tab of the user in this session
        notice = await client.expect("chat.restricted")
        assert notice["restriction"] == "muted" and notice["message"]
        until = datetime.fromisoformat(notice["until"])
        assert 290 < (until - timezone.now()).total_seconds() <= 300
    # Only them, and only in the session they were muted in.
    for client in (bystander, other_session, mod):
        assert not [m for m in await client.collect(0.3) if m["type"] == "chat.restricted"]
    # Joining again: state says so too.
    again = await connected(session, viewer)
    assert again.state["can"]["chat"] is False
    assert datetime.fromisoformat(again.state["can"]["muted_until"]) == until
    await mod.send({"type": "mod.mute", "user_id": viewer.pk, "seconds": None})
    assert (await muted.expect("chat.restricted"))["until"] == "session_end"
    await mod.send({"type": "mod.unmute", "user_id": viewer.pk})
    lifted = await muted.expect("chat.restricted")
    assert (lifted["restriction"], lifted["until"]) == (None, None)
    await muted.send({"type": "chat.send", "text": "free again"})
    assert (await muted.expect("chat.message"))["text"] == "free again"
    await disconnect_all(muted, elsewhere, bystander, other_session, mod, again)


async def test_banned_viewer_is_told_before_the_socket_closes(session, viewer, moderator):
    client = await connected(session, viewer)
    mod = await connected(session, moderator)
    await mod.send({"type": "mod.ban", "user_id": viewer.pk})
    notice = await client.expect("chat.restricted")
    assert (notice["restriction"], notice["until"]) == ("banned", None)
    assert (await client.expect("error"))["code"] == "banned"
    assert await client.expect_close() == 4403
    await mod.disconnect()


# -- bad input: an error, the socket stays open and still works ---------------


BAD_FRAMES = [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_message"),
    ("42", "bad_message"),
    ('"chat.send"', "bad_message"),
    ("null", "bad_message"),
    ('{"text": "no type"}', "invalid"),
    ('{"type": 7}', "invalid"),
    ('{"type": "chat.shout", "text": "hi"}', "unknown_type"),
    ('{"type": "chat.send"}', "invalid"),
    ('{"type": "chat.send", "text": 5}', "invalid"),
    ('{"type": "chat.send", "text": ""}', "empty"),
    ('{"type": "chat.send", "text": "   "}', "empty"),
    (json.dumps({"type": "chat.send", "text": "x" * 501}), "too_long"),
    ('{"type": "like", "count": "3"}', "invalid"),
    ('{"type": "like", "count": 0}', "invalid"),
    ('{"type": "like", "count": true}', "invalid"),
    ('{"type": "mod.remove"}', "invalid"),
    ('{"type": "mod.mute", "user_id": 1}', "invalid"),
    ('{"type": "mod.slow", "seconds": "5"}', "invalid"),
    ('{"type": "mod.pin", "message_id": "1"}', "invalid"),
    (json.dumps({"type": "chat.send", "text": "x" * 4100}), "too_long"),
    (json.dumps({"type": "chat.send", "text": "x" * 7600}), "frame_too_large"),
    (json.dumps({"type": "chat.send", "text": "\u200b\u2800\u3164"}), "empty"),
]


@pytest.mark.parametrize("frame, code", BAD_FRAMES)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(session, viewer, frame, code):
    client = await connected(session, viewer)
    bystander = await connected(session, AnonymousUser())
    await client.send_raw(text=frame)
    error = await client.expect("error")
    assert error["code"] == code
    assert error["message"]
    await client.send({"type": "chat.send", "text": "still here"})
    assert (await client.expect("chat.message"))["text"] == "still here"
    assert (await bystander.expect("chat.message"))["text"] == "still here"
    assert await database_sync_to_async(ChatMessage.objects.count)() == 1
    await disconnect_all(client, bystander)


# Length is counted in characters, whatever the client's JSON encoder made of them (issue 12).
EMOJI = "\U0001f600"  # outside the BMP: escaped as a surrogate pair, 12 bytes


async def test_500_escaped_emoji_fit_and_501_are_too_long(session, viewer):
    client = await connected(session, viewer)
    frame = json.dumps({"type": "chat.send", "text": EMOJI * 500})  # ensure_ascii: \ud83d\ude00
    assert len(frame.encode()) > 6000
    await client.send_raw(text=frame)
    assert (await client.expect("chat.message"))["text"] == EMOJI * 500
    await client.send_raw(text=json.dumps({"type": "chat.send", "text": EMOJI * 501}))
    error = await client.expect("error")
    assert (error["code"], error["max_length"]) == ("too_long", 500)
    await client.disconnect()


@override_settings(WAGTAIL_LIVE={"CHAT_ANONYMOUS": True, "CHAT_MAX_LENGTH": 2000})
async def test_the_frame_limit_follows_the_character_limit(session):
    client = await connected(session, AnonymousUser())
    frame = json.dumps({"type": "chat.send", "text": EMOJI * 2000, "name": EMOJI * 40})
    assert len(frame.encode()) > 24_000
    await client.send_raw(text=frame)
    assert len((await client.expect("chat.message"))["text"]) == 2000
    await client.disconnect()


async def test_binary_frame_is_refused(session, viewer):
    client = await connected(session, viewer)
    await client.send_raw(data=b"\x00\x01")
    assert (await client.expect("error"))["code"] == "binary_unsupported"
    await client.send({"type": "like"})
    await client.disconnect()


async def test_frame_over_64_kib_closes_4009(session, viewer):
    client = await connected(session, viewer)
    bystander = await connected(session, AnonymousUser())
    await client.send_raw(text=json.dumps({"type": "chat.send", "text": "x" * 70_000}))
    assert await client.expect_close() == 4009
    assert not await database_sync_to_async(ChatMessage.objects.exists)()
    await bystander.send({"type": "like"})
    assert (await bystander.expect("likes"))["total"] == 1
    await disconnect_all(bystander)


async def test_flood_gets_rate_limited_then_closed_with_a_policy_code(session, viewer):
    client = await connected(session, viewer)
    bystander = await connected(session, AnonymousUser())
    for _ in range(60):
        await client.send_raw(text='{"type": "like"}')
    codes = []
    with pytest.raises(Exception) as closed:
        while True:
            codes.append((await client.receive())["type"])
    assert getattr(closed.value, "code", None) == 4008
    assert "error" in codes
    await bystander.send({"type": "like"})
    assert (await bystander.expect("likes"))["total"] >= 1
    await bystander.disconnect()


async def test_chat_rate_limit_error(session, viewer):
    client = await connected(session, viewer)
    for n in range(6):
        await client.send({"type": "chat.send", "text": f"m{n}"})
    error = await client.expect("error")
    assert error["code"] == "rate_limited"
    await client.disconnect()


async def test_moderation_by_a_non_moderator_is_forbidden(session, viewer, other_viewer):
    message = await database_sync_to_async(chat.send_message)(session, other_viewer, "hi")
    client = await connected(session, viewer)
    for frame in [
        {"type": "mod.remove", "message_id": message.pk},
        {"type": "mod.mute", "user_id": other_viewer.pk, "seconds": 60},
        {"type": "mod.ban", "user_id": other_viewer.pk, "reason": "x"},
        {"type": "mod.unban", "user_id": other_viewer.pk},
        {"type": "mod.slow", "seconds": 10},
        {"type": "mod.pin", "message_id": message.pk},
    ]:
        await client.send(frame)
        assert (await client.expect("error"))["code"] == "forbidden", frame
    assert not await database_sync_to_async(chat.is_banned)(other_viewer)
    await client.disconnect()


async def test_acting_on_another_sessions_message(session, host, viewer):
    other = await database_sync_to_async(make_session)("Other", owner=host)
    message = await database_sync_to_async(chat.send_message)(other, viewer, "elsewhere")
    client = await connected(session, host)
    await client.send({"type": "mod.remove", "message_id": message.pk})
    assert (await client.expect("error"))["code"] == "not_found"
    await client.disconnect()


async def test_ban_of_oneself_or_a_superuser(session, moderator, superuser):
    client = await connected(session, moderator)
    await client.send({"type": "mod.ban", "user_id": moderator.pk, "reason": "me"})
    assert (await client.expect("error"))["code"] == "invalid_target"
    await client.send({"type": "mod.ban", "user_id": superuser.pk, "reason": "boss"})
    assert (await client.expect("error"))["code"] == "invalid_target"
    await client.disconnect()


# -- moderation broadcasts ---------------------------------------------------


async def test_remove_pin_and_slow_mode_are_broadcast(session, host, viewer):
    mod, watcher = await connected(session, host), await connected(session, viewer)
    await watcher.send({"type": "chat.send", "text": "pin me"})
    message = await watcher.expect("chat.message")
    await mod.send({"type": "mod.pin", "message_id": message["id"]})
    assert (await watcher.expect("chat.pinned"))["message"]["id"] == message["id"]
    await mod.send({"type": "mod.slow", "seconds": 15})
    assert (await watcher.expect("chat.slow"))["seconds"] == 15
    await mod.send({"type": "mod.remove", "message_id": message["id"]})
    assert (await watcher.expect("chat.removed"))["id"] == message["id"]
    assert (await watcher.expect("chat.pinned"))["message"] is None
    late = await connected(session, AnonymousUser())
    assert late.state["messages"] == [] and late.state["slow_mode"] == 15
    await disconnect_all(mod, watcher, late)


@override_settings(WAGTAIL_LIVE={"CHAT_HISTORY": 3})
async def test_after_a_removal_state_still_holds_the_last_visible_messages(session, host, viewer):
    mod, watcher = await connected(session, host), await connected(session, viewer)
    for text in ("one", "two", "three", "four"):
        await watcher.send({"type": "chat.send", "text": text})
        latest = await watcher.expect("chat.message")
    await mod.send({"type": "mod.remove", "message_id": latest["id"]})
    await watcher.expect("chat.removed")
    await asyncio.sleep(0.3)  # the room reads the history again once, in the background
    late = await connected(session, AnonymousUser())
    assert [m["text"] for m in late.state["messages"]] == ["one", "two", "three"]
    await disconnect_all(mod, watcher, late)


async def test_ban_closes_the_users_sockets_in_every_session(session, host, viewer, moderator):
    other = await database_sync_to_async(make_session)("Other", owner=host)
    here, there = await connected(session, viewer), await connected(other, viewer)
    watcher = await connected(session, AnonymousUser())
    await here.send({"type": "chat.send", "text": "spam"})
    message = await here.expect("chat.message")
    assert (await watcher.expect("chat.message"))["id"] == message["id"]
    mod = await connected(session, moderator)
    await mod.send({"type": "mod.ban", "user_id": viewer.pk, "reason": "spam"})
    assert await here.expect_close() == 4403
    assert await there.expect_close() == 4403
    assert (await watcher.expect("chat.removed"))["id"] == message["id"]
    await mod.send({"type": "mod.unban", "user_id": viewer.pk})
    await asyncio.sleep(0.3)
    back = await connected(session, viewer)
    await back.send({"type": "chat.send", "text": "sorry"})
    assert (await back.expect("chat.message"))["text"] == "sorry"
    await disconnect_all(watcher, mod, back)


async def test_status_events_from_publish_reach_viewers(session, viewer):
    client = await connected(session, viewer)
    await events.publish(session, "status", state="live")
    assert (await client.expect("status"))["state"] == "live"
    await client.disconnect()


# -- counts --------------------------------------------------------------------


async def test_likes_are_coalesced_summed_and_persisted(session, viewer, other_viewer):
    a, b = await connected(session, viewer), await connected(session, other_viewer)
    for _ in range(5):
        await a.send({"type": "like"})
        await b.send({"type": "like", "count": 2})
    messages = await b.collect(2.5)
    likes = [m["total"] for m in messages if m["type"] == "likes"]
    assert likes[-1] == 15
    assert len(likes) <= 3  # about once a second, never once per tap
    await session.arefresh_from_db()
    assert session.likes == 15
    await disconnect_all(a, b)


async def test_likes_past_the_per_user_cap_are_dropped(session, viewer):
    client = await connected(session, viewer)
    await client.send({"type": "like", "count": 100})
    messages = await client.collect(1.5)
    assert [m["total"] for m in messages if m["type"] == "likes"] == [10]
    await client.disconnect()


async def test_the_like_cap_is_per_user_not_per_tab(session, viewer):
    first, second = await connected(session, viewer), await connected(session, viewer)
    await first.send({"type": "like", "count": 100})
    await second.send({"type": "like", "count": 100})
    messages = await first.collect(1.5)
    assert [m["total"] for m in messages if m["type"] == "likes"] == [10]
    await disconnect_all(first, second)


# Thirty anonymous browsers behind one address (a school's NAT): allowed to count apart here.
@override_settings(WAGTAIL_LIVE={"ANONYMOUS_VIEWERS_PER_ADDRESS": 100})
async def test_join_storm_costs_about_one_viewers_message_per_second(session, viewer):
    observer = await connected(session, viewer)
    # Thirty anonymous browsers: people, each with its own visitor cookie.
    crowd = [await connected(session, AnonymousUser(), visitor=uuid.uuid4().hex) for _ in range(30)]
    messages = await observer.collect(2.5)
    counts = [m["count"] for m in messages if m["type"] == "viewers"]
    assert counts[-1] == 31
    assert len(counts) <= 3
    await disconnect_all(*crowd[:10])
    messages = await observer.collect(1.5)
    assert [m["count"] for m in messages if m["type"] == "viewers"][-1] == 21
    await session.arefresh_from_db()
    assert session.peak_viewers == 31
    await disconnect_all(observer, *crowd[10:])
    assert await presence.get_presence_backend().count(session.pk) == 0


@override_settings(WAGTAIL_LIVE={"VIEWER_SAMPLE_SECONDS": 1})
async def test_viewer_samples_are_stored_while_live(session, viewer):
    await database_sync_to_async(session.start)()
    client = await connected(session, viewer)
    await asyncio.sleep(2.5)
    samples = await database_sync_to_async(list)(ViewerSample.objects.filter(session=session))
    assert 1 <= len(samples) <= 3
    assert samples[0].viewers == 1 and samples[0].unique_viewers == 1
    await client.disconnect()


async def test_one_layer_subscription_per_session_per_process(session, viewer):
    from wagtail_live.hub import get_hub

    clients = [await connected(session, AnonymousUser()) for _ in range(5)]
    hub = get_hub()
    room = hub.rooms[session.pk]
    assert len(room.sockets) == 5
    layer = hub.layer
    assert layer.groups[events.group_name(session.pk)].keys() == {room.channel_name}
    await disconnect_all(*clients)
    assert session.pk not in hub.rooms
    assert events.group_name(session.pk) not in layer.groups


# -- a real daphne and a real websocket client --------------------------------


@pytest.mark.slow
def test_real_daphne_and_websocket_client(tmp_path):
    from tests.live_client import RealSocket
    from tests.live_site import LiveSite, migrated_database

    site = LiveSite(tmp_path, migrated_database(tmp_path))
    pk = site.run(
        """
        from tests.utils import make_editor, make_session
        make_editor("alice")
        result = make_session("Real", owner=make_editor("host")).pk
        """
    )
    site.start()

    async def scenario():
        alice = await RealSocket.open(site, pk, "alice")
        guest = await RealSocket.open(site, pk)
        assert alice.state["can"]["chat"] and not guest.state["can"]["chat"]
        await alice.send({"type": "chat.send", "text": "<script>alert(1)</script>"})
        assert (await guest.expect("chat.message"))["text"] == "<script>alert(1)</script>"
        await guest.expect("viewers", where=lambda m: m["count"] == 2)
        await guest.connection.send("{broken")
        assert (await guest.expect("error"))["code"] == "bad_json"
        await guest.send({"type": "like", "count": 3})
        await alice.expect("likes", where=lambda m: m["total"] == 3)
        await alice.connection.send(b"\x00")
        assert (await alice.expect("error"))["code"] == "binary_unsupported"
        # 500 emoji escaped as JSON (12 bytes each) are 500 characters, within the limit.
        await alice.connection.send(json.dumps({"type": "chat.send", "text": EMOJI * 500}))
        assert (await guest.expect("chat.message"))["text"] == EMOJI * 500
        await alice.connection.send(json.dumps({"type": "chat.send", "text": EMOJI * 501}))
        assert (await alice.expect("error"))["code"] == "too_long"
        await alice.close()
        await guest.close()

    try:
        asyncio.run(scenario())
    finally:
        site.stop()


@override_settings(WAGTAIL_LIVE={"CHAT_ANONYMOUS": True})
async def test_guests_are_rate_limited_per_socket(session):
    client = await connected(session, AnonymousUser())
    for n in range(6):
        await client.send({"type": "chat.send", "text": f"guest {n}", "name": "G"})
    assert (await client.expect("error"))["code"] == "rate_limited"
    assert await database_sync_to_async(ChatMessage.objects.count)() == 5
    await client.disconnect()


async def test_unmute_over_the_socket(session, viewer, moderator):
    muted = await connected(session, viewer)
    mod = await connected(session, moderator)
    await mod.send({"type": "mod.mute", "user_id": viewer.pk, "seconds": None})
    await asyncio.sleep(0.2)
    await mod.send({"type": "mod.unmute", "user_id": viewer.pk})
    await asyncio.sleep(0.2)
    await muted.send({"type": "chat.send", "text": "free again"})
    assert (await muted.expect("chat.message"))["text"] == "free again"
    await disconnect_all(muted, mod)


async def test_binary_flood_and_huge_binary_frames(session, viewer):
    client = await connected(session, viewer)
    await client.send_raw(data=b"\x00" * 70_000)
    assert await client.expect_close() == 4009
    flooder = await connected(session, viewer)
    for _ in range(60):
        await flooder.send_raw(data=b"\x01")
    assert await flooder.expect_close() == 4008


# -- anonymous people: server-signed visitor ids, capped per address ----------------------


async def anonymous(session, cookie=None, address="203.0.113.7"):
    """A joined anonymous client from ``address`` sending ``cookie`` (a raw value) or none."""
    client = LiveClient(session.pk, AnonymousUser())
    client.communicator.scope["client"] = (address, 40000)
    if cookie is not None:
        client.communicator.scope["cookies"] = {"wagtail_live_visitor": cookie}
    client.state = await client.connect()
    return client


def forged_cookies():
    from django.core import signing

    yield uuid.uuid4().hex[:16]  # the attack: unsigned random hex
    yield uuid.uuid4().hex  # longer unsigned
    yield f"{uuid.uuid4().hex}:{'A' * 27}"  # a made-up signature
    yield signing.Signer(salt="another.salt").sign(uuid.uuid4().hex)  # signed for something else
    yield signing.Signer(key="not-the-site-key", salt="wagtail_live.visitor").sign("x" * 22)
    yield visitor_cookie("tampered")[:-1] + "A"
    yield "x" * 5000
    yield ""


@override_settings(WAGTAIL_LIVE={"ANONYMOUS_VIEWERS_PER_ADDRESS": 50})
async def test_unsigned_and_forged_visitor_ids_are_not_new_people(session, viewer):
    from wagtail_live.visitors import visitor_id

    observer = await connected(session, viewer)
    crowd = []
    for _round in range(5):
        crowd += [await anonymous(session, cookie) for cookie in forged_cookies()]
    crowd.append(await anonymous(session))  # no cookie at all
    # One viewer for all of them (the shared address), besides the observer.
    assert crowd[-1].state["viewers"] == 2
    # Each is handed a real signed id for next time, all different.
    issued = [client.state["visitor"] for client in crowd]
    assert all(visitor_id(value) for value in issued)
    assert len(set(issued)) == len(issued)
    # Coming back with it, a browser counts as a person of its own.
    returning = await anonymous(session, issued[0])
    assert returning.state["viewers"] == 3 and "visitor" not in returning.state
    await session.arefresh_from_db()
    assert session.peak_viewers <= 3
    await disconnect_all(observer, returning, *crowd)


@pytest.mark.parametrize("cap", [1, 2, 5])
async def test_signed_visitors_per_address_are_capped(session, viewer, cap):
    with override_settings(WAGTAIL_LIVE={"ANONYMOUS_VIEWERS_PER_ADDRESS": cap}):
        observer = await connected(session, viewer)
        # Fifteen real signed ids (a script can fetch them): at most ``cap`` people.
        crowd = [await anonymous(session, visitor_cookie(uuid.uuid4().hex)) for _ in range(15)]
        crowd.append(await anonymous(session))  # and one with none
        assert crowd[-1].state["viewers"] == 1 + cap
        # Another address has its own allowance; a logged-in user is always one person.
        other = [
            await anonymous(session, visitor_cookie(uuid.uuid4().hex), "198.51.100.9")
            for _ in range(3)
        ]
        assert other[-1].state["viewers"] == 1 + cap + min(cap, 3)
        await disconnect_all(observer, *crowd, *other)


@override_settings(WAGTAIL_LIVE={"ANONYMOUS_VIEWERS_PER_ADDRESS": 3})
async def test_an_admitted_visitor_keeps_its_place_and_a_leaver_frees_it(session, viewer):
    first, second = visitor_cookie("first-visitor-id"), visitor_cookie("second-visitor-id")
    tabs = [await anonymous(session, first) for _ in range(4)]  # one person, four tabs
    tabs.append(await anonymous(session, second))
    assert tabs[-1].state["viewers"] == 2
    late = await anonymous(session, visitor_cookie("third-visitor-id"))
    assert late.state["viewers"] == 3  # folded into the address's shared viewer
    await disconnect_all(*tabs[:4], late)
    # The first person has left (all their tabs): their place goes to the next once the
    # short join reservation has passed (PRESENCE_TTL).
    backend = presence.get_presence_backend()
    backend.ttl, ttl = 0.01, backend.ttl
    try:
        await asyncio.sleep(0.05)
        again = await anonymous(session, visitor_cookie("third-visitor-id"))
        assert again.state["viewers"] == 2
    finally:
        backend.ttl = ttl
    await disconnect_all(tabs[4], again)
