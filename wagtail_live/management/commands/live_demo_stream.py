"""``manage.py live_demo_stream``: push a synthetic live stream into the embedded RTMP listener.

A test pattern with a burned-in wall clock (so latency can be read off the
picture) and a tone, made by ffmpeg's ``lavfi`` sources in real time, published
with a fresh stream key for a demo session. Used by ``make demo``.

The stream key never appears on a command line (``ps`` shows every process's
arguments): ffmpeg writes FLV to a pipe and this command publishes it to the
listener itself (:mod:`wagtail_live.ingest.rtmp_publisher`).
"""

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from wagtail_live.conf import live_settings
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest.base import get_rtmp_backend
from wagtail_live.ingest.rtmp_publisher import PublishRefused, publish_flv

DEMO_TITLE = "Demo stream"
# Fonts drawtext can use on common systems; without one the pattern's own timecode remains.
FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono-Bold.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:/Windows/Fonts/arial.ttf",
]
RETRY_SECONDS = 2


def find_font():
    """The first font file drawtext can use, or None."""
    return next((path for path in FONT_CANDIDATES if Path(path).exists()), None)


def video_filter(font):
    """testsrc2 plus, when a font exists, the wall clock with milliseconds."""
    if not font:
        return None
    # Escaping: ':' separates filter options, and inside text '\:' is a literal colon.
    clock = r"%{localtime\:%H\\\:%M\\\:%S.%3N}"
    return (
        f"drawtext=fontfile='{font}':text='{clock}':fontsize=h/10:fontcolor=white:"
        "box=1:boxcolor=black@0.6:boxborderw=12:x=(w-tw)/2:y=h-th-h/12"
    )


def demo_ffmpeg_args(url, *, size="1280x720", fps=30, duration=None, font=None):
    """ffmpeg's arguments (without the binary) for the demo stream published to ``url``."""
    source = f"testsrc2=size={size}:rate={fps}"
    drawn = video_filter(font)
    if drawn:
        source += f",{drawn}"
    args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-re"]
    args += ["-f", "lavfi", "-i", source]
    args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:beep_factor=4"]
    if duration:
        args += ["-t", str(duration)]
    # One keyframe per HLS segment, so the stream-copied HLS gets ~1 s segments.
    gop = str(int(fps * live_settings.HLS_SEGMENT_SECONDS))
    args += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency"]
    args += ["-pix_fmt", "yuv420p", "-g", gop, "-keyint_min", gop, "-b:v", "2500k"]
    args += ["-c:a", "aac", "-b:a", "128k", "-f", "flv", url]
    return args


async def stream(base, key, args):
    """Run ffmpeg with ``args`` (FLV to stdout) and publish its output to ``base`` under ``key``.

    Returns ffmpeg's exit status, or 1 when publishing failed.
    """
    url = urlsplit(base)
    app = url.path.strip("/") or "live"
    encoder = await asyncio.create_subprocess_exec(
        ffmpeg_binary(), *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        await publish_flv(url.hostname or "127.0.0.1", url.port or 1935, app, key, encoder.stdout)
    except BaseException:
        if encoder.returncode is None:
            encoder.kill()
        await encoder.wait()
        raise
    return await encoder.wait()


class Command(BaseCommand):
    help = "Push a synthetic live stream (test pattern, clock, tone) into the RTMP listener."

    def add_arguments(self, parser):
        parser.add_argument("--session", type=int, help="Stream to this LiveSession (its pk).")
        parser.add_argument(
            "--url",
            help="RTMP server URL (default rtmp://RTMP_HOST:RTMP_PORT/live); the key is appended.",
        )
        parser.add_argument("--size", default="1280x720", help="Video size (default 1280x720).")
        parser.add_argument("--fps", type=int, default=30, help="Frames per second (default 30).")
        parser.add_argument(
            "--duration", type=float, default=None, help="Stop after this many seconds."
        )

    def handle(self, *args, **options):
        base = options["url"] or (
            f"rtmp://{live_settings.RTMP_HOST}:{live_settings.RTMP_PORT}/live"
        )
        font = find_font()
        if not font:
            self.stderr.write("No font for the clock found; streaming the plain test pattern.")
        retry = options["duration"] is None
        while True:
            # A fresh key (and, if the last demo session ended, a fresh session) per attempt.
            session = self.demo_session(options["session"])
            # What the RTMP backend's encoders publish (nginx: <pk>/hls?key=<key>).
            key = get_rtmp_backend().encoder_stream_key(session, session.issue_stream_key())
            self.stdout.write(f"Streaming to session {session.pk} ({session.title}) at {base}")
            args = demo_ffmpeg_args(
                "pipe:1",
                size=options["size"],
                fps=options["fps"],
                duration=options["duration"],
                font=font,
            )
            try:
                code = asyncio.run(stream(base, key, args))
            except KeyboardInterrupt:
                return
            except (OSError, PublishRefused, asyncio.IncompleteReadError, TimeoutError) as error:
                self.stderr.write(f"Publishing failed: {error or type(error).__name__}")
                code = 1
            if code == 0:
                return
            if not retry:
                raise CommandError(f"ffmpeg exited with status {code}")
            # The listener is not up yet (make demo starts both) or restarted: try again.
            self.stderr.write(f"The stream stopped; retrying in {RETRY_SECONDS} s…")
            time.sleep(RETRY_SECONDS)

    def demo_session(self, pk):
        """The session to stream to: ``pk``, else an open demo session, else a new one."""
        from wagtail_live.models import LiveSession

        if pk is not None:
            session = LiveSession.objects.filter(pk=pk).first()
            if session is None:
                raise CommandError(_("There is no live session %(pk)s.") % {"pk": pk})
            if session.has_ended:
                raise CommandError(_("Live session %(pk)s has ended.") % {"pk": pk})
            return session
        session = LiveSession.objects.active().filter(title=DEMO_TITLE).order_by("-pk").first()
        return session or LiveSession.objects.create(
            title=DEMO_TITLE, description="A synthetic stream from manage.py live_demo_stream."
        )
