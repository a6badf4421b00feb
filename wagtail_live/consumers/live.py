"""The viewers' and moderators' websocket, ``ws/live/<session pk>/`` (protocol: docs/protocol.md).

Thin on purpose: it parses and checks frames, hands the work to
``wagtail_live.chat`` (in ``database_sync_to_async``) and receives everything it
sends to the browser from the process's fan-out hub.
"""

import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext as _
from wagtail import hooks

from .. import chat, events, permissions, visitors
from ..chat import ChatError
from ..conf import live_settings
from ..hub import get_hub
from . import protocol
from .origins import is_same_origin

logger = logging.getLogger(__name__)


def realtime_unavailable():
    """The ``error`` for a channel layer that is down (docs/protocol.md)."""
    return ChatError(
        "realtime_unavailable",
        _("Real-time updates are unavailable right now; trying again shortly."),
    )


class TokenBucket:
    """``rate`` actions per second with bursts up to ``burst``."""

    def __init__(self, rate, burst):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self, amount=1):
        """Take up to ``amount`` tokens; return how many were available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        granted = min(amount, int(self.tokens))
        self.tokens -= granted
        return granted


#: The cookie live.js keeps the server's signed visitor id in (see ``identify``).
VISITOR_COOKIE = visitors.COOKIE


class LiveConsumer(AsyncWebsocketConsumer):
    """Chat, likes, viewer count and moderation for one live session."""

    # No per-socket channel-layer subscription: the hub holds one per session per process.
    channel_layer_alias = None

    async def dispatch(self, message):
        # Channels closes stale DB connections before every handler via a thread hop;
        # this consumer touches the database only through database_sync_to_async,
        # which already does that, so skip a thread round-trip per frame.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # -- connecting --

    async def connect(self):
        self.joined = False
        self.ready = False
        self.closed = False
        self.backlog = []
        self.user = self.scope.get("user") or AnonymousUser()
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.frames = TokenBucket(
            live_settings.SOCKET_RATE_LIMIT, live_settings.SOCKET_RATE_LIMIT * 2
        )
        self.staff = False
        self.strikes = 0
        if not is_same_origin(self.scope):
            # Another page's script with this user's cookies: refused at the handshake (403).
            self.closed = True
            await self.close()
            return
        # Accept first: close codes (4404, 4403) only reach a client on an open socket.
        await self.accept()
        refusal = await database_sync_to_async(self._refusal)()
        if refusal is not None:
            code, error = refusal
            await self.send_events([error.as_event()])
            await self.close_with(code)
            return
        self.hub = get_hub()
        self.connection_id = self.hub.new_connection_id()
        try:
            self.viewer_key, self.new_visitor = await self.identify()
            self.room = await self.hub.join(self.session_id, self)
        except events.RealtimeUnavailable as error:
            logger.error("wagtail_live: live socket refused, %s", error)
            await self.send_error(realtime_unavailable())
            await self.close_with(protocol.CLOSE_UNAVAILABLE)
            return
        self.joined = True
        await self.send_state()

    def _refusal(self):
        """``(close code, ChatError)`` when this socket may not join, else None."""
        self.session = chat.get_session(self.session_id)
        if self.session is None:
            error = ChatError("not_found", _("There is no such live session."))
            return protocol.CLOSE_NOT_FOUND, error
        try:
            chat.check_can_join(self.session, self.user)
        except ChatError as error:
            return protocol.CLOSE_FORBIDDEN, error
        # The host's and moderators' sockets (their dashboard, Go Live screen) are not audience.
        self.staff = permissions.can_moderate_session(self.session, self.user) or (
            self.user.is_authenticated and self.session.can_go_live(self.user)
        )
        return None

    @property
    def user_id(self):
        return self.user.pk if self.user.is_authenticated else None

    async def identify(self):
        """``(viewer_key, new visitor cookie or None)``: the person behind this socket.

        Every socket of one person has the same key: ``user:<pk>`` when logged in;
        ``anon:<id>`` for an anonymous browser whose cookie holds a visitor id this
        server signed (``wagtail_live.visitors``), while its address has fewer than
        ``ANONYMOUS_VIEWERS_PER_ADDRESS`` - 1 such people; else ``addr:<address>``,
        one person for all of them. A socket with no valid id is sent a new one in
        ``state`` (live.js keeps it in the cookie) but is not a new person now:
        made-up ids cost nothing to send, signed ones a round trip each, and the cap
        bounds what those buy.
        """
        if self.user.is_authenticated:
            return f"user:{self.user.pk}", None
        shared = f"addr:{self.address}"
        visitor = visitors.visitor_id(self.scope.get("cookies", {}).get(VISITOR_COOKIE, ""))
        if visitor is None:
            return shared, visitors.new_visitor_cookie()
        key = f"anon:{visitor}"
        limit = live_settings.ANONYMOUS_VIEWERS_PER_ADDRESS - 1  # the shared key is one too
        if limit > 0 and await self.hub.presence.admit(self.session_id, self.address, key, limit):
            return key, None
        return shared, None

    @property
    def address(self):
        """The client address rate limits and visitor caps count by (daphne's, behind a
        proxy the one it trusts with ``--proxy-headers``)."""
        client = self.scope.get("client") or ("unknown", 0)
        return client[0]

    @property
    def rate_key(self):
        """Whom rate limits count: the user, or for guests their IP address (cookies are free)."""
        if self.user.is_authenticated:
            return f"user:{self.user.pk}"
        return f"addr:{self.address}"

    async def send_state(self):
        if self.user.is_authenticated:
            can = await database_sync_to_async(chat.permissions_for)(self.session, self.user)
        else:
            can = chat.permissions_for(self.session, self.user)  # no query for visitors
        viewers, staff, likes = await self.room.counts()
        state = {
            "type": "state",
            "session": self.session_id,
            **self.room.state(),
            "viewers": viewers,
            "staff": staff,
            "likes": likes,
            "max_length": live_settings.CHAT_MAX_LENGTH,
            "user": {
                "id": self.user_id,
                "name": chat.display_name(self.user) if self.user.is_authenticated else None,
            },
            "can": can,
        }
        if getattr(self, "new_visitor", None):
            state["visitor"] = self.new_visitor
        await self.send_events([state])
        self.ready = True
        backlog, self.backlog = self.backlog, []
        for message in backlog:
            await self.base_send(message)

    async def disconnect(self, code):
        self.closed = True
        if getattr(self, "joined", False):
            self.joined = False
            await self.hub.leave(self.session_id, self)

    # -- what the hub calls --

    async def deliver(self, message):
        """Send a frame the hub encoded once for every socket (held back until ``state`` is out)."""
        if self.closed:
            return
        if not self.ready:
            self.backlog.append(message)
            return
        await self.base_send(message)

    async def kick(self, code, event):
        """Send ``event`` and close with ``code`` (a ban)."""
        if self.closed:
            return
        await self.send_events([event])
        await self.close_with(code)

    # -- receiving --

    async def receive(self, text_data=None, bytes_data=None):
        if self.closed or not self.joined:
            return
        limit = protocol.max_frame_bytes()
        size = len(bytes_data) if text_data is None else protocol.frame_size(text_data, limit)
        if size > protocol.close_frame_bytes(limit):
            await self.send_error(ChatError("frame_too_large", _("The frame is far too large.")))
            await self.close_with(protocol.CLOSE_TOO_LARGE)
            return
        if not self.frames.take():
            await self.flooded()
            return
        if text_data is None:
            await self.send_error(
                ChatError("binary_unsupported", _("Send JSON text frames, not binary ones."))
            )
            return
        try:
            if size > limit:
                raise ChatError(
                    "frame_too_large",
                    _("Frames may be at most %(size)d bytes.") % {"size": limit},
                    max_bytes=limit,
                )
            kind, fields = protocol.parse(text_data)
            await self.handle(kind, fields)
        except ChatError as error:
            await self.send_error(error)
        except Exception:
            logger.exception("wagtail_live: live socket failed to handle a frame")
            await self.send_error(ChatError("server_error", _("Something went wrong. Try again.")))

    async def flooded(self):
        self.strikes += 1
        if self.strikes >= live_settings.SOCKET_FLOOD_CLOSE:
            await self.send_error(ChatError("flood", _("Too many messages; disconnected.")))
            await self.close_with(protocol.CLOSE_POLICY)
            return
        await self.send_error(
            ChatError("rate_limited", _("You are sending too quickly. Slow down."), retry_after=1)
        )

    async def handle(self, kind, fields):
        if kind == "chat.send":
            if not self.user.is_authenticated and not await self.take_guest_chat():
                # Guests have no account to rate-limit in the database: limit their address,
                # across all its sockets and every worker.
                raise ChatError(
                    "rate_limited",
                    _("You are sending messages too quickly. Wait a moment."),
                    retry_after=live_settings.CHAT_RATE_PERIOD,
                )
            await self.send_chat(fields["text"], fields.get("name"))
        elif kind == "like":
            await self.like(fields.get("count", 1))
        else:
            await self.run(self._moderate, kind, fields)

    async def like(self, count):
        if count < 1:
            raise ChatError("invalid", _("count must be at least 1."), field="count")
        if self.room.known.get("status") in ("ended", "failed"):
            raise ChatError("session_ended", _("This live has ended."))
        # Taps past the cap are dropped quietly; one cap for all of a person's sockets.
        granted = await self.hub.presence.take(
            f"likes:{self.session_id}:{self.rate_key}", count, live_settings.LIKE_RATE_LIMIT, 1
        )
        if granted:
            await chat.alike(self.session, granted)

    async def take_guest_chat(self):
        granted = await self.hub.presence.take(
            f"guest-chat:{self.session_id}:{self.rate_key}",
            1,
            live_settings.CHAT_RATE_LIMIT,
            live_settings.CHAT_RATE_PERIOD,
        )
        return granted > 0

    async def send_chat(self, text, name):
        message = await database_sync_to_async(self._store_chat)(text, name)
        # Published from the event loop rather than from the database thread: a busy
        # hub would otherwise keep that one thread (and every other socket's chat) waiting.
        if await events.publish(self.session_id, **message.as_event()) is False:
            await self.send_error(realtime_unavailable())  # stored, but nobody saw it live
        if hooks.get_hooks("after_live_chat_message"):
            await database_sync_to_async(chat.after_message)(message)

    def _store_chat(self, text, name):
        session = chat.get_session(self.session_id)  # fresh: the status may have changed
        return chat.send_message(session, self.user, text, guest_name=name, broadcast=False)

    def _moderate(self, kind, fields):
        session = chat.get_session(self.session_id)
        user = self.user
        if kind == "mod.remove":
            chat.remove_message(user, session, fields["message_id"])
        elif kind == "mod.mute":
            chat.mute(user, session, fields["user_id"], fields["seconds"])
        elif kind == "mod.unmute":
            chat.unmute(user, session, fields["user_id"])
        elif kind == "mod.ban":
            chat.ban(user, fields["user_id"], fields.get("reason") or "", session=session)
        elif kind == "mod.unban":
            chat.unban(user, fields["user_id"], session=session)
        elif kind == "mod.slow":
            chat.set_slow_mode(user, session, fields["seconds"])
        elif kind == "mod.pin":
            chat.pin(user, session, fields["message_id"])

    async def run(self, fn, *args):
        await database_sync_to_async(fn)(*args)

    # -- sending --

    async def send_events(self, events):
        await self.send(text_data=json.dumps(events[0] if len(events) == 1 else events))

    async def send_error(self, error):
        await self.send_events([error.as_event()])

    async def close_with(self, code):
        self.closed = True
        await self.close(code)
