"""``ws/live/<pk>/ingest/``: the Go Live screen streams the camera here.

Text frames are JSON control messages (``{"type": "start", "mime": ...}``,
``{"type": "end"}``); binary frames are MediaRecorder chunks. The server sends
``{"type": "live", "started_at": ...}`` once media flows, ``{"type": "ended"}``
and ``{"type": "error", "code": ..., "message": ...}``.

Close codes the page acts on: ``4000`` finished or invalid media, ``4003``
refused (permission), ``4009`` another encoder is live. Any other close is a
dropped connection the page may resume within ``RECONNECT_GRACE``.
"""

import asyncio
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils.translation import gettext as _

from ..conf import live_settings
from ..exceptions import PermissionDenied, WagtailLiveError
from ..ingest.browser import (
    BrowserIngest,
    DiskFull,
    InvalidMedia,
    PipelineError,
    StreamEnded,
    StreamRefused,
    check_can_stream,
)
from ..models import LiveSession
from .origins import is_same_origin

logger = logging.getLogger("wagtail_live.ingest.browser")

CLOSE_FINISHED = 4000
CLOSE_FORBIDDEN = 4003
CLOSE_CONFLICT = 4009


def close_reason(text):
    """``text`` cut to the 123 bytes a websocket close frame allows, on a character boundary."""
    return text.encode("utf-8")[:123].decode("utf-8", "ignore")


class IngestConsumer(AsyncWebsocketConsumer):
    """Authenticates the host, then passes camera chunks to :class:`BrowserIngest`."""

    # No channel of its own: it receives nothing through the layer, and a layer that is down
    # (Redis unreachable) would otherwise end the socket and drop the camera (Channels'
    # consumers read their channel beside the websocket and die when that read fails).
    channel_layer_alias = None

    async def connect(self):
        self.ingest = None
        self.watchdog = None
        if not is_same_origin(self.scope):
            await self.close()  # refused at the handshake: HTTP 403
            return
        # Accepted before the checks so the page can show why it was refused.
        await self.accept()
        try:
            session = await self._load_session_for_user()
            ingest = BrowserIngest(session)
            await ingest.open()
        except PermissionDenied as error:
            await self._refuse("forbidden", error, CLOSE_FORBIDDEN)
            return
        except StreamRefused as error:
            await self._refuse("refused", error, CLOSE_CONFLICT)
            return
        self.ingest = ingest
        self._arm_watchdog()

    @database_sync_to_async
    def _load_session_for_user(self):
        pk = self.scope["url_route"]["kwargs"]["pk"]
        user = self.scope.get("user")
        session = LiveSession.objects.filter(pk=pk).first()
        if session is None:
            raise PermissionDenied(_("No such live session."))
        check_can_stream(session, user)
        return session

    async def receive(self, text_data=None, bytes_data=None):
        if self.ingest is None:
            return
        self._arm_watchdog()
        if bytes_data is not None:
            await self._receive_media(bytes_data)
        else:
            await self._receive_control(text_data)

    async def _receive_media(self, chunk):
        try:
            went_live = await self.ingest.receive(chunk)
        except InvalidMedia as error:
            await self._refuse("invalid_media", error, CLOSE_FINISHED)
        except StreamRefused as error:
            await self._refuse("refused", error, CLOSE_CONFLICT)
        except StreamEnded as error:
            await self._stop(end=True)
            await self._send({"type": "ended", "message": str(error)})
            await self.close(code=CLOSE_FINISHED)
        except PipelineError as error:
            logger.warning("session %s: %s", self.ingest.session.pk, error)
            await self._stop(end=False)
            code = "disk_full" if isinstance(error, DiskFull) else "pipeline"
            await self._send({"type": "error", "code": code, "message": str(error)})
            await self.close()  # not final: the page may reconnect within the grace
        else:
            if went_live:
                await self._send({"type": "live", "started_at": await self.ingest.started_at()})

    async def _receive_control(self, text):
        try:
            message = json.loads(text)
            kind = message["type"]
        except (ValueError, TypeError, KeyError):
            await self._send_error("bad_message", _("Control messages are JSON with a type."))
            return
        if kind == "end":
            await self._stop(end=True)
            await self._send({"type": "ended"})
            await self.close(code=CLOSE_FINISHED)
        elif kind == "start":
            mime = message.get("mime")
            logger.info("session %s: browser records %s", self.ingest.session.pk, mime)
        else:
            await self._send_error("unknown_type", _("Unknown message type."))

    async def disconnect(self, code):
        if self.watchdog is not None:
            self.watchdog.cancel()
        await self._stop(end=False)

    async def _stop(self, *, end):
        ingest, self.ingest = self.ingest, None
        if ingest is None:
            return
        try:
            await (ingest.end() if end else ingest.drop())
        except WagtailLiveError as error:
            logger.warning("session %s: while stopping: %s", ingest.session.pk, error)

    def _arm_watchdog(self):
        # A socket that sends nothing is an encoder that vanished without closing.
        if self.watchdog is not None:
            self.watchdog.cancel()
        self.watchdog = asyncio.get_running_loop().call_later(
            live_settings.INGEST_IDLE_TIMEOUT, lambda: asyncio.ensure_future(self._on_idle())
        )

    async def _on_idle(self):
        if self.ingest is None:
            return
        await self._send_error("idle", _("No media arrived; the connection was closed."))
        await self._stop(end=False)
        await self.close()

    async def _refuse(self, code, error, close_code):
        await self._stop(end=False)
        await self._send_error(code, str(error))
        await self.close(code=close_code, reason=close_reason(str(error)))

    async def _send_error(self, code, message):
        await self._send({"type": "error", "code": code, "message": message})

    async def _send(self, message):
        await self.send(text_data=json.dumps(message))
