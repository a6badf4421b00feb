"""Django signals sent by wagtail_live. Every one is sent with ``sender`` set to the model class."""

from django.dispatch import Signal

#: A session went live. Arguments: ``session``.
live_session_started = Signal()

#: A session ended (or failed). Arguments: ``session``.
live_session_ended = Signal()

#: A recording became a wagtailmedia item and a draft page. Arguments: ``recording``.
recording_ready = Signal()
