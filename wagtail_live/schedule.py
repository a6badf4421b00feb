"""The schedule: upcoming sessions for the admin agenda and the *Upcoming live* block,
and the schema.org ``BroadcastEvent`` search engines read from pages that show a session.
"""

from datetime import timedelta
from itertools import groupby

from django.db.models import Count, Q
from django.utils import timezone

from .models import LiveSession

#: Without a planned end, a scheduled session's ``endDate`` is its start plus this.
ASSUMED_DURATION_HOURS = 1


def can_see_all_sessions(user):
    """Superusers and holders of ``wagtail_live.go_live`` see every host's sessions."""
    return bool(
        user and user.is_active and (user.is_superuser or user.has_perm("wagtail_live.go_live"))
    )


def agenda_sessions(user, show_all=False, now=None):
    """Sessions still to come or live, soonest first, each with ``waiting`` (reminders).

    Only ``user``'s own unless ``show_all`` and ``can_see_all_sessions(user)``.
    Live ones come first; unscheduled (ready) ones last.
    """
    now = now or timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    sessions = (
        LiveSession.objects.active()
        .filter(
            Q(status=LiveSession.Status.LIVE)
            | Q(scheduled_start__gte=today)
            | Q(scheduled_start__isnull=True)
        )
        .select_related("owner")
        .annotate(waiting=Count("reminders", filter=Q(reminders__unsubscribed_at__isnull=True)))
    )
    if not (show_all and can_see_all_sessions(user)):
        sessions = sessions.filter(owner=user)
    return sorted(sessions, key=_agenda_order)


def _agenda_order(session):
    if session.is_live:
        return (0, session.started_at or timezone.now())
    if session.scheduled_start is None:
        return (2, session.created_at)
    return (1, session.scheduled_start)


def agenda_by_day(sessions):
    """``[(date or None, [sessions])]``: scheduled sessions by local day; live and unscheduled
    ones under ``None`` (the template labels them)."""

    def day(session):
        if session.is_live or session.scheduled_start is None:
            return None
        return timezone.localtime(session.scheduled_start).date()

    return [(key, list(group)) for key, group in groupby(sessions, key=day)]


def upcoming_public_sessions(limit=5, now=None):
    """The next public sessions: live now, then scheduled ones by start time."""
    now = now or timezone.now()
    live = LiveSession.objects.filter(
        privacy=LiveSession.Privacy.PUBLIC, status=LiveSession.Status.LIVE
    ).order_by("started_at")
    # A session whose start passed without going live still counts for a while: hosts run late.
    grace = now - timedelta(hours=ASSUMED_DURATION_HOURS)
    scheduled = LiveSession.objects.filter(
        privacy=LiveSession.Privacy.PUBLIC,
        status=LiveSession.Status.SCHEDULED,
        scheduled_start__gte=grace,
    ).order_by("scheduled_start")
    sessions = list(live[:limit])
    if len(sessions) < limit:
        sessions += list(scheduled[: limit - len(sessions)])
    return sessions


def broadcast_event(session, url=""):
    """The schema.org ``BroadcastEvent`` (as a dict) for a page showing ``session``.

    ``isLiveBroadcast`` is always true (the session is a live broadcast);
    ``startDate`` is when it started, else when it is scheduled; ``endDate`` when
    it ended, else the scheduled start plus an hour (search engines want one).
    """
    start = session.started_at or session.scheduled_start
    end = session.ended_at
    if end is None and start is not None and not session.is_live:
        end = start + timedelta(hours=ASSUMED_DURATION_HOURS)
    data = {
        "@context": "https://schema.org",
        "@type": "BroadcastEvent",
        "name": session.title,
        "isLiveBroadcast": True,
    }
    if session.description:
        data["description"] = session.description
    if start:
        data["startDate"] = start.isoformat()
    if end:
        data["endDate"] = end.isoformat()
    if url:
        data["url"] = url
    if session.thumbnail_id:
        data["image"] = session.thumbnail.file.url
    return data
