import pytest

from wagtail_live.ingest.base import Broadcast


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test writes its HLS and recordings into its own MEDIA_ROOT."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def forget_broadcasts():
    """Broadcasts are per process; a test must not see another test's."""
    Broadcast._active.clear()
    yield
    for broadcast in Broadcast._active.values():
        if broadcast._grace_task is not None:
            broadcast._grace_task.cancel()
    Broadcast._active.clear()
