"""Attack tests: the viewer's phone view / side-by-side player and the host's phone studio (issue 14).

Each test fails while its fault is there. A real daphne (tests/live_site.py) serves a page with
a live player and the Go Live screen; Debian's Chromium (Playwright) opens them as a phone or a
desktop. Where a test needs the *server* to send something it would only send under load (tens
of thousands of chat messages or like updates), it hands the frames to the page's chat module
exactly as its socket would (``root.liveRealtime.handle(frame)``, the function the socket's
``message`` listener calls), so the client's own bounds are what is measured.
"""

import os

import pytest

from tests.live_site import LiveSite, migrated_database
from tests.utils import chromium_path, launch_chromium, require

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}

#: A 500-character message (CHAT_MAX_LENGTH) of short words: allowed, and as tall as chat text gets.
LONG_TEXT = ("Pinned notice " * 40)[:500]
#: A display name (first_name allows 150 characters) with no space to break at.
LONG_NAME = "W" * 150
#: An account name piled with combining marks ("Zalgo"): 100 on one letter.
ZALGO_NAME = "Z" + "\u0300\u0301\u0302\u0303" * 25
#: Markup and a bidi override in a logged-in user's name (names of accounts are not cleaned).
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">\u202eevil'

SETUP = f"""
from wagtail.models import Site
from example_site.home.models import HomePage
from tests.utils import make_editor, make_session
from wagtail_live import chat

host = make_editor("host")
host.first_name = "Hana"
host.save()
User.objects.create_user("viewer", "viewer@example.com", "password", first_name="Vera")
longname = User.objects.create_user("longname", "l@example.com", "password",
                                    first_name={LONG_NAME!r})
hostile = User.objects.create_user("hostile", "h@example.com", "password",
                                   first_name={HOSTILE_NAME!r})
root = Site.objects.get(is_default_site=True).root_page
session = make_session("Public <b>live</b>", owner=host)
session.start()
page = root.add_child(instance=HomePage(
    title="Public live", slug="public-live",
    body=[("live_player", {{"session": session, "show_chat": True, "layout": "portrait"}})],
))
message = chat.send_message(session, host, {LONG_TEXT!r}, broadcast=False)
chat.pin(host, session, message.pk)
chat.send_message(session, longname, "x" * 500, broadcast=False)
chat.send_message(session, hostile, "hello", broadcast=False)
zalgo = User.objects.create_user("zalgo", "z@example.com", "password",
                                 first_name={ZALGO_NAME!r})
chat.send_message(session, zalgo, "zalgo says hi", broadcast=False)
mod = make_editor("mod", "moderate_chat")
make_editor("editor")
other = make_editor("other")
other_session = make_session("Someone else's live", owner=other)
other_session.start()
other_message = chat.send_message(other_session, other, "not yours to remove", broadcast=False)
secret = make_session("Secret board meeting", owner=host, privacy="private")
secret.start()
secret_page = root.add_child(instance=HomePage(
    title="Members", slug="members",
    body=[("live_player", {{"session": secret, "show_chat": True, "layout": "auto"}})],
))
result = {{"pk": session.pk, "url": page.url, "mod": mod.pk, "other_pk": other_session.pk,
          "other_message": other_message.pk, "secret_url": secret_page.url,
          "secret_pk": secret.pk, "viewer": User.objects.get(username="viewer").pk}}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(os.path.exists(chromium_path()), "chromium (apt-get install chromium)")
    directory = tmp_path_factory.mktemp("attack-phone-ui")
    site = LiveSite(directory, migrated_database(directory))
    site.page_info = site.run(SETUP)
    site.start()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def playwright():
    """One Playwright for the module: its sync API allows one running instance per thread."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = launch_chromium(playwright, "--autoplay-policy=no-user-gesture-required")
    yield chromium
    chromium.close()


def logged_in_context(browser, site, username, **options):
    context = browser.new_context(**options)
    cookie = site.login_cookie(username).split("=", 1)[1]
    context.add_cookies(
        [{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}]
    )
    return context


def open_player(context, site):
    """The player's page with its chat socket open (the video need not play for these tests)."""
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(site.url + site.page_info["url"])
    expect(page.locator("[data-live-realtime]")).to_have_attribute(
        "data-connection", "open", timeout=20000
    )
    # The socket's ``state`` (history, pinned message, permissions) has been drawn.
    page.wait_for_selector("[data-live-messages] li", state="attached", timeout=20000)
    return page


def open_immersive(page):
    from playwright.sync_api import expect

    page.locator("[data-live-open]").click()
    expect(page.locator("[data-live-player]")).to_have_class(
        __import__("re").compile(r"\bis-immersive\b")
    )


def inside(inner, outer, slack=1):
    return (
        inner["x"] >= outer["x"] - slack
        and inner["y"] >= outer["y"] - slack
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack
    )


# -- the chat overlay stays bounded ----------------------------------------------------------


def test_a_long_running_chat_keeps_a_bounded_number_of_message_nodes(site, browser):
    """Fault: live.js appends every chat.message and keeps it in ``messages`` forever.

    A busy live of a few hours sends tens of thousands of messages; a phone tab must not
    keep one <li> (and its closures) for each. 5,000 frames, as the socket would hand them.
    """
    context = logged_in_context(browser, site, "viewer", **PHONE)
    try:
        page = open_player(context, site)
        count = page.evaluate(
            """() => {
              const live = document.querySelector('[data-live-realtime]').liveRealtime;
              for (let i = 0; i < 5000; i += 1) {
                live.handle({type: 'chat.message', id: 10_000_000 + i, user_id: 99,
                             display_name: 'Flood', badge: '', text: 'message ' + i,
                             time: new Date().toISOString()});
              }
              return [document.querySelectorAll('[data-live-messages] li').length,
                      live.messages.size];
            }"""
        )
        # The protocol's own history is the last 50 messages; a few hundred on screen is plenty.
        assert max(count) <= 500, f"{count[0]} <li> and {count[1]} kept messages after 5,000"
    finally:
        context.close()


def test_a_burst_of_like_updates_floats_a_bounded_number_of_hearts(site, browser):
    """Fault: each ``likes`` frame with a higher total floats up to MAX_HEARTS new hearts,
    with no cap on how many float at once: 10,000 updates in a burst make 10,000 <span>s."""
    context = logged_in_context(browser, site, "viewer", **PHONE)
    try:
        page = open_player(context, site)
        open_immersive(page)
        hearts = page.evaluate(
            """() => {
              const live = document.querySelector('[data-live-realtime]').liveRealtime;
              const start = live.lastLikes ?? 0;
              for (let i = 1; i <= 10000; i += 1) live.handle({type: 'likes', total: start + i});
              return document.querySelectorAll('.live-heart').length;
            }"""
        )
        assert hearts <= 100, f"{hearts} floating hearts in the DOM at once"
    finally:
        context.close()


def test_tapping_the_heart_very_fast_floats_a_bounded_number_of_hearts(site, browser):
    """Fault: every tap floats a heart with no cap (an auto-clicker, or a stuck key on the
    focused heart button, fills the DOM)."""
    context = logged_in_context(browser, site, "viewer", **PHONE)
    try:
        page = open_player(context, site)
        open_immersive(page)
        hearts = page.evaluate(
            """() => {
              const button = document.querySelector('[data-live-like-button]');
              for (let i = 0; i < 5000; i += 1) button.click();
              return document.querySelectorAll('.live-heart').length;
            }"""
        )
        assert hearts <= 100, f"{hearts} floating hearts in the DOM at once"
    finally:
        context.close()


# -- hostile text in the overlay ----------------------------------------------------------------


def test_a_long_pinned_message_leaves_the_chat_input_on_screen_in_the_immersive_view(site, browser):
    """Fault: a 500-character pinned message (allowed) grows without a bound in the overlay
    (``.live-chat__pinned`` has no max-height or scroll), so on a 390x844 phone it takes the
    whole chat box: the messages list shrinks to 0 px (no chat visible at all) and the input
    is pushed partly below the screen's bottom edge."""
    context = logged_in_context(browser, site, "viewer", **PHONE)
    try:
        page = open_player(context, site)
        open_immersive(page)
        screen = {"x": 0, "y": 0, **PHONE["viewport"]}
        chat = page.locator("[data-live-chat]").bounding_box()
        pinned = page.locator("[data-live-pinned]").bounding_box()
        field = page.locator("[data-live-chat-input]").bounding_box()
        heart = page.locator("[data-live-like-button]").bounding_box()
        messages = page.locator("[data-live-messages]").bounding_box()
        assert inside(field, screen), f"input {field} off the {screen} screen"
        assert messages["height"] >= 60, f"the pinned message leaves the messages {messages}"
        assert inside(pinned, chat), f"pinned {pinned} spills out of the chat {chat}"
        assert pinned["y"] + pinned["height"] <= field["y"], "the pinned box covers the input"
        assert not (
            pinned["x"] < heart["x"] + heart["width"]
            and heart["x"] < pinned["x"] + pinned["width"]
            and pinned["y"] < heart["y"] + heart["height"]
            and heart["y"] < pinned["y"] + pinned["height"]
        ), "the pinned box covers the heart"
    finally:
        context.close()


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_long_names_and_words_wrap_inside_the_chat(site, browser, viewport):
    """A 150-character name and a 500-character word stay inside the chat's width."""
    options = PHONE if viewport == "phone" else DESKTOP
    context = logged_in_context(browser, site, "viewer", **options)
    try:
        page = open_player(context, site)
        if viewport == "phone":
            open_immersive(page)
        chat = page.locator("[data-live-chat]").bounding_box()
        item = page.locator("[data-live-messages] li", has_text="xxxxxxxx").first
        name = item.locator(".live-chat__name").bounding_box()
        text = item.locator(".live-chat__text").bounding_box()
        assert name["x"] + name["width"] <= chat["x"] + chat["width"] + 1, (name, chat)
        assert text["x"] + text["width"] <= chat["x"] + chat["width"] + 1, (text, chat)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= options["viewport"]["width"], f"page scrolls sideways: {width}px"
    finally:
        context.close()


def test_markup_in_the_session_title_is_text(site, browser):
    context = logged_in_context(browser, site, "viewer", **PHONE)
    try:
        page = open_player(context, site)
        open_immersive(page)
        heading = page.locator(".wagtail-live-player__heading-title")
        assert heading.text_content() == "Public <b>live</b>"
        assert page.locator(".wagtail-live-player__heading-title b").count() == 0
    finally:
        context.close()


# -- keyboard -----------------------------------------------------------------------------------


def test_shift_tab_after_a_click_on_the_video_stays_in_the_immersive_view(site, browser):
    """Fault: the stage is focusable (tabindex -1), so a click on the video focuses the stage
    itself; keepFocusInside only wraps from the first or the last control, so Shift+Tab from
    the stage leaves the modal view for the page behind it (which is not inert)."""
    context = logged_in_context(browser, site, "viewer", **PHONE)
    try:
        page = open_player(context, site)
        page.locator("[data-live-open]").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(".wagtail-live-player.is-immersive")
        page.mouse.click(195, 300)  # the video, above the chat
        page.keyboard.press("Shift+Tab")
        inside_stage = page.evaluate(
            "document.querySelector('[data-live-stage]').contains(document.activeElement)"
        )
        focused = page.evaluate("document.activeElement.outerHTML.slice(0, 120)")
        assert inside_stage, f"focus left the modal view for {focused}"
    finally:
        context.close()


# -- what held: hostile names, private titles, who gets the studio, what a host may do ----------


def test_a_hostile_name_is_text_in_the_overlay(site, browser):
    context = logged_in_context(browser, site, "viewer", **PHONE)
    try:
        page = open_player(context, site)
        open_immersive(page)
        item = page.locator("[data-live-messages] li", has_text="evil").first
        assert item.locator(".live-chat__name").text_content() == HOSTILE_NAME
        assert item.locator("img").count() == 0
        assert page.evaluate("window.__xss") is None
        # Its own <bdi dir=auto>: the override cannot reorder the text after it.
        assert item.locator("bdi.live-chat__name").get_attribute("dir") == "auto"
    finally:
        context.close()


def test_a_private_sessions_title_is_not_sent_to_anonymous_visitors(site, browser):
    context = browser.new_context(**PHONE)
    try:
        page = context.new_page()
        response = page.goto(site.url + site.page_info["secret_url"])
        assert "Secret board meeting" not in response.text()
        assert page.locator("[data-live-members-only]").count() == 1
        assert page.locator("[data-live-stage], [data-live-realtime]").count() == 0
    finally:
        context.close()


@pytest.mark.parametrize("user", [None, "viewer", "editor", "mod"])
@pytest.mark.parametrize(
    "spelling",
    ["/admin/live/{pk}/go-live/", "/admin/live/{pk}/go-live", "/admin/live/0{pk}/go-live/"],
)
def test_only_who_may_go_live_gets_the_studio(site, user, spelling):
    """A viewer, a plain editor, a site moderator without go_live and anonymous visitors get
    no Go Live screen (and no stream key) under any spelling of its address."""
    from tests.utils import raw_get

    path = spelling.format(pk=site.page_info["pk"])
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


def test_the_host_does_get_the_studio(site):
    """The control for the test above: the same request with the host's cookie works."""
    from tests.utils import raw_get

    port = int(site.url.rsplit(":", 1)[1])
    path = f"/admin/live/{site.page_info['pk']}/go-live/"
    status, _headers, body = raw_get(port, path, {"Cookie": site.login_cookie("host")})
    assert status == 200 and b"data-live-golive" in body


def test_the_host_may_not_ban_nor_mute_a_moderator_nor_act_in_another_session(site):
    import asyncio
    import concurrent.futures

    from tests.live_client import RealSocket

    info = site.page_info
    count = "from wagtail_live.models import ModerationAction\nresult = ModerationAction.objects.count()"
    before = site.run(count)

    async def attempt():
        host = await RealSocket.open(site, info["pk"], user="host")
        try:
            answers = {}
            for name, frame in [
                ("ban", {"type": "mod.ban", "user_id": info["viewer"], "reason": "x"}),
                ("mute_mod", {"type": "mod.mute", "user_id": info["mod"], "seconds": 300}),
                ("remove_other", {"type": "mod.remove", "message_id": info["other_message"]}),
                ("pin_other", {"type": "mod.pin", "message_id": info["other_message"]}),
            ]:
                await host.send(frame)
                answers[name] = (await host.expect("error", timeout=10))["code"]
            return answers
        finally:
            await host.close()

    # In a thread: Playwright's sync API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, attempt()).result(timeout=120)
    assert answers["ban"] == "forbidden"
    assert answers["mute_mod"] == "forbidden"
    assert answers["remove_other"] == "not_found"
    assert answers["pin_other"] == "not_found"
    # Nothing was recorded: no ban, no mute, no removal (the host's own tries all refused).
    assert site.run(count) == before


def test_the_studio_sheet_shows_a_hostile_name_as_text(site, browser):
    context = logged_in_context(browser, site, "host", **PHONE)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/admin/live/{site.page_info['pk']}/go-live/")
        page.wait_for_selector("[data-live-realtime][data-connection=open]", timeout=20000)
        page.wait_for_selector("[data-live-golive][data-live-layout=studio]")
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


def test_an_account_names_combining_marks_are_bounded_like_message_text(site):
    """Fault: chat text and guest names are refused with more than 5 combining marks on one
    character ("Zalgo" spills over the messages above and below, docs/chat-and-moderation.md),
    but a registered user's name (``chat.display_name``: first and last name, up to 150
    characters) is sent as is, so an account named "Z" + 100 marks shows a Zalgo name in
    every chat, the immersive overlay and the studio's sheet."""
    import asyncio
    import concurrent.futures

    from tests.live_client import RealSocket
    from wagtail_live import text

    async def names():
        viewer = await RealSocket.open(site, site.page_info["pk"], user="viewer")
        await viewer.close()
        return [m["display_name"] for m in viewer.state["messages"]]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        shown = pool.submit(asyncio.run, names()).result(timeout=60)
    zalgo = [name for name in shown if name.startswith("Z")]
    assert zalgo, shown
    marks = text.most_marks_on_one_character(zalgo[0])
    assert marks <= text.MAX_MARKS_PER_CHARACTER, f"{marks} marks on one letter of a name"


def test_reduced_motion_floats_no_hearts(site, browser):
    context = logged_in_context(browser, site, "viewer", reduced_motion="reduce", **PHONE)
    try:
        page = open_player(context, site)
        open_immersive(page)
        hearts = page.evaluate(
            """() => {
              const live = document.querySelector('[data-live-realtime]').liveRealtime;
              live.handle({type: 'likes', total: (live.lastLikes ?? 0) + 50});
              document.querySelector('[data-live-like-button]').click();
              return document.querySelectorAll('.live-heart, .wagtail-live-player__tap-heart')
                .length;
            }"""
        )
        assert hearts == 0
    finally:
        context.close()


# -- the studio's camera switch when the other camera will not open ------------------------------


@pytest.fixture(scope="module")
def camera_browser(playwright, tmp_path_factory):
    """Chromium with a fake portrait camera (as tests/browser/test_studio.py)."""
    from tests.browser.test_go_live import CHROMIUM_ARGS as GO_LIVE_ARGS
    from tests.browser.test_studio import portrait_camera

    camera = portrait_camera(tmp_path_factory.mktemp("attack-camera"))
    chromium = playwright.chromium.launch(
        executable_path=chromium_path(),
        args=[*GO_LIVE_ARGS, f"--use-file-for-fake-video-capture={camera}"],
    )
    yield chromium
    chromium.close()


def test_a_camera_switch_that_fails_leaves_the_studio_usable(site, camera_browser):
    """Fault: live from the studio, the host taps the camera switch while every getUserMedia
    call fails (the other camera is busy, and the old one, which switchCamera stops first,
    will not reopen). The live goes on audio-only (no video track left) while the status line
    says "You are live." in its normal style: the "no camera (NotReadableError)" error is
    overwritten when the reconnected socket answers ``live``, so the host is never told the
    audience sees no picture."""
    pk = site.run(
        "from tests.utils import make_session\n"
        "result = make_session('Switch fails', owner=User.objects.get(username='host')).pk"
    )
    context = logged_in_context(
        camera_browser, site, "host", permissions=["camera", "microphone"], **PHONE
    )
    try:
        page = context.new_page()
        page.goto(f"{site.url}/admin/live/{pk}/go-live/")
        page.wait_for_function(
            "document.querySelector('[data-camera-preview]').videoWidth > 0", timeout=30000
        )
        page.locator("[data-live-go]").tap()
        page.wait_for_function(
            "document.querySelector('[data-camera-status]').textContent.includes('live')",
            timeout=30000,
        )
        page.evaluate(
            """() => {
              navigator.mediaDevices.getUserMedia = () =>
                Promise.reject(new DOMException('busy', 'NotReadableError'));
            }"""
        )
        # The switch reconnects the ingest socket; wait for the new socket's ``live`` answer.
        answers = []
        page.on(
            "websocket",
            lambda socket: socket.on(
                "framereceived",
                lambda frame: answers.append(frame) if '"live"' in str(frame) else None,
            ),
        )
        page.locator("[data-camera-flip]").tap()
        for _ in range(150):
            if answers:
                break
            page.wait_for_timeout(200)
        assert answers, "the ingest socket never came back after the switch"
        page.wait_for_function("!document.querySelector('[data-camera-flip]').disabled")
        state = page.evaluate(
            """() => ({
              flipDisabled: document.querySelector('[data-camera-flip]').disabled,
              status: document.querySelector('[data-camera-status]').textContent,
              camera: document.querySelector('[data-live-camera]').dataset.state,
              error: document.querySelector('[data-camera-status]').classList.contains('error'),
              videoTracks: document.querySelector('[data-camera-preview]').srcObject
                .getVideoTracks().filter((track) => track.readyState === 'live').length,
            })"""
        )
        session_status = site.run(f"result = LiveSession.objects.get(pk={pk}).status")
        assert not state["flipDisabled"], state
        assert session_status == "live", (session_status, state)
        # Streaming on without a picture is a choice the host must see: either the camera in
        # use is still there, or the status line keeps saying it is gone.
        assert state["videoTracks"] or (state["error"] and "NotReadableError" in state["status"]), (
            f"no picture any more, yet the studio says {state['status']!r}: {state}"
        )
    finally:
        context.close()
