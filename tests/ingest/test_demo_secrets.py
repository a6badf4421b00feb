"""The demo stream's key never appears on a command line (``ps``, ``/proc/<pid>/cmdline``)."""

import asyncio
import os
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from tests.ingest.streams import playlist_segments
from tests.utils import require
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest.base import hls_playlist_path
from wagtail_live.ingest.rtmp import RTMPServer
from wagtail_live.management.commands.live_demo_stream import DEMO_TITLE
from wagtail_live.models import LiveSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture
async def server(settings):
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 0}
    listener = RTMPServer("127.0.0.1", 0, timeout=4)
    await listener.start()
    yield listener
    await listener.close()


def every_command_line():
    """The arguments of every process on the machine that we may read, as text."""
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                pass  # gone meanwhile
    return lines


async def test_demo_stream_keeps_its_key_out_of_every_command_line(server, monkeypatch):
    keys = []
    issue = LiveSession.issue_stream_key

    def remembered(self, *args, **kwargs):
        key = issue(self, *args, **kwargs)
        keys.append(key)
        return key

    monkeypatch.setattr(LiveSession, "issue_stream_key", remembered)
    command = asyncio.create_task(
        sync_to_async(call_command, thread_sensitive=False)(
            "live_demo_stream",
            f"--url=rtmp://127.0.0.1:{server.port}/live",
            "--size=320x240",
            "--fps=15",
            "--duration=3",
        )
    )
    seen = {}
    while not command.done():
        seen.update(every_command_line())
        await asyncio.sleep(0.05)
    await command

    assert keys, "the demo issued a key"
    encoders = [line for line in seen.values() if b"testsrc2" in line]
    assert encoders, "the demo's ffmpeg was seen running"
    for key in keys:
        assert not any(key.encode() in line for line in seen.values())
    # And the stream still arrived.
    session = await sync_to_async(LiveSession.objects.get)(title=DEMO_TITLE)
    assert len(playlist_segments(hls_playlist_path(session))) >= 2
