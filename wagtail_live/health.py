"""Stream health: what the encoder really sends, measured from the live HLS, told to the host.

Like Owncast's stream health page: while a session is live, the newest HLS
segments are probed with PyAV (every ingest path writes them: the embedded
pipeline and nginx-rtmp alike) and turned into a report of what arrives —
video codec, resolution, frame rate, keyframe interval, bitrate, audio codec,
sample rate and channels — with warnings in plain words that say how to fix
the encoder ("Set the keyframe interval to 1 s in OBS → Settings → Output").

The report goes to the host and moderators only (the ``health`` websocket
message, docs/protocol.md) and is kept beside the live files as
``health.json``, so the Go Live screen and the dashboard show the latest one
when they load, whichever process measured it.

Report shape (JSON-ready)::

    {"measured_at": "2026-…Z", "seconds": 3.0,             # media seconds probed
     "video": {"codec": "h264", "width": 1280, "height": 720,
               "fps": 30.0, "keyframe_interval": 1.0, "dropped_frames": 0} | None,
     "audio": {"codec": "aac", "sample_rate": 48000, "channels": 2} | None,
     "bitrate_kbps": 2500,
     "source": {"video_codec": "h264", "audio_codec": "aac"},  # as the encoder sent them
     "disk_full": False,
     "settings_changed": False,  # nginx-rtmp only: new settings within one publish
     "warnings": [{"code": "keyframe_interval", "message": "…"}, …]}
"""

import json
import logging
import os
import re
import statistics
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from django.utils.translation import gettext as _

from . import events
from .conf import live_settings

logger = logging.getLogger(__name__)

HEALTH_FILE = "health.json"
#: Segments probed per measurement (the newest ones listed).
SEGMENTS_PROBED = 3
#: Seconds between two measurements of one session.
MEASURE_EVERY = 5.0
#: A report older than this is not shown (the encoder has gone).
REPORT_FRESH_SECONDS = 60
#: Keyframes further apart than this make segments (and viewers' delay) longer.
MAX_KEYFRAME_SECONDS = 2.0
#: Codecs the live pipeline copies; anything else costs a conversion on the server.
COPIED_VIDEO = {"h264"}
COPIED_AUDIO = {"aac"}
#: Warning codes, in the order the panel lists them.
WARNING_CODES = (
    "disk_full",
    "settings_changed",
    "keyframe_interval",
    "bitrate",
    "video_transcoded",
    "audio_transcoded",
    "audio_missing",
    "frames_dropped",
)


def health_path(session):
    """Where ``session``'s latest report is kept (beside its live files)."""
    return Path(session.media_dir) / HEALTH_FILE


def newest_segments(playlist, count=SEGMENTS_PROBED):
    """The newest ``count`` segment paths an HLS playlist lists, oldest first (may be fewer)."""
    try:
        text = Path(playlist).read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    names = re.findall(r"#EXTINF:[\d.]+,[^\n]*\n(\S+)", text)
    directory = Path(playlist).parent
    return [directory / name for name in names[-count:]]


def probe_segments(paths):
    """What the MPEG-TS segments ``paths`` hold, probed with PyAV (see the module docstring).

    Returns a dict with ``video``/``audio`` (or None), ``seconds`` (media time
    covered) and ``bitrate_kbps``; None when nothing could be read.
    """
    import av

    video = audio = None
    keyframes, frame_times, audio_times = [], [], []
    size = 0
    for path in paths:
        try:
            size += os.path.getsize(path)
            with av.open(str(path), format="mpegts") as container:
                video_stream = next(iter(container.streams.video), None)
                audio_stream = next(iter(container.streams.audio), None)
                if video_stream is not None and video is None:
                    context = video_stream.codec_context
                    video = {"codec": context.name, "width": context.width,
                             "height": context.height}  # fmt: skip
                if audio_stream is not None and audio is None:
                    context = audio_stream.codec_context
                    audio = {"codec": context.name, "sample_rate": context.sample_rate,
                             "channels": context.channels}  # fmt: skip
                for packet in container.demux():
                    if packet.pts is None or packet.stream.type not in ("video", "audio"):
                        continue
                    at = float(packet.pts * packet.time_base)
                    if packet.stream.type == "video":
                        frame_times.append(at)
                        if packet.is_keyframe:
                            keyframes.append(at)
                    else:
                        audio_times.append(at + float((packet.duration or 0) * packet.time_base))
        except (FileNotFoundError, av.error.FFmpegError):
            continue  # a segment deleted (rotated out) or being written: use the others
    times = sorted(frame_times) + audio_times
    if not times:
        return None
    seconds = max(times) - min(times)
    if frame_times:
        seconds += _frame_step(sorted(frame_times)) or 0
        video.update(_video_timing(sorted(frame_times), sorted(keyframes), seconds))
    else:
        video = None  # declared but empty (nginx-rtmp's segments always declare video)
    if not audio_times:
        audio = None
    return {
        "video": video,
        "audio": audio,
        "seconds": round(seconds, 2),
        "bitrate_kbps": round(size * 8 / seconds / 1000) if seconds > 0 else None,
    }


def _frame_step(times):
    steps = [b - a for a, b in pairwise(times) if b > a]
    return statistics.median(steps) if steps else None


def _video_timing(times, keyframes, seconds):
    """Frame rate, keyframe interval and dropped frames from video packet times."""
    step = _frame_step(times)
    fps = round(1 / step, 2) if step else None
    # A gap of more than 1.5 frame steps is frames the encoder (or the network) lost.
    dropped = sum(
        round((b - a) / step) - 1 for a, b in pairwise(times) if step and b - a > 1.5 * step
    )
    gaps = [b - a for a, b in pairwise(keyframes)]
    # One keyframe in the whole window: they are at least the window apart.
    interval = max(gaps) if gaps else seconds
    return {"fps": fps, "keyframe_interval": round(interval, 2), "dropped_frames": dropped}


def warnings_for(report):
    """The plain-words warnings (``[{"code", "message"}]``) a report calls for, with the fix."""
    found = {}
    video, audio, source = report.get("video"), report.get("audio"), report.get("source") or {}
    if report.get("disk_full"):
        found["disk_full"] = _(
            "The server's disk is full: the stream cannot be saved or played. Free some space "
            "(or ask your administrator to); the recording made so far is kept."
        )
    if report.get("settings_changed"):
        # nginx-rtmp carries new settings into the segments but does not mark the change in
        # the playlist: hls.js follows a new resolution, not new audio settings, which then
        # play at the wrong pitch (docs/ingest-backends.md, measured).
        found["settings_changed"] = _(
            "The encoder changed its video or audio settings without reconnecting: viewers "
            "who are watching may hear the sound at the wrong pitch (or see the picture "
            "wrongly) until they reload the page; the recording is fine. To change the "
            "resolution or audio settings, stop streaming in OBS, change them, then start "
            "streaming again."
        )
    interval = (video or {}).get("keyframe_interval")
    if interval and interval > MAX_KEYFRAME_SECONDS:
        found["keyframe_interval"] = _(
            "Keyframes arrive only every %(seconds).0f s, so viewers are at least that far "
            "behind. Set the keyframe interval to 1 s in OBS → Settings → Output (Output "
            "Mode: Advanced → Keyframe Interval)."
        ) % {"seconds": interval}
    limit = live_settings.HEALTH_MAX_BITRATE_KBPS
    bitrate = report.get("bitrate_kbps")
    if limit and bitrate and bitrate > limit * 1.2:
        found["bitrate"] = _(
            "The stream arrives at %(rate).1f Mbit/s, far above the %(limit).1f Mbit/s many "
            "viewers can take: they will buffer. Lower the bitrate in OBS → Settings → Output "
            "→ Bitrate (about 4500 Kbps for 1080p, 2500 Kbps for 720p)."
        ) % {"rate": bitrate / 1000, "limit": limit / 1000}
    source_video = source.get("video_codec")
    if video and source_video and source_video not in COPIED_VIDEO:
        found["video_transcoded"] = _(
            "The video arrives as %(codec)s and must be converted to H.264 on the server, "
            "which costs a lot of CPU and adds delay. In OBS → Settings → Output choose an "
            "H.264 encoder (x264, NVENC H.264 or QuickSync H.264)."
        ) % {"codec": source_video.upper()}
    source_audio = source.get("audio_codec")
    # Browsers only record Opus: its conversion is cheap and the host cannot change it.
    if audio and source_audio and source_audio not in COPIED_AUDIO and source_audio != "opus":
        found["audio_transcoded"] = _(
            "The audio arrives as %(codec)s and is converted to AAC on the server. Choose AAC "
            "audio in your encoder's settings."
        ) % {"codec": source_audio.upper()}
    if video and not audio:
        found["audio_missing"] = _(
            "No sound arrives. Check the audio source in OBS → Settings → Audio (and that it "
            "is not muted in the Audio Mixer), or the microphone chosen on the Go Live screen."
        )
    dropped = (video or {}).get("dropped_frames") or 0
    expected = ((video or {}).get("fps") or 0) * (report.get("seconds") or 0)
    if dropped and dropped >= max(2, 0.02 * expected):
        found["frames_dropped"] = _(
            "Frames are being dropped (%(dropped)d in the last %(seconds).0f s): the encoder's "
            "computer or its upload cannot keep up. Lower the resolution or bitrate, or choose "
            "a faster encoder preset in OBS → Settings → Output."
        ) % {"dropped": dropped, "seconds": report.get("seconds") or 0}
    return [{"code": code, "message": found[code]} for code in WARNING_CODES if code in found]


def measure(session, *, source=None, disk_full=False, amend=None):
    """Probe ``session``'s newest live segments and return a report (module docstring), or None.

    ``source`` is ``{"video_codec", "audio_codec"}`` as the encoder sent them
    (the pipeline converts some, so the segments alone cannot tell). ``amend``,
    given the report before its warnings are worked out, returns fields to add
    (nginx-rtmp's ``settings_changed``, which only the backend can tell).
    """
    from .ingest.base import hls_playlist_path

    probed = probe_segments(newest_segments(hls_playlist_path(session)))
    if probed is None and not disk_full:
        return None
    report = {
        "measured_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        **(probed or {"video": None, "audio": None, "seconds": 0, "bitrate_kbps": None}),
        "source": source or {},
        "disk_full": disk_full,
    }
    if not source and probed:
        # nginx-rtmp copies what arrives: the segments show the encoder's own codecs.
        report["source"] = {
            "video_codec": (probed["video"] or {}).get("codec"),
            "audio_codec": (probed["audio"] or {}).get("codec"),
        }
    if amend is not None:
        report.update(amend(report))
    report["warnings"] = warnings_for(report)
    return report


def save_report(session, report):
    """Keep ``report`` as ``health.json`` (written whole, then renamed: readers never see half)."""
    path = health_path(session)
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(json.dumps(report))
        os.replace(temporary, path)
    except OSError as error:  # a full disk must not stop the warning from going out
        logger.warning("session %s: health report not saved: %s", session.pk, error)


def latest_report(session):
    """The last report measured for ``session`` if it is fresh, else None (for page loads)."""
    path = health_path(session)
    try:
        if time.time() - path.stat().st_mtime > REPORT_FRESH_SECONDS:
            return None
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError, OSError):
        return None


def publish_report(session, report):
    """Save ``report`` and send it to the session's host and moderators (``health`` message)."""
    save_report(session, report)
    return events.publish(session, "health", report=report)


def measure_and_publish(session, *, source=None, disk_full=False, amend=None):
    """Measure ``session`` and tell the host; returns the report (None when nothing to probe)."""
    report = measure(session, source=source, disk_full=disk_full, amend=amend)
    if report is not None:
        publish_report(session, report)
    return report


def measure_if_due(session, *, source=None, amend=None):
    """``measure_and_publish`` at most every MEASURE_EVERY seconds per session (nginx's on_update)."""
    try:
        last = health_path(session).stat().st_mtime
    except FileNotFoundError:
        last = 0
    if time.time() - last < MEASURE_EVERY:
        return None
    return measure_and_publish(session, source=source, amend=amend)
