"""Session analytics: viewer counts over time and the figures of one session or many.

Everything is aggregated in the database with correlated subqueries, so one
session's figures cost one query and a page of the site-wide report one query
whatever its length (see ``benchmarks/analytics.py``).
"""

from datetime import UTC, datetime, time, timedelta

from django.db.models import (
    Avg,
    Count,
    F,
    FloatField,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from .exports import csv_writer
from .models import (
    ChatMessage,
    LiveReminder,
    LiveSession,
    ModerationAction,
    SessionFigures,
    ViewerSample,
)

#: The figures every session gets, in report and CSV order.
FIGURES = (
    "peak_viewers_seen",
    "average_viewers",
    "unique_viewers",
    "chat_message_count",
    "likes",
    "moderation_action_count",
    "reminder_count",
)


def _aggregate(model, expression, output_field):
    """A correlated subquery: ``expression`` over ``model`` rows of the outer session."""
    rows = (
        model.objects.filter(session=OuterRef("pk"))
        .order_by()
        .values("session")
        .annotate(result=expression)
        .values("result")
    )
    return Coalesce(Subquery(rows, output_field=output_field), Value(0), output_field=output_field)


def with_figures(queryset):
    """Annotate sessions with their figures (one SQL query for any number of sessions).

    ``peak_viewers_seen`` is the larger of the stored ``peak_viewers`` and the
    highest sample, so a session sampled less often than it peaked keeps its peak.
    """
    integer, floating = IntegerField(), FloatField()
    return queryset.annotate(
        sample_peak=_aggregate(ViewerSample, Max("viewers"), integer),
        peak_viewers_seen=Greatest(F("peak_viewers"), F("sample_peak"), output_field=integer),
        average_viewers=_aggregate(ViewerSample, Avg("viewers"), floating),
        unique_viewers=_aggregate(ViewerSample, Max("unique_viewers"), integer),
        sample_count=_aggregate(ViewerSample, Count("pk"), integer),
        chat_message_count=_aggregate(ChatMessage, Count("pk"), integer),
        moderation_action_count=_aggregate(ModerationAction, Count("pk"), integer),
        reminder_count=_aggregate(
            LiveReminder, Count("pk", filter=Q(unsubscribed_at__isnull=True)), integer
        ),
        recording_plays=_published_recording_plays(),
    )


def _published_recording_plays():
    """Plays of the session's published recording pages; NULL while none is published."""
    from .models import Recording

    rows = (
        Recording.objects.filter(session=OuterRef("pk"), page__live=True)
        .order_by()
        .values("session")
        .annotate(total=Sum("plays"))
        .values("total")
    )
    return Subquery(rows, output_field=IntegerField())


def session_figures(session):
    """The figures of one session as a dict: one query, none if ``session`` came from
    ``with_figures`` already."""
    if not hasattr(session, "sample_count"):
        session = with_figures(LiveSession.objects.filter(pk=session.pk)).get()
    figures = {
        name: getattr(session, name) for name in (*FIGURES, "sample_count", "recording_plays")
    }
    figures["average_viewers"] = round(figures["average_viewers"] or 0, 1)
    figures["duration_seconds"] = duration_seconds(session)
    return figures


def duration_seconds(session):
    """How long the session was live, in whole seconds (0 before it started)."""
    if not session.started_at:
        return 0
    end = session.ended_at or timezone.now()
    return max(0, int((end - session.started_at).total_seconds()))


def viewer_series(session, since=None):
    """``[(at, viewers, unique_viewers)]`` of the samples (from ``since`` on), oldest first."""
    samples = ViewerSample.objects.filter(session=session)
    if since is not None:
        samples = samples.filter(at__gte=since)
    return list(samples.order_by("at").values_list("at", "viewers", "unique_viewers"))


def chart_data(session, after_ms=0):
    """What the chart draws: epoch milliseconds and viewer counts, as two parallel lists.

    ``after_ms`` (epoch milliseconds) returns only newer samples, for a chart that
    is already drawn and keeps up with a live session.
    """
    # Times are sent rounded down to the millisecond: skip the whole millisecond sent back.
    after = datetime.fromtimestamp((after_ms + 1) / 1000, tz=UTC) if after_ms else None
    series = viewer_series(session, since=after)
    return {
        "times": [int(at.timestamp() * 1000) for at, _, _ in series],
        "viewers": [viewers for _, viewers, _ in series],
    }


def write_samples_csv(session, out):
    """Write the session's samples as CSV (``at,viewers,unique_viewers``) to file-like ``out``."""
    writer = csv_writer(out)
    writer.writerow(["at", "viewers", "unique_viewers"])
    samples = (
        ViewerSample.objects.filter(session=session)
        .order_by("at")
        .values_list("at", "viewers", "unique_viewers")
    )
    for at, viewers, unique in samples.iterator(chunk_size=2000):
        writer.writerow([at.isoformat(), viewers, unique])


def report_queryset(date_from=None, date_to=None, owner=None):
    """Sessions that went live (or ended), newest first, with their figures.

    ``date_from`` / ``date_to`` (dates, inclusive) filter on when the session
    started, else when it was scheduled; ``owner`` is a user or a user id.
    """
    sessions = LiveSession.objects.filter(
        status__in=(LiveSession.Status.LIVE, LiveSession.Status.ENDED, LiveSession.Status.FAILED)
    ).select_related("owner")
    if date_from:
        sessions = sessions.filter(started_at__gte=_day_start(date_from))
    if date_to:
        sessions = sessions.filter(started_at__lt=_day_start(date_to) + timedelta(days=1))
    if owner:
        sessions = sessions.filter(owner=owner)
    return with_figures(sessions).order_by("-started_at", "-pk")


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def store_final_figures(session):
    """Keep the session's figures on it (``session.figures``), as they were when it ended."""
    figures = session_figures(session)
    stored, _ = SessionFigures.objects.update_or_create(
        session=session,
        defaults={
            "peak_viewers": figures["peak_viewers_seen"],
            "average_viewers": figures["average_viewers"],
            "unique_viewers": figures["unique_viewers"],
            "chat_message_count": figures["chat_message_count"],
            "likes": figures["likes"],
            "moderation_action_count": figures["moderation_action_count"],
            "reminder_count": figures["reminder_count"],
            "duration_seconds": figures["duration_seconds"],
            "computed_at": timezone.now(),
        },
    )
    return stored


def _session_ended(sender, session, **kwargs):
    store_final_figures(session)


def connect_signal_handlers():
    """Store the final figures of every session that ends (called from ``ready``)."""
    from . import signals

    signals.live_session_ended.connect(_session_ended, dispatch_uid="wagtail_live_analytics")
