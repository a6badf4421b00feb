"""The one ingest interface, and the ffmpeg pipeline the embedded backends feed.

Every backend turns an authenticated encoder into the same three things:

* HLS with short segments at ``session.media_dir/hls/index.m3u8``;
* the recording ``session.media_dir/recording.mpegts`` (MPEG-TS, so a crash
  mid-write leaves a playable file);
* the session's transitions: ``start()`` when media arrives, ``end()`` when the
  encoder has gone for longer than ``RECONNECT_GRACE``.

The embedded backends (``rtmp``, ``browser``) push the encoder's bytes (FLV or
WebM) through :class:`LivePipeline`; :class:`Broadcast` adds the lifecycle around
it (one encoder at a time, resume within the grace period, hand-off to the
recordings task). ``nginx_rtmp`` lets nginx write the files and only uses the
lifecycle helpers here.

A resume appends to the same files: the HLS playlist continues
(``append_list`` + ``discont_start``) and ffmpeg writes the recording into
``recording.mpegts`` opened for appending, with timestamps shifted past the
previous part's (``-output_ts_offset``), so the recording stays one file.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections import deque
from datetime import timedelta
from pathlib import Path

from asgiref.sync import sync_to_async
from django.db import OperationalError
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from ..conf import live_settings
from ..exceptions import InvalidTransition, WagtailLiveError
from ..ffmpeg import ffmpeg_binary
from .encoders import ENCODER_OF_INPUT_FORMAT, note_encoder

logger = logging.getLogger("wagtail_live.ingest")

PLAYLIST_NAME = "index.m3u8"
# Not "*.ts": nginx-rtmp's hls_cleanup deletes every .ts file under its hls_path (the same
# MEDIA_SUBDIR) a few seconds after its last write, and would take the recording with it.
RECORDING_NAME = "recording.mpegts"
# Written into every HLS directory the pipeline creates: nginx-rtmp's clean-up removes
# directories it finds empty, which a new one is until ffmpeg's first segment arrives.
HLS_MARKER_NAME = "wagtail_live.txt"
HLS_MARKER_TEXT = "Live HLS output of wagtail_live (this file keeps the directory in place).\n"
# How long ffmpeg may take to flush its last segment after its input closed.
FFMPEG_EXIT_TIMEOUT = 15
# How often a running broadcast re-reads its session, to notice an *End live* from the admin.
STATUS_CHECK_SECONDS = 2.0
# Codecs HLS and MPEG-TS carry as they are; anything else is converted.
COPYABLE_VIDEO = {"h264"}
COPYABLE_AUDIO = {"aac"}
# How each input format's bytes begin: anything else is refused at the first write.
INPUT_SIGNATURES = {"flv": b"FLV", "webm": b"\x1a\x45\xdf\xa3"}


class StreamRefused(WagtailLiveError):
    """An encoder may not publish: wrong key, session ended, or another encoder is live."""


class PipelineError(WagtailLiveError):
    """ffmpeg could not take the encoder's media (it exited, or refused the input)."""


class DiskFull(PipelineError):
    """The disk holding the live files filled up: ffmpeg could not write HLS or the recording."""


#: What ffmpeg logs when a write fails with ENOSPC.
NO_SPACE = "No space left on device"


class StreamEnded(WagtailLiveError):
    """The session was ended elsewhere (e.g. *End live* in the admin) while media was arriving."""


# ---------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------


class IngestBackend:
    """What every ingest backend offers the admin and the player.

    ``start`` prepares a session to receive its encoder, ``stop`` ends it and
    drops the encoder, ``publish_url`` is what the host pastes into the encoder
    (the server part; the stream key is shown separately, as OBS asks for it),
    ``playback_url`` is the HLS playlist viewers load.
    """

    name = ""

    def start(self, session):
        """Prepare ``session`` to receive an encoder (default: nothing to do)."""

    def stop(self, session):
        """End ``session``; the encoder is dropped when its backend notices."""
        end_session_quietly(session)

    def publish_url(self, session, request=None):
        """Return the URL an encoder publishes to for ``session``."""
        raise NotImplementedError

    def encoder_stream_key(self, session, key):
        """What the host pastes into the encoder's *Stream key* field: ``key`` itself here."""
        return key

    def playback_url(self, session):
        """Return the URL of ``session``'s HLS playlist."""
        url = getattr(session, "playback_url", None)
        if url:
            return url
        from django.core.files.storage import default_storage

        return default_storage.url(hls_storage_name(session))


def get_rtmp_backend():
    """Return the RTMP backend ``WAGTAIL_LIVE["RTMP"]`` picks ("embedded" or "nginx")."""
    choice = live_settings.RTMP
    paths = {
        "embedded": "wagtail_live.ingest.rtmp.EmbeddedRTMPBackend",
        "nginx": "wagtail_live.ingest.nginx_rtmp.NginxRTMPBackend",
    }
    path = paths.get(choice, choice)
    try:
        return import_string(path)()
    except ImportError as error:
        raise WagtailLiveError(
            f'WAGTAIL_LIVE["RTMP"] is {choice!r}: use "embedded", "nginx" or a dotted class path.'
        ) from error


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------


def hls_dir(session):
    """Absolute directory of ``session``'s live HLS output."""
    return Path(session.media_dir) / "hls"


def hls_playlist_path(session):
    """Absolute path of ``session``'s live HLS playlist."""
    return hls_dir(session) / PLAYLIST_NAME


def hls_storage_name(session):
    """Storage-relative name of ``session``'s live HLS playlist."""
    return session.media_path("hls", PLAYLIST_NAME)


def recording_path(session):
    """Absolute path of ``session``'s recording written by the embedded pipeline."""
    return Path(session.media_dir) / RECORDING_NAME


def recording_storage_name(session):
    """Storage-relative name of ``session``'s recording written by the embedded pipeline."""
    return session.media_path(RECORDING_NAME)


def recording_end_seconds(path, tail_bytes=2 * 1024 * 1024, *, kind=None):
    """The last timestamp (seconds) in an MPEG-TS recording, read from its tail; 0 if none.

    ``kind`` (``"audio"`` or ``"video"``) looks at that stream's packets only.
    """
    import io

    import av

    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - tail_bytes))
            tail = handle.read()
    except FileNotFoundError:
        return 0.0
    start = tail.find(b"\x47")  # resynchronise on a TS packet boundary
    end = 0.0
    try:
        with av.open(io.BytesIO(tail[max(start, 0) :]), format="mpegts") as container:
            for packet in container.demux():
                if kind is not None and packet.stream.type != kind:
                    continue
                if packet.pts is not None and packet.time_base:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    except (av.error.FFmpegError, ValueError):
        pass  # a damaged tail: start the next part at 0 rather than not at all
    return end


def resume_offset(session, *, after=None):
    """Where a resumed part's timestamps start: just after the recording's last ones.

    Read from the file, not remembered, so a restarted listener resumes correctly too.
    ``after="audio"`` starts it after the last audio only: a part cut mid-publish whose
    first media is audio the previous part's video already runs past
    (:meth:`Broadcast.next_part`).
    """
    end = recording_end_seconds(recording_path(session), kind=after)
    # A small gap keeps the next part's first timestamps strictly after the last ones.
    return end + 0.1 if end else 0.0


def finish_playlist(session):
    """Mark ``session``'s live playlist as complete so players stop waiting for segments."""
    playlist = hls_playlist_path(session)
    try:
        text = playlist.read_text()
    except FileNotFoundError:
        return
    if "#EXT-X-ENDLIST" not in text:
        with playlist.open("a") as handle:
            handle.write("#EXT-X-ENDLIST\n")


def drop_unwritten_segments(playlist):
    """Remove the segments a full disk left empty or missing from an HLS playlist.

    Rewritten in place (shorter than before, so it needs no new disk blocks even
    on a full disk): players never wait on a 0-byte segment.
    """
    playlist = Path(playlist)
    try:
        lines = playlist.read_text().splitlines(keepends=True)
    except (FileNotFoundError, UnicodeDecodeError):
        return
    kept, index = [], 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#EXTINF") and index + 1 < len(lines):
            segment = playlist.parent / lines[index + 1].strip()
            if segment.exists() and segment.stat().st_size > 0:
                kept += [line, lines[index + 1]]
            index += 2
            continue
        kept.append(line)
        index += 1
    text = "".join(kept).encode()
    with playlist.open("r+b") as handle:
        handle.write(text)
        handle.truncate()


def last_activity(session):
    """When media last arrived for ``session``, or None.

    The newest of the playlist and the recording (ours, or nginx-rtmp's): while an
    encoder is away, nginx-rtmp's clean-up may delete the playlist, but a
    recording is only ever appended to.
    """
    directory = Path(session.media_dir)
    candidates = [
        hls_playlist_path(session),
        directory / RECORDING_NAME,
        directory.parent / nginx_recording_name(session),
    ]
    times = []
    for path in candidates:
        try:
            times.append(os.stat(path).st_mtime)
        except FileNotFoundError:
            pass
    return max(times, default=None)


def nginx_recording_name(session):
    """nginx-rtmp records the stream ``<pk>/hls`` as ``<pk>%2Fhls.flv`` (it escapes the slash)."""
    return f"{session.pk}%2Fhls.flv"


def prepare_hls_dir(directory):
    """Create ``directory`` for HLS output, with the marker that keeps it from being swept."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / HLS_MARKER_NAME
    if not marker.exists():
        marker.write_text(HLS_MARKER_TEXT)
    return directory


# ---------------------------------------------------------------------------
# The ffmpeg pipeline
# ---------------------------------------------------------------------------


def _tee_escape(value):
    # The tee muxer splits on "|", "[", "]" and ":"; a media root may contain them.
    for char in "\\:|[]":
        value = value.replace(char, "\\" + char)
    return value


def build_ffmpeg_args(
    input_format,
    hls_directory,
    *,
    video_codec="h264",
    audio_codec="aac",
    ts_offset=0.0,
    resume=False,
    segment_seconds=None,
    segment_prefix=None,
    recording_fd=1,
    input_args=None,
    rtp_relay=None,
):
    """Return ffmpeg's arguments for one part of a live stream (without the binary).

    Reads ``input_format`` (``"flv"`` or ``"webm"``) from stdin, writes HLS into
    ``hls_directory`` and the recording as MPEG-TS to file descriptor
    ``recording_fd`` (the pipeline passes the recording opened for appending). H.264 and AAC are
    copied; other video (VP8/VP9 from browsers) is transcoded to H.264 with a
    keyframe every segment, other audio (Opus) converted to AAC. ``video_codec=None``
    is an audio-only broadcast (a radio show): HLS and the recording carry audio alone.
    ``input_args`` replaces the stdin input options (the Janus backend reads RTP, ingest/janus.py).
    ``rtp_relay`` (``{"host": str, "video_port": int, "audio_port": int}``, from
    :meth:`Broadcast.open_webrtc_relay`) also sends the H.264 and an Opus copy of the audio as
    RTP to a Janus Streaming mountpoint, for WebRTC viewers (:func:`rtp_relay_outputs`).
    """
    segment_seconds = segment_seconds or live_settings.HLS_SEGMENT_SECONDS
    # Random segment names: a private session's segments cannot be guessed from the playlist's URL.
    segment_prefix = segment_prefix or f"seg-{secrets.token_hex(6)}"
    args = ["-hide_banner", "-nostdin", "-loglevel", "error"]
    args += ["-progress", "pipe:2", "-stats_period", "0.5", "-nostats"]
    # The encoder's bytes are read as exactly that: the demuxer forced (never a playlist or
    # concat list guessed from the content) and no protocol but the pipe (docs/security.md).
    args += input_args or ["-protocol_whitelist", "pipe", "-f", input_format, "-i", "pipe:0"]
    if video_codec is None:
        args += ["-map", "0:a:0", "-vn"]
    else:
        args += ["-map", "0:v:0", "-map", "0:a:0?"]
    if rtp_relay and video_codec is not None:
        args += ["-map", "0:a:0?"]  # the audio again, converted to Opus for WebRTC
    else:
        rtp_relay = None  # audio-only broadcasts play over HLS only
    if video_codec is not None:
        args += video_codec_args(video_codec, segment_seconds)
    if (audio_codec or "").lower() in COPYABLE_AUDIO:
        args += ["-c:a", "copy"]
    else:
        args += ["-c:a", "aac", "-b:a", "128k", "-ar", "48000"]
    if ts_offset:
        args += ["-output_ts_offset", f"{ts_offset:.3f}"]
    flags = ["delete_segments", "append_list", "omit_endlist", "temp_file", "independent_segments"]
    if resume:
        flags.append("discont_start")
    directory = str(hls_directory)
    hls = ":".join(
        [
            "f=hls",
            f"hls_time={segment_seconds}",
            "hls_list_size=6",
            "hls_flags=" + "+".join(flags),
            "hls_segment_filename="
            + _tee_escape(os.path.join(directory, segment_prefix))
            + "-%05d.ts",
        ]
    )
    playlist = _tee_escape(os.path.join(directory, PLAYLIST_NAME))
    if rtp_relay:
        args += rtp_relay_codec_args()
        # Output streams 0 (video) and 1 (AAC) are HLS's and the recording's; 2 is the Opus.
        hls, recording = f"{hls}:select=0\\,1", "f=mpegts:select=0\\,1"
        relay = "|" + rtp_relay_outputs(rtp_relay)
    else:
        recording, relay = "f=mpegts", ""
    args += ["-f", "tee", f"[{hls}]{playlist}|[{recording}]pipe\\:{recording_fd}{relay}"]
    return args


def video_codec_args(video_codec, segment_seconds):
    """ffmpeg's video codec options: H.264 copied, anything else (VP8/VP9) transcoded to H.264."""
    if video_codec.lower() in COPYABLE_VIDEO:
        return ["-c:v", "copy"]
    return h264_encoder_args(segment_seconds)


def h264_encoder_args(segment_seconds):
    """libx264 for live: no B-frames (``zerolatency``), a keyframe every ``segment_seconds``.

    Each HLS segment starts with a keyframe, and a WebRTC viewer's picture starts at one.
    """
    # Frames keep the browser's own timestamps (-fps_mode vfr). Else, writing to the tee
    # muxer, ffmpeg repeats frames to reach a constant rate guessed from the first few
    # timestamps: a part starting right after a camera's size change was recorded with
    # each frame about 50 times over.
    return [
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-pix_fmt", "yuv420p", "-fps_mode", "vfr",
        "-force_key_frames", f"expr:gte(t,n_forced*{segment_seconds})",
    ]  # fmt: skip


def build_rtp_relay_args(input_args, rtp_relay, *, video_codec="h264", audio=True, transcode=False):
    """ffmpeg's arguments sending one input to a Janus Streaming mountpoint only (no HLS).

    For a stream whose HLS something else writes (nginx-rtmp, ``live_janus_relay``):
    ``input_args`` open it (options and ``-i``), ``rtp_relay`` is as in
    :func:`build_ffmpeg_args`. The video is copied or transcoded as for HLS
    (:func:`video_codec_args`; ``transcode`` transcodes H.264 too, e.g. with B-frames,
    which WebRTC players do not expect) and the audio, when there is some (``audio``),
    converted to Opus: output stream 0 is the video, 1 the Opus.
    """
    seconds = live_settings.HLS_SEGMENT_SECONDS
    args = ["-hide_banner", "-nostdin", "-loglevel", "error", *input_args, "-map", "0:v:0"]
    args += ["-map", "0:a:0"] if audio else ["-an"]
    if transcode:
        args += h264_encoder_args(seconds)
    else:
        args += video_codec_args(video_codec, seconds)
    args += rtp_relay_codec_args(audio_output=0 if audio else None)
    outputs = rtp_relay_outputs(rtp_relay, audio_stream=1 if audio else None)
    return [*args, "-f", "tee", outputs]


def rtp_relay_codec_args(audio_output=1):
    """The Opus encoder of the relay's audio (browsers play no AAC).

    ``audio_output`` is the index among the output's audio streams of the one that goes to
    Janus (1, output stream 2, beside HLS: the AAC copy for HLS is 0), None for no audio.

    And the H.264 in Annex B with its SPS/PPS before every keyframe (``h264_mp4toannexb``):
    RTMP carries them once, out of band, and a WebRTC viewer joining later needs them in
    band. For the whole output, not the RTP one alone: the tee gives its outputs the
    stream's original (avcC) parameters, which makes the RTP muxer misread Annex B. HLS
    and MPEG-TS convert to Annex B anyway, so their files stay the same.
    """
    args = ["-bsf:v", "h264_mp4toannexb"]
    if audio_output is not None:
        a = f"a:{audio_output}"
        args += [f"-c:{a}", "libopus", f"-b:{a}", "96k", f"-ar:{a}", "48000", f"-ac:{a}", "2"]
    return args


def rtp_relay_outputs(relay, audio_stream=2):
    """The tee's RTP outputs to a Janus Streaming mountpoint (``relay`` as in build_ffmpeg_args).

    Output stream 0 (the video) goes to the video port, ``audio_stream`` (the Opus; None:
    no audio) to the audio port.

    ``onfail=ignore``: Janus being down or the mountpoint gone never stops HLS or the
    recording (UDP is sent unconnected, so nothing listening is no error either).
    1200-byte packets
    leave room for SRTP and Janus's header extensions within a 1500-byte MTU.
    """
    host = _tee_escape(relay["host"])
    target = "rtp\\://" + host + "\\:{port}?pkt_size=1200"
    video = "[f=rtp:select=0:onfail=ignore:payload_type=96]" + target.format(
        port=relay["video_port"]
    )
    if audio_stream is None:
        return video
    audio = f"[f=rtp:select={audio_stream}:onfail=ignore:payload_type=111]" + target.format(
        port=relay["audio_port"]
    )
    return f"{video}|{audio}"


class LivePipeline:
    """One ffmpeg process turning an encoder's byte stream into HLS and the recording.

    Use from asyncio: ``await start()``, ``await write(chunk)`` for every chunk the
    encoder sends, ``await close()`` when it stops (it returns how many seconds
    of media this part held). A resumed part gets ``resume=True`` and a
    ``ts_offset`` past the recording's end (:func:`resume_offset`).
    """

    def __init__(
        self,
        session,
        input_format,
        *,
        video_codec="h264",
        audio_codec="aac",
        ts_offset=0.0,
        resume=False,
        rtp_relay=None,
    ):
        self.session = session
        self.input_format = input_format
        self.rtp_relay = rtp_relay
        self.video_codec = video_codec
        self.audio_codec = audio_codec
        self.ts_offset = ts_offset
        self.resume = resume
        self.media_seconds = 0.0
        self.bytes_in = 0
        self._process = None
        self._recording = None
        self._tasks = []
        self._health_task = None
        self._errors = deque(maxlen=20)

    @property
    def running(self):
        """True while ffmpeg is running."""
        return self._process is not None and self._process.returncode is None

    async def start(self):
        """Create the output directories and start ffmpeg."""
        directory = prepare_hls_dir(hls_dir(self.session))
        # ffmpeg writes the recording straight into the file opened for appending, so a
        # resumed part lands after the previous one (MPEG-TS concatenates byte-wise).
        self._recording = open(recording_path(self.session), "ab")  # noqa: SIM115 - closed in close()
        fd = self._recording.fileno()
        args = self.ffmpeg_args(directory, fd)
        self._process = await asyncio.create_subprocess_exec(
            ffmpeg_binary(),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=(fd,),
        )
        self._tasks = [asyncio.create_task(self._read_progress())]
        self._health_task = asyncio.create_task(self._watch_health())
        logger.info("session %s: ffmpeg started (%s)", self.session.pk, " ".join(args))

    def ffmpeg_args(self, directory, recording_fd):
        """ffmpeg's arguments for this part (subclasses change the input, ingest/janus.py)."""
        return build_ffmpeg_args(
            self.input_format,
            directory,
            video_codec=self.video_codec,
            audio_codec=self.audio_codec,
            ts_offset=self.ts_offset,
            resume=self.resume,
            recording_fd=recording_fd,
            rtp_relay=self.rtp_relay,
        )

    async def _watch_health(self):
        """Tell the host what arrives (``wagtail_live.health``) every few seconds while live."""
        from .. import health

        source = {"video_codec": self.video_codec, "audio_codec": self.audio_codec}
        while self.running:
            await asyncio.sleep(health.MEASURE_EVERY)
            try:
                await sync_to_async(health.measure_and_publish)(self.session, source=source)
            except Exception:  # a failed measurement must never stop the stream
                logger.exception("session %s: stream health not measured", self.session.pk)

    async def write(self, data):
        """Feed ``data`` (bytes from the encoder) to ffmpeg; raise PipelineError if it died.

        The first bytes must start like the announced format (FLV, WebM): a
        client sending something else is told so at once.
        """
        if not self.running:
            raise self._failure()
        if self.bytes_in == 0:
            self._check_signature(data)
        try:
            self._process.stdin.write(data)
            await self._process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as error:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), FFMPEG_EXIT_TIMEOUT)
                await asyncio.gather(*self._tasks, return_exceptions=True)  # its last words
            raise self._failure() from error
        self.bytes_in += len(data)

    @property
    def disk_full(self):
        """True when ffmpeg stopped because the disk is full."""
        return any(NO_SPACE in line for line in self._errors)

    def _failure(self):
        if self.disk_full:
            return DiskFull(
                _("The server's disk is full: the stream cannot be saved. The host has been told.")
            )
        return PipelineError(self._failure_message())

    def _check_signature(self, data):
        signature = INPUT_SIGNATURES.get(self.input_format)
        if signature and not bytes(data[: len(signature)]) == signature:
            raise PipelineError(
                _("The stream does not start like %(format)s media.")
                % {"format": self.input_format.upper()}
            )

    async def close(self):
        """Close ffmpeg's input, wait for it to flush, close the recording; return media seconds."""
        process = self._process
        if process is None:
            return 0.0
        if self._health_task is not None:
            self._health_task.cancel()
        if process.stdin and not process.stdin.is_closing():
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), FFMPEG_EXIT_TIMEOUT)
        except TimeoutError:
            logger.warning("session %s: ffmpeg did not exit, killing it", self.session.pk)
            process.kill()
            await process.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            self._recording.close()
        except OSError as error:  # the last bytes could not be flushed (a full disk)
            logger.warning("session %s: recording not closed cleanly: %s", self.session.pk, error)
        if self.disk_full:
            drop_unwritten_segments(hls_playlist_path(self.session))
        if process.returncode not in (0, None):
            logger.warning(
                "session %s: ffmpeg exited with %s: %s",
                self.session.pk,
                process.returncode,
                self._failure_message(),
            )
        return self.media_seconds

    async def _read_progress(self):
        # ``-progress pipe:2`` interleaves key=value lines with error messages.
        while line := await self._process.stderr.readline():
            text = line.decode("utf-8", "replace").strip()
            if text.startswith("out_time_us="):
                value = text.partition("=")[2]
                if value.isdigit():
                    self.media_seconds = int(value) / 1_000_000
            elif "=" not in text and text:
                self._errors.append(text)

    def _failure_message(self):
        detail = "; ".join(self._errors) or _("no message")
        return _("ffmpeg stopped accepting media (%(detail)s)") % {"detail": detail}


# ---------------------------------------------------------------------------
# Lifecycle: one encoder at a time, resume within the grace period
# ---------------------------------------------------------------------------


def _call_transition(session, method):
    try:
        getattr(session, method)()
        return True
    except InvalidTransition as error:
        logger.info("session %s: %s skipped: %s", session.pk, method, error)
        return False


def start_session_quietly(session):
    """``session.start()``, treating "already live" as success (a resume)."""
    session.refresh_from_db()
    if session.status == type(session).Status.LIVE:
        return True
    return _call_transition(session, "start")


def end_session_quietly(session):
    """``session.end()``, treating "already ended" as success; returns whether it ended now."""
    session.refresh_from_db()
    return _call_transition(session, "end")


def hand_off_recording(session, storage_name):
    """Give a finished recording to the recordings task (``enqueue_recording``)."""
    try:
        from ..recordings import enqueue_recording
    except ImportError:
        logger.error(
            "session %s: recording %s kept, but wagtail_live.recordings.enqueue_recording is "
            "not available to process it",
            session.pk,
            storage_name,
        )
        return None
    return enqueue_recording(session, storage_name)


def collect_recording(session):
    """Return the storage name of ``session``'s finished recording, or None.

    The embedded pipeline writes ``recording.mpegts``; nginx-rtmp records the
    stream ``<pk>/hls`` as ``<MEDIA_SUBDIR>/<pk>%2Fhls.flv`` (it escapes the
    slash; appended to on resume), which is moved to ``recording.flv`` here,
    once the session is over.
    """
    directory = Path(session.media_dir)
    nginx_file = directory.parent / nginx_recording_name(session)
    if nginx_file.exists() and not (directory / "recording.flv").exists():
        nginx_file.rename(directory / "recording.flv")
    for name in (RECORDING_NAME, "recording.flv"):
        path = directory / name
        if path.exists() and path.stat().st_size:
            return session.media_path(name)
    return None


def finish_session(session):
    """End ``session`` (if still live), close its playlist and hand off its recording.

    Safe to call again (a second nginx callback, the clean-up task): every part
    is idempotent, and the database parts retry transient errors (``end`` and
    ``enqueue_recording`` do). Should one still fail, the session stays *live*
    for ``end_stale_sessions``, or the recording waits for ``hand_off_missed_recordings``.
    """
    end_session_quietly(session)
    finish_playlist(session)
    storage_name = collect_recording(session)
    if storage_name:
        hand_off_recording(session, storage_name)


def hand_off_missed_recordings(now=None, settle=120, window=timedelta(days=2)):
    """Hand off the recordings of sessions that ended without one; return those sessions.

    A session ended (by *End live*, a callback or the clean-up task) whose
    hand-off was lost to an error still has its file; this finds it once the
    session has been over for ``settle`` seconds (an encoder's last callback
    may still be closing the file) and within ``window``, so old sessions whose
    recordings were deleted on purpose are left alone.
    """
    from ..models import LiveSession

    now = now or timezone.now()
    over = (LiveSession.Status.ENDED, LiveSession.Status.FAILED)
    sessions = LiveSession.objects.filter(
        status__in=over,
        ended_at__lt=now - timedelta(seconds=settle + live_settings.RECONNECT_GRACE),
        ended_at__gte=now - window,
        recordings__isnull=True,
    )
    handed = []
    for session in sessions:
        storage_name = collect_recording(session)
        if storage_name:
            logger.warning(
                "session %s: handing off its recording %s late", session.pk, storage_name
            )
            try:
                hand_off_recording(session, storage_name)
            except OperationalError as error:  # still busy after the retries: next round
                logger.error("session %s: recording not handed off yet: %s", session.pk, error)
                continue
            handed.append(session)
    return handed


def is_receiving_elsewhere(session, window=None):
    """True when another process is writing this session's HLS right now."""
    window = window or max(3 * live_settings.HLS_SEGMENT_SECONDS, 5)
    mtime = last_activity(session)
    return mtime is not None and time.time() - mtime < window


def end_stale_sessions(now=None):
    """End live sessions whose encoder vanished; return the sessions ended.

    A session is stale when its playlist (or, with no playlist, its start) is
    older than ``RECONNECT_GRACE`` plus a few segments: a crashed listener or a
    lost callback leaves nothing *live* forever.
    """
    from ..models import LiveSession

    now = now or time.time()
    limit = live_settings.RECONNECT_GRACE + 3 * live_settings.HLS_SEGMENT_SECONDS
    ended = []
    for session in LiveSession.objects.filter(status=LiveSession.Status.LIVE):
        mtime = last_activity(session)
        if mtime is None and session.started_at:
            mtime = session.started_at.timestamp()
        if mtime is not None and now - mtime <= limit:
            continue
        logger.warning("session %s: no media for %ss, ending it", session.pk, limit)
        try:
            finish_session(session)
        except OperationalError as error:  # still busy after the retries: next round
            logger.error("session %s: could not end it now: %s", session.pk, error)
            continue
        ended.append(session)
    return ended


class Broadcast:
    """A session's live media in this process, across encoder reconnects.

    Backends call :meth:`open` when an encoder asks to publish (it raises
    :class:`StreamRefused` when another encoder is live or the session ended, so
    the refusal comes before any media), :meth:`start_media` once they know the
    codecs, :meth:`write` for the bytes and :meth:`disconnected` when the encoder
    goes away: the session then ends after ``RECONNECT_GRACE`` unless an encoder
    comes back, whose media continues the same playlist and recording.
    """

    _active = {}  # session pk -> Broadcast, for this process

    def __init__(self, session):
        self.session = session
        self.attached = False
        self.pipeline = None
        self.parts = 0
        self.started = False
        # The Janus Streaming mountpoint WebRTC viewers watch (ingest/janus.py), or None.
        self.rtp_relay = None
        self._grace_task = None
        self._last_status_check = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def for_session(cls, session):
        """The broadcast of ``session`` in this process, or None."""
        return cls._active.get(session.pk)

    @classmethod
    async def open(cls, session):
        """Attach an encoder to ``session``; return its Broadcast or raise StreamRefused."""
        broadcast = cls._active.get(session.pk)
        if broadcast is not None and broadcast.attached:
            raise StreamRefused(_("Another encoder is already live on this session."))
        is_new = broadcast is None
        if is_new:
            broadcast = cls._active[session.pk] = cls(session)
        # Claimed before the first await, so two encoders arriving together cannot both pass.
        broadcast.attached = True
        try:
            await broadcast._check_may_publish(is_new)
        except BaseException:
            broadcast.attached = False
            if is_new:
                cls._active.pop(session.pk, None)
            raise
        if broadcast._grace_task is not None:
            broadcast._grace_task.cancel()
            broadcast._grace_task = None
        return broadcast

    async def _check_may_publish(self, is_new):
        session = self.session
        await sync_to_async(session.refresh_from_db)()
        if session.status in (type(session).Status.ENDED, type(session).Status.FAILED):
            raise StreamRefused(_("This live session has ended."))
        if (
            is_new
            and session.status == type(session).Status.LIVE
            and await sync_to_async(is_receiving_elsewhere)(session)
        ):
            raise StreamRefused(_("Another encoder is already live on this session."))

    async def start_media(
        self, input_format, *, video_codec="h264", audio_codec="aac", resume_after=None
    ):
        """Start ffmpeg for the attached encoder's media (``"flv"`` or ``"webm"``).

        ``resume_after`` is :func:`resume_offset`'s ``after``.
        """
        resume = self.parts > 0 or recording_path(self.session).exists()
        offset = 0.0
        if resume:
            offset = await sync_to_async(resume_offset)(self.session, after=resume_after)
        self.pipeline = LivePipeline(
            self.session,
            input_format,
            video_codec=video_codec,
            audio_codec=audio_codec,
            ts_offset=offset,
            resume=resume,
            rtp_relay=await self.open_webrtc_relay(video_codec),
        )
        self.parts += 1
        await self.pipeline.start()
        # The Go Live screen says which encoder feeds the session (see encoders.py).
        encoder = ENCODER_OF_INPUT_FORMAT.get(input_format)
        if encoder:
            await sync_to_async(note_encoder)(self.session, encoder)

    async def open_webrtc_relay(self, video_codec):
        """The Janus Streaming mountpoint of this broadcast's WebRTC viewers, or None.

        Made once per broadcast (every part sends to it, so viewers stay through a codec
        change or a reconnect) when ``WAGTAIL_LIVE["WEBRTC"]`` is set and there is video;
        Janus down only means no WebRTC (the player plays HLS): it is never an error here.
        """
        if self.rtp_relay is None and live_settings.WEBRTC and video_codec is not None:
            from .janus import open_streaming_relay

            self.rtp_relay = await open_streaming_relay(self.session)
        return self.rtp_relay

    async def close_webrtc_relay(self):
        """Destroy the broadcast's mountpoint (its viewers' WebRTC ends; they play HLS)."""
        if self.rtp_relay is not None:
            from .janus import close_streaming_relay

            self.rtp_relay = None
            await close_streaming_relay(self.session)

    async def next_part(
        self, input_format, *, video_codec="h264", audio_codec="aac", resume_after=None
    ):
        """Close this part and start the next one for the same encoder, which stays attached.

        For an encoder that changes its codec parameters mid-stream (a new resolution,
        sample rate or channel count): ffmpeg copies H.264 and AAC with the parameters it
        met first (the AAC ADTS headers would keep the old sample rate, and the audio would
        play sharp or flat), so the new parameters get their own ffmpeg. The next part is
        joined as a reconnect is: the playlist continues after ``#EXT-X-DISCONTINUITY`` and
        the recording after the last part's timestamps.
        """
        async with self._lock:
            if self.pipeline is not None:
                pipeline, self.pipeline = self.pipeline, None
                await pipeline.close()
        await self.start_media(
            input_format,
            video_codec=video_codec,
            audio_codec=audio_codec,
            resume_after=resume_after,
        )

    async def write(self, data):
        """Feed the encoder's bytes; the first bytes move the session to *live*.

        Raises :class:`StreamEnded` once the session was ended elsewhere, and
        :class:`PipelineError` when ffmpeg died; the backend then drops the encoder.
        """
        if not self.started:
            await sync_to_async(start_session_quietly)(self.session)
            self.started = True
        await self._check_still_live()
        try:
            await self.pipeline.write(data)
        except DiskFull:
            await self._tell_disk_full()
            raise

    async def _tell_disk_full(self):
        """The host's Go Live screen and dashboard say "disk full" now (a ``health`` message)."""
        from .. import health

        logger.error("session %s: the disk is full, the encoder is refused", self.session.pk)
        try:
            await sync_to_async(health.measure_and_publish)(self.session, disk_full=True)
        except Exception:  # telling the host must not hide the refusal itself
            logger.exception("session %s: disk full not announced", self.session.pk)

    async def _check_still_live(self):
        now = time.monotonic()
        if now - self._last_status_check < STATUS_CHECK_SECONDS:
            return
        self._last_status_check = now
        await sync_to_async(self.session.refresh_from_db)(fields=["status"])
        if self.session.status != type(self.session).Status.LIVE:
            raise StreamEnded(_("The live session was ended."))

    async def disconnected(self, *, end=False):
        """The encoder went away: end now (``end=True``) or after the grace period."""
        self.attached = False
        async with self._lock:
            if self.pipeline is not None:
                pipeline, self.pipeline = self.pipeline, None
                await pipeline.close()
        if end or not self.started or live_settings.RECONNECT_GRACE <= 0:
            await self._finish()
        else:
            self._grace_task = asyncio.create_task(self._end_after_grace())

    async def _end_after_grace(self):
        closed_at = time.time()
        await asyncio.sleep(live_settings.RECONNECT_GRACE)
        mtime = await sync_to_async(last_activity)(self.session)
        if mtime is not None and mtime > closed_at + 1:
            # Another process took the session over (e.g. the browser after OBS).
            Broadcast._active.pop(self.session.pk, None)
            return
        await self._finish()

    async def _finish(self):
        if Broadcast._active.get(self.session.pk) is self:
            del Broadcast._active[self.session.pk]
        await self.close_webrtc_relay()
        if self.started:
            await sync_to_async(finish_session)(self.session)
        logger.info("session %s: broadcast finished after %s part(s)", self.session.pk, self.parts)

    @classmethod
    async def shutdown_all(cls):
        """Close every pipeline of this process (the listener is stopping).

        Sessions stay *live*: an encoder reconnecting to a restarted listener
        resumes them, and the clean-up task ends those that nobody resumes.
        """
        for broadcast in list(cls._active.values()):
            if broadcast._grace_task is not None:
                broadcast._grace_task.cancel()
            if broadcast.pipeline is not None:
                pipeline, broadcast.pipeline = broadcast.pipeline, None
                await pipeline.close()
        cls._active.clear()
