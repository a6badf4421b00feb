"""Plain helpers for the ingest tests: real ffmpeg encoders on lavfi sources, probing with PyAV."""

import asyncio
import re
import time
from pathlib import Path

import av

from wagtail_live.ffmpeg import ffmpeg_binary


def lavfi_args(
    seconds,
    *,
    size="320x240",
    rate=15,
    video="libx264",
    audio="aac",
    keyframe_seconds=1,
    tone=440,
    sample_rate=48000,
    channels=2,
    realtime=True,
):
    """ffmpeg input + encoder arguments for a test pattern and a tone.

    A keyframe every ``keyframe_seconds``; ``video=None`` is an audio-only stream (a radio
    show), ``audio=None`` a silent one; ``realtime=False`` sends as fast as ffmpeg encodes.
    """
    args = ["-re"] if realtime else []
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate={sample_rate}"]
        args += ["-ac", str(channels)]
    if seconds:
        args += ["-t", str(seconds)]
    if not video:
        return [*args, "-c:a", audio]
    if video == "libx264":
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"]
        args += ["-pix_fmt", "yuv420p"]
    else:
        args += ["-c:v", video, "-deadline", "realtime", "-cpu-used", "8"]
    gop = str(int(rate * keyframe_seconds))
    args += ["-g", gop, "-keyint_min", gop, "-sc_threshold", "0"]
    return [*args, "-c:a", audio] if audio else [*args, "-an"]


async def push_rtmp(url, seconds=4, **options):
    """Start ffmpeg publishing a lavfi stream to ``url``; return the process (stderr piped)."""
    return await asyncio.create_subprocess_exec(
        ffmpeg_binary(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        *lavfi_args(seconds, **options),
        "-f",
        "flv",
        url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


def encode_file(path, seconds, *, container="flv", **options):
    """Write a lavfi stream to ``path`` (no ``-re``), for feeding a pipeline by hand."""
    import subprocess

    args = [a for a in lavfi_args(seconds, **options) if a != "-re"]
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *args, "-f", container,
         str(path)],
        check=True,
    )  # fmt: skip
    return Path(path).read_bytes()


async def wait_for(predicate, timeout=15, interval=0.1):
    """Poll ``predicate`` (sync) until true; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


def playlist_segments(playlist):
    """The (duration, name) pairs listed in an HLS playlist file."""
    text = Path(playlist).read_text()
    return [(float(d), name) for d, name in re.findall(r"#EXTINF:([\d.]+),\s*\n(\S+)", text)]


def probe(path):
    """Codec names, and duration in seconds, of a media file (PyAV)."""
    with av.open(str(path)) as container:
        codecs = sorted(stream.codec_context.name for stream in container.streams)
        duration = (container.duration or 0) / 1_000_000
    return codecs, duration


def media_timestamps(path):
    """Video packet timestamps in seconds, in file order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            float(packet.pts * stream.time_base)
            for packet in container.demux(stream)
            if packet.pts is not None
        ]


def video_sizes(path):
    """The frame sizes of ``path``'s video, each once, in the order met."""
    with av.open(str(path)) as container:
        return list(dict.fromkeys((f.width, f.height) for f in container.decode(video=0)))


def audio_formats(path):
    """The (sample rate, channels) of ``path``'s audio, each once, in the order met."""
    with av.open(str(path)) as container:
        return list(
            dict.fromkeys((f.sample_rate, f.layout.nb_channels) for f in container.decode(audio=0))
        )


def segments_around_the_change(playlist):
    """The segment names just before and just after the playlist's mid-stream discontinuity."""
    lines = Path(playlist).read_text().splitlines()
    names = [line for line in lines if line and not line.startswith("#")]
    for index, line in enumerate(lines):
        if line == "#EXT-X-DISCONTINUITY" and any(n in lines[:index] for n in names):
            before = [n for n in names if n in lines[:index]][-1]
            after = next(n for n in names if n in lines[index:])
            return before, after
    raise AssertionError(f"no discontinuity after a segment in:\n{chr(10).join(lines)}")


def decodes_without_error(path):
    """(True, "") when ffmpeg decodes all of ``path`` without a word, else (False, its words).

    The decoded frames keep the file's time base (``-enc_time_base demux``): rounded to
    one frame period of the guessed rate instead, two frames of a variable-rate camera
    closer than that would be reported as out of order, a fault of the check, not the file.
    """
    import subprocess

    done = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
         "-enc_time_base", "demux", "-f", "null", "-"],
        capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode == 0 and not done.stderr.strip(), done.stderr
