"""Every number a client sends is bounded: out of range is a client error naming the field.

Websocket frames answer ``invalid`` (with ``field``) and change nothing; query strings answer
400; nothing answers ``server_error`` or 500, whatever the number (huge, negative, NaN, a
float, a bool, digits as text, nested JSON).
"""

import json

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.live_client import LiveClient
from wagtail_live import presence
from wagtail_live.bounds import MAX_EPOCH_MS, OutOfBounds, bounded_id, bounded_int
from wagtail_live.chat import MUTE_MAX_SECONDS, SLOW_MODE_MAX_SECONDS
from wagtail_live.models import ModerationAction

pytestmark = pytest.mark.django_db(transaction=True)

HUGE = 10**12
BAD_NUMBERS = [
    HUGE * HUGE,  # beyond a 64-bit integer
    -1,
    0.5,
    5.0,  # a float, even a whole one
    True,
    "5",  # digits as text
    "NaN",
    [],
    {},
]


@pytest.fixture(autouse=True)
def fresh_presence():
    presence._backend = None
    yield
    presence._backend = None


# -- the helper ----------------------------------------------------------------


@pytest.mark.parametrize("value", [True, 1.0, float("nan"), float("inf"), None, "1", [1]])
def test_bounded_int_refuses_what_is_not_a_json_integer(value):
    with pytest.raises(OutOfBounds) as caught:
        bounded_int(value, "n", low=0, high=10)
    assert caught.value.field == "n"


@pytest.mark.parametrize("text", ["", " ", "1e3", "0x10", "١٢", "1" * 21, "--1", "+-1", "1.0"])
def test_bounded_int_from_text_takes_plain_digits_only(text):
    with pytest.raises(OutOfBounds):
        bounded_int(text, "n", low=-(10**30), high=10**30, accept_text=True)


def test_bounded_int_ranges():
    assert bounded_int(" 7 ", "n", low=0, high=7, accept_text=True) == 7
    assert bounded_int("-3", "n", low=-3, high=0, accept_text=True) == -3
    for value in (-1, 8):
        with pytest.raises(OutOfBounds):
            bounded_int(value, "n", low=0, high=7)
    with pytest.raises(OutOfBounds):
        bounded_id(0, "id")
    with pytest.raises(OutOfBounds):
        bounded_id(2**63, "id")


# -- websocket frames ----------------------------------------------------------


async def error_for(client, frame):
    await client.send_raw(text=frame if isinstance(frame, str) else json.dumps(frame))
    return await client.expect("error")


async def assert_invalid(client, frame, field):
    error = await error_for(client, frame)
    assert error["code"] == "invalid", error
    assert error["field"] == field
    return error


@pytest.mark.parametrize("value", [HUGE, HUGE * HUGE, MUTE_MAX_SECONDS + 1, 0, *BAD_NUMBERS])
async def test_mute_seconds_out_of_range_is_invalid_and_mutes_nobody(
    session, moderator, viewer_user, value
):
    client = LiveClient(session.pk, moderator)
    await client.connect()
    frame = {"type": "mod.mute", "user_id": viewer_user.pk, "seconds": value}
    await assert_invalid(client, frame, "seconds")
    await client.disconnect()
    assert not await _mutes()


async def test_mute_at_the_documented_bounds_works(session, moderator, viewer_user):
    client = LiveClient(session.pk, moderator)
    await client.connect()
    for seconds in (1, MUTE_MAX_SECONDS, None):
        await client.send({"type": "mod.mute", "user_id": viewer_user.pk, "seconds": seconds})
    await client.send({"type": "mod.slow", "seconds": SLOW_MODE_MAX_SECONDS})
    await client.expect("chat.slow")
    await client.disconnect()
    assert await _mutes() == 3


@pytest.mark.parametrize(
    "frame, field",
    [
        *[({"type": "mod.slow", "seconds": v}, "seconds") for v in BAD_NUMBERS],
        ({"type": "mod.slow", "seconds": SLOW_MODE_MAX_SECONDS + 1}, "seconds"),
        *[({"type": "mod.ban", "user_id": v}, "user_id") for v in [*BAD_NUMBERS, 0, 2**63]],
        *[({"type": "mod.remove", "message_id": v}, "message_id") for v in BAD_NUMBERS],
        ({"type": "mod.pin", "message_id": -5}, "message_id"),
        ({"type": "mod.unban", "user_id": "12"}, "user_id"),
        ({"type": "mod.unmute", "user_id": HUGE * HUGE}, "user_id"),
        ({"type": "mod.mute", "user_id": 1.5, "seconds": 60}, "user_id"),
    ],
)
async def test_moderation_numbers_out_of_range_are_invalid(session, moderator, frame, field):
    client = LiveClient(session.pk, moderator)
    await client.connect()
    await assert_invalid(client, frame, field)
    await client.disconnect()
    assert not await _actions()


@pytest.mark.parametrize("count", [0, -3, 101, HUGE * HUGE, 2.5, "3", False, None])
async def test_like_counts_out_of_range_are_invalid(session, count):
    client = LiveClient(session.pk)
    await client.connect()
    await assert_invalid(client, {"type": "like", "count": count}, "count")
    await client.disconnect()


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "like", "count": NaN}',
        '{"type": "like", "count": Infinity}',
        '{"type": "like", "count": -Infinity}',
        '{"type": "like", "count": 1e400}',
    ],
)
async def test_non_finite_numbers_are_invalid(session, text):
    client = LiveClient(session.pk)
    await client.connect()
    await assert_invalid(client, text, "count")
    await client.disconnect()


@pytest.mark.parametrize(
    "text",
    [
        "[" * 2000 + "]" * 2000,
        '{"type": "like", "x": ' + "[" * 1500 + "]" * 1500 + "}",
        '{"a":' * 800 + "1" + "}" * 800,
        '{"type": "like", "count": ' + "9" * 3000 + "}",
    ],
)
async def test_deep_or_huge_json_is_a_client_error(session, text):
    client = LiveClient(session.pk)
    await client.connect()
    error = await error_for(client, text)
    assert error["code"] in ("bad_json", "bad_message", "frame_too_large", "invalid"), error
    # The socket still works.
    await client.send({"type": "like"})
    await client.expect("likes")
    await client.disconnect()


# -- query strings -------------------------------------------------------------


@pytest.mark.parametrize(
    "after",
    [
        str(HUGE * HUGE),
        str(MAX_EPOCH_MS + 1),
        "-1",
        "1e3",
        "nan",
        "9" * 5000,
        "",
        "١٢٣",
    ],
)
def test_samples_after_out_of_range_is_400(client, host, session, after):
    client.force_login(host)
    url = reverse("wagtail_live_admin:analytics_samples", args=[session.pk])
    response = client.get(url, {"after": after})
    assert response.status_code == 400
    assert response.json()["field"] == "after"


def test_samples_after_in_range_answers(client, host, session):
    client.force_login(host)
    url = reverse("wagtail_live_admin:analytics_samples", args=[session.pk])
    for after in ("0", str(MAX_EPOCH_MS)):
        assert client.get(url, {"after": after}).status_code == 200


@pytest.mark.parametrize("pk", [2**63, 10**30])
def test_huge_ids_in_paths_are_404(client, host, pk):
    client.force_login(host)
    for name in ("go_live", "dashboard", "analytics", "analytics_samples"):
        assert client.get(reverse(f"wagtail_live_admin:{name}", args=[pk])).status_code == 404
    assert client.get(reverse("wagtail_live:session_status", args=[pk])).status_code == 404


async def test_huge_session_id_on_the_socket_closes_not_found(db):
    client = LiveClient(10**30)
    connected, _ = await client.communicator.connect()
    assert connected
    assert (await client.receive())["code"] == "not_found"
    assert await client.expect_close() == 4404


@override_settings(WAGTAIL_LIVE={"CHAT_ANONYMOUS": False})
def test_mute_service_refuses_overflowing_seconds(session, moderator, viewer_user):
    from wagtail_live import chat

    for seconds in (HUGE, 10**20):
        with pytest.raises(chat.ChatError) as caught:
            chat.mute(moderator, session, viewer_user.pk, seconds)
        assert caught.value.data["field"] == "seconds"
    assert not ModerationAction.objects.exists()


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def viewer_user(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("viewer", "viewer@example.com", "password")


async def _mutes():
    from channels.db import database_sync_to_async

    return await database_sync_to_async(
        ModerationAction.objects.filter(action=ModerationAction.Action.MUTE).count
    )()


async def _actions():
    from channels.db import database_sync_to_async

    return await database_sync_to_async(ModerationAction.objects.count)()
