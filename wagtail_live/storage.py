"""Where a session's files live: the private root, and which storage holds a recording.

Two places, so that no by-path file server can hand out a private session's files:

* ``PRIVATE_ROOT`` (default: ``live-private`` beside ``MEDIA_ROOT``, never inside it) holds
  every session's working files — live HLS, recording sources (the pipeline's
  ``recording.mpegts``, nginx-rtmp's ``.flv``, uploaded files) — and, through
  :func:`private_storage`, private sessions' finished MP4s and poster frames. Only
  permission-checked views read it.
* The default storage (``MEDIA_ROOT``) holds public sessions' finished recordings, which
  ``MEDIA_URL`` (nginx, a CDN) may serve by path.

Names are the same in both (``<MEDIA_SUBDIR>/<session>/…``): a recording whose session
changes privacy moves between the two storages under its own name
(``wagtail_live.private_files``). docs/storage.md and docs/security.md explain the choice.
"""

from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages

from .conf import live_settings

#: The folder beside MEDIA_ROOT that PRIVATE_ROOT defaults to.
DEFAULT_PRIVATE_FOLDER = "live-private"


def private_root():
    """Absolute path of ``PRIVATE_ROOT`` (``<MEDIA_ROOT>/../live-private`` when unset).

    Resolved so that a ``MEDIA_ROOT`` given with a trailing slash or ``..`` still puts
    the default beside it, not in it.
    """
    configured = live_settings.PRIVATE_ROOT
    if configured:
        return Path(configured).resolve()
    return Path(settings.MEDIA_ROOT).resolve().parent / DEFAULT_PRIVATE_FOLDER


class PrivateRootStorage(FileSystemStorage):
    """A FileSystemStorage at ``PRIVATE_ROOT``, read at every use (tests and sites may change it).

    It has no URL: a name in it is never something a browser may fetch by path.
    """

    def __init__(self):
        super().__init__(base_url="/")

    @property
    def base_location(self):
        return str(private_root())

    @property
    def location(self):
        return self.base_location

    def url(self, name):
        raise ValueError("Files under WAGTAIL_LIVE['PRIVATE_ROOT'] have no public URL.")

    def deconstruct(self):
        return ("wagtail_live.storage.PrivateRootStorage", (), {})


_working_storage = PrivateRootStorage()


def working_storage():
    """The local storage at ``PRIVATE_ROOT``: live HLS and recording sources (``Recording.source``).

    Always a filesystem: ffmpeg and nginx-rtmp write these files themselves.
    """
    return _working_storage


def private_storage():
    """Where private sessions' finished recordings and posters are kept (``PRIVATE_STORAGE``)."""
    alias = live_settings.PRIVATE_STORAGE
    if alias:
        return storages[alias]
    return working_storage()


def recording_source_storage():
    """``Recording.source``'s storage (a callable, so settings are read when it is used)."""
    return working_storage()


def is_private(session):
    """True when ``session``'s files must stay out of the public media tree."""
    return session.privacy != type(session).Privacy.PUBLIC


def result_storage(session):
    """The storage a recording of ``session`` is stored in: private or the default one."""
    from django.core.files.storage import default_storage

    return private_storage() if is_private(session) else default_storage
