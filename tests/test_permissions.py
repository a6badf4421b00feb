"""Authority scopes: one permission function per capability, asked by every face.

A host moderates their own session only; bans are site-wide and need
``moderate_chat``. A ``can_watch_live_session`` hook that says no is honoured by
every face (HLS, status, invite, recording file and page, chat socket, block,
reminders). Visitors who may not watch see no title, description or JSON-LD.
"""

import json
import re

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from wagtail import hooks

from tests.live_client import LiveClient
from tests.utils import make_editor, make_session
from wagtail_live import chat, permissions, reminders
from wagtail_live.chat import ChatError
from wagtail_live.models import ChatMessage, LiveSession, ModerationAction

SECRET_TITLE = "Board meeting: layoffs"
SECRET_DESCRIPTION = "Confidential agenda for members"


@pytest.fixture
def site_moderator(db):
    return make_editor("sitemod", "moderate_chat")


@pytest.fixture
def other_host(db):
    return make_editor("otherhost")


def bans_of(user):
    return ModerationAction.objects.bans().filter(target_user=user).count()


# -- the capability functions ------------------------------------------------


@pytest.mark.django_db
def test_capabilities_of_each_role(session, host, other_host, site_moderator, viewer, superuser):
    assert permissions.can_moderate_session(session, host)
    assert not permissions.can_moderate_site(host)
    assert not permissions.can_moderate_session(session, other_host)
    assert permissions.can_moderate_session(session, site_moderator)
    assert permissions.can_moderate_site(site_moderator)
    assert permissions.can_moderate_site(superuser)
    assert not permissions.can_moderate_session(session, viewer)
    assert not permissions.can_moderate_session(session, AnonymousUser())
    assert not permissions.can_moderate_site(None)
    # The model's answer and the function's are the same rule.
    for user in (host, other_host, site_moderator, viewer, superuser):
        assert session.can_moderate(user) == permissions.can_moderate_session(session, user)


@pytest.mark.django_db
def test_inactive_users_have_no_authority(session, host, site_moderator):
    for user in (host, site_moderator):
        user.is_active = False
        user.save()
        assert not permissions.can_moderate_session(session, user)
        assert not permissions.can_moderate_site(user)


# -- hosts moderate their own session, not the site --------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["other_host", "site_moderator", "viewer"])
def test_host_cannot_ban_anyone(request, session, host, target):
    target = request.getfixturevalue(target)
    message = chat.send_message(session, target, "hello")
    for where in (session, None):
        with pytest.raises(ChatError) as refused:
            chat.ban(host, target.pk, "bye", session=where)
        assert refused.value.code == "forbidden"
    assert bans_of(target) == 0
    assert ChatMessage.objects.get(pk=message.pk).removed_at is None


@pytest.mark.django_db
def test_host_cannot_lift_a_site_moderators_ban(session, host, site_moderator, viewer):
    chat.ban(site_moderator, viewer.pk, "spam", session=session)
    for where in (session, None):
        with pytest.raises(ChatError) as refused:
            chat.unban(host, viewer.pk, session=where)
        assert refused.value.code == "forbidden"
    assert bans_of(viewer) == 1


@pytest.mark.django_db
def test_host_removes_mutes_pins_and_slows_in_their_own_session(session, host, viewer):
    message = chat.send_message(session, viewer, "hi")
    chat.pin(host, session, message.pk)
    chat.remove_message(host, session, message.pk)
    chat.mute(host, session, viewer.pk, 300)
    chat.set_slow_mode(host, session, 10)
    assert chat.muted_until(session, viewer) is not None
    chat.unmute(host, session, viewer.pk)
    assert chat.muted_until(session, viewer) is None


@pytest.mark.django_db
def test_host_has_no_authority_in_another_hosts_session(host, other_host, viewer):
    theirs = make_session("Theirs", owner=other_host)
    message = chat.send_message(theirs, viewer, "hi")
    actions = [
        lambda: chat.remove_message(host, theirs, message.pk),
        lambda: chat.mute(host, theirs, viewer.pk, 60),
        lambda: chat.unmute(host, theirs, viewer.pk),
        lambda: chat.set_slow_mode(host, theirs, 30),
        lambda: chat.pin(host, theirs, message.pk),
    ]
    for action in actions:
        with pytest.raises(ChatError) as refused:
            action()
        assert refused.value.code == "forbidden"
    assert not ModerationAction.objects.exists()


@pytest.mark.django_db
def test_host_cannot_mute_a_site_moderator_in_their_session(session, host, site_moderator):
    with pytest.raises(ChatError) as refused:
        chat.mute(host, session, site_moderator.pk, 60)
    assert refused.value.code == "forbidden"
    assert chat.muted_until(session, site_moderator) is None


@pytest.mark.django_db
def test_host_may_mute_another_host_in_their_own_session_only(session, host, other_host):
    chat.mute(host, session, other_host.pk, None)
    assert chat.muted_until(session, other_host) == "session_end"
    elsewhere = make_session("Elsewhere", owner=other_host)
    assert chat.muted_until(elsewhere, other_host) is None
    chat.send_message(elsewhere, other_host, "still talking here")


@pytest.mark.django_db
def test_site_moderator_bans_from_a_session_and_it_reaches_every_chat(
    session, host, site_moderator, viewer
):
    chat.ban(site_moderator, viewer.pk, "spam", session=session)
    elsewhere = make_session("Elsewhere", owner=host)
    with pytest.raises(ChatError) as refused:
        chat.send_message(elsewhere, viewer, "hi")
    assert refused.value.code == "banned"
    chat.unban(site_moderator, viewer.pk, session=session)
    chat.send_message(elsewhere, viewer, "back")


@pytest.mark.django_db
def test_state_tells_hosts_they_cannot_ban(session, host, site_moderator):
    host_can = chat.permissions_for(session, host)
    assert host_can["moderate"] is True and host_can["ban"] is False
    mod_can = chat.permissions_for(session, site_moderator)
    assert mod_can["moderate"] is True and mod_can["ban"] is True
    assert chat.permissions_for(session, AnonymousUser())["ban"] is False


@pytest.mark.django_db(transaction=True)
async def test_host_sending_mod_ban_over_the_socket_is_refused(host, other_host, site_moderator):
    session = await database_sync_to_async(make_session)("Mine", owner=host)
    client = LiveClient(session.pk, host)
    state = await client.connect()
    assert state["can"]["ban"] is False
    for target in (other_host, site_moderator):
        await client.send({"type": "mod.ban", "user_id": target.pk, "reason": "x"})
        error = await client.expect("error")
        assert error["code"] == "forbidden"
    await client.send({"type": "mod.unban", "user_id": other_host.pk})
    assert (await client.expect("error"))["code"] == "forbidden"
    await client.disconnect()
    assert await database_sync_to_async(ModerationAction.objects.filter(action="ban").count)() == 0


# -- a can_watch_live_session hook that says no is honoured everywhere --------


def deny_viewer(session, user):
    if user is not None and user.is_authenticated and user.username == "viewer":
        return False
    return None


@pytest.fixture
def denied():
    with hooks.register_temporarily(permissions.CAN_WATCH_HOOK, deny_viewer):
        yield


@pytest.fixture
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.mark.django_db
@pytest.mark.parametrize("privacy", ["public", "private"])
def test_denying_hook_closes_every_http_face(client, denied, host, viewer, privacy, media_root):
    session = make_session(
        SECRET_TITLE, owner=host, privacy=privacy, scheduled_start=timezone.now()
    )
    session.start()
    hls_dir = session.media_dir / "hls"
    hls_dir.mkdir(parents=True, exist_ok=True)
    (hls_dir / "index.m3u8").write_text("#EXTM3U\n")
    urls = [
        reverse("wagtail_live:hls", args=[session.pk, "index.m3u8"]),
        reverse("wagtail_live:session_status", args=[session.pk]),
        reverse("wagtail_live:session_calendar", args=[session.pk]),
    ]
    client.force_login(viewer)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 403, url
        assert SECRET_TITLE.encode() not in response.content
    client.force_login(host)  # the hook has no opinion about the host
    for url in urls:
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_denying_hook_refuses_reminders(denied, host, viewer):
    session = make_session(SECRET_TITLE, owner=host, scheduled_start=timezone.now())
    with pytest.raises(reminders.ReminderError) as refused:
        reminders.remind_me(session, viewer)
    assert refused.value.code == "forbidden"


@pytest.mark.django_db
def test_reminders_are_not_sent_to_someone_a_hook_now_refuses(host, viewer, mailoutbox):
    session = make_session(SECRET_TITLE, owner=host, scheduled_start=timezone.now())
    reminders.remind_me(session, viewer)
    session.start()
    with hooks.register_temporarily(permissions.CAN_WATCH_HOOK, deny_viewer):
        reminders.send_went_live_notices(session)
    assert mailoutbox == []
    reminders.send_went_live_notices(session)
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
async def test_denying_hook_refuses_the_chat_socket(host, viewer):
    session = await database_sync_to_async(make_session)("Open", owner=host)
    with hooks.register_temporarily(permissions.CAN_WATCH_HOOK, deny_viewer):
        client = LiveClient(session.pk, viewer)
        await client.communicator.connect()
        assert (await client.receive())["code"] == "login_required"
        assert await client.expect_close() == 4403
        allowed = LiveClient(session.pk, host)
        assert (await allowed.connect())["status"] == "ready"
        await allowed.disconnect()


@pytest.mark.django_db
def test_denying_hook_refuses_sending_chat(denied, session, viewer):
    with pytest.raises(ChatError) as refused:
        chat.send_message(session, viewer, "hello")
    assert refused.value.code == "forbidden"
    assert not permissions.can_chat(session, viewer)


def render_block(session, user):
    from wagtail_live.blocks import LivePlayerBlock

    request = RequestFactory().get("/page/")
    request.user = user
    block = LivePlayerBlock()
    value = block.to_python({"session": session.pk, "show_chat": True})
    return block.render(value, context={"request": request})


def jsonld(html):
    return re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)


@pytest.mark.django_db
def test_denying_hook_hides_the_block_and_its_data(denied, host, viewer):
    session = make_session(SECRET_TITLE, owner=host, description=SECRET_DESCRIPTION)
    session.start()
    html = render_block(session, viewer)
    assert "members only" in html
    assert SECRET_TITLE not in html and SECRET_DESCRIPTION not in html
    assert jsonld(html) == []
    assert "data-status-url" not in html and "data-session" not in html
    member_html = render_block(session, host)
    assert SECRET_TITLE in member_html
    assert json.loads(jsonld(member_html)[0])["name"] == SECRET_TITLE


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["ready", "live", "ended"])
def test_private_block_shows_anonymous_visitors_nothing_of_the_session(host, status):
    session = make_session(
        SECRET_TITLE,
        owner=host,
        privacy=LiveSession.Privacy.PRIVATE,
        description=SECRET_DESCRIPTION,
        scheduled_start=timezone.now(),
    )
    LiveSession.objects.filter(pk=session.pk).update(status=status)
    session.refresh_from_db()
    html = render_block(session, AnonymousUser())
    assert "members only" in html
    assert SECRET_TITLE not in html and SECRET_DESCRIPTION not in html
    assert jsonld(html) == []
    assert "ld+json" not in html and "data-status" not in html


@pytest.mark.django_db
def test_upcoming_block_lists_only_sessions_the_visitor_may_watch(denied, host, viewer):
    from wagtail_live.blocks import UpcomingLiveBlock

    make_session("Open to all", owner=host, scheduled_start=timezone.now())
    block = UpcomingLiveBlock()
    request = RequestFactory().get("/")
    request.user = viewer
    context = block.get_context(block.to_python({"count": 5}), {"request": request})
    assert context["upcoming_sessions"] == []
    request.user = host
    context = block.get_context(block.to_python({"count": 5}), {"request": request})
    assert [s.title for s in context["upcoming_sessions"]] == ["Open to all"]


# -- recordings: file, player and page ---------------------------------------


def published_recording(session, tmp_path):
    from django.core.files.base import ContentFile

    from tests.recording_media import make_media
    from wagtail_live import recordings
    from wagtail_live.models import Recording
    from wagtail_live.storage import working_storage

    local = make_media(tmp_path / "recording.ts", "h264_aac")
    source = working_storage().save(
        session.media_path("recording.ts"), ContentFile(local.read_bytes())
    )
    recording = Recording.objects.create(session=session, source=source)
    recordings.process_recording(recording)
    recording.refresh_from_db()
    page = recording.page.specific
    page.intro = f"<p>{SECRET_DESCRIPTION}</p>"
    page.save_revision().publish()
    return recording, page


@pytest.mark.django_db
@pytest.mark.parametrize("privacy", ["public", "private"])
def test_denying_hook_closes_the_recording(
    client, denied, host, viewer, privacy, media_root, tmp_path
):
    session = make_session(SECRET_TITLE, owner=host, privacy=privacy)
    recording, page = published_recording(session, tmp_path)
    file_url = reverse("wagtail_live:recording_media", args=[recording.pk])
    client.force_login(viewer)
    assert client.get(file_url).status_code == 403
    html = client.get(page.url).content.decode()
    assert "members only" in html
    assert "<video" not in html and file_url not in html and recording.media.url not in html
    assert SECRET_TITLE not in html and SECRET_DESCRIPTION not in html and jsonld(html) == []
    played = reverse("wagtail_live:recording_played", args=[recording.pk])
    assert client.post(played).status_code == 403

    client.force_login(host)
    assert client.get(file_url).status_code == 200
    html = client.get(page.url).content.decode()
    assert "<video" in html and SECRET_TITLE in html and SECRET_DESCRIPTION in html
    assert json.loads(jsonld(html)[0])["name"] == SECRET_TITLE


@pytest.mark.django_db
@pytest.mark.parametrize("privacy", ["public", "private"])
@pytest.mark.parametrize("take_back", ["unpublish", "delete"])
def test_a_recording_taken_back_from_visitors_is_served_to_its_editors_only(
    client, host, viewer, site_moderator, privacy, take_back, media_root, tmp_path
):
    """Unpublishing (or deleting) the page revokes the checked file and poster routes."""
    from wagtail_live.models import Recording

    session = make_session(owner=host, privacy=privacy)
    recording, page = published_recording(session, tmp_path)
    routes = [
        reverse("wagtail_live:recording_media", args=[recording.pk]),
        reverse("wagtail_live:recording_poster", args=[recording.pk]),
    ]
    client.force_login(viewer)
    assert [client.get(url).status_code for url in routes] == [200, 200]

    page.refresh_from_db()  # publish() saved another instance of it
    if take_back == "unpublish":
        page.unpublish()
    else:
        page.delete()
    recording = Recording.objects.select_related("page").get(pk=recording.pk)
    assert permissions.can_watch_recording(recording, viewer) is False
    assert [client.get(url).status_code for url in routes] == [403, 403]
    client.logout()
    assert [client.get(url).status_code for url in routes] == [403, 403]
    for reviewer in (host, site_moderator):
        client.force_login(reviewer)
        assert [client.get(url).status_code for url in routes] == [200, 200], reviewer

    if take_back == "unpublish":
        page.save_revision().publish()
        client.force_login(viewer)
        assert [client.get(url).status_code for url in routes] == [200, 200]


@pytest.mark.django_db
def test_a_draft_recording_is_previewed_by_whoever_may_edit_its_page(
    client, host, viewer, media_root, tmp_path
):
    from django.contrib.auth.models import Group
    from django.core.files.base import ContentFile

    from tests.recording_media import make_media
    from wagtail_live import recordings
    from wagtail_live.models import Recording
    from wagtail_live.storage import working_storage

    session = make_session(owner=host, privacy="private")
    local = make_media(tmp_path / "recording.ts", "h264_aac")
    source = working_storage().save(
        session.media_path("recording.ts"), ContentFile(local.read_bytes())
    )
    recording = Recording.objects.create(session=session, source=source)
    recordings.process_recording(recording)
    recording.refresh_from_db()
    assert recording.page is not None and not recording.page.live
    url = reverse("wagtail_live:recording_media", args=[recording.pk])
    client.force_login(viewer)
    assert client.get(url).status_code == 403
    editor = make_editor("page-editor")
    editor.groups.add(Group.objects.get(name="Editors"))  # Wagtail's own, edits every page
    assert recording.page.permissions_for_user(editor).can_edit()
    client.force_login(editor)
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_private_recording_page_shows_anonymous_visitors_no_title_or_description(
    client, host, media_root, tmp_path
):
    session = make_session(
        SECRET_TITLE, owner=host, privacy="private", description=SECRET_DESCRIPTION
    )
    _recording, page = published_recording(session, tmp_path)
    html = client.get(page.url).content.decode()
    assert "members only" in html
    assert SECRET_TITLE not in html and SECRET_DESCRIPTION not in html
    assert "ld+json" not in html
    assert "<title>Members-only recording</title>" in html


@pytest.mark.django_db
def test_dashboard_offers_site_wide_tools_to_site_moderators_only(
    client, session, host, site_moderator
):
    url = reverse("wagtail_live_admin:dashboard", args=[session.pk])
    bans = reverse("wagtail_live_bans:index")
    client.force_login(host)
    html = client.get(url).content.decode()
    assert 'data-moderation="1"' in html  # the host moderates here
    assert bans not in html and "data-live-ban-form" not in html
    assert client.get(bans).status_code in (302, 403)
    client.force_login(site_moderator)
    html = client.get(url).content.decode()
    assert bans in html and "data-live-ban-form" in html
