"""The per-process fan-out hub: one channel-layer subscription per session, however many viewers.

Sending one channel-layer message per viewer per chat message saturates a
process near 4–5 k frames/s, after which the in-memory layer drops messages
silently. Instead each process runs one ``Room`` per session that has local
sockets. The room:

* subscribes **once** to the session's group (``events.group_name``) and receives
  every ``live.event`` (chat, removals, pins, ``status`` from ``events.publish``);
* encodes each outgoing frame **once** and hands the same ASGI message to every
  local socket; when traffic is high, messages that arrive during one delivery
  tick (``FANOUT_TICK``) go out together as one JSON array frame;
* reads viewer and like counts from the presence backend once a second and
  sends them only when they changed (so a join storm costs one ``viewers``
  frame per second, not one per join), refreshes its sockets' presence
  heartbeats, stores the peak, the likes and a viewer sample every 10 s.

A process-wide subscription to ``USERS_GROUP`` carries per-user events (a ban
closes that user's sockets in every session of every process at once).
"""

import asyncio
import json
import logging
import time
import uuid
import weakref
from collections import defaultdict, deque

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from . import events
from .conf import live_settings
from .presence import get_presence_backend

logger = logging.getLogger(__name__)

#: Group every process's hub listens to for events about users rather than sessions.
USERS_GROUP = "wagtail_live.users"
#: Seconds between count checks (the coalescing interval of ``viewers`` and ``likes``).
COUNTS_INTERVAL = 1.0
#: Sockets sent to between two yields to the event loop.
DELIVERY_SLICE = 50
#: Close code for a banned user's sockets.
CLOSE_BANNED = 4403
TRACE = bool(__import__("os").environ.get("WAGTAIL_LIVE_HUB_TRACE"))
#: Events only the host's and moderators' sockets get (stream health: never the audience).
STAFF_ONLY_EVENTS = {"health"}


def encode(messages):
    """One text frame for a batch: a single object, or a JSON array of several."""
    payload = messages[0] if len(messages) == 1 else messages
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def broadcast_user_banned(user_id):
    """Tell every process to close ``user_id``'s sockets (callable from sync code)."""
    events.send_to_group(USERS_GROUP, events.build_message("user.banned", user_id=user_id))


def broadcast_user_restricted(user_id, session_id, event):
    """Send ``event`` (a ``chat.restricted`` message) to ``user_id``'s sockets in one session.

    Callable from sync code; reaches the user's sockets in every process.
    """
    events.send_to_group(
        USERS_GROUP,
        events.build_message(
            "user.restricted", user_id=user_id, session_id=session_id, event=event
        ),
    )


def member(socket, session_id=None):
    """What presence knows of a socket: ``(connection_id, viewer_key, staff)``, session first."""
    fields = (socket.connection_id, socket.viewer_key, bool(getattr(socket, "staff", False)))
    return fields if session_id is None else (session_id, *fields)


class Room:
    """One session's subscription and local sockets in this process."""

    def __init__(self, hub, session_id):
        self.hub = hub
        self.session_id = session_id
        self.sockets = set()
        self.pending = []
        self.wakeup = asyncio.Event()
        self.last_flush = 0.0
        self.sent_counts = {}
        self.known = {"likes": 0, "peak_viewers": 0, "status": None}
        # What a joining socket's ``state`` needs, kept current from the events, so a
        # join storm does not read the chat history from the database once per viewer.
        self.history = deque(maxlen=live_settings.CHAT_HISTORY)
        self.pinned = None
        self.slow_mode = 0
        self.channel_name = None
        self.tasks = []
        self.ready = asyncio.Event()

    async def start(self):
        layer = self.hub.layer
        if layer is not None:
            # Subscribe before reading the history: a message posted in between is
            # then in both, and ``remember`` drops the duplicate.
            self.channel_name = await events.subscribe(layer, events.group_name(self.session_id))
        self.known, history, self.pinned, self.slow_mode = await _load_room(self.session_id)
        for message in history:
            self.remember(message)
        if layer is not None:
            self.tasks.append(asyncio.create_task(self._read()))
        self.tasks.append(asyncio.create_task(self._send()))
        self.tasks.append(asyncio.create_task(self._tick()))
        self.ready.set()

    async def stop(self):
        tasks = list(self.tasks)  # refill tasks remove themselves when done
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.channel_name is not None:
            await self.hub.layer.group_discard(
                events.group_name(self.session_id), self.channel_name
            )

    # -- receiving from the channel layer --

    async def _read(self):
        layer = self.hub.layer
        while True:
            try:
                message = await layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken layer connection must not kill the room
                logger.exception("wagtail_live hub: receive failed for %s", self.session_id)
                await asyncio.sleep(1)
                continue
            event = (
                message.get("event") if message.get("type") == events.GROUP_MESSAGE_TYPE else None
            )
            if isinstance(event, dict) and "type" in event:
                self.handle_event(event)

    def handle_event(self, event):
        """Update the room's view of the session and queue the event for its sockets."""
        kind = event["type"]
        if kind in STAFF_ONLY_EVENTS:
            task = asyncio.create_task(self.deliver(encode([event]), staff_only=True))
            self.tasks.append(task)
            task.add_done_callback(self.tasks.remove)
            return
        if kind == "status":
            self.known["status"] = event.get("state")
        elif kind == "chat.message":
            self.remember(event)
        elif kind == "chat.removed":
            self.forget(event.get("id"))
        elif kind == "chat.pinned":
            self.pinned = event.get("message")
        elif kind == "chat.slow":
            self.slow_mode = event.get("seconds", 0)
        self.queue(event)

    def remember(self, message):
        if not any(known["id"] == message["id"] for known in self.history):
            self.history.append(message)

    def forget(self, message_id):
        was_full = len(self.history) == self.history.maxlen
        for known in list(self.history):
            if known["id"] == message_id:
                self.history.remove(known)
        if was_full and len(self.history) < self.history.maxlen:
            # An older visible message now belongs in the last CHAT_HISTORY: read them again
            # (once per removal, not per joining viewer).
            refill = asyncio.create_task(self._refill_history())
            self.tasks.append(refill)
            refill.add_done_callback(self.tasks.remove)  # keep only running tasks
        if self.pinned is not None and self.pinned.get("id") == message_id:
            self.pinned = None

    async def _refill_history(self):
        from . import chat

        messages = await database_sync_to_async(chat.recent_messages)(self.session_id)
        known_ids = {message["id"] for message in self.history}
        older = [message for message in messages if message["id"] not in known_ids]
        # Keep what arrived meanwhile; put back the older ones that fit in front of it.
        room = self.history.maxlen - len(self.history)
        if room > 0 and older:
            self.history.extendleft(reversed(older[-room:]))

    def state(self):
        """The session-wide part of a joining socket's ``state`` message."""
        return {
            "status": self.known["status"],
            "pinned": self.pinned,
            "messages": list(self.history),
            "slow_mode": self.slow_mode,
        }

    def queue(self, message):
        self.pending.append(message)
        self.wakeup.set()

    # -- delivering to local sockets --

    async def _send(self):
        loop = asyncio.get_running_loop()
        tick = live_settings.FANOUT_TICK
        next_flush = 0.0
        while True:
            await self.wakeup.wait()
            # A quiet room delivers at once. A busy one gathers what arrives into one
            # frame per tick, and waits at least as long as its last delivery cost, so
            # fan-out never takes more than about half the process however many
            # sockets there are: batches grow instead of the backlog.
            delay = next_flush - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.wakeup.clear()
            batch, self.pending = self.pending, []
            if not batch:
                continue
            started, cpu_started = loop.time(), time.thread_time()
            await self.deliver(encode(batch))
            finished = loop.time()
            # CPU time, not wall time: on a busy machine waiting for a core is not cost.
            next_flush = finished + max(tick, time.thread_time() - cpu_started)
            if TRACE:
                logger.warning(
                    "hub deliver %d msgs to %d sockets in %.1f ms",
                    len(batch),
                    len(self.sockets),
                    1000 * (finished - started),
                )

    async def deliver(self, frame, *, staff_only=False):
        """Send one already-encoded frame to every local socket of the room (or its staff's)."""
        message = {"type": "websocket.send", "text": frame}
        sockets = [s for s in self.sockets if getattr(s, "staff", False) or not staff_only]
        for index, socket in enumerate(sockets, 1):
            try:
                await socket.deliver(message)
            except Exception:  # one broken socket must not starve the others
                logger.debug("wagtail_live hub: delivery failed", exc_info=True)
            if index % DELIVERY_SLICE == 0:
                # Sending to a socket never yields; let incoming chat and the channel
                # layer through between slices so a big room does not stall the process.
                await asyncio.sleep(0)

    # -- counts, heartbeats and samples, once a second --

    async def _tick(self):
        presence = self.hub.presence
        refresh_every = max(1.0, presence.ttl / 3)
        last_refresh = time.monotonic()
        while True:
            await asyncio.sleep(COUNTS_INTERVAL)
            try:
                if time.monotonic() - last_refresh >= refresh_every:
                    last_refresh = time.monotonic()
                    await presence.refresh(self.session_id, [member(s) for s in self.sockets])
                await self.publish_counts()
                await self.maybe_sample()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("wagtail_live hub: count update failed for %s", self.session_id)

    async def counts(self):
        """Current ``(viewers, staff, likes)`` of the session across every process.

        ``viewers`` counts people in the audience, ``staff`` the host and moderators.
        """
        presence = self.hub.presence
        viewers, staff = await presence.counts(self.session_id)
        likes = await presence.likes(self.session_id, initial=self.known["likes"])
        return viewers, staff, likes

    async def publish_counts(self):
        """Queue ``viewers`` / ``likes`` when they changed since this room last sent them."""
        viewers, staff, likes = await self.counts()
        if self.sent_counts.get("viewers") != (viewers, staff):
            self.sent_counts["viewers"] = (viewers, staff)
            self.queue({"type": "viewers", "count": viewers, "staff": staff})
        if self.sent_counts.get("likes") != likes:
            self.sent_counts["likes"] = likes
            self.queue({"type": "likes", "total": likes})
        await self.persist(viewers, likes)

    async def persist(self, viewers, likes):
        changes = {}
        if viewers > self.known["peak_viewers"]:
            self.known["peak_viewers"] = changes["peak_viewers"] = viewers
        if likes > self.known["likes"]:
            self.known["likes"] = changes["likes"] = likes
        if changes:
            await _store_counts(self.session_id, changes)

    async def maybe_sample(self):
        """Store one ``ViewerSample`` per ``VIEWER_SAMPLE_SECONDS`` across all processes."""
        if self.known["status"] != "live":
            return
        period = live_settings.VIEWER_SAMPLE_SECONDS
        bucket = int(time.time() // period)
        presence = self.hub.presence
        if await presence.claim(f"sample:{self.session_id}:{bucket}", period):
            viewers = await presence.count(self.session_id)
            unique = await presence.unique_viewers(self.session_id)
            await _store_sample(self.session_id, viewers, unique)


class Hub:
    """This process's rooms and the sockets in them (one hub per event loop)."""

    def __init__(self):
        self.layer = get_channel_layer()
        self.presence = get_presence_backend()
        self.process_id = uuid.uuid4().hex[:12]
        self.rooms = {}
        self.sockets_by_user = defaultdict(set)
        self._lock = asyncio.Lock()
        self._users_task = None
        self._users_channel = None

    async def join(self, session_id, socket):
        """Add ``socket`` to the session's room (starting it if needed) and count it as a viewer.

        ``socket`` provides ``connection_id``, ``session_id``, ``user_id``, ``viewer_key``,
        ``async deliver(message)`` and ``async kick(code, event)``.
        """
        async with self._lock:
            await self._ensure_users_subscription()
            room = self.rooms.get(session_id)
            if room is None:
                room = Room(self, session_id)
                await room.start()  # raises events.RealtimeUnavailable when the layer is down
                self.rooms[session_id] = room
            room.sockets.add(socket)
        if socket.user_id is not None:
            self.sockets_by_user[socket.user_id].add(socket)
        await self.presence.join(*member(socket, session_id))
        return room

    async def leave(self, session_id, socket):
        """Remove ``socket``; the room stops when its last socket leaves."""
        await self.presence.leave(*member(socket, session_id))
        if socket.user_id is not None:
            user_sockets = self.sockets_by_user.get(socket.user_id)
            if user_sockets is not None:
                user_sockets.discard(socket)
                if not user_sockets:
                    del self.sockets_by_user[socket.user_id]
        async with self._lock:
            room = self.rooms.get(session_id)
            if room is None:
                return
            room.sockets.discard(socket)
            if not room.sockets:
                del self.rooms[session_id]
                await room.stop()
                if room.known["status"] in ("ended", "failed"):
                    # The figures are stored (session, samples); nothing needs them any more.
                    await self.presence.clear(session_id)

    def new_connection_id(self):
        """A presence member id unique across processes."""
        return f"{self.process_id}:{uuid.uuid4().hex[:12]}"

    async def _ensure_users_subscription(self):
        if self._users_task is not None or self.layer is None:
            return
        self._users_channel = await events.subscribe(self.layer, USERS_GROUP)
        self._users_task = asyncio.create_task(self._read_users())

    async def _read_users(self):
        while True:
            try:
                message = await self.layer.receive(self._users_channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("wagtail_live hub: receive failed for user events")
                await asyncio.sleep(1)
                continue
            event = message.get("event") or {}
            if event.get("type") == "user.banned":
                await self.kick_user(event.get("user_id"))
            elif event.get("type") == "user.restricted":
                await self.tell_user(event["user_id"], event["session_id"], event["event"])

    async def tell_user(self, user_id, session_id, event):
        """Send ``event`` to ``user_id``'s local sockets in ``session_id`` (a mute, its end)."""
        message = {"type": "websocket.send", "text": encode([event])}
        for socket in list(self.sockets_by_user.get(user_id, ())):
            if socket.session_id != session_id:
                continue
            try:
                await socket.deliver(message)
            except Exception:
                logger.debug("wagtail_live hub: delivery failed", exc_info=True)

    async def kick_user(self, user_id):
        """Close every local socket of ``user_id`` (after a ban)."""
        from django.utils.translation import gettext as _

        message = _("You have been banned from live chat.")
        error = {"type": "error", "code": "banned", "message": message}
        # First what the viewer's screen acts on (live.js disables the input and takes the
        # user's own messages away, as every other viewer's chat.removed does), then the close.
        restricted = {"type": "chat.restricted", "restriction": "banned", "until": None}
        notice = {"type": "websocket.send", "text": encode([{**restricted, "message": message}])}
        for socket in list(self.sockets_by_user.get(user_id, ())):
            try:
                await socket.deliver(notice)
                await socket.kick(CLOSE_BANNED, error)
            except Exception:
                logger.debug("wagtail_live hub: kick failed", exc_info=True)


_hubs = weakref.WeakKeyDictionary()


def get_hub():
    """The hub of the running event loop (daphne runs one loop per process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub


@database_sync_to_async
def _load_room(session_id):
    from . import chat
    from .models import ChatRoom, LiveSession

    row = LiveSession.objects.filter(pk=session_id).values("likes", "peak_viewers", "status")
    known = dict(row.first() or {"likes": 0, "peak_viewers": 0, "status": None})
    room = ChatRoom.objects.filter(session_id=session_id).select_related("pinned").first()
    pinned = chat.pinned_payload(room) if room else None
    slow_mode = room.slow_mode_seconds if room else 0
    return known, chat.recent_messages(session_id), pinned, slow_mode


@database_sync_to_async
def _store_counts(session_id, changes):
    from .models import LiveSession

    # Greatest() keeps the highest value when several processes write at once.
    LiveSession.objects.filter(pk=session_id).update(
        **{field: Greatest(F(field), value) for field, value in changes.items()}
    )


@database_sync_to_async
def _store_sample(session_id, viewers, unique):
    from .models import ViewerSample

    ViewerSample.objects.create(
        session_id=session_id, at=timezone.now(), viewers=viewers, unique_viewers=unique
    )
