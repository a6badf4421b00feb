"""The chat, like and moderation services, called directly (no server)."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from django.test import override_settings
from django.utils import timezone
from wagtail import hooks
from wagtail.models import ModelLogEntry

from tests.utils import make_session
from wagtail_live import chat, events
from wagtail_live import text as chat_text
from wagtail_live.chat import ChatError, Reject
from wagtail_live.models import BlockedTerm, ChatBan, ChatMessage, LiveSession, ModerationAction

pytestmark = pytest.mark.django_db


class GroupListener:
    """A channel subscribed to a session's group, as the hub would be."""

    def __init__(self, session):
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(events.group_name(session.pk), self.channel)

    def events(self):
        received = []

        async def drain():
            import asyncio

            while True:
                try:
                    message = await asyncio.wait_for(self.layer.receive(self.channel), 0.05)
                except TimeoutError:
                    return
                received.append(message["event"])

        async_to_sync(drain)()
        return received


def expect_error(code, fn, *args, **kwargs):
    with pytest.raises(ChatError) as caught:
        fn(*args, **kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value


# -- sending -----------------------------------------------------------------


def test_message_is_trimmed_stored_and_broadcast(session, viewer):
    listener = GroupListener(session)
    message = chat.send_message(session, viewer, "  hello <b>world</b>  ")
    assert message.text == "hello <b>world</b>"
    assert message.display_name == "viewer"
    [event] = listener.events()
    assert event == {
        "type": "chat.message",
        "id": message.pk,
        "user_id": viewer.pk,
        "display_name": "viewer",
        "badge": "",
        "text": "hello <b>world</b>",
        "time": message.created_at.isoformat(),
    }


def test_host_and_moderator_get_badges(session, host, moderator):
    assert chat.send_message(session, host, "hi").badge == "host"
    assert chat.send_message(session, moderator, "hi").badge == "moderator"


@pytest.mark.parametrize(
    "text, code", [("", "empty"), ("   \n ", "empty"), ("x" * 501, "too_long")]
)
def test_bad_length_is_refused_and_nothing_stored(session, viewer, text, code):
    expect_error(code, chat.send_message, session, viewer, text)
    assert not ChatMessage.objects.exists()


def test_exactly_the_maximum_length_is_accepted(session, viewer):
    assert len(chat.send_message(session, viewer, "x" * 500).text) == 500


@override_settings(WAGTAIL_LIVE={"CHAT_MAX_LENGTH": 10})
def test_maximum_length_is_a_setting(session, viewer):
    error = expect_error("too_long", chat.send_message, session, viewer, "x" * 11)
    assert error.data == {"max_length": 10}


def test_non_text_is_refused(session, viewer):
    expect_error("invalid", chat.send_message, session, viewer, 42)


def test_anonymous_visitors_cannot_chat_by_default(session):
    expect_error("login_required", chat.send_message, session, AnonymousUser(), "hi")


@override_settings(WAGTAIL_LIVE={"CHAT_ANONYMOUS": True})
def test_guests_chat_under_a_display_name_when_allowed(session):
    message = chat.send_message(session, AnonymousUser(), "hi", guest_name="  Ann   Lee ")
    assert (message.user, message.display_name) == (None, "Ann Lee")
    assert chat.send_message(session, AnonymousUser(), "hi").display_name == "Guest"


@override_settings(WAGTAIL_LIVE={"CHAT_ANONYMOUS": True})
def test_private_sessions_refuse_guests(host):
    private = make_session("Members", owner=host, privacy=LiveSession.Privacy.PRIVATE)
    expect_error("forbidden", chat.send_message, private, AnonymousUser(), "hi")


def test_ended_session_refuses_chat(session, viewer):
    session.end()
    expect_error("session_ended", chat.send_message, session, viewer, "hi")


def test_per_user_rate_limit(session, viewer, host):
    for n in range(5):
        chat.send_message(session, viewer, f"message {n}")
    error = expect_error("rate_limited", chat.send_message, session, viewer, "one too many")
    assert error.data["retry_after"] == 10
    assert ChatMessage.objects.filter(user=viewer).count() == 5
    chat.send_message(session, host, "others are not affected")


def test_slow_mode_spaces_messages_but_not_moderators(session, viewer, host):
    chat.set_slow_mode(host, session, 30)
    chat.send_message(session, viewer, "first")
    error = expect_error("slow_mode", chat.send_message, session, viewer, "second")
    assert 0 < error.data["retry_after"] <= 30
    chat.send_message(session, host, "hosts are not slowed")
    chat.send_message(session, host, "at all")
    chat.set_slow_mode(host, session, 0)
    chat.send_message(session, viewer, "slow mode off")


@pytest.mark.parametrize("seconds", [-1, 3601, "10", None, True])
def test_slow_mode_rejects_bad_values(session, host, seconds):
    expect_error("invalid", chat.set_slow_mode, host, session, seconds)
    assert chat.chat_room(session).slow_mode_seconds == 0


# -- hooks -------------------------------------------------------------------


def test_before_hook_can_rewrite_and_after_hook_sees_the_message(session, viewer):
    seen = []

    def shout(session, user, text):
        return text.upper()

    with hooks.register_temporarily("before_live_chat_message", shout):
        with hooks.register_temporarily("after_live_chat_message", seen.append):
            message = chat.send_message(session, viewer, "quiet")
    assert message.text == "QUIET"
    assert seen == [message]


def test_before_hook_can_reject_with_a_reason(session, viewer):
    def no_links(session, user, text):
        return Reject("No links, please.") if "http" in text else None

    with hooks.register_temporarily("before_live_chat_message", no_links):
        error = expect_error("rejected", chat.send_message, session, viewer, "see http://x")
        chat.send_message(session, viewer, "fine")
    assert error.message == "No links, please."
    assert ChatMessage.objects.count() == 1


def test_blocked_terms_are_case_insensitive_whole_words_and_phrases(session, viewer):
    BlockedTerm.objects.create(term="Bad  Word")
    BlockedTerm.objects.create(term="spam")
    expect_error("rejected", chat.send_message, session, viewer, "a BAD word here")
    expect_error("rejected", chat.send_message, session, viewer, "SPAM!")
    chat.send_message(session, viewer, "spammer is a different word")
    assert ChatMessage.objects.count() == 1


# Spellings that look (or read) the same as the blocked "freecrypto" (issue 12, point 6).
DODGES = [
    "FREECRYPTO",
    "Free\u00a0freecrypto\u00a0now",  # no-break spaces around it
    "free\u200bcrypto",  # zero-width space
    "free\u200dcrypto",  # zero-width joiner
    "free\u200ccrypto",  # zero-width non-joiner
    "free\u2060crypto",  # word joiner
    "free\ufeffcrypto",  # byte-order mark
    "free\u00adcrypto",  # soft hyphen
    "\uff46\uff52\uff45\uff45\uff43\uff52\uff59\uff50\uff54\uff4f",  # full-width
    "fr\u0435\u0435cr\u0443\u0440t\u043e",  # Cyrillic е, у, р, о
    "fr\u03b5\u03b5crypt\u03bf",  # Greek ε, ο
    "FR\u0415\u0415CRYPTO",  # Cyrillic capital Е
    "\U0001d41f\U0001d42b\U0001d41e\U0001d41e\U0001d41c\U0001d42b\U0001d432\U0001d429\U0001d42d\U0001d428",  # math bold
    "fr\u00eb\u00ebcrypto",  # accents added on top
    "f\u0336r\u0336e\u0336e\u0336crypto",  # strike-through overlay marks
    "get \u202bfreecrypto\u202c today",  # inside a closed right-to-left embedding
    "get \u2067freecrypto\u2069 today",  # inside a closed right-to-left isolate
    "free\u180bcrypto",  # Mongolian free variation selector (Mn)
    "free\u180fcrypto",  # Mongolian FVS4
    "free\u17b4crypto",  # Khmer inherent vowel
    "free\u17b5crypto",
    "free\u3164crypto",  # Hangul filler
    "free\uffa0crypto",  # half-width Hangul filler
    "free\u115fcrypto",  # Hangul choseong filler
    "free\u1160crypto",  # Hangul jungseong filler
    "free\u034fcrypto",  # combining grapheme joiner
    "free\ufe0fcrypto",  # variation selector
    "free\U000e0100crypto",  # variation selector supplement
    "free\U000e0041crypto",  # tag character
    "free\U0001bca0crypto",  # shorthand format control
    "free-crypto",  # one punctuation character inside the word
    "free_crypto",
    "free.crypto",
    "_freecrypto_",
    "f r e e c r y p t o",  # spelled out
    "f.r.e.e.c.r.y.p.t.o",
    "f - r - e - e - c - r - y - p - t - o",
]


@pytest.mark.parametrize("text", DODGES)
def test_blocked_terms_cannot_be_dodged_by_spelling(session, viewer, text):
    BlockedTerm.objects.create(term="freecrypto")
    assert chat.blocked_term_in(text) == "freecrypto"
    expect_error("rejected", chat.send_message, session, viewer, text)
    assert not ChatMessage.objects.exists()


def test_look_alike_blocked_terms_match_plain_text(session, viewer):
    # A term typed with look-alike letters (or full width) still catches the plain spelling.
    BlockedTerm.objects.create(term="ｆｒｅｅ\u0441rypto")
    expect_error("rejected", chat.send_message, session, viewer, "freecrypto")


def test_capital_i_is_a_capital_i(session, viewer):
    # TS #39 alone maps "I" to "l"; case folding comes first, so capitals still match.
    BlockedTerm.objects.create(term="idiot")
    for text in ["IDIOT", "Idiot!", "you \uff29\uff24\uff29\uff2f\uff34"]:
        assert chat.blocked_term_in(text) == "idiot", text


def test_a_word_wholly_in_another_script_is_that_languages_word(session, viewer):
    # "сор" (Russian: litter) looks like "cop"; written wholly in Cyrillic it is Russian.
    BlockedTerm.objects.create(term="cop")
    BlockedTerm.objects.create(term="дурак")
    assert chat.blocked_term_in("какой сор") is None
    assert chat.blocked_term_in("c\u043ep") == "cop"  # mixed: Latin c, p with Cyrillic о
    assert chat.blocked_term_in("ДУРАК") == "дурак"
    assert chat.blocked_term_in("дур\u0430k") == "дурак"  # Latin k mixed in
    assert chat.blocked_term_in("a cop") == "cop"


# Ordinary chat in many scripts (issue 12, point 6: no over-blocking).
EVERYDAY = [
    "C'est génial, merci à tous ! À bientôt 😊",
    "Привет всем, отличный стрим! Сор и сон — обычные слова.",
    "مرحبا بالجميع، بث رائع",
    "こんにちは、素晴らしい配信です！ばかみたいに面白い",
    "שלום לכולם",
    "नमस्ते दोस्तों, क्षत्रिय",
    "Xin chào các bạn, tuyệt vời",
    "🎉🔥👍 ❤️ 🏳️‍🌈 👨‍👩‍👧 1️⃣ 🇫🇷",
    "Ünïcödé straße ΑΒΓ αβγ",
    "room 101, score 1010",
    "free crypto tips? no: cryptography is free to learn",
]


@pytest.mark.parametrize("text", EVERYDAY)
def test_everyday_text_in_any_script_is_not_blocked(session, viewer, text):
    for term in ("freecrypto", "lol", "spam", "cop", "idiot", "はか"):
        BlockedTerm.objects.create(term=term)
    message = chat.send_message(session, viewer, text)
    assert message.text == text


def test_a_blocked_term_of_only_invisible_characters_blocks_nothing(session, viewer):
    BlockedTerm.objects.create(term="\u200b\u200b")
    assert chat.send_message(session, viewer, "hello\u200bthere").text == "hello\u200bthere"


# Messages that show nothing (issue 12, point 7).
INVISIBLE = [
    "\u200b",
    "\u200b\u200b\u200b",
    "\u2060\u2060",
    "\u2800\u2800\u2800",
    "\u3164",
    "\uffa0\u115f\u1160",
    "\u200e\u200f",
    "\ufeff",
    "\u00ad",
    "\u202e\u202c",
    "\u034f\ufe0f",
    "\U000e0041\U000e0042",
    "\u00a0\u3000\u2028",
    "\u0301\u0301",
    " \u200b \u2800 \u3164 \ufeff ",
]


@pytest.mark.parametrize("text", INVISIBLE)
def test_messages_with_nothing_visible_are_empty(session, viewer, text):
    expect_error("empty", chat.send_message, session, viewer, text)
    assert not ChatMessage.objects.exists()


def test_visible_text_beside_invisible_characters_is_kept_as_sent(session, viewer):
    text = "\u200fhello\u200b ⠀ok \u2067שלום\u2069"
    assert chat.send_message(session, viewer, text).text == text


def test_combining_marks_per_character_are_bounded(session, viewer):
    limit = chat_text.MAX_MARKS_PER_CHARACTER
    error = expect_error("invalid", chat.send_message, session, viewer, "a" + "\u0301" * 499)
    assert error.data == {"field": "text"}
    # NFC first (a + grave is one letter), and joiners between marks do not end the stack.
    zalgo_with_joiners = "a" + "\u0300\u200d" * (limit + 2)
    expect_error("invalid", chat.send_message, session, viewer, zalgo_with_joiners)
    assert not ChatMessage.objects.exists()
    # Real text: stacked Vietnamese, pointed Hebrew, Tibetan, keycap emoji; and the limit itself.
    for text in ["Việt Nam ệ ậ ặ", "שָׁלוֹם בְּרֵאשִׁית", "བསྒྲུབས", "1\ufe0f\u20e3", "e" + "\u0300" * limit]:
        assert chat.send_message(session, viewer, text).text == text


@override_settings(WAGTAIL_LIVE={"CHAT_ANONYMOUS": True})
def test_guest_names_that_show_nothing_become_guest(session):
    for name in ["\u200b\u200b", "\u3164", "\u2800 \u2800", "\u202e"]:
        assert chat.clean_guest_name(name) == "Guest"
    assert chat.clean_guest_name("\u2067Ann\u2069") == "\u2067Ann\u2069"  # closed isolate
    expect_error("invalid", chat.clean_guest_name, "A" + "\u0301" * 20)


# -- moderation --------------------------------------------------------------


def test_non_moderators_are_forbidden_everything(session, viewer, editor):
    message = chat.send_message(session, viewer, "hi")
    for action, args in [
        (chat.remove_message, (session, message.pk)),
        (chat.mute, (session, viewer.pk, 60)),
        (chat.set_slow_mode, (session, 5)),
        (chat.pin, (session, message.pk)),
    ]:
        expect_error("forbidden", action, editor, *args)
    expect_error("forbidden", chat.ban, editor, viewer.pk)
    expect_error("forbidden", chat.ban, AnonymousUser(), viewer.pk)
    assert not ModerationAction.objects.exists()
    assert not ChatMessage.objects.get(pk=message.pk).is_removed


# Broadcasts go out on commit, so these run outside a test transaction.
@pytest.mark.django_db(transaction=True)
def test_remove_hides_broadcasts_records_and_logs(session, viewer, moderator):
    message = chat.send_message(session, viewer, "rude")
    listener = GroupListener(session)
    seen = []
    with hooks.register_temporarily("after_live_moderation_action", seen.append):
        action = chat.remove_message(moderator, session, message.pk)
    assert listener.events() == [{"type": "chat.removed", "id": message.pk}]
    assert ChatMessage.objects.get(pk=message.pk).removed_by == moderator
    assert (action.action, action.moderator, action.target_user) == ("remove", moderator, viewer)
    assert seen == [action]
    assert ModelLogEntry.objects.filter(action="wagtail_live.chat.remove").count() == 1
    assert chat.recent_messages(session) == []


def test_acting_on_a_message_of_another_session(session, viewer, host):
    other = make_session("Other", owner=host)
    message = chat.send_message(other, viewer, "elsewhere")
    expect_error("not_found", chat.remove_message, host, session, message.pk)
    expect_error("not_found", chat.pin, host, session, message.pk)
    assert not ChatMessage.objects.get(pk=message.pk).is_removed


def test_mute_for_a_while_expires_on_its_own(session, viewer, moderator):
    action = chat.mute(moderator, session, viewer.pk, 300)
    error = expect_error("muted", chat.send_message, session, viewer, "hi")
    assert error.data["until"] == action.expires_at.isoformat()
    ModerationAction.objects.filter(pk=action.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    chat.send_message(session, viewer, "back")


def test_mute_until_the_end_of_the_session_and_unmute(session, viewer, moderator, host):
    chat.mute(moderator, session, viewer.pk, None)
    error = expect_error("muted", chat.send_message, session, viewer, "hi")
    assert error.data["until"] == "session_end"
    other = make_session("Other", owner=host)
    chat.send_message(other, viewer, "a mute is per session")
    chat.unmute(moderator, session, viewer.pk)
    chat.send_message(session, viewer, "unmuted")


@pytest.mark.parametrize("seconds", [0, -5, "60", 1.5])
def test_mute_rejects_bad_durations(session, viewer, moderator, seconds):
    expect_error("invalid", chat.mute, moderator, session, viewer.pk, seconds)
    assert not ModerationAction.objects.exists()


# Broadcasts go out on commit, so these run outside a test transaction.
@pytest.mark.django_db(transaction=True)
def test_ban_is_site_wide_hides_messages_and_kicks(session, viewer, moderator, host):
    other = make_session("Other", owner=host)
    here = chat.send_message(session, viewer, "one")
    there = chat.send_message(other, viewer, "two")
    listener, other_listener = GroupListener(session), GroupListener(other)
    layer = get_channel_layer()
    users = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("wagtail_live.users", users)

    chat.ban(moderator, viewer.pk, "spam", session=session)

    assert {"type": "chat.removed", "id": here.pk} in listener.events()
    assert {"type": "chat.removed", "id": there.pk} in other_listener.events()
    kick = async_to_sync(layer.receive)(users)
    assert kick["event"] == {"type": "user.banned", "user_id": viewer.pk}
    assert chat.is_banned(viewer)
    expect_error("banned", chat.send_message, other, viewer, "still here?")
    ban = ChatBan.objects.get()
    assert (ban.reason, ban.moderator, ban.target_user) == ("spam", moderator, viewer)
    assert ModelLogEntry.objects.filter(action="wagtail_live.chat.ban").count() == 1


def test_unban_lets_the_user_back(session, viewer, moderator):
    chat.ban(moderator, viewer.pk, "spam")
    chat.unban(moderator, viewer.pk)
    assert not chat.is_banned(viewer)
    assert not ChatBan.objects.exists()
    chat.send_message(session, viewer, "I'm back")
    expect_error("not_found", chat.unban, moderator, viewer.pk)


def test_ban_of_oneself_or_a_superuser_or_twice(session, viewer, moderator, superuser):
    expect_error("invalid_target", chat.ban, moderator, moderator.pk)
    expect_error("invalid_target", chat.ban, moderator, superuser.pk)
    expect_error("not_found", chat.ban, moderator, 999999)
    expect_error("invalid", chat.ban, moderator, "1")
    chat.ban(moderator, viewer.pk)
    expect_error("invalid_target", chat.ban, moderator, viewer.pk)
    assert ChatBan.objects.count() == 1


# Broadcasts go out on commit, so these run outside a test transaction.
@pytest.mark.django_db(transaction=True)
def test_pin_and_unpin(session, viewer, host):
    message = chat.send_message(session, viewer, "important")
    listener = GroupListener(session)
    chat.pin(host, session, message.pk)
    assert chat.pinned_payload(chat.chat_room(session)) == message.as_event()
    chat.pin(host, session, None)
    assert listener.events() == [
        {"type": "chat.pinned", "message": message.as_event()},
        {"type": "chat.pinned", "message": None},
    ]


def test_removing_the_pinned_message_unpins_it(session, viewer, host):
    message = chat.send_message(session, viewer, "important")
    chat.pin(host, session, message.pk)
    chat.remove_message(host, session, message.pk)
    assert chat.chat_room(session).pinned is None
    expect_error("not_found", chat.pin, host, session, message.pk)


def test_permissions_in_state(session, viewer, moderator):
    assert chat.permissions_for(session, viewer)["chat"] is True
    assert chat.permissions_for(session, viewer)["moderate"] is False
    assert chat.permissions_for(session, moderator)["moderate"] is True
    anonymous = chat.permissions_for(session, AnonymousUser())
    assert anonymous["chat"] is False and anonymous["login_required"] is True
    chat.mute(moderator, session, viewer.pk, None)
    assert chat.permissions_for(session, viewer)["muted_until"] == "session_end"


# -- likes -------------------------------------------------------------------


def test_likes_add_up_from_the_stored_total(session):
    LiveSession.objects.filter(pk=session.pk).update(likes=10)
    session.refresh_from_db()
    assert chat.like(session) == 11
    assert chat.like(session, 4) == 15


def test_likes_on_an_ended_session_are_refused(session):
    session.end()
    expect_error("session_ended", chat.like, session)
