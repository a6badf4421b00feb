"""wagtail_live's models, one module per concern."""

from .audience import LiveReminder, SessionFigures, Webhook, WebhookDelivery  # noqa: F401
from .chat import (  # noqa: F401
    BlockedTerm,
    ChatBan,
    ChatMessage,
    ChatRoom,
    ModerationAction,
    ViewerSample,
)
from .recordings import LiveCategory, Recording, RecordingPage, RecordingPageTag  # noqa: F401
from .sessions import LiveSession, LiveSessionTag, StreamKey  # noqa: F401
