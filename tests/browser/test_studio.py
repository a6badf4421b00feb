"""The Go Live screen's studio view on a phone (issue 14), in a real Chromium.

Phone device descriptors (touch, mobile, 390x844 and 412x915) get the studio view and a
desktop viewport the classic form. A portrait fake camera (a 720x1280 Y4M file Chromium loops,
``--use-file-for-fake-video-capture``) goes live from the studio; its chat shows over the
preview and is moderated from a tap; End live asks first; the recording, its poster and its
page are portrait.
"""

import os
import re
import subprocess
import time

import av
import pytest

from tests.browser.test_go_live import CHROMIUM_ARGS as GO_LIVE_ARGS
from tests.ingest.streams import playlist_segments
from tests.live_site import LiveSite, migrated_database
from tests.utils import chromium_path, require

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Phones as Playwright's device descriptors describe them (touch, mobile viewport).
PHONES = {
    "390x844": {"width": 390, "height": 844},
    "412x915": {"width": 412, "height": 915},
}
DESKTOP = {"width": 1280, "height": 900}

SETUP = """
from tests.utils import make_editor
make_editor("host", "go_live")
fan = User.objects.create_user("fan", "fan@example.com", "password")
fan.first_name = "Fan"
fan.save()
"""

NEW_SESSION = """
from example_site.home.models import HomePage
from tests.utils import make_session
session = make_session({title!r}, owner=User.objects.get(username="host"))
page = HomePage.objects.get(slug="home")
page.body = [("live_player", {{"session": session, "show_chat": True}})]
page.save_revision().publish()
result = session.pk
"""

# Records every getUserMedia request, so a test can see which camera was asked for.
SPY_ON_GET_USER_MEDIA = """
window.cameraRequests = [];
const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => {
  window.cameraRequests.push(JSON.parse(JSON.stringify(constraints)));
  return original(constraints);
};
"""


def portrait_camera(directory, seconds=2, rate=15):
    """A 720x1280 Y4M file (lavfi's testsrc2) for Chromium's fake camera; returns its path."""
    from wagtail_live.ffmpeg import ffmpeg_binary

    path = os.path.join(directory, "portrait-camera.y4m")
    subprocess.run(
        [
            ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size=720x1280:rate={rate}", "-t", str(seconds),
            "-pix_fmt", "yuv420p", path,
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def phone_context(browser, site, viewport, user="host", **options):
    """A logged-in browser context as a phone: touch, mobile, the phone's viewport."""
    context = browser.new_context(
        viewport=viewport,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        permissions=["camera", "microphone"],
        **options,
    )
    log_in(context, site, user)
    return context


def log_in(context, site, user):
    cookie = site.login_cookie(user).split("=", 1)[1]
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": site.url}])


def allow_wake_lock(context, page, site):
    """Grant the Screen Wake Lock, which headless Chromium refuses unless told (CDP)."""
    cdp = context.new_cdp_session(page)
    target = cdp.send("Target.getTargetInfo")["targetInfo"]
    cdp.send(
        "Browser.grantPermissions",
        {
            # The whole list: a grant replaces the context's earlier ones for the origin.
            "permissions": ["wakeLockScreen", "videoCapture", "audioCapture"],
            "origin": site.url,
            "browserContextId": target["browserContextId"],
        },
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(os.path.exists(chromium_path()), f"chromium at {chromium_path()}")
    directory = tmp_path_factory.mktemp("studio-site")
    site = LiveSite(
        directory,
        migrated_database(directory),
        {"RECONNECT_GRACE": 30, "RECORDING_AUTO_PUBLISH": True},
    )
    site.run(SETUP)
    site.camera = portrait_camera(directory)
    site.start(timeout=120)  # generous: the machine may be busy with other tests
    yield site
    site.stop()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=[*GO_LIVE_ARGS, f"--use-file-for-fake-video-capture={site.camera}"],
            headless=True,
        )
        yield browser
        browser.close()


def open_go_live(context, site, pk):
    page = context.new_page()
    page.goto(f"{site.url}/admin/live/{pk}/go-live/")
    page.wait_for_function("document.querySelector('[data-camera-preview]').videoWidth > 0")
    return page


def preview_size(page):
    return page.evaluate(
        "(() => { const v = document.querySelector('[data-camera-preview]');"
        " return [v.videoWidth, v.videoHeight]; })()"
    )


@pytest.mark.parametrize("phone", PHONES)
def test_a_phone_gets_the_studio_view_in_portrait(site, browser, phone):
    pk = site.run(NEW_SESSION.format(title=f"Studio on {phone}"))
    context = phone_context(browser, site, PHONES[phone])
    page = open_go_live(context, site, pk)

    assert page.get_attribute("[data-live-golive]", "data-live-layout") == "studio"
    # The camera fills the screen, portrait; the title and one large Go live over it.
    assert preview_size(page) == [720, 1280]
    box = page.locator("[data-camera-preview]").bounding_box()
    assert box["width"] == PHONES[phone]["width"] and box["height"] == PHONES[phone]["height"]
    assert page.locator("[data-live-studio-bar] bdi").inner_text() == f"Studio on {phone}"
    assert page.locator("[data-live-studio-bar] bdi").get_attribute("dir") == "auto"
    go = page.locator("[data-live-go]")
    assert go.is_visible() and go.bounding_box()["width"] > PHONES[phone]["width"] * 0.8
    for control in ("[data-camera-flip]", "[data-microphone-mute]"):
        assert page.locator(control).is_visible()
    # The classic parts are out of the way, and the toggle brings them back (and is remembered).
    assert page.locator("[data-camera-select]").is_hidden()
    assert page.locator(".w-live-golive__obs").is_hidden()
    # What the studio covers (Wagtail's sidebar and header) is inert: Tab stays in the studio.
    covered = "!!document.querySelector('#header-title').closest('[inert]')"
    assert page.evaluate(covered)
    page.keyboard.press("Tab")
    assert page.evaluate("!!document.activeElement.closest('[data-live-golive]')")
    page.get_by_role("button", name="Classic view").tap()
    assert page.get_attribute("[data-live-golive]", "data-live-layout") == "classic"
    assert page.locator("[data-camera-select]").is_visible()
    assert not page.evaluate(covered)
    page.reload()
    assert page.get_attribute("[data-live-golive]", "data-live-layout") == "classic"
    page.get_by_role("button", name="Studio view").tap()
    assert page.get_attribute("[data-live-golive]", "data-live-layout") == "studio"
    context.close()


def test_the_desktop_keeps_the_classic_form(site, browser):
    pk = site.run(NEW_SESSION.format(title="Studio on a desktop"))
    context = browser.new_context(viewport=DESKTOP, permissions=["camera", "microphone"])
    log_in(context, site, "host")
    page = open_go_live(context, site, pk)
    assert page.get_attribute("[data-live-golive]", "data-live-layout") == "classic"
    for part in ("[data-camera-select]", "[data-microphone-select]", ".w-live-golive__obs"):
        assert page.locator(part).is_visible()
    for studio_only in (
        "[data-camera-flip]",
        "[data-microphone-mute]",
        ".w-live-studio-bar__title",
    ):
        assert page.locator(studio_only).is_hidden()
    # The desktop camera keeps asking for 16:9; the portrait fake camera only comes as a crop.
    assert page.locator("[data-camera-preview]").bounding_box()["width"] <= 640
    context.close()


def test_going_live_from_a_phone_in_portrait_end_to_end(site, browser):
    pk = site.run(NEW_SESSION.format(title="Maths from my phone"))
    context = phone_context(browser, site, PHONES["390x844"])
    context.add_init_script(SPY_ON_GET_USER_MEDIA)
    page = context.new_page()
    allow_wake_lock(context, page, site)
    page.goto(f"{site.url}/admin/live/{pk}/go-live/")
    page.wait_for_function("document.querySelector('[data-camera-preview]').videoWidth > 0")
    assert preview_size(page) == [720, 1280]
    # A portrait screen asks for a portrait camera.
    assert page.evaluate("window.cameraRequests[0].video.height.ideal") == 1280

    page.locator("[data-live-go]").tap()
    page.wait_for_selector("[data-live-golive][data-status=live]", timeout=20000)
    page.wait_for_function(
        "document.querySelector('[data-camera-status]').textContent.includes('You are live')",
        timeout=20000,
    )
    # The screen stays on while live.
    page.wait_for_function("document.querySelector('[data-live-camera]').dataset.wakeLock")
    assert page.get_attribute("[data-live-camera]", "data-wake-lock") == "on"
    assert page.evaluate("navigator.wakeLock !== undefined")
    # Elapsed time and the viewer count over the preview; the Go live button gone.
    page.wait_for_function(
        "/^\\d+:\\d\\d$/.test(document.querySelector('[data-live-elapsed]').textContent)"
    )
    assert page.locator("[data-live-elapsed]").is_visible()
    assert page.locator("[data-live-go]").is_hidden()
    viewers = page.locator("[data-live-viewers]")
    viewers.wait_for(state="visible")
    assert "watching" in viewers.inner_text()

    # A viewer on the public page, logged in, chats; the message shows over the host's preview.
    fan = browser.new_context()
    log_in(fan, site, "fan")
    fan_page = fan.new_page()
    fan_page.goto(site.url + "/")
    fan_page.wait_for_selector("[data-live-realtime][data-connection=open]")
    fan_page.fill("[data-live-chat-input]", "Hello from the back row")
    fan_page.click("[data-live-chat-send]")
    message = page.locator(".live-chat__message", has_text="Hello from the back row")
    message.wait_for(state="visible", timeout=15000)
    page.wait_for_function("document.querySelector('[data-live-viewers]').dataset.count === '1'")

    # A tap on it opens the moderation sheet: remove and mute, not ban (the host is not a
    # site-wide moderator), focus inside it.
    message.tap()
    sheet = page.locator("[data-live-modsheet]")
    sheet.wait_for(state="visible")
    assert sheet.locator("[data-modsheet-text]").inner_text() == "Hello from the back row"
    assert page.evaluate("document.activeElement.matches('[data-modsheet-remove]')")
    assert sheet.get_by_role("button", name="Until the end").is_visible()
    assert sheet.locator("[data-modsheet-ban]").is_hidden()
    sheet.get_by_role("button", name="5 min").tap()
    sheet.wait_for(state="hidden")
    fan_page.wait_for_selector("[data-live-chat-restriction]:not([hidden])", timeout=10000)
    assert "muted" in fan_page.inner_text("[data-live-chat-restriction]")
    # The keyboard way: each message has a button that opens the same sheet.
    moderate = message.locator("[data-live-moderate]")
    assert moderate.get_attribute("aria-label") == "Moderate the message from Fan"
    moderate.focus()
    page.keyboard.press("Enter")
    sheet.wait_for(state="visible")
    sheet.get_by_role("button", name="Remove message").click()
    message.wait_for(state="detached", timeout=10000)
    fan_page.wait_for_selector("text=Hello from the back row", state="detached", timeout=10000)

    live_dir = site.media_root.parent / "live-private" / "uploads" / "live" / str(pk)
    recording = live_dir / "recording.mpegts"
    wait_until(lambda: len(playlist_segments(live_dir / "hls" / "index.m3u8")) >= 2)
    # What viewers get is portrait too: the live segments are 720x1280, not scaled or padded.
    segment = playlist_segments(live_dir / "hls" / "index.m3u8")[0][1]
    assert video_size(live_dir / "hls" / segment) == (720, 1280)

    # Mute keeps the audio track (disabled), so the recording stays continuous.
    page.locator("[data-microphone-mute]").tap()
    assert page.get_attribute("[data-microphone-mute]", "aria-pressed") == "true"
    assert page.evaluate(
        "(() => { const [a] = document.querySelector('[data-camera-preview]').srcObject"
        ".getAudioTracks(); return [a.enabled, a.readyState]; })()"
    ) == [False, "live"]
    page.locator("[data-microphone-mute]").tap()
    assert page.get_attribute("[data-microphone-mute]", "aria-pressed") == "false"

    # Switching the camera asks for the other facing mode, and the stream goes on.
    before = recording.stat().st_size
    page.locator("[data-camera-flip]").tap()
    page.wait_for_function(
        "window.cameraRequests.some((c) => c.video?.facingMode?.ideal === 'environment')"
    )
    page.wait_for_function(
        "document.querySelector('[data-camera-status]').textContent.includes('You are live')",
        timeout=30000,
    )
    wait_until(lambda: recording.stat().st_size > before + 100_000, timeout=40)
    assert preview_size(page) == [720, 1280]
    assert site.run(f"result = LiveSession.objects.get(pk={pk}).status") == "live"

    # Leaving the page asks first, and staying keeps the stream.
    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()
    assert not page.is_closed()

    # End live asks for confirmation; Keep streaming keeps it going.
    page.get_by_role("button", name="End live").tap()
    page.get_by_role("button", name="Keep streaming").tap()
    assert site.run(f"result = LiveSession.objects.get(pk={pk}).status") == "live"
    page.get_by_role("button", name="End live").first.tap()
    page.locator("[data-live-end-confirm]").tap()
    page.wait_for_selector("text=This session has ended.", timeout=30000)
    assert page.get_attribute("[data-live-golive]", "data-live-layout") == "classic"
    assert site.run(f"result = LiveSession.objects.get(pk={pk}).status") == "ended"
    fan.close()

    # The recording (processed by Huey) is portrait, its poster too, and so is its page.
    result = wait_for_recording(site, pk)
    assert video_size(site.media_root / result["media"]) == (720, 1280)
    assert result["poster"][0] < result["poster"][1], result["poster"]
    viewer = browser.new_context(viewport=PHONES["390x844"], is_mobile=True, has_touch=True)
    # The test site serves no MEDIA_URL (a real site's web server does): the browser gets the
    # files from the site's media root.
    viewer.route(
        re.compile(r".*/media/.*"),
        lambda route: route.fulfill(
            path=site.media_root / route.request.url.split("/media/", 1)[1].split("?")[0]
        ),
    )
    recording_page = viewer.new_page()
    recording_page.goto(site.url + result["url"])
    video_element = recording_page.locator("video")
    assert (video_element.get_attribute("width"), video_element.get_attribute("height")) == (
        "720",
        "1280",
    )
    recording_page.wait_for_function("document.querySelector('video').videoWidth > 0")
    assert recording_page.evaluate(
        "(() => { const v = document.querySelector('video'); return [v.videoWidth, v.videoHeight]; })()"
    ) == [720, 1280]
    box = recording_page.locator("video").bounding_box()
    assert box["height"] > box["width"]
    viewer.close()
    context.close()


def test_a_refused_wake_lock_does_not_stop_the_live(site, browser):
    """Headless Chromium refuses the wake lock unless granted: the live goes on regardless."""
    pk = site.run(NEW_SESSION.format(title="No wake lock"))
    context = phone_context(browser, site, PHONES["412x915"])
    page = open_go_live(context, site, pk)
    page.locator("[data-live-go]").tap()
    page.wait_for_function(
        "(document.querySelector('[data-live-camera]').dataset.wakeLock || '').startsWith('refused')",
        timeout=20000,
    )
    assert "You are live" in page.inner_text("[data-camera-status]")
    page.get_by_role("button", name="End live").tap()
    page.locator("[data-live-end-confirm]").tap()
    page.wait_for_selector("text=This session has ended.", timeout=30000)
    context.close()


def video_size(path):
    """(width, height) of the first video stream of the file at ``path`` (PyAV)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return (video.codec_context.width, video.codec_context.height)


def wait_for_recording(site, pk, timeout=120):
    """The session's ready recording: media path, poster (width, height), page URL."""
    code = f"""
    from PIL import Image
    from wagtail_live.models import Recording
    recording = Recording.objects.filter(session_id={pk}).first()
    result = None
    if recording and recording.status == "failed":
        raise SystemExit(recording.error)
    if recording and recording.status == "ready":
        with recording.poster.file.open("rb") as handle:
            poster = Image.open(handle).size
        result = {{"media": recording.media.file.name, "poster": poster,
                  "url": recording.page.specific.url}}
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = site.run(code)
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"no ready recording within {timeout}s")


def wait_until(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s")


# -- a security tester's attacks on the studio (issue 14) ------------------------------------

#: Markup and a bidi override in a logged-in user's name (names of accounts are not cleaned).
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">\u202eevil'
#: A 500-character message (CHAT_MAX_LENGTH) of short words: allowed, and as tall as chat text gets.
LONG_TEXT = ("Pinned notice " * 40)[:500]

HOSTILE_SETUP = f"""
from tests.utils import make_editor, make_session
from wagtail_live import chat

host = User.objects.get(username="host")
User.objects.create_user("viewer", "viewer@example.com", "password", first_name="Vera")
hostile = User.objects.create_user("hostile", "h@example.com", "password",
                                   first_name={HOSTILE_NAME!r})
mod = make_editor("mod", "moderate_chat")
make_editor("editor")
other = make_editor("other")
session = make_session("Hostile chat", owner=host)
session.start()
pinned = chat.send_message(session, host, {LONG_TEXT!r}, broadcast=False)
chat.pin(host, session, pinned.pk)
chat.send_message(session, hostile, "hello " + "y" * 120, broadcast=False)
for i in range(10):  # long messages, from several people (one may post only so fast)
    talker = User.objects.create_user(f"talker{{i}}", f"t{{i}}@example.com", "password")
    chat.send_message(session, talker, "long " + "y" * 200 + str(i), broadcast=False)
other_session = make_session("Someone else's live", owner=other)
other_session.start()
other_message = chat.send_message(other_session, other, "not yours to remove", broadcast=False)
result = {{"pk": session.pk, "mod": mod.pk, "other_message": other_message.pk,
          "viewer": User.objects.get(username="viewer").pk}}
"""


@pytest.fixture(scope="module")
def hostile(site):
    """Users and a live session (started, no camera) whose chat holds hostile and long text."""
    return site.run(HOSTILE_SETUP)


def open_studio_chat(context, site, pk):
    page = context.new_page()
    page.goto(f"{site.url}/admin/live/{pk}/go-live/")
    page.wait_for_selector("[data-live-realtime][data-connection=open]", timeout=20000)
    page.wait_for_selector("[data-live-golive][data-live-layout=studio]")
    return page


@pytest.mark.parametrize("user", [None, "viewer", "editor", "mod"])
@pytest.mark.parametrize(
    "spelling",
    ["/admin/live/{pk}/go-live/", "/admin/live/{pk}/go-live", "/admin/live/0{pk}/go-live/"],
)
def test_only_who_may_go_live_gets_the_studio(site, hostile, user, spelling):
    """A viewer, a plain editor, a site moderator without go_live and anonymous visitors get
    no Go Live screen (and no stream key) under any spelling of its address."""
    from tests.utils import raw_get

    path = spelling.format(pk=hostile["pk"])
    headers = {"Cookie": site.login_cookie(user)} if user else {}
    port = int(site.url.rsplit(":", 1)[1])
    status, response_headers, body = raw_get(port, path, headers)
    for _ in range(3):  # follow APPEND_SLASH / login redirects on the same site
        if status not in (301, 302):
            break
        location = response_headers["Location"].split(site.url, 1)[-1]
        status, response_headers, body = raw_get(port, location, headers)
    assert b"data-live-golive" not in body, (user, path, status)
    assert b"live-stream-key" not in body


def test_the_host_does_get_the_studio(site, hostile):
    """The control for the test above: the same request with the host's cookie works."""
    from tests.utils import raw_get

    port = int(site.url.rsplit(":", 1)[1])
    path = f"/admin/live/{hostile['pk']}/go-live/"
    status, _headers, body = raw_get(port, path, {"Cookie": site.login_cookie("host")})
    assert status == 200 and b"data-live-golive" in body


def test_the_host_may_not_ban_nor_mute_a_moderator_nor_act_in_another_session(site, hostile):
    import asyncio
    import concurrent.futures

    from tests.live_client import RealSocket

    count = "from wagtail_live.models import ModerationAction\nresult = ModerationAction.objects.count()"
    before = site.run(count)

    async def attempt():
        host = await RealSocket.open(site, hostile["pk"], user="host")
        try:
            answers = {}
            for name, frame in [
                ("ban", {"type": "mod.ban", "user_id": hostile["viewer"], "reason": "x"}),
                ("mute_mod", {"type": "mod.mute", "user_id": hostile["mod"], "seconds": 300}),
                ("remove_other", {"type": "mod.remove", "message_id": hostile["other_message"]}),
                ("pin_other", {"type": "mod.pin", "message_id": hostile["other_message"]}),
            ]:
                await host.send(frame)
                answers[name] = (await host.expect("error", timeout=10))["code"]
            return answers
        finally:
            await host.close()

    # In a thread: Playwright's sync API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, attempt()).result(timeout=120)
    assert answers == {
        "ban": "forbidden",
        "mute_mod": "forbidden",
        "remove_other": "not_found",
        "pin_other": "not_found",
    }
    # Nothing was recorded: no ban, no mute, no removal (the host's own tries all refused).
    assert site.run(count) == before


def test_the_studio_sheet_shows_a_hostile_name_as_text(site, browser, hostile):
    context = phone_context(browser, site, PHONES["390x844"])
    try:
        page = open_studio_chat(context, site, hostile["pk"])
        message = page.locator(".live-chat__message", has_text="evil").first
        message.wait_for(state="visible", timeout=15000)
        message.tap()
        sheet = page.locator("[data-live-modsheet]")
        sheet.wait_for(state="visible")
        assert sheet.locator("[data-modsheet-name]").text_content() == HOSTILE_NAME
        assert sheet.locator("img").count() == 0
        assert sheet.locator("[data-modsheet-ban]").is_hidden()
        assert page.evaluate("window.__xss") is None
        label = message.locator("[data-live-moderate]").get_attribute("aria-label")
        assert HOSTILE_NAME in label
    finally:
        context.close()


@pytest.mark.parametrize("phone", PHONES)
def test_a_long_pinned_message_and_long_messages_leave_the_studio_chat_usable(
    site, browser, hostile, phone
):
    """The studio's overlay: the pinned message shows 3 lines, the messages keep their room,
    the input stays on the screen and above End live; opened, the pinned text scrolls."""
    from playwright.sync_api import expect

    viewport = PHONES[phone]
    context = phone_context(browser, site, viewport)
    try:
        page = open_studio_chat(context, site, hostile["pk"])
        page.locator(".live-chat__message").last.wait_for(state="visible", timeout=15000)
        screen = {"x": 0, "y": 0, **viewport}

        def check():
            field = page.locator("[data-live-chat-input]").bounding_box()
            messages = page.locator("[data-live-messages]").bounding_box()
            pinned = page.locator("[data-live-pinned]").bounding_box()
            assert field["x"] >= 0 and field["x"] + field["width"] <= screen["width"] + 1, field
            assert 0 <= field["y"] and field["y"] + field["height"] <= screen["height"] + 1, field
            assert messages["height"] >= 60, messages
            assert pinned["y"] + pinned["height"] <= field["y"], (pinned, field)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"the studio scrolls sideways: {width}px"

        check()
        more = page.locator("[data-live-pinned-more]")
        expect(more).to_be_visible()
        more.tap()
        expect(more).to_have_attribute("aria-expanded", "true")
        check()
    finally:
        context.close()


# -- a camera switch that cannot open a camera -------------------------------------------------

FAIL_EVERY_CAMERA = """() => {
  window.realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = () =>
    Promise.reject(new DOMException('busy', 'NotReadableError'));
}"""

# Only the other camera fails: the first request after the tap (the other facing mode) is
# refused, the next (the camera of before) opens.
FAIL_THE_OTHER_CAMERA = """() => {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  let calls = 0;
  window.cameraRequests = [];
  navigator.mediaDevices.getUserMedia = (constraints) => {
    calls += 1;
    window.cameraRequests.push(JSON.parse(JSON.stringify(constraints)));
    return calls === 1 ? Promise.reject(new DOMException('busy', 'NotReadableError'))
                       : real(constraints);
  };
}"""

STUDIO_STATE = """() => ({
  flipDisabled: document.querySelector('[data-camera-flip]').disabled,
  status: document.querySelector('[data-camera-status]').textContent,
  error: document.querySelector('[data-camera-status]').classList.contains('error'),
  picture: document.querySelector('[data-live-camera]').dataset.picture,
  videoTracks: document.querySelector('[data-camera-preview]').srcObject
    .getVideoTracks().filter((track) => track.readyState === 'live').length,
})"""


def go_live_and_watch_the_ingest(page):
    """Tap Go live on a phone; returns the list the ingest socket's ``live`` answers go to."""
    page.wait_for_function(
        "document.querySelector('[data-camera-preview]').videoWidth > 0", timeout=30000
    )
    answers = []
    page.on(
        "websocket",
        lambda socket: socket.on(
            "framereceived",
            lambda frame: answers.append(frame) if '"live"' in str(frame) else None,
        ),
    )
    page.locator("[data-live-go]").tap()
    page.wait_for_function(
        "document.querySelector('[data-camera-status]').textContent.includes('live')",
        timeout=30000,
    )
    wait_until(lambda: answers, timeout=30)
    return answers


def switch_camera(page, answers):
    """Tap the switch; wait for the fresh ingest connection's ``live`` answer."""
    seen = len(answers)
    page.locator("[data-camera-flip]").tap()
    for _ in range(150):
        if len(answers) > seen:
            break
        page.wait_for_timeout(200)
    assert len(answers) > seen, "the ingest socket never came back after the switch"
    page.wait_for_function("!document.querySelector('[data-camera-flip]').disabled")
    page.wait_for_timeout(300)  # the status line's answer to ``live``
    return page.evaluate(STUDIO_STATE)


def test_a_camera_switch_that_fails_keeps_a_no_picture_error_until_a_switch_works(site, browser):
    """Every getUserMedia fails (the other camera busy, the old one will not reopen): the live
    goes on with sound only, and the status line says so in red, whatever the reconnected
    socket answers. The switch button stays usable: once a camera opens again, the picture is
    back and so is "You are live."."""
    pk = site.run(NEW_SESSION.format(title="Switch fails"))
    context = phone_context(browser, site, PHONES["390x844"])
    try:
        page = context.new_page()
        page.goto(f"{site.url}/admin/live/{pk}/go-live/")
        answers = go_live_and_watch_the_ingest(page)
        page.evaluate(FAIL_EVERY_CAMERA)
        state = switch_camera(page, answers)
        assert site.run(f"result = LiveSession.objects.get(pk={pk}).status") == "live"
        assert not state["flipDisabled"], state
        assert state["videoTracks"] == 0 and state["picture"] == "none", state
        assert state["error"], state
        assert state["status"].startswith("No picture") and "NotReadableError" in state["status"]
        # The microphone button's own message does not hide it either.
        page.locator("[data-microphone-mute]").tap()
        page.locator("[data-microphone-mute]").tap()
        assert page.evaluate(STUDIO_STATE)["status"].startswith("No picture")

        page.evaluate("() => { navigator.mediaDevices.getUserMedia = window.realGetUserMedia; }")
        state = switch_camera(page, answers)
        assert state["videoTracks"] == 1 and state["picture"] == "on", state
        assert not state["error"] and "You are live" in state["status"], state
        page.get_by_role("button", name="End live").tap()
        page.locator("[data-live-end-confirm]").tap()
        page.wait_for_selector("text=This session has ended.", timeout=30000)
    finally:
        context.close()


def test_a_camera_switch_whose_other_camera_fails_reopens_the_camera_of_before(site, browser):
    pk = site.run(NEW_SESSION.format(title="Other camera busy"))
    context = phone_context(browser, site, PHONES["412x915"])
    try:
        page = context.new_page()
        page.goto(f"{site.url}/admin/live/{pk}/go-live/")
        answers = go_live_and_watch_the_ingest(page)
        page.evaluate(FAIL_THE_OTHER_CAMERA)
        state = switch_camera(page, answers)
        assert state["videoTracks"] == 1 and state["picture"] == "on", state
        assert not state["error"] and "You are live" in state["status"], state
        requests = page.evaluate("window.cameraRequests")
        # First the other side, then the facing mode of before (none: the default camera).
        assert requests[0]["video"]["facingMode"] == {"ideal": "environment"}, requests
        assert "facingMode" not in requests[1]["video"], requests
        assert not state["flipDisabled"]
    finally:
        context.close()
