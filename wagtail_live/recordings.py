"""Turning a finished stream's recording into a wagtailmedia item and a draft page.

``enqueue_recording`` is what every ingest backend calls once ffmpeg has closed
the file; ``process_recording`` is the whole synchronous job the Huey task runs
(and that imports of recordings made elsewhere call directly).

The job, in order: claim the recording (one worker at a time), make a local
copy of the source if the storage has no filesystem path, probe it with PyAV,
convert it to an MP4 with ``+faststart`` doing as little as the codecs allow
(stream copy for H.264 + AAC, audio-only conversion, a full transcode only when
nothing else works), grab a poster frame, then in one transaction upload the
results through Django's storage API and create the Wagtail image, the
wagtailmedia ``Media`` and the draft page. Output names are fixed per
recording, so a run after a crash overwrites what the crashed run left behind
instead of adding to it; the database rows are created in the same transaction
that marks the recording ready, so there is never a second Media or page.
"""

import contextlib
import errno
import glob
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from html import escape

import av
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from . import events, signals
from .conf import live_settings
from .exceptions import WagtailLiveError
from .ffmpeg import ffmpeg_binary
from .media_input import UnsupportedMedia, ffmpeg_input, open_media, sniff_file
from .models import Recording
from .models.recordings import recording_page_model
from .storage import is_private, private_storage, result_storage, working_storage
from .transient import retry_transient

logger = logging.getLogger(__name__)

#: Codecs an MP4 for browsers may carry unchanged.
WEB_VIDEO_CODECS = {"h264"}
WEB_AUDIO_CODECS = {"aac"}

#: Seconds between progress/heartbeat writes while ffmpeg runs.
PROGRESS_INTERVAL = 1.0


class RecordingError(WagtailLiveError):
    """A recording cannot be processed as it is; retrying without a change will not help."""


class TransientRecordingError(WagtailLiveError):
    """Processing failed for a reason that may go away (storage hiccup); worth retrying."""


class DiskFull(TransientRecordingError):
    """The disk filled while processing: retried by the sweep once there is room again."""


#: How a disk-full failure's error begins (``retry_when_space_returns`` looks for it).
DISK_FULL_MESSAGE = "The disk is full"
#: ffmpeg's exit status for AVERROR(ENOSPC) (-28 as an unsigned byte): it could not write.
FFMPEG_EXIT_ENOSPC = 256 - errno.ENOSPC


def disk_full_message(where):
    """The readable error of a recording that failed for want of space in ``where``."""
    return _(
        "%(prefix)s (no space left in %(where)s): the recording could not be converted. "
        "The source file is kept, and processing is retried by itself once there is room."
    ) % {"prefix": DISK_FULL_MESSAGE, "where": where}


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def enqueue_recording(session, source_name):
    """Create the ``Recording`` of ``session``'s file ``source_name`` and queue its processing.

    ``source_name`` is the storage name of the finished file (under
    ``<MEDIA_SUBDIR>/<pk>/``). Idempotent: the same session and file give the
    same Recording (a session ended twice records once), and only a newly
    created one is queued. The task is queued when the current transaction
    commits, so the worker always finds the row. A transient database error
    ("database is locked") is retried; should queueing itself fail after the
    commit, the row stays *pending* and ``resume_stalled_recordings`` queues it.
    """
    return retry_transient(_create_and_queue, session, source_name)


def _create_and_queue(session, source_name):
    try:
        with transaction.atomic():
            recording, created = Recording.objects.get_or_create(
                session=session, source=source_name
            )
    except IntegrityError:
        # Another process created it between our lookup and insert.
        recording, created = Recording.objects.get(session=session, source=source_name), False
    if created:
        # Registered inside the retried transaction: a rolled-back attempt queues nothing.
        transaction.on_commit(lambda: queue_processing(recording), robust=True)
    return recording


def queue_processing(recording):
    """Put ``recording`` on the task queue (Huey)."""
    # Imported here: the task module is the Huey face of this service, and importing it
    # at module level would make every user of this service configure Huey first.
    from .tasks import process_recording as process_recording_task

    # For a pending recording the heartbeat says when it was queued, so the sweep
    # (resume_stalled_recordings) queues it again only once it has waited a whole lease.
    Recording.objects.filter(pk=recording.pk, status=Recording.Status.PENDING).update(
        heartbeat_at=timezone.now()
    )
    process_recording_task(recording.pk)


def retry_recording(recording):
    """Queue a failed recording again (the admin's *Retry*). Returns False when it is not failed."""
    updated = Recording.objects.filter(pk=recording.pk, status=Recording.Status.FAILED).update(
        status=Recording.Status.PENDING, error="", progress=None
    )
    if updated:
        transaction.on_commit(lambda: queue_processing(recording))
    recording.refresh_from_db()
    return bool(updated)


def process_recording(recording):
    """Do the whole job for ``recording`` and return it (updated in place).

    - Already ready: nothing happens.
    - Another worker holds it (and is alive): nothing happens; the status stays *processing*.
    - Bad input (empty, truncated, corrupt or missing file, no parent page, no
      ffmpeg): status *failed* with a readable ``error``; the source is kept.
    - A transient failure (storage errors): status *failed* and
      ``TransientRecordingError`` is raised so the task retries.
    """
    if not claim(recording):
        recording.refresh_from_db()
        if recording.status == Recording.Status.PROCESSING:
            logger.info("Recording %s is being processed by another worker", recording.pk)
        return recording
    recording.refresh_from_db()
    try:
        run_job(recording)
    except RecordingError as exc:
        mark_failed(recording, str(exc))
    except DiskFull as exc:
        mark_failed(recording, str(exc))
        raise
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            mark_failed(recording, _("Temporary failure, will retry: %(error)s") % {"error": exc})
            raise TransientRecordingError(str(exc)) from exc
        message = disk_full_message(os.path.dirname(exc.filename or "") or _("the media folder"))
        mark_failed(recording, message)
        raise DiskFull(message) from exc
    except TransientRecordingError as exc:
        mark_failed(recording, _("Temporary failure, will retry: %(error)s") % {"error": exc})
        raise TransientRecordingError(str(exc)) from exc
    except Exception as exc:
        # Still a readable status in the admin for whatever we did not foresee.
        mark_failed(recording, _("Unexpected error: %(error)r") % {"error": exc})
        raise
    recording.refresh_from_db()
    return recording


def claim(recording):
    """Take ``recording`` for this worker; False when it is ready or another live worker has it.

    A conditional UPDATE, so of two workers racing only one wins (the row lock
    serialises them on PostgreSQL, the database lock on SQLite). A recording
    whose worker stopped sending heartbeats for ``RECORDING_LEASE`` seconds is
    free again: that worker died mid-task.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=live_settings.RECORDING_LEASE)
    free = Q(status__in=[Recording.Status.PENDING, Recording.Status.FAILED]) | Q(
        status=Recording.Status.PROCESSING, heartbeat_at__lt=stale
    )
    return bool(
        Recording.objects.filter(free, pk=recording.pk).update(
            status=Recording.Status.PROCESSING,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            finished_at=None,
            progress=None,
            error="",
        )
    )


def stalled_recordings():
    """Recordings nobody works on: queued a whole lease ago, or whose worker went silent."""
    stale = timezone.now() - timedelta(seconds=live_settings.RECORDING_LEASE)
    waiting = Q(status=Recording.Status.PENDING) & (
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale)
    )
    abandoned = Q(status=Recording.Status.PROCESSING, heartbeat_at__lt=stale)
    return Recording.objects.filter(waiting | abandoned)


def resume_stalled_recordings():
    """Queue the stalled recordings again; returns how many.

    A recording whose worker died goes back to *pending* first (only if it is
    still stalled: a conditional update, so a worker that just woke up keeps it).
    """
    stale = timezone.now() - timedelta(seconds=live_settings.RECORDING_LEASE)
    count = 0
    for recording in stalled_recordings():
        if recording.status == Recording.Status.PROCESSING:
            freed = Recording.objects.filter(
                pk=recording.pk, status=Recording.Status.PROCESSING, heartbeat_at__lt=stale
            ).update(status=Recording.Status.PENDING, progress=None)
            if not freed:
                continue
        queue_processing(recording)
        count += 1
    return count


def retry_when_space_returns(margin=2.0):
    """Queue again the recordings that failed on a full disk, once their folder has room.

    Room means ``margin`` times the source's size free where the conversion writes
    (the MP4 is about the source's size). Returns how many were queued.
    """
    count = 0
    failed = Recording.objects.filter(
        status=Recording.Status.FAILED, error__startswith=DISK_FULL_MESSAGE
    ).select_related("session")
    for recording in failed:
        directory = work_directory_near(result_storage(recording.session), recording)
        directory = directory or tempfile.gettempdir()
        try:
            free = shutil.disk_usage(directory).free
            needed = margin * recording.source.size
        except OSError:
            continue  # the source or its folder is unreadable: leave it for a person
        if free >= needed and retry_recording(recording):
            count += 1
    return count


def mark_failed(recording, message):
    """Record a readable failure; the source file is left untouched."""
    logger.warning("Recording %s failed: %s", recording.pk, message)
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.FAILED, error=message, finished_at=timezone.now(), progress=None
    )
    recording.refresh_from_db()


def heartbeat(recording, progress=None):
    """Tell other workers this one is alive, and store the conversion's progress."""
    fields = {"heartbeat_at": timezone.now()}
    if progress is not None:
        fields["progress"] = round(progress, 1)
    Recording.objects.filter(pk=recording.pk, status=Recording.Status.PROCESSING).update(**fields)


# ---------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------


@dataclass
class Probe:
    """What PyAV found in a media file."""

    format_name: str
    duration: float | None
    size: int
    # Which whitelisted container the bytes are (wagtail_live.media_input): read with it forced.
    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    declared_duration: float | None = None
    notes: list = field(default_factory=list)
    #: Every (sample rate, channels) and (width, height) met, in order (scan_parameter_changes).
    audio_formats: list = field(default_factory=list)
    frame_sizes: list = field(default_factory=list)

    @property
    def has_video(self):
        return self.video_codec is not None

    @property
    def has_audio(self):
        return self.audio_codec is not None


def run_job(recording):
    """Probe, convert, poster, then store everything in one transaction."""
    storage = recording.source.storage
    name = recording.source.name
    if not name or not storage.exists(name):
        raise RecordingError(
            _("The recording file %(name)s does not exist in storage.") % {"name": name or "?"}
        )
    parent = resolve_parent_page(recording.session)
    near = work_directory_near(result_storage(recording.session), recording)
    with tempfile.TemporaryDirectory(prefix=f".processing-{recording.pk}-", dir=near) as workdir:
        with local_copy(storage, name, workdir, recording) as source_path:
            probe = probe_media(source_path)
            probe.audio_formats, probe.frame_sizes = scan_parameter_changes(
                source_path, probe.container
            )
            Recording.objects.filter(pk=recording.pk).update(
                source_size=probe.size, duration=probe.duration
            )
            output, conversion, ffmpeg_log = convert_to_mp4(source_path, probe, workdir, recording)
        result = probe_media(output)
        check_not_truncated(probe, result, ffmpeg_log)
        poster = extract_poster(output, result, workdir) if result.has_video else None
        heartbeat(recording)
        store_results(recording, parent, output, poster, result, conversion)
    transaction.on_commit(lambda: announce_ready(recording))
    if not live_settings.KEEP_SOURCE:
        delete_source(recording)


def work_directory_near(storage, recording):
    """Where to write intermediate files: beside the results when the storage is local.

    On the same filesystem, storing the finished MP4 is a rename instead of a
    second copy of a file that may be gigabytes; elsewhere (S3 and friends),
    the system's temporary directory.
    """
    if not isinstance(storage, FileSystemStorage):
        return None
    directory = storage.path(recording.session.media_path())
    os.makedirs(directory, exist_ok=True)
    # What a worker killed mid-task left behind.
    for leftover in glob.glob(
        os.path.join(glob.escape(directory), f".processing-{recording.pk}-*")
    ):
        shutil.rmtree(leftover, ignore_errors=True)
    return directory


class LocalResult(File):
    """A finished file in the work directory; FileSystemStorage moves it instead of copying."""

    def temporary_file_path(self):
        return self.file.name


@contextlib.contextmanager
def local_copy(storage, name, workdir, recording):
    """A filesystem path of the source: the storage's own when it has one, else a temp copy."""
    # Only a real filesystem storage's path() is a file ffmpeg can open (InMemoryStorage,
    # for one, answers path() with a name that is not on disk).
    if isinstance(storage, FileSystemStorage):
        yield storage.path(name)
        return
    local = os.path.join(workdir, "source" + os.path.splitext(name)[1])
    last = time.monotonic()
    with storage.open(name, "rb") as src, open(local, "wb") as dst:
        for chunk in iter(lambda: src.read(1024 * 1024), b""):
            dst.write(chunk)
            if time.monotonic() - last > PROGRESS_INTERVAL:
                heartbeat(recording)
                last = time.monotonic()
    yield local


def probe_media(path):
    """Codecs, duration, dimensions and size of the media file at ``path`` (PyAV).

    The file is read as exactly its own bytes: its container is detected from its
    content out of a whitelist and forced (``media_input``), so a playlist, a concat
    list or an image-sequence name is refused instead of followed.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise RecordingError(_("The recording file is empty (0 bytes)."))
    try:
        kind = sniff_file(path)
        container = open_media(path, kind)
    except UnsupportedMedia as exc:
        raise RecordingError(str(exc)) from exc
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise RecordingError(
            _("The recording file is not a media file FFmpeg can read (%(error)s).")
            # strerror leaves out the local (maybe temporary) path the message would show
            % {"error": getattr(exc, "strerror", None) or exc}
        ) from exc
    with container:
        probe = Probe(format_name=container.format.name, duration=None, size=size, container=kind)
        if container.duration:
            probe.declared_duration = container.duration / 1_000_000
            probe.duration = probe.declared_duration
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        if video is not None and video.codec_context is not None:
            probe.video_codec = video.codec_context.name
            probe.width = video.codec_context.width or None
            probe.height = video.codec_context.height or None
        if audio is not None and audio.codec_context is not None:
            probe.audio_codec = audio.codec_context.name
    if not (probe.has_video or probe.has_audio):
        raise RecordingError(_("The recording file has no audio or video stream."))
    return probe


def scan_parameter_changes(path, container=None):
    """The audio formats ``{(sample_rate, channels)}`` and frame sizes ``{(width, height)}``
    a recording holds from start to end, in the order met (dicts used as ordered sets).

    An encoder that reconnects with other settings (or changes them mid-stream) leaves
    parts with other parameters in one file; the MP4 header can describe only one of each,
    so such parts must be converted (:func:`ffmpeg_arguments`). Audio is decoded whole
    (cheap); video only at keyframes, where a new frame size can start.
    """
    audio, video = {}, {}
    try:
        with open_media(path, container) as media:
            streams = [*media.streams.video[:1], *media.streams.audio[:1]]
            for stream in streams:
                if stream.type == "video":
                    stream.codec_context.skip_frame = "NONKEY"
            for packet in media.demux(*streams):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue  # a damaged packet: the conversion itself reports real damage
                for frame in frames:
                    if packet.stream.type == "video":
                        video[(frame.width, frame.height)] = None
                    else:
                        audio[(frame.sample_rate, frame.layout.nb_channels)] = None
    except (UnsupportedMedia, av.error.FFmpegError) as exc:
        logger.warning("Recording parameters not scanned (%s): copied as they are", exc)
    return list(audio), list(video)


def choose_conversion(probe):
    """The least work that gives a browser-playable MP4: remux, audio-only, or transcode.

    Parts with other audio formats or frame sizes (``probe.audio_formats`` /
    ``probe.frame_sizes``, from :func:`scan_parameter_changes`) count as not playable
    as they are: their audio is resampled, their video scaled.
    """
    video_ok = not probe.has_video or (
        probe.video_codec in WEB_VIDEO_CODECS and len(probe.frame_sizes) <= 1
    )
    audio_ok = not probe.has_audio or (
        probe.audio_codec in WEB_AUDIO_CODECS and len(probe.audio_formats) <= 1
    )
    if video_ok and audio_ok:
        return Recording.Conversion.REMUX
    if video_ok:
        return Recording.Conversion.AUDIO
    return Recording.Conversion.TRANSCODE


def ffmpeg_arguments(conversion, probe):
    """ffmpeg's codec options for ``conversion``."""
    video = ["-c:v", "copy"]
    audio = ["-c:a", "copy"]
    if probe.has_audio and probe.audio_codec not in WEB_AUDIO_CODECS:
        audio = ["-c:a", "aac", "-b:a", "160k"]
    if len(probe.audio_formats) > 1:
        # One format for the whole file (the first part's): ffmpeg resamples each part to it
        # as its decoder meets it, and fills timestamp gaps (a reconnect) with silence so the
        # audio stays in step with the video.
        rate, channels = probe.audio_formats[0]
        audio = ["-c:a", "aac", "-b:a", "160k", "-ar", str(rate), "-ac", str(channels),
                 "-af", "aresample=async=1"]  # fmt: skip
    if conversion == Recording.Conversion.TRANSCODE:
        video = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
        if len(probe.frame_sizes) > 1:
            # Every part at the largest part's frame size, the others scaled to fit and
            # letterboxed (their aspect kept).
            width, height = max(probe.frame_sizes, key=lambda size: size[0] * size[1])
            fit = f"scale={width}:{height}:force_original_aspect_ratio=decrease"
            pad = f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1"
            video += ["-vf", f"{fit},{pad}"]
    streams = ["-map", "0:v:0?", "-map", "0:a:0?"]
    return [*streams, *(video if probe.has_video else ["-vn"]), *(audio if probe.has_audio else [])]


def convert_to_mp4(source_path, probe, workdir, recording):
    """Write a ``+faststart`` MP4 (M4A for audio only) into ``workdir``.

    Returns (path, conversion, ffmpeg's warnings).
    """
    conversion = choose_conversion(probe)
    Recording.objects.filter(pk=recording.pk).update(conversion=conversion)
    output = os.path.join(workdir, "result.mp4" if probe.has_video else "result.m4a")
    command = [
        ffmpeg_command(),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "warning",  # the demuxer's "Packet corrupt" warning reveals a file cut short
        *ffmpeg_input(source_path, probe.container),
        *ffmpeg_arguments(conversion, probe),
        "-movflags",
        "+faststart",
        "-progress",
        "pipe:1",
        "-nostats",
        output,
    ]
    warnings = run_ffmpeg(command, workdir, recording, probe.duration)
    return output, conversion, warnings


def ffmpeg_command():
    """The ffmpeg binary, or a RecordingError a person can act on when there is none."""
    try:
        binary = ffmpeg_binary()
    except ImproperlyConfigured as exc:
        raise RecordingError(str(exc)) from exc
    if not (os.path.isfile(binary) or shutil.which(binary)):
        raise RecordingError(
            _("ffmpeg was not found at %(path)s; install it or fix WAGTAIL_LIVE['FFMPEG'].")
            % {"path": binary}
        )
    return binary


def run_ffmpeg(command, workdir, recording, duration):
    """Run ffmpeg, storing ``-progress`` on the recording; return what it logged.

    RecordingError with ffmpeg's own message when it fails.
    """
    log_path = os.path.join(workdir, "ffmpeg.log")
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise RecordingError(
                _("ffmpeg could not be started (%(error)s).") % {"error": exc}
            ) from exc
        follow_progress(process, recording, duration)
        returncode = process.wait()
    with open(log_path, encoding="utf-8", errors="replace") as log:
        logged = log.read()
    if returncode == FFMPEG_EXIT_ENOSPC or "No space left on device" in logged:
        raise DiskFull(disk_full_message(os.path.dirname(workdir)))  # not the temporary folder
    if returncode != 0:
        message = " ".join(logged.split())[-500:]
        raise RecordingError(
            _("ffmpeg could not convert the recording: %(message)s")
            % {"message": message or _("exit code %(code)s") % {"code": returncode}}
        )
    return logged


def follow_progress(process, recording, duration):
    """Read ffmpeg's ``-progress`` lines; write percent done about once a second."""
    last = time.monotonic()
    for raw in process.stdout:
        key, _sep, value = raw.decode("ascii", "replace").strip().partition("=")
        if key != "out_time_us" or not duration or not value.isdigit():
            continue
        if time.monotonic() - last >= PROGRESS_INTERVAL:
            heartbeat(recording, min(100.0, int(value) / 1_000_000 / duration * 100))
            last = time.monotonic()


#: What FFmpeg's demuxers log when a file ends in the middle of a packet.
TRUNCATION_WARNINGS = ("Packet corrupt", "corrupt input packet")


def check_not_truncated(source, result, ffmpeg_log=""):
    """Fail when the file was cut short (a copy or upload interrupted, a crashed writer).

    Two signs: the container declares more than it holds, or the demuxer met a
    packet cut in half. A live MPEG-TS is exempt: it ends wherever the stream
    did, a half-written last packet included, and that is a complete recording.
    """
    if source.format_name == "mpegts":
        return
    if any(warning in ffmpeg_log for warning in TRUNCATION_WARNINGS):
        raise RecordingError(
            _(
                "The recording file is truncated or damaged: it ends in the middle of a packet "
                "after %(actual).1f s. The source file is kept; replace it and press Retry."
            )
            % {"actual": result.duration or 0}
        )
    if not source.declared_duration or not result.duration:
        return
    missing = source.declared_duration - result.duration
    if missing > max(1.0, 0.05 * source.declared_duration):
        raise RecordingError(
            _(
                "The recording file is truncated: it declares %(declared).1f s but holds only "
                "%(actual).1f s. The source file is kept; replace it and press Retry."
            )
            % {"declared": source.declared_duration, "actual": result.duration}
        )


def extract_poster(video_path, probe, workdir):
    """A JPEG frame from about a second in (or the middle of a shorter video)."""
    poster = os.path.join(workdir, "poster.jpg")
    offset = min(1.0, (probe.duration or 0) / 2)
    for seek in (offset, 0):
        command = [
            ffmpeg_command(),
            "-hide_banner",
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-ss",
            f"{seek:.3f}",
            *ffmpeg_input(video_path, probe.container),
            "-frames:v",
            "1",
            "-q:v",
            "3",
            poster,
        ]
        done = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL)
        if done.returncode == 0 and os.path.exists(poster) and os.path.getsize(poster):
            return poster
    logger.warning("No poster frame could be taken from %s", video_path)
    return None


# ---------------------------------------------------------------------------
# Storing the results
# ---------------------------------------------------------------------------


def output_names(recording, extension):
    """Fixed storage names of this recording's outputs (so a rerun replaces, never adds)."""
    base = recording.session.media_path(f"recording-{recording.pk}")
    names = {
        "media": f"{base}{extension}",
        "poster": f"{base}-poster.jpg",
        "thumbnail": f"{base}-thumbnail.jpg",
    }
    if names["media"] == recording.source.name:
        names["media"] = f"{base}-web{extension}"
    return names


def upload(storage, name, path):
    """Save the file at ``path`` as ``name``, replacing whatever a crashed run left there."""
    if storage.exists(name):
        storage.delete(name)
    with open(path, "rb") as handle:
        return storage.save(name, LocalResult(handle, name=os.path.basename(name)))


def store_results(recording, parent, output, poster, result, conversion):
    """Upload the files and create image, Media and draft page in one transaction.

    A private session's files go to the private storage under the same names, and its
    poster becomes no Wagtail image (whose renditions anyone could fetch from
    ``MEDIA_URL``) and no wagtailmedia thumbnail: :func:`recording_poster_url` serves
    it through a permission-checked view instead.
    """
    storage = result_storage(recording.session)
    private = is_private(recording.session)
    names = output_names(recording, os.path.splitext(output)[1])
    saved = []
    try:
        with transaction.atomic():
            locked = Recording.objects.select_for_update().get(pk=recording.pk)
            if locked.status != Recording.Status.PROCESSING or locked.media_id:
                # Our lease ran out and another worker finished it: add nothing.
                return
            saved.append(upload(storage, names["media"], output))
            image, thumbnail = None, ""
            if poster and private:
                saved.append(upload(storage, names["poster"], poster))
            elif poster:
                # Media.thumbnail and the Wagtail image each get their own file: deleting
                # one of them deletes its file.
                thumbnail_copy = shutil.copyfile(poster, poster + ".thumbnail.jpg")
                size = poster_size(poster)
                saved.append(upload(storage, names["poster"], poster))
                image = create_poster_image(recording.session, saved[-1], size)
                saved.append(upload(storage, names["thumbnail"], thumbnail_copy))
                thumbnail = saved[-1]
            media = create_media(recording.session, saved[0], thumbnail, result)
            page = create_recording_page(recording.session, parent, media, image)
            Recording.objects.filter(pk=recording.pk).update(
                status=Recording.Status.READY,
                conversion=conversion,
                progress=100.0,
                duration=result.duration,
                size=result.size,
                media=media,
                poster=image,
                page=page,
                error="",
                finished_at=timezone.now(),
            )
    except Exception:
        for name in saved:
            with contextlib.suppress(Exception):
                storage.delete(name)
        raise


def poster_size(path):
    """(width, height, bytes) of the poster JPEG."""
    from PIL import Image as PILImage

    with PILImage.open(path) as frame:
        return (*frame.size, os.path.getsize(path))


def create_poster_image(session, name, size):
    """A Wagtail image of the poster frame, titled after the session."""
    from wagtail.images import get_image_model

    width, height, file_size = size
    image = get_image_model()(title=session.title, width=width, height=height, file_size=file_size)
    image.file.name = name
    image.save()
    return image


def create_media(session, name, thumbnail_name, result):
    """The wagtailmedia item: the MP4, its duration, size and thumbnail, the session's tags."""
    from wagtailmedia.models import get_media_model

    media = get_media_model()(
        title=session.title,
        type="video" if result.has_video else "audio",
        duration=result.duration or 0,
        width=result.width,
        height=result.height,
        uploaded_by_user=session.owner,
    )
    media.file.name = name
    if thumbnail_name:
        media.thumbnail.name = thumbnail_name
    media.save()
    tag_names = session_tag_names(session)
    if tag_names:
        media.tags.add(*tag_names)
    return media


def session_tag_names(session):
    return list(session.tags.names()) if hasattr(session, "tags") else []


def create_recording_page(session, parent, media, image):
    """A draft page (published at once only with ``RECORDING_AUTO_PUBLISH``) under ``parent``."""
    model = recording_page_model()
    page = model(title=session.title, slug=unique_slug(parent, session), live=False)
    values = {
        "intro": paragraphs(session.description),
        "media": media,
        "poster": image,
        "session": session,
        "allow_downloads": getattr(session, "allow_downloads", False),
        "owner": session.owner,
    }
    field_names = {f.name for f in model._meta.get_fields()}
    for name, value in values.items():
        if name in field_names:
            setattr(page, name, value)
    if "tags" in field_names:
        page.tags.set(session_tag_names(session))
    if "categories" in field_names and hasattr(session, "categories"):
        page.categories.set(list(session.categories.all()))
    parent.add_child(instance=page)
    revision = page.save_revision(user=session.owner, log_action=True)
    if live_settings.RECORDING_AUTO_PUBLISH:
        # The site asked for it in settings: no editor approval, so no permission check.
        revision.publish(user=session.owner, skip_permission_checks=True)
    return page


def paragraphs(text):
    """Plain text as rich-text paragraphs (the session's description is plain text)."""
    blocks = [block.strip() for block in (text or "").split("\n\n") if block.strip()]
    return "".join(f"<p>{escape(block)}</p>" for block in blocks)


def unique_slug(parent, session):
    base = (session.slug or slugify(session.title) or "recording")[:240]
    existing = set(parent.get_children().values_list("slug", flat=True))
    slug, n = base, 1
    while slug in existing:
        n += 1
        slug = f"{base}-{n}"
    return slug


def delete_source(recording):
    """Delete the source once the result is committed (``KEEP_SOURCE = False``)."""

    def delete():
        storage, name = recording.source.storage, recording.source.name
        with contextlib.suppress(OSError):
            storage.delete(name)

    transaction.on_commit(delete)


# ---------------------------------------------------------------------------
# Parent page
# ---------------------------------------------------------------------------


def resolve_parent_page(session=None):
    """The page draft recording pages go under (``RECORDING_PARENT_PAGE``); RecordingError if none."""
    from wagtail.models import Page, Site

    setting = live_settings.RECORDING_PARENT_PAGE
    if callable(setting) and not isinstance(setting, Page):
        setting = setting(session)
    if isinstance(setting, Page):
        page = Page.objects.filter(pk=setting.pk).first()
    elif isinstance(setting, int) or (isinstance(setting, str) and setting.isdigit()):
        page = Page.objects.filter(pk=int(setting)).first()
    elif isinstance(setting, str):
        page = page_at_path(setting)
    else:
        site = Site.objects.filter(is_default_site=True).select_related("root_page").first()
        page = site.root_page if site else None
    if page is None and live_settings.RECORDING_PARENT_PAGE is None:
        raise RecordingError(
            _(
                "There is no default Wagtail site whose root page could hold the recording "
                "pages. Add a site, or set WAGTAIL_LIVE['RECORDING_PARENT_PAGE'], then press "
                "Retry."
            )
        )
    if page is None:
        raise RecordingError(
            _(
                "The parent page for recordings (WAGTAIL_LIVE['RECORDING_PARENT_PAGE'] = "
                "%(setting)r) does not exist. Create it or change the setting, then press Retry."
            )
            % {"setting": live_settings.RECORDING_PARENT_PAGE}
        )
    return page.specific


def check_recording_parent_page(app_configs, **kwargs):
    """System check: ``RECORDING_PARENT_PAGE`` must point at a page (E601)."""
    from django.core import checks
    from django.db import DatabaseError

    try:
        resolve_parent_page()
    except RecordingError as exc:
        return [
            checks.Error(
                str(exc),
                hint=_(
                    "Set WAGTAIL_LIVE['RECORDING_PARENT_PAGE'] to a page id, a URL path such as "
                    "'/recordings/', or a callable returning a page (docs/settings.md)."
                ),
                id="wagtail_live.E601",
            )
        ]
    except DatabaseError:
        return []  # not migrated yet: nothing to find pages in
    return []


def page_at_path(path):
    """A page by URL path on the default site (``/recordings/``), or by its full url_path."""
    from wagtail.models import Page, Site

    wanted = "/" + path.strip("/") + "/" if path.strip("/") else "/"
    site = Site.objects.filter(is_default_site=True).select_related("root_page").first()
    if site is not None:
        full = site.root_page.url_path.rstrip("/") + wanted
        page = Page.objects.filter(url_path=full).first()
        if page is not None:
            return page
    return Page.objects.filter(url_path=wanted).first()


# ---------------------------------------------------------------------------
# Telling everyone
# ---------------------------------------------------------------------------


def announce_ready(recording):
    """Event to the session's viewers, the ``recording_ready`` signal, the Wagtail hook."""
    from wagtail import hooks

    recording.refresh_from_db()
    try:
        events.publish(recording.session_id, "status", **recording_ready_event(recording))
    except Exception:  # a broken channel layer must not undo a finished recording
        logger.exception("Could not publish recording_ready for recording %s", recording.pk)
    signals.recording_ready.send(sender=Recording, recording=recording)
    for hook in hooks.get_hooks("after_live_recording_ready"):
        hook(recording)


def announce_published(sender, instance, **kwargs):
    """``page_published`` receiver: viewers still on the session's page switch to the recording."""
    if instance.session_id is None:
        return
    recording = Recording.objects.filter(page_id=instance.pk).first()
    if recording is None:
        return
    try:
        events.publish(recording.session_id, "status", **recording_ready_event(recording))
    except Exception:
        logger.exception("Could not publish the published recording %s", recording.pk)


def connect_signal_handlers():
    """Connect the receivers this service needs (called once at start-up)."""
    from wagtail.signals import page_published

    page_published.connect(
        announce_published, sender=recording_page_model(), dispatch_uid="wagtail_live_recordings"
    )


def recording_ready_event(recording):
    """The ``status`` event's data: the page and media URLs only once the page is published."""
    data = {"state": "recording_ready", "recording": recording.pk, "published": False}
    page = recording.page
    if page is not None and page.live:
        data.update(published=True, page_url=page.url, media_url=recording_media_url(recording))
    return data


def recording_media_url(recording):
    """Where visitors fetch the recorded file.

    Public sessions: the storage's own URL (a CDN's, on S3). Private sessions: a
    URL signed with a playback grant when the file is in ``PRIVATE_ROOT`` (served by
    the verifier, docs/delivery.md), else the permission-checked view. Callers show it
    only to users ``can_watch`` allows.
    """
    from django.urls import reverse

    if recording.media is None:
        return ""
    if recording.session.privacy == recording.session.Privacy.PUBLIC:
        return recording.media.url
    return granted_recording_url(recording) or reverse(
        "wagtail_live:recording_media", args=[recording.pk]
    )


GRANTED_RECORDING_NAME = re.compile(r"recording-[0-9]{1,12}(?:-web)?\.(?:mp4|m4v|m4a)")


def granted_recording_url(recording):
    """The grant-signed delivery URL of a recording's file in ``PRIVATE_ROOT``, or "".

    Only for a file the verifiers can reach: in the working storage, in its own
    session's folder, under one of the names the recordings task writes.
    """
    from .grants import grant_url

    name = recording.media.file.name
    base = os.path.basename(name)
    session = recording.session
    if recording_storage_for(recording) is not working_storage():
        return ""
    if name != session.media_path(base) or not GRANTED_RECORDING_NAME.fullmatch(base):
        return ""
    return grant_url(session, base, seconds=live_settings.RECORDING_GRANT_SECONDS)


#: The only types a recording's file is served with; anything else goes out as a download.
MEDIA_CONTENT_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".m4a": "audio/mp4"}


def recording_file_for(recording):
    """(storage name, content type) of a ready recording's file, or (None, None).

    The type comes from a short list of the files this app writes, never from
    guessing: a name outside it is ``application/octet-stream`` (the view then
    sends it as an attachment).
    """
    if recording.status != Recording.Status.READY or recording.media is None:
        return None, None
    name = recording.media.file.name
    extension = os.path.splitext(name)[1].lower()
    return name, MEDIA_CONTENT_TYPES.get(extension, "application/octet-stream")


def recording_storage_for(recording):
    """The storage a ready recording's MP4 (and private poster) is in now.

    The session's privacy decides (``wagtail_live.private_files`` moves the files when
    it changes). A public session's file that still sits in the private storage (not
    moved yet) is found there: serving it through the checked view is always safe.
    """
    storage = result_storage(recording.session)
    name = recording.media.file.name if recording.media else None
    if name and not is_private(recording.session) and not storage.exists(name):
        if private_storage().exists(name):
            return private_storage()
    return storage


def recording_poster_name(recording):
    """Storage name of a recording's poster frame in the private storage (see store_results)."""
    return output_names(recording, ".mp4")["poster"]


def recording_poster_url(recording):
    """Where visitors fetch the recording's poster: the Wagtail image's, or the checked view's.

    Empty when there is none. Private sessions' posters are never Wagtail images, so
    never public renditions: only ``wagtail_live:recording_poster`` (``can_watch``) serves them.
    """
    from django.urls import reverse

    if recording is None:
        return ""
    if recording.poster_id and not is_private(recording.session):
        return ""  # the template renders the Wagtail image itself
    storage = result_storage(recording.session)
    if recording.status == Recording.Status.READY and storage.exists(
        recording_poster_name(recording)
    ):
        return reverse("wagtail_live:recording_poster", args=[recording.pk])
    return ""


def published_recording_page(session):
    """The session's live (published) recording page, for the player block; None before."""
    model = recording_page_model()
    return (
        model.objects.live()
        .filter(pk__in=session.recordings.filter(page__isnull=False).values("page_id"))
        .select_related("media", "poster")
        .first()
    )
