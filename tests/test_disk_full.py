"""A disk that fills up (issue 12), on a real small filesystem: a tmpfs mounted for the test.

The recording's conversion runs out of space: the error says so, the source is kept, and the
periodic sweep queues it again by itself once there is room. The live pipeline on a full disk:
the host is told at once, and no empty segment is listed.
"""

import os
import subprocess
from pathlib import Path

import pytest

from tests.recording_media import make_media
from tests.test_recordings import ensure_default_site, recording_of
from tests.utils import require
from wagtail_live import recordings
from wagtail_live.models import Recording

DISK_BYTES = 6 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path, settings):
    """MEDIA_ROOT and PRIVATE_ROOT on a 6 MiB tmpfs (unmounted afterwards)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    require(os.geteuid() == 0, "root, to mount a small tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)],
        capture_output=True,
    )
    require(mounted.returncode == 0, f"mount -t tmpfs ({mounted.stderr.decode().strip()})")
    settings.MEDIA_ROOT = str(mount / "media")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk, leave):
    """Fill ``disk`` up to ``leave`` bytes free; return the filler file."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.django_db
def test_a_full_disk_fails_readably_keeps_the_source_and_is_retried_once_there_is_room(
    small_disk, tmp_path, session, django_capture_on_commit_callbacks
):
    ensure_default_site()
    source = make_media(tmp_path / "in.ts", seconds=4, size="640x360", extra=["-b:v", "2M"])
    recording = recording_of(session, Path(source))
    source_path = recording.source.path
    size = os.path.getsize(source_path)
    assert size > 500_000
    filler = fill(small_disk, leave=size // 4)

    with pytest.raises(recordings.DiskFull):
        recordings.process_recording(recording)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert recording.error.startswith("The disk is full") and "retried by itself" in recording.error
    assert ".processing" not in recording.error
    assert "exit code" not in recording.error
    assert os.path.getsize(source_path) == size  # the source is kept, untouched

    # Still no room: the sweep leaves it alone.
    assert recordings.retry_when_space_returns() == 0
    filler.unlink()
    # Room again: the sweep queues it (Huey runs it at once in the tests).
    with django_capture_on_commit_callbacks(execute=True):
        assert recordings.retry_when_space_returns() == 1
    recording.refresh_from_db()
    assert recording.status == Recording.Status.READY, recording.error
    assert recording.media is not None


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_the_disk_filling_during_a_live_tells_the_host_refuses_the_encoder_and_lists_no_empty_segment(  # noqa: E501
    small_disk, settings
):
    import asyncio

    from asgiref.sync import sync_to_async

    from tests.ingest.streams import push_rtmp
    from tests.live_client import LiveClient
    from tests.utils import make_editor, make_session
    from wagtail_live import presence
    from wagtail_live.ingest.base import Broadcast, hls_playlist_path
    from wagtail_live.ingest.rtmp import RTMPServer

    settings.WAGTAIL_LIVE = {"RECONNECT_GRACE": 2}
    presence._backend = None
    Broadcast._active.clear()

    def create():
        host = make_editor("host", "go_live")
        session = make_session(owner=host)
        return session, session.issue_stream_key(), host

    session, key, host = await sync_to_async(create)()
    watcher = LiveClient(session.pk, host)
    await watcher.connect()
    server = RTMPServer("127.0.0.1", 0, timeout=4)
    await server.start()
    try:
        filler = fill(small_disk, leave=400_000)
        encoder = await push_rtmp(
            f"rtmp://127.0.0.1:{server.port}/live/{key}", seconds=20, size="640x360"
        )
        health = await watcher.expect("health", timeout=60)
        assert health["report"]["disk_full"] is True
        assert health["report"]["warnings"][0]["code"] == "disk_full"
        assert "disk is full" in health["report"]["warnings"][0]["message"]
        _, stderr = await asyncio.wait_for(encoder.communicate(), 60)
        assert encoder.returncode != 0
        assert b"disk is full" in stderr  # told why, not just a broken pipe
        playlist = hls_playlist_path(session)
        if playlist.exists():
            for line in playlist.read_text().splitlines():
                if line.endswith(".ts"):
                    assert (playlist.parent / line).stat().st_size > 0, line
        filler.unlink()
    finally:
        await watcher.disconnect()
        await server.close()
        Broadcast._active.clear()
        presence._backend = None
