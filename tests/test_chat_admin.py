"""The chat admin: live dashboard, ban list, chat message browser, blocked terms."""

import pytest
from django.urls import reverse

from wagtail_live import chat
from wagtail_live.models import BlockedTerm, ChatBan, ModerationAction

pytestmark = pytest.mark.django_db


def test_dashboard_for_the_host(client, host, session):
    client.force_login(host)
    response = client.get(reverse("wagtail_live_admin:dashboard", args=[session.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-live-realtime" in html and 'data-moderation="1"' in html
    assert f'data-socket-path="/ws/live/{session.pk}/"' in html
    assert "wagtail_live/js/live.js" in html
    assert "Audience and chat" in html


def test_dashboard_refuses_other_editors(client, editor, session):
    client.force_login(editor)
    response = client.get(reverse("wagtail_live_admin:dashboard", args=[session.pk]))
    assert response.status_code == 403


def test_dashboard_open_to_moderators(client, moderator, session):
    client.force_login(moderator)
    assert client.get(reverse("wagtail_live_admin:dashboard", args=[session.pk])).status_code == 200


def test_go_live_screen_links_to_the_dashboard_and_shows_chat(client, host, session):
    client.force_login(host)
    html = client.get(reverse("wagtail_live_admin:go_live", args=[session.pk])).content.decode()
    assert reverse("wagtail_live_admin:dashboard", args=[session.pk]) in html
    assert "data-live-realtime" in html


def test_ban_list_search_and_unban(client, moderator, viewer, session):
    chat.ban(moderator, viewer.pk, "spamming links", session=session)
    client.force_login(moderator)
    index = reverse("wagtail_live_bans:index")
    html = client.get(index, {"q": "viewer"}).content.decode()
    assert "spamming links" in html and "moderator" in html
    assert "Unban" in html
    assert "spamming links" not in client.get(index, {"q": "nobody"}).content.decode()
    ban = ChatBan.objects.get()
    response = client.post(reverse("wagtail_live_bans:delete", args=[ban.pk]))
    assert response.status_code == 302
    assert not chat.is_banned(viewer)
    assert ModerationAction.objects.filter(action="unban").count() == 1
    assert ModerationAction.objects.filter(action="ban").exists()  # kept for the record


def test_ban_from_the_ban_list(client, moderator, viewer, superuser):
    client.force_login(moderator)
    add = reverse("wagtail_live_bans:add")
    response = client.post(add, {"target_user": viewer.pk, "reason": "abuse"})
    assert response.status_code == 302
    assert chat.is_banned(viewer)
    response = client.post(add, {"target_user": superuser.pk, "reason": "no"})
    assert response.status_code == 200
    assert "Administrators cannot be muted or banned" in response.content.decode()
    assert not chat.is_banned(superuser)


def test_ban_list_needs_the_moderation_permission(client, editor):
    client.force_login(editor)
    response = client.get(reverse("wagtail_live_bans:index"))
    assert response.status_code in (302, 403)


def test_chat_message_browser_filters_by_session_and_removed(
    client, moderator, viewer, session, host
):
    kept = chat.send_message(session, viewer, "kept message")
    gone = chat.send_message(session, viewer, "removed message")
    chat.remove_message(moderator, session, gone.pk)
    client.force_login(moderator)
    index = reverse("wagtail_live_chat_messages:index")
    html = client.get(index, {"session": session.pk}).content.decode()
    assert "kept message" in html and "removed message" in html
    html = client.get(index, {"session": session.pk, "removed_at__isnull": "true"}).content.decode()
    assert "kept message" in html and "removed message" not in html
    html = client.get(index, {"removed_at__isnull": "false"}).content.decode()
    assert "removed message" in html and "kept message" not in html
    assert kept.pk
    # Read-only: no edit URL is offered.
    assert client.get(f"/admin/live/chat-messages/edit/{kept.pk}/").status_code in (302, 403, 404)


def test_blocked_terms_snippet(client, superuser, session, viewer):
    client.force_login(superuser)
    add = reverse("wagtailsnippets_wagtail_live_blockedterm:add")
    assert client.post(add, {"term": "  Free   Crypto "}).status_code == 302
    assert BlockedTerm.objects.get().term == "free crypto"
    with pytest.raises(chat.ChatError):
        chat.send_message(session, viewer, "get FREE crypto now")
