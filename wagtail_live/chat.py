"""Chat, likes and moderation: the services behind the websocket, the admin dashboard and tests.

Every function here is synchronous, takes model instances or primary keys,
checks permissions itself, and raises ``ChatError`` (with a ``code`` a client
can act on and a message a person can read) when the request cannot be done.
Nothing changes when a ``ChatError`` is raised.
"""

import time
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _
from wagtail import hooks
from wagtail.log_actions import log

from . import events, hub, permissions
from . import text as chat_text
from .bounds import OutOfBounds, bounded_int
from .conf import live_settings
from .exceptions import WagtailLiveError
from .models import BlockedTerm, ChatMessage, ChatRoom, LiveSession, ModerationAction
from .presence import get_presence_backend

Action = ModerationAction.Action

#: Longest display name a guest may choose.
GUEST_NAME_MAX_LENGTH = 40
#: Longest slow-mode interval a moderator may set (one hour).
SLOW_MODE_MAX_SECONDS = 3600
#: Longest timed mute (30 days); longer is "until the session ends" (``seconds`` null).
MUTE_MAX_SECONDS = 30 * 24 * 3600
#: Longest moderation reason kept.
REASON_MAX_LENGTH = 500


class ChatError(WagtailLiveError):
    """A refused chat or moderation request: a stable ``code``, a message, extra ``data``."""

    def __init__(self, code, message, **data):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def as_event(self):
        """The protocol's ``error`` message for this refusal."""
        return {"type": "error", "code": self.code, "message": str(self.message), **self.data}


class Reject:
    """Returned by a ``before_live_chat_message`` hook to refuse a message (with a reason)."""

    def __init__(self, reason):
        self.reason = reason


# -- who is who --------------------------------------------------------------


def display_name(user):
    """The name chat shows for a logged-in user (``text.display_name``: marks and length bounded).

    The one place a user's name is made: chat messages (and so the pinned one), the presence
    and host lines, the player block's host line and the studio's moderation sheet.
    """
    full_name = user.get_full_name()
    if not chat_text.has_visible_character(full_name):
        full_name = ""  # nothing but spaces, fillers or lone marks: the username instead
    return chat_text.display_name(full_name) or chat_text.display_name(user.get_username())


def badge(session, user):
    """``host`` for the session's owner, ``moderator`` for other moderators, ``guest``
    for visitors who are not logged in (their names are theirs to choose), else empty."""
    if user is None or not user.is_authenticated:
        return "guest"
    if session.owner_id == user.pk:
        return "host"
    if permissions.can_moderate_session(session, user):
        return "moderator"
    return ""


#: Whether a user (or a user id) is banned from every live chat.
is_banned = permissions.is_banned


def muted_until(session, user):
    """When ``user``'s mute in ``session`` ends: None if not muted, ``"session_end"`` if never."""
    if user is None or not user.is_authenticated:
        return None
    mutes = ModerationAction.objects.mutes(session).filter(target_user=user)
    if not mutes:
        return None
    if any(m.expires_at is None for m in mutes):
        return "session_end"
    return max(m.expires_at for m in mutes)


def chat_room(session):
    """The session's ``ChatRoom`` (slow mode, pinned message), created on first use."""
    room, _created = ChatRoom.objects.get_or_create(session=session)
    return room


def permissions_for(session, user):
    """What ``user`` may do in ``session``'s chat: the ``can`` part of the ``state`` message."""
    authenticated = bool(user is not None and user.is_authenticated)
    open_session = not session.has_ended
    banned = authenticated and is_banned(user)
    until = muted_until(session, user) if authenticated else None
    moderate = permissions.can_moderate_session(session, user)
    return {
        "chat": open_session and until is None and permissions.can_chat(session, user),
        "like": open_session and not banned,
        "moderate": moderate,
        # Ban and unban reach every chat: site-wide moderators only, not a session's host.
        "ban": moderate and permissions.can_moderate_site(user),
        "muted_until": _as_json_time(until),
        "login_required": not authenticated and not live_settings.CHAT_ANONYMOUS,
    }


def _as_json_time(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


# -- sending -----------------------------------------------------------------


def clean_text(text):
    """Trim ``text`` and check it (docs/chat-and-moderation.md, "Text rules").

    Raises ``ChatError``: ``empty`` when nothing visible is left (only spaces,
    zero-width or other invisible characters), ``too_long`` over
    ``CHAT_MAX_LENGTH`` characters (code points, however the frame escaped them),
    ``invalid`` (``field`` "text") for a lone surrogate or a control character
    other than newline and tab, a bidi override or an unclosed embedding/isolate
    (``check_characters``), or a character carrying more than
    ``MAX_MARKS_PER_CHARACTER`` combining marks (text that spills over the lines
    around it).
    """
    if not isinstance(text, str):
        raise ChatError("invalid", _("The message text must be a string."), field="text")
    _check_encodable(text, "text", chat_text.TEXT_CONTROLS)
    text = text.strip()
    if not chat_text.has_visible_character(text):
        raise ChatError("empty", _("Type a message before sending."))
    _check_bidi(text, "text")
    limit = live_settings.CHAT_MAX_LENGTH
    if len(text) > limit:
        raise ChatError(
            "too_long",
            _("Messages may be at most %(limit)d characters long.") % {"limit": limit},
            max_length=limit,
        )
    _check_marks(text, "text")
    return text


def _check_encodable(text, field, allowed_controls=frozenset()):
    # Before anything else: a lone surrogate cannot be encoded for the database (it was a
    # UnicodeEncodeError, a server_error), and PostgreSQL refuses NUL.
    character = chat_text.forbidden_character(text, allowed_controls)
    if character is not None:
        raise ChatError(
            "invalid",
            _("%(field)s holds a character that cannot be shown (U+%(code)04X).")
            % {"field": field, "code": ord(character)},
            field=field,
        )


def _check_bidi(text, field):
    problem = chat_text.bidi_problem(text)
    if problem == "override":
        message = _("Right-to-left or left-to-right override characters are not allowed.")
    elif problem == "unbalanced":
        message = _("A direction embedding or isolate character is not closed.")
    else:
        return
    raise ChatError("invalid", message, field=field)


def check_characters(text, field, allowed_controls=frozenset()):
    """Raise ``ChatError`` ``invalid`` (with ``field``) for characters no chat field may hold.

    Lone surrogates, control characters not in ``allowed_controls``, bidi overrides
    and unclosed embeddings or isolates (``wagtail_live.text.bidi_problem``).
    """
    _check_encodable(text, field, allowed_controls)
    _check_bidi(text, field)


def _check_marks(text, field):
    limit = chat_text.MAX_MARKS_PER_CHARACTER
    if chat_text.most_marks_on_one_character(text) > limit:
        raise ChatError(
            "invalid",
            _("Too many accents on one character (at most %(limit)d).") % {"limit": limit},
            field=field,
        )


def clean_guest_name(name):
    """A guest's display name, trimmed; a neutral default when none is given or none shows.

    The same rules as message text (docs/chat-and-moderation.md, "Guest names"):
    raises ``ChatError`` ``invalid`` (``field`` "name") for a lone surrogate or any
    control character, a bidi override or unclosed embedding, too many combining
    marks on one character, or a blocked term. Guests' messages carry the ``guest``
    badge, so a guest calling themselves "admin" is shown as a guest.
    """
    if not isinstance(name, str):
        return _("Guest")
    _check_encodable(name, "name")
    if not chat_text.has_visible_character(name):
        return _("Guest")
    name = " ".join(name.split())[:GUEST_NAME_MAX_LENGTH]
    _check_bidi(name, "name")
    _check_marks(name, "name")
    if blocked_term_in(name):
        raise ChatError(
            "invalid", _("This name contains a word that is not allowed here."), field="name"
        )
    return name


def check_can_join(session, user):
    """Raise ``ChatError`` unless ``user`` may open the session's live socket (watch and chat)."""
    # The ban first: can_watch refuses banned users too, and they should hear why.
    if user is not None and user.is_authenticated and is_banned(user):
        raise ChatError("banned", _("You have been banned from live chat."))
    if not permissions.can_watch(session, user):
        raise ChatError("login_required", _("Log in to watch this live."))


def check_can_send(session, user):
    """Raise ``ChatError`` unless ``user`` may post in ``session`` right now."""
    if session.has_ended:
        raise ChatError("session_ended", _("This live has ended; the chat is closed."))
    authenticated = user is not None and user.is_authenticated
    if authenticated:
        # Before can_watch, which refuses banned users too: they should hear "banned".
        _check_restrictions(session, user)
    if not permissions.can_watch(session, user):
        raise ChatError("forbidden", _("You cannot take part in this live."))
    if not authenticated:
        if not live_settings.CHAT_ANONYMOUS:
            raise ChatError("login_required", _("Log in to chat."))
        return
    if permissions.can_moderate_session(session, user):
        return  # hosts and moderators are not slowed down by their own tools
    _check_pace(session, user)


def _check_restrictions(session, user):
    # One query for both: this runs for every message of a busy chat.
    restrictions = list(
        ModerationAction.objects.in_force()
        .filter(target_user=user)
        .filter(Q(action=Action.BAN) | Q(action=Action.MUTE, session=session))
        .values_list("action", "expires_at")
    )
    if any(action == Action.BAN for action, _expires in restrictions):
        raise ChatError("banned", _("You have been banned from live chat."))
    if restrictions:
        ends = [expires for _action, expires in restrictions]
        until = "session_end" if None in ends else max(ends)
        raise ChatError("muted", _("You are muted in this chat."), until=_as_json_time(until))


def _check_pace(session, user):
    """The per-user rate limit and slow mode, from the user's latest messages."""
    limit, period = live_settings.CHAT_RATE_LIMIT, live_settings.CHAT_RATE_PERIOD
    slow = (
        ChatRoom.objects.filter(session=session).values_list("slow_mode_seconds", flat=True).first()
        or 0
    )
    latest = list(
        ChatMessage.objects.filter(session=session, user=user)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[: max(limit, 1)]
    )
    now = timezone.now()
    if len(latest) >= limit and latest[limit - 1] > now - timedelta(seconds=period):
        raise ChatError(
            "rate_limited",
            _("You are sending messages too quickly. Wait a moment."),
            retry_after=period,
        )
    if slow and latest:
        wait = (latest[0] + timedelta(seconds=slow) - now).total_seconds()
        if wait > 0:
            raise ChatError(
                "slow_mode",
                _("Slow mode is on: one message every %(seconds)d seconds.") % {"seconds": slow},
                retry_after=round(wait, 1),
            )


def apply_message_hooks(session, user, text):
    """Run ``before_live_chat_message`` hooks: each may rewrite ``text`` or reject it."""
    for fn in hooks.get_hooks("before_live_chat_message"):
        result = fn(session=session, user=user, text=text)
        if isinstance(result, Reject):
            raise ChatError("rejected", result.reason or _("This message is not allowed."))
        if isinstance(result, str):
            text = result.strip()
            if not text:
                raise ChatError("rejected", _("This message is not allowed."))
    return text


def send_message(session, user, text, guest_name=None, broadcast=True):
    """Post ``text`` to ``session``'s chat as ``user``; broadcast and return the ``ChatMessage``.

    ``guest_name`` is used for visitors who are not logged in (only when
    ``CHAT_ANONYMOUS`` allows them). Raises ``ChatError`` when refused.
    ``broadcast=False`` stores only: the caller then publishes the message and
    calls ``after_message`` itself (the websocket does, from its event loop).
    """
    text = clean_text(text)
    check_can_send(session, user)
    text = apply_message_hooks(session, user, text)
    authenticated = user is not None and user.is_authenticated
    message = ChatMessage.objects.create(
        session=session,
        user=user if authenticated else None,
        display_name=display_name(user) if authenticated else clean_guest_name(guest_name),
        badge=badge(session, user),
        text=text,
    )
    if broadcast:
        events.publish(session, **message.as_event())
        after_message(message)
    return message


def after_message(message):
    """Run the ``after_live_chat_message`` hooks for a stored message."""
    for fn in hooks.get_hooks("after_live_chat_message"):
        fn(message)


def recent_messages(session, limit=None):
    """The last ``CHAT_HISTORY`` visible messages (of a session or its pk), oldest first."""
    limit = limit or live_settings.CHAT_HISTORY
    session_id = getattr(session, "pk", session)
    messages = ChatMessage.objects.visible().filter(session_id=session_id)[:limit]
    return [m.as_event() for m in reversed(messages)]


def pinned_payload(room):
    """The pinned message as a payload, or None (also when it was removed since)."""
    message = room.pinned
    if message is None or message.is_removed:
        return None
    return message.as_event()


# -- likes -------------------------------------------------------------------


async def alike(session, count=1):
    """Add ``count`` likes to the session's total (kept by presence, persisted by the hub)."""
    presence = get_presence_backend()
    return await presence.add_likes(session.pk, count, initial=session.likes)


def like(session, count=1):
    """Synchronous ``alike`` for views, tasks and tests; returns the new total."""
    if session.has_ended:
        raise ChatError("session_ended", _("This live has ended."))
    return async_to_sync(alike)(session, count)


# -- moderation --------------------------------------------------------------


def check_can_moderate(session, moderator):
    """Raise ``ChatError`` ``forbidden`` unless ``moderator`` may moderate ``session``.

    ``session`` None asks for site-wide authority (``permissions.can_moderate_site``).
    """
    if session is None:
        allowed = permissions.can_moderate_site(moderator)
    else:
        allowed = permissions.can_moderate_session(session, moderator)
    if not allowed:
        raise ChatError("forbidden", _("You are not allowed to moderate this chat."))


def check_can_moderate_site(moderator):
    """Raise ``ChatError`` ``forbidden`` unless ``moderator`` may ban and unban in every chat.

    A session's host moderates their own session (remove, mute, slow mode, pin)
    but may not ban anyone site-wide nor lift a ban: that needs
    ``wagtail_live.moderate_chat`` (docs/permissions.md).
    """
    if not permissions.can_moderate_site(moderator):
        raise ChatError(
            "forbidden",
            _(
                "Only site moderators can ban or unban: a ban closes every chat of the site. "
                "Mute this person until the live ends instead."
            ),
        )


def _session_message(session, message_id):
    if isinstance(message_id, bool) or not isinstance(message_id, int):
        raise ChatError("invalid", _("message_id must be a number."), field="message_id")
    try:
        return ChatMessage.objects.get(pk=message_id, session=session)
    except ChatMessage.DoesNotExist:
        raise ChatError("not_found", _("There is no such message in this chat.")) from None


def _target_user(moderator, user_id, session=None):
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise ChatError("invalid", _("user_id must be a number."), field="user_id")
    try:
        target = get_user_model().objects.get(pk=user_id)
    except get_user_model().DoesNotExist:
        raise ChatError("not_found", _("There is no such user.")) from None
    if target.pk == moderator.pk:
        raise ChatError("invalid_target", _("You cannot mute or ban yourself."))
    if target.is_superuser:
        raise ChatError("invalid_target", _("Administrators cannot be muted or banned."))
    if not permissions.may_act_on(moderator, target, session):
        raise ChatError(
            "forbidden", _("Only site moderators can mute or ban the hosts and moderators.")
        )
    return target


def _record(action, moderator, session=None, **fields):
    """Store the ``ModerationAction``, write the Wagtail log and run the hooks."""
    record = ModerationAction.objects.create(
        action=action, moderator=moderator, session=session, **fields
    )
    log(
        instance=session if session is not None else record,
        action=f"wagtail_live.chat.{action}",
        user=moderator,
        data={
            "target_user": fields["target_user"].pk if fields.get("target_user") else None,
            "message": fields["message"].pk if fields.get("message") else None,
            "reason": fields.get("reason", ""),
            "expires_at": _as_json_time(fields.get("expires_at")),
            "value": fields.get("value"),
        },
    )
    for fn in hooks.get_hooks("after_live_moderation_action"):
        fn(record)
    return record


def _hide(messages, moderator):
    """Mark ``messages`` removed and tell their sessions; unpin any of them that was pinned."""
    now = timezone.now()
    hidden = list(messages.visible().values_list("pk", "session_id"))
    if not hidden:
        return
    ChatMessage.objects.filter(pk__in=[pk for pk, _s in hidden]).update(
        removed_at=now, removed_by=moderator
    )
    unpinned = ChatRoom.objects.filter(pinned_id__in=[pk for pk, _s in hidden])
    unpinned_sessions = list(unpinned.values_list("session_id", flat=True))
    unpinned.update(pinned=None)

    def broadcast():
        for pk, session_id in hidden:
            events.publish(session_id, "chat.removed", id=pk)
        for session_id in unpinned_sessions:
            events.publish(session_id, "chat.pinned", message=None)

    transaction.on_commit(broadcast)


@transaction.atomic
def remove_message(moderator, session, message_id, reason=""):
    """Hide one message of ``session`` from everyone and broadcast ``chat.removed``."""
    check_can_moderate(session, moderator)
    reason = _clean_reason(reason)  # before anything changes
    message = _session_message(session, message_id)
    if message.is_removed:
        return None
    _hide(ChatMessage.objects.filter(pk=message.pk), moderator)
    return _record(
        Action.REMOVE,
        moderator,
        session,
        message=message,
        target_user=message.user,
        reason=reason,
    )


@transaction.atomic
def mute(moderator, session, user_id, seconds, reason=""):
    """Stop ``user_id`` posting in ``session`` for ``seconds`` (None: until the session ends)."""
    check_can_moderate(session, moderator)
    reason = _clean_reason(reason)
    if seconds is not None:
        try:
            seconds = bounded_int(seconds, "seconds", low=1, high=MUTE_MAX_SECONDS)
        except OutOfBounds as error:
            raise ChatError("invalid", error.message, field="seconds") from None
    target = _target_user(moderator, user_id, session)
    expires = timezone.now() + timedelta(seconds=seconds) if seconds else None
    return _record(
        Action.MUTE,
        moderator,
        session,
        target_user=target,
        expires_at=expires,
        reason=reason,
    )


@transaction.atomic
def unmute(moderator, session, user_id):
    """Lift every mute of ``user_id`` in ``session``."""
    check_can_moderate(session, moderator)
    target = _target_user(moderator, user_id, session)
    ModerationAction.objects.mutes(session).filter(target_user=target).update(
        lifted_at=timezone.now(), lifted_by=moderator
    )
    return _record(Action.UNMUTE, moderator, session, target_user=target)


@transaction.atomic
def ban(moderator, user_id, reason="", session=None):
    """Ban ``user_id`` from every live chat: their sockets close and their messages disappear.

    ``session`` is where the moderator acted from (None from the ban list); it
    is recorded, but the ban reaches every chat, so it needs site-wide authority
    (``permissions.can_moderate_site``) wherever it is sent from.
    """
    check_can_moderate_site(moderator)
    reason = _clean_reason(reason)
    target = _target_user(moderator, user_id)
    if is_banned(target):
        raise ChatError("invalid_target", _("This user is already banned."))
    record = _record(Action.BAN, moderator, session, target_user=target, reason=reason)
    _hide(ChatMessage.objects.filter(user=target), moderator)
    transaction.on_commit(lambda: hub.broadcast_user_banned(target.pk))
    return record


@transaction.atomic
def unban(moderator, user_id, session=None):
    """Lift ``user_id``'s ban; their removed messages stay removed (site-wide moderators only)."""
    check_can_moderate_site(moderator)
    target = _target_user(moderator, user_id)
    lifted = ModerationAction.objects.bans().filter(target_user=target)
    if not lifted.exists():
        raise ChatError("not_found", _("This user is not banned."))
    lifted.update(lifted_at=timezone.now(), lifted_by=moderator)
    return _record(Action.UNBAN, moderator, session, target_user=target)


@transaction.atomic
def set_slow_mode(moderator, session, seconds):
    """Let each viewer post at most once every ``seconds`` (0 turns slow mode off)."""
    check_can_moderate(session, moderator)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not (0 <= seconds <= SLOW_MODE_MAX_SECONDS)
    ):
        raise ChatError(
            "invalid",
            _("seconds must be a number from 0 to %(max)d.") % {"max": SLOW_MODE_MAX_SECONDS},
            field="seconds",
        )
    room = chat_room(session)
    room.slow_mode_seconds = seconds
    room.save(update_fields=["slow_mode_seconds"])
    transaction.on_commit(lambda: events.publish(session, "chat.slow", seconds=seconds))
    return _record(Action.SLOW, moderator, session, value=seconds)


@transaction.atomic
def pin(moderator, session, message_id):
    """Pin one visible message of ``session`` above the chat (None unpins)."""
    check_can_moderate(session, moderator)
    message = None
    if message_id is not None:
        message = _session_message(session, message_id)
        if message.is_removed:
            raise ChatError("not_found", _("This message was removed."))
    room = chat_room(session)
    room.pinned = message
    room.save(update_fields=["pinned"])
    payload = message.as_event() if message else None
    transaction.on_commit(lambda: events.publish(session, "chat.pinned", message=payload))
    return _record(Action.PIN, moderator, session, message=message)


def _clean_reason(reason):
    if reason is None:
        return ""
    if not isinstance(reason, str):
        raise ChatError("invalid", _("reason must be text."), field="reason")
    check_characters(reason, "reason", chat_text.TEXT_CONTROLS)
    return reason.strip()[:REASON_MAX_LENGTH]


# -- the blocked-terms filter, built on before_live_chat_message -------------


#: Seconds other processes may keep using a blocked-terms list after it changed.
BLOCKED_TERMS_TTL = 10
_blocked_terms = {"patterns": None, "loaded": 0.0}


def _blocked_patterns():
    # Cached: every chat message runs this. Saving or deleting a term clears this
    # process's cache at once (signals below); other workers follow within the TTL.
    now = time.monotonic()
    if _blocked_terms["patterns"] is None or now - _blocked_terms["loaded"] > BLOCKED_TERMS_TTL:
        patterns = (
            (term, chat_text.term_pattern(term))
            for term in BlockedTerm.objects.values_list("term", flat=True)
        )
        _blocked_terms["patterns"] = [(term, found) for term, found in patterns if found]
        _blocked_terms["loaded"] = now
    return _blocked_terms["patterns"]


@receiver([post_save, post_delete], sender=BlockedTerm)
def _forget_blocked_terms(**kwargs):
    _blocked_terms["patterns"] = None


def blocked_term_in(text):
    """The first ``BlockedTerm`` found in ``text`` as a whole word or phrase, or None.

    Both sides are compared in ``wagtail_live.text.match_keys`` forms, and in their
    ``joined_key`` forms, so spelling tricks do not hide a term: capitals, full-width
    letters, look-alike letters of other scripts, invisible characters inside it,
    no-break spaces, accents added on top, letters split by punctuation or spelled
    out one by one. An ordinary word wholly in another script is left alone
    (``wagtail_live.text.reads_as_own_script``).
    """
    keys = {}  # per set of term scripts (usually one: the site's language)
    for term, pattern in _blocked_patterns():
        if pattern.scripts not in keys:
            forms = chat_text.match_keys(text, pattern.scripts)
            keys[pattern.scripts] = forms + tuple(chat_text.joined_key(key) for key in forms)
        if any(pattern.regex.search(key) for key in keys[pattern.scripts]):
            return term
    return None


def reject_blocked_terms(session, user, text):
    """``before_live_chat_message`` hook: refuse messages containing a blocked term."""
    if blocked_term_in(text):
        return Reject(_("Your message contains a word that is not allowed here."))
    return None


def get_session(session_id):
    """The ``LiveSession`` with this primary key, or None."""
    return LiveSession.objects.filter(pk=session_id).select_related("owner").first()


# -- telling a viewer at once that they were muted, or may chat again ----------


def restriction_event(session, user):
    """The ``chat.restricted`` message telling ``user`` whether they may post in ``session``.

    ``restriction`` is ``"muted"`` (``until``: ISO time, or ``"session_end"``) or
    null (``until`` null: they may chat again). Bans have their own, sent as the
    user's sockets are closed (``hub.Hub.kick_user``).
    """
    until = muted_until(session, user)
    if until is None:
        return {
            "type": "chat.restricted",
            "restriction": None,
            "until": None,
            "message": _("You can chat again."),
        }
    if until == "session_end":
        message = _("You are muted in this chat until the live ends.")
    else:
        message = _("You are muted in this chat for now.")
    return {
        "type": "chat.restricted",
        "restriction": "muted",
        "until": _as_json_time(until),
        "message": message,
    }


@receiver(post_save, sender=ModerationAction)
def _tell_restricted_user(instance, **kwargs):
    # Any mute or unmute, from the socket, the dashboard or the admin's lists: once it is
    # committed, the user's open sockets in that session hear their new state.
    if instance.action not in (Action.MUTE, Action.UNMUTE) or instance.target_user_id is None:
        return
    session_id, user_id = instance.session_id, instance.target_user_id

    def tell():
        session = LiveSession.objects.filter(pk=session_id).first()
        user = get_user_model().objects.filter(pk=user_id).first()
        if session is not None and user is not None:
            hub.broadcast_user_restricted(user_id, session_id, restriction_event(session, user))

    # robust: the mute is committed; a channel layer that is down only loses the notice
    # (the viewer still learns it on posting or reconnecting), never fails the request.
    transaction.on_commit(tell, robust=True)
