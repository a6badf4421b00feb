"""Take the screenshots in docs/recordings.md with headless Chromium (Debian's).

    .venv/bin/python scripts/screenshots_recording.py

Builds a throw-away site (SQLite and media in a temporary directory), turns a
lavfi-made recording into a draft page with the real job, adds a failed one,
serves it with Django's live server thread, and saves PNGs next to this file.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "docs" / "img"

WORK = Path(tempfile.mkdtemp(prefix="wagtail-live-shots-"))
from tests.utils import CHROMIUM_ARGS  # noqa: E402


def build_site():
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["WAGTAIL_LIVE_TEST_MEDIA"] = str(WORK / "media")
    # Playwright's sync API runs an event loop in this thread; the few ORM calls made
    # between screenshots are plain blocking calls, which is fine for a script.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["default"]["NAME"] = str(WORK / "db.sqlite3")
    from django.contrib.auth import get_user_model
    from django.core.files import File
    from django.core.management import call_command

    from tests.recording_media import make_media
    from wagtail_live.models import LiveCategory, LiveSession, Recording
    from wagtail_live.recordings import process_recording
    from wagtail_live.storage import working_storage

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("editor", "editor@example.com", "password")
    user.first_name, user.last_name = "Eddie", "Editor"
    user.save()
    session = LiveSession.objects.create(
        title="Spring open day: the robotics lab",
        description="A live tour of the robotics lab with the team.\n\nQuestions from the chat.",
        owner=user,
        allow_downloads=True,
    )
    session.tags.add("open day", "robotics")
    session.categories.add(LiveCategory.objects.create(name="Campus life", slug="campus-life"))
    session.start()
    session.end()
    source = make_media(WORK / "recording.ts", "h264_aac", seconds=8, size="1280x720")
    with open(source, "rb") as handle:
        name = working_storage().save(session.media_path("recording.ts"), File(handle))
    recording = process_recording(Recording.objects.create(session=session, source=name))
    assert recording.status == Recording.Status.READY, recording.error

    broken = LiveSession.objects.create(title="Late-night Q&A", owner=user)
    junk = working_storage().save(
        broken.media_path("recording.flv"), File(open(source, "rb"), name="x")
    )
    with working_storage().open(junk, "wb") as handle:
        handle.write(b"\x00" * 1024)
    process_recording(Recording.objects.create(session=broken, source=junk))
    return recording


def serve():
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    thread = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    return thread, f"http://127.0.0.1:{thread.port}"


def shoot(base, recording):
    from django.urls import reverse
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(base + reverse("wagtailadmin_login"))
        page.fill("#id_username", "editor")
        page.fill("#id_password", "password")
        page.click("button[type=submit]")
        page.wait_for_url(base + reverse("wagtailadmin_home"))

        page.goto(base + reverse("wagtail_live_recordings:index"))
        page.screenshot(path=str(HERE / "recordings-listing.png"))

        page.goto(base + reverse("wagtailadmin_pages:edit", args=[recording.page_id]))
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(HERE / "recording-draft-page.png"), full_page=True)

        recording.page.specific.save_revision().publish()
        page.goto(base + recording.page.specific.url)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(HERE / "recording-published-page.png"))
        browser.close()


def main():
    try:
        recording = build_site()
        thread, base = serve()
        try:
            shoot(base, recording)
        finally:
            thread.terminate()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print("Saved", ", ".join(sorted(p.name for p in HERE.glob("recording*.png"))))


if __name__ == "__main__":
    main()
