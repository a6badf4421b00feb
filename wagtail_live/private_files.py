"""Keeping each session's files where its privacy says: the private root or the public media tree.

``wagtail_live.storage`` says where files belong; this service moves them there:

* when a session is saved (its privacy may have changed), :func:`apply_privacy` moves its
  finished recordings between the default storage and the private storage, turns a
  poster that was a public Wagtail image into a private poster file (deleting the image
  and its renditions) and keeps the ``PLAYBACK_FROM_MEDIA_URL`` link in step;
* ``manage.py live_move_private_files`` runs :func:`move_session_files` for every
  session, which also moves what older versions kept under ``MEDIA_ROOT`` (live HLS,
  recording sources, nginx-rtmp's ``.flv``) to ``PRIVATE_ROOT``.

Everything here is idempotent: run twice, the second run finds nothing to move.
"""

import contextlib
import logging
import os
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import transaction

from .conf import live_settings
from .storage import is_private, private_storage, working_storage

logger = logging.getLogger(__name__)


def move_file(name, source, target):
    """Move the file ``name`` from storage ``source`` to storage ``target`` (same name).

    True when something moved. A name already in ``target`` is kept there (a move
    interrupted after the copy) and only removed from ``source``.
    """
    if source is target or not source.exists(name):
        return False
    if not target.exists(name):
        if isinstance(source, FileSystemStorage) and isinstance(target, FileSystemStorage):
            destination = Path(target.path(name))
            destination.parent.mkdir(parents=True, exist_ok=True)
            # A rename when both are on one filesystem; a copy otherwise.
            shutil.move(source.path(name), destination)
            return True
        with source.open(name, "rb") as handle:
            saved = target.save(name, File(handle, name=os.path.basename(name)))
        if saved != name:
            raise OSError(f"{target!r} stored {name} as {saved}")
    source.delete(name)
    return True


def apply_privacy(session):
    """Put ``session``'s finished recordings and HLS link where its privacy says; returns moves.

    Private: MP4s and posters in the private storage, no Wagtail poster image (its
    renditions would be public), no wagtailmedia thumbnail. Public: MP4s in the default
    storage, where ``MEDIA_URL`` serves them; posters stay private files, which the
    checked poster view serves to everyone who may watch.
    """
    from .models import Recording
    from .recordings import recording_poster_name

    update_hls_link(session)
    private = is_private(session)
    source, target = (
        (default_storage, private_storage()) if private else (private_storage(), default_storage)
    )
    moved = 0
    recordings = Recording.objects.filter(session=session, media__isnull=False)
    for recording in recordings.select_related("media", "poster"):
        moved += move_file(recording.media.file.name, source, target)
        if private:
            moved += make_poster_private(recording, recording_poster_name(recording))
            moved += drop_media_thumbnail(recording.media)
    if moved:
        logger.info(
            "session %s: moved %s file(s) for its privacy (%s)", session.pk, moved, session.privacy
        )
    return moved


def make_poster_private(recording, poster_name):
    """Turn the recording's Wagtail poster image into a private poster file; True if it did."""
    image = recording.poster
    if image is None:
        return False
    if not private_storage().exists(poster_name):
        with image.file.storage.open(image.file.name, "rb") as handle:
            private_storage().save(poster_name, File(handle, name=os.path.basename(poster_name)))
    # Deleting the image deletes its file and its renditions (Wagtail's own handlers);
    # the recording and its page drop it (SET_NULL).
    with transaction.atomic():
        image.delete()
    recording.poster = None
    return True


def drop_media_thumbnail(media):
    """Delete a wagtailmedia thumbnail file (public by path); True if there was one."""
    thumbnail = getattr(media, "thumbnail", None)
    if not thumbnail or not thumbnail.name:
        return False
    with contextlib.suppress(OSError):
        thumbnail.storage.delete(thumbnail.name)
    type(media).objects.filter(pk=media.pk).update(thumbnail="")
    return True


def public_hls_link(session):
    """Where ``PLAYBACK_FROM_MEDIA_URL`` serves a public session's HLS from: a link in MEDIA_ROOT."""
    return Path(settings.MEDIA_ROOT) / session.media_path("hls")


def update_hls_link(session):
    """Link a public session's HLS into MEDIA_ROOT when ``PLAYBACK_FROM_MEDIA_URL`` is on; else unlink.

    The files themselves never leave ``PRIVATE_ROOT``: the link is all a by-path server
    can follow, and a session that turns private loses it at once.
    """
    link = public_hls_link(session)
    wanted = live_settings.PLAYBACK_FROM_MEDIA_URL and not is_private(session)
    if wanted:
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path(session.media_dir) / "hls", target_is_directory=True)
    elif link.is_symlink():
        link.unlink()


#: Working files older versions wrote under MEDIA_ROOT/<MEDIA_SUBDIR>/<id>/.
LEGACY_WORKING_FILES = ("recording.mpegts", "recording.flv", "recording.ts")


def move_legacy_working_files(session):
    """Move ``session``'s live HLS and recording sources from MEDIA_ROOT to PRIVATE_ROOT."""
    from .models import Recording

    if not isinstance(default_storage, FileSystemStorage):
        return 0
    moved = 0
    names = [session.media_path(name) for name in LEGACY_WORKING_FILES]
    names.append(f"{live_settings.MEDIA_SUBDIR.strip('/')}/{session.pk}%2Fhls.flv")
    names += Recording.objects.filter(session=session).values_list("source", flat=True)
    hls = Path(default_storage.path(session.media_path("hls")))
    if hls.is_dir() and not hls.is_symlink():
        for path in hls.iterdir():
            names.append(session.media_path("hls", path.name))
    for name in dict.fromkeys(names):
        if name:
            moved += move_file(name, default_storage, working_storage())
    if hls.is_dir() and not hls.is_symlink():
        with contextlib.suppress(OSError):
            hls.rmdir()
    return moved


def move_session_files(session):
    """Everything for one session: legacy working files, then recordings by privacy."""
    return move_legacy_working_files(session) + apply_privacy(session)


def session_saved(sender, instance, raw=False, **kwargs):
    """``post_save`` of LiveSession: its privacy may have changed."""
    if raw:
        return
    # robust: a file that cannot be moved is logged (with the session) and never turns a
    # committed save into an error; `live_move_private_files` finishes the job.
    transaction.on_commit(lambda: apply_privacy(instance), robust=True)


def connect_signal_handlers():
    """Connect the receivers this service needs (called once at start-up)."""
    from django.db.models.signals import post_save

    from .models import LiveSession

    post_save.connect(session_saved, sender=LiveSession, dispatch_uid="wagtail_live_private_files")
