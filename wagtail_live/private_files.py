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
    """Move the file ``name`` from storage ``source`` to storage ``target``.

    Returns the name the file has in ``target`` now ("" when there was nothing to move).
    A file already in ``target`` under that name is kept only when it holds the same
    bytes (a move interrupted after the copy); a different file there is never taken
    for ours: ours is stored beside it under a free name, so no recording is ever lost
    (docs/security.md). Callers that keep the name in a row update it.
    """
    if source is target or not source.exists(name):
        return ""
    stored = name
    if target.exists(name) and not same_content(name, source, target):
        stored = target.get_available_name(name)
        logger.warning(
            "%s: a different file is already at %s in %r; keeping both (ours as %s)",
            name,
            name,
            target,
            stored,
        )
    if not target.exists(stored):
        if isinstance(source, FileSystemStorage) and isinstance(target, FileSystemStorage):
            destination = Path(target.path(stored))
            destination.parent.mkdir(parents=True, exist_ok=True)
            # A rename when both are on one filesystem; a copy otherwise.
            shutil.move(source.path(name), destination)
            return stored
        with source.open(name, "rb") as handle:
            saved = target.save(stored, File(handle, name=os.path.basename(stored)))
        if saved != stored:
            raise OSError(f"{target!r} stored {name} as {saved}")
    source.delete(name)
    return stored


def same_content(name, source, target, chunk=1024 * 1024):
    """True when ``name`` holds the same bytes in both storages (size first, then bytes)."""
    if source.size(name) != target.size(name):
        return False
    with source.open(name, "rb") as first, target.open(name, "rb") as second:
        while True:
            block = first.read(chunk)
            if block != second.read(chunk):
                return False
            if not block:
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
        moved += move_media_file(recording.media, source, target)
        if private:
            moved += make_poster_private(recording, recording_poster_name(recording))
            moved += drop_media_thumbnail(recording.media)
    if moved:
        logger.info(
            "session %s: moved %s file(s) for its privacy (%s)", session.pk, moved, session.privacy
        )
    return moved


def move_media_file(media, source, target):
    """Move a Media item's file between storages, following it in the row if renamed; 1 or 0."""
    name = media.file.name
    stored = move_file(name, source, target)
    if stored and stored != name:
        type(media).objects.filter(pk=media.pk).update(file=stored)
        media.file.name = stored
    return int(bool(stored))


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
            stored = move_file(name, default_storage, working_storage())
            if stored and stored != name:
                Recording.objects.filter(session=session, source=name).update(source=stored)
            moved += bool(stored)
    if hls.is_dir() and not hls.is_symlink():
        with contextlib.suppress(OSError):
            hls.rmdir()
    return moved


def move_uploaded_sources_aside(session):
    """Move uploads older versions kept in the session's own folder into ``sources/``.

    Older versions stored an upload under the uploader's file name beside the outputs,
    where a name like ``recording-7.mp4`` was served through playback grants as if the
    app had made it. Only the live pipeline's own sources (``LEGACY_WORKING_FILES``)
    stay where they are. Returns how many moved.
    """
    from .models import Recording
    from .models.recordings import UPLOADED_SOURCES_FOLDER, recording_upload_to

    storage = working_storage()
    aside = session.media_path(UPLOADED_SOURCES_FOLDER) + "/"
    pipeline = {session.media_path(name) for name in LEGACY_WORKING_FILES}
    moved = 0
    for recording in Recording.objects.filter(session=session).exclude(source=""):
        name = recording.source.name
        if name.startswith(aside) or name in pipeline or not storage.exists(name):
            continue
        new_name = recording_upload_to(recording, name)
        destination = Path(storage.path(new_name))
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(storage.path(name), destination)
        Recording.objects.filter(pk=recording.pk).update(source=new_name)
        moved += 1
    return moved


def move_session_files(session):
    """Everything for one session: legacy working files, uploads set aside, recordings by privacy."""
    return (
        move_legacy_working_files(session)
        + move_uploaded_sources_aside(session)
        + apply_privacy(session)
    )


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
