"""Who may do what: one function per capability, asked by every face.

Views, consumers, blocks, template tags, feeds and exports all ask here, so the
page, the video, the recording, the chat socket and the calendar invite can
never disagree about who is allowed (docs/permissions.md, docs/security.md).

| capability | function |
| --- | --- |
| watch a session (video, recording, status, invite, title and description) | ``can_watch`` |
| take part in its chat | ``can_chat`` |
| moderate this session's chat (remove, mute, slow mode, pin) | ``can_moderate_session`` |
| moderate every chat (ban and unban site-wide, the ban list) | ``can_moderate_site`` |
| watch a recording's file and poster (its page published, or an editor previewing) | ``can_watch_recording`` |

Core layer: reads models, settings and Wagtail's hook registry, nothing else.
"""

from wagtail import hooks

from .conf import live_settings
from .models import ModerationAction

#: Sites register ``@hooks.register("can_watch_live_session")`` functions taking
#: ``(session, user)``; the first to return True or False decides.
CAN_WATCH_HOOK = "can_watch_live_session"

#: The Django permission that makes a user a site-wide chat moderator.
MODERATE_CHAT = "wagtail_live.moderate_chat"


def _is_active_user(user):
    return bool(user is not None and user.is_authenticated and user.is_active)


def can_watch(session, user):
    """Whether ``user`` may watch ``session`` and see what it is about.

    Covers the live video (HLS), the recording's media and player, the status
    JSON, the calendar invite, the chat socket, the session's title and
    description and its JSON-LD. A ``can_watch_live_session`` hook may decide
    (e.g. paying members only); otherwise public sessions are for everyone and
    private ones for logged-in users (``LiveSession.can_view``, the privacy rule
    alone). ``user`` may be None or anonymous. A user banned site-wide may not
    watch either: their playback grant is not renewed (docs/delivery.md).
    """
    if _is_active_user(user) and is_banned(user):
        return False
    for fn in hooks.get_hooks(CAN_WATCH_HOOK):
        verdict = fn(session, user)
        if verdict is not None:
            return bool(verdict)
    return session.can_view(user)


def can_watch_recording(recording, user):
    """Whether ``user`` may fetch ``recording``'s file and poster (the checked views, grants).

    ``can_watch`` of its session, and its page published: a recording waits as a draft
    page, and unpublishing (or deleting) that page takes it back from visitors, whose
    playback grants are then not renewed. Its host, site moderators and whoever may edit
    the page still see it, to review it before publishing.
    """
    if not can_watch(recording.session, user):
        return False
    page = recording.page
    if page is not None and page.live:
        return True
    if can_moderate_session(recording.session, user):
        return True
    return bool(
        page is not None and _is_active_user(user) and page.permissions_for_user(user).can_edit()
    )


def can_chat(session, user):
    """Whether ``user`` may take part in ``session``'s chat at all (mutes and pace aside).

    Those who may watch, unless banned from every chat; visitors who are not
    logged in only with ``CHAT_ANONYMOUS``. A mute is a moment, not a
    capability: ``wagtail_live.chat.check_can_send`` checks it per message.
    """
    if not can_watch(session, user):
        return False
    if user is None or not user.is_authenticated:
        return bool(live_settings.CHAT_ANONYMOUS)
    return user.is_active  # can_watch has already refused a banned user


def can_moderate_session(session, user):
    """Whether ``user`` may moderate ``session``'s chat: remove, mute, unmute, slow mode, pin.

    The session's host (its owner), site-wide moderators and superusers.
    """
    if not _is_active_user(user):
        return False
    if session is not None and session.owner_id is not None and session.owner_id == user.pk:
        return True
    return can_moderate_site(user)


def can_moderate_site(user):
    """Whether ``user`` may moderate every chat: ban, unban, the ban list.

    Superusers and holders of ``wagtail_live.moderate_chat``. Hosting a session
    is not enough: a host's authority ends at their own session.
    """
    return _is_active_user(user) and (user.is_superuser or user.has_perm(MODERATE_CHAT))


def may_act_on(moderator, target, session):
    """Whether ``moderator`` may mute or ban ``target`` (both users) in ``session``.

    Nobody acts on superusers; only site-wide moderators act on people who may
    moderate the session themselves (its host, other moderators).
    """
    if target.is_superuser:
        return False
    if can_moderate_session(session, target):
        return can_moderate_site(moderator)
    return True


def is_banned(user):
    """Whether ``user`` (a user or a user id) is banned from every live chat."""
    user_id = getattr(user, "pk", user)
    if user_id is None:
        return False
    return ModerationAction.objects.bans().filter(target_user_id=user_id).exists()
