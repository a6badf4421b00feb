"""``manage.py live_rtmp``: run the embedded RTMP listener (OBS publishes to it)."""

import asyncio
import signal

from django.core.management.base import BaseCommand

from wagtail_live.conf import live_settings
from wagtail_live.ingest.rtmp import RTMP_APP, RTMPServer


class Command(BaseCommand):
    help = "Run the embedded RTMP listener: encoders publish to rtmp://HOST:PORT/live/<stream key>."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None, help="Address to bind (default RTMP_HOST).")
        parser.add_argument(
            "--port", type=int, default=None, help="Port to bind (default RTMP_PORT, 1935)."
        )

    def handle(self, *args, host=None, port=None, **options):
        asyncio.run(self.serve(host or live_settings.RTMP_HOST, port))

    async def serve(self, host, port):
        server = RTMPServer(host, port)
        await server.start()
        self.stdout.write(f"RTMP listener on rtmp://{server.host}:{server.port}/{RTMP_APP}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        self.stdout.write("Stopping the RTMP listener…")
        await server.close()
