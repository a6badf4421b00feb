"""``manage.py live_janus_relay <pk>/hls``: relay a stream nginx-rtmp receives to Janus.

nginx runs it for every published stream (``exec_push``, printed by ``live_nginx_config``
when ``WAGTAIL_LIVE["WEBRTC"]`` is set) and stops it with SIGTERM when the publish ends;
the work is :func:`wagtail_live.ingest.nginx_rtmp.relay_to_janus`. nginx sends its output to
/dev/null: ``--log-file`` keeps what it logs.
"""

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from wagtail_live.conf import live_settings
from wagtail_live.ingest.nginx_rtmp import RelayRefused, relay_session, relay_to_janus


class Command(BaseCommand):
    help = (
        "Relay the stream <session id>/hls that nginx-rtmp receives to the session's Janus "
        "Streaming mountpoint, for WebRTC viewers, until SIGTERM (nginx's exec_push runs it)."
    )
    # Started for every publish, while WebRTC viewers wait: the site's own runs check.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("name", help="The stream's name, <session id>/hls (nginx's $name).")
        parser.add_argument(
            "--rtmp-port",
            type=int,
            default=None,
            help="The port nginx-rtmp listens on, on 127.0.0.1 (default RTMP_PORT).",
        )
        parser.add_argument(
            "--log-file", default=None, help="Also append the relay's log to this file."
        )

    def handle(self, *args, **options):
        if options["log_file"]:
            log_to(options["log_file"])
        logger = logging.getLogger("wagtail_live.ingest.nginx")
        if not live_settings.WEBRTC:
            logger.warning("nginx relay: WebRTC is off (WAGTAIL_LIVE['WEBRTC']), nothing to do")
            raise CommandError("WAGTAIL_LIVE['WEBRTC'] is not set: there is no Janus to relay to.")
        try:
            session = relay_session(options["name"])
        except RelayRefused as error:
            logger.warning("nginx relay refused: %s", error)
            raise CommandError(str(error)) from error
        rtmp_port = options["rtmp_port"] or live_settings.RTMP_PORT
        logger.info("nginx relay: session %s: relaying to Janus", session.pk)
        asyncio.run(relay_until_stopped(session, rtmp_port))
        logger.info("nginx relay: session %s: stopped", session.pk)


async def relay_until_stopped(session, rtmp_port):
    """:func:`relay_to_janus` until SIGTERM (nginx, at the publish's end) or SIGINT."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stopping.set)
    await relay_to_janus(session, rtmp_port, stopping)


def log_to(path):
    """Append wagtail_live's log records, from INFO up, to ``path`` (besides LOGGING's handlers)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("wagtail_live")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
