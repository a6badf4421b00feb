"""Huey tasks: the queue face of the services. Each task parses its arguments and calls a service.

Huey is configured by the site's ``HUEY`` setting (``huey.contrib.djhuey``);
see ``docs/storage.md`` for SqliteHuey (the embedded default) and RedisHuey
with several consumers.
"""

import logging

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, on_startup

from . import recordings, reminders, webhooks
from .models import LiveSession, Recording

logger = logging.getLogger(__name__)

#: Transient failures (storage hiccups) are retried this often, waiting
#: RECORDING_RETRY_DELAY seconds, doubled after each try.
RECORDING_RETRIES = 5
RECORDING_RETRY_DELAY = 10


@db_task(retries=RECORDING_RETRIES, retry_delay=RECORDING_RETRY_DELAY, retry_backoff=2)
def process_recording(recording_id):
    """Turn a recording into a wagtailmedia item and a draft page (``recordings.process_recording``).

    Bad input ends as a *failed* recording with a readable error, not as a
    retry; only ``TransientRecordingError`` propagates, and Huey retries it
    with backoff.
    """
    recording = Recording.objects.filter(pk=recording_id).select_related("session").first()
    if recording is None:
        logger.info("Recording %s no longer exists; nothing to process", recording_id)
        return None
    recordings.process_recording(recording)
    return recording.status


@db_periodic_task(crontab(minute="*"))
def resume_stalled_recordings():
    """Queue recordings nobody is working on: pending ones and those whose worker died.

    A consumer killed mid-task loses the task it was running (Huey has no
    acknowledgements), so this sweep is what brings such a recording back.
    """
    count = recordings.resume_stalled_recordings()
    if count:
        logger.info("Queued %s stalled recording(s) again", count)
    # Recordings that failed on a full disk go again once there is room (issue 12).
    count = recordings.retry_when_space_returns()
    if count:
        logger.info("Queued %s recording(s) again now that the disk has room", count)


@on_startup()
def resume_recordings_on_startup():
    """A restarted consumer picks up at once what its predecessor left unfinished."""
    if HUEY.immediate:
        return
    try:
        resume_stalled_recordings.call_local()
    except Exception:  # the database may not be migrated yet; the periodic sweep catches up
        logger.exception("Could not resume stalled recordings at start-up")


@db_periodic_task(crontab(minute="*"))
def end_stale_live_sessions():
    """End live sessions whose encoder vanished (no new HLS segment for longer than the grace).

    A crashed listener or a lost nginx callback must not leave a session *live*
    for ever; the service also hands each recording on (``ingest.base``), and
    picks up the recordings of ended sessions whose hand-off an error lost.
    """
    from .ingest.base import end_stale_sessions, hand_off_missed_recordings

    ended = [session.pk for session in end_stale_sessions()]
    hand_off_missed_recordings()
    return ended


# -- audience (issue 7): webhooks and reminders --


@db_task()
def deliver_webhook(delivery_id):
    """Make one attempt at a webhook delivery (``webhooks.deliver`` queues the retries)."""
    webhooks.deliver(delivery_id)


@db_periodic_task(crontab(minute="*"))
def resume_webhook_deliveries():
    """Queue webhook attempts whose task was lost, e.g. with a consumer that was restarted."""
    for pk in webhooks.overdue_deliveries().values_list("pk", flat=True):
        deliver_webhook(pk)


@db_periodic_task(crontab(minute="17", hour="3"))
def prune_webhook_log():
    """Keep the webhook delivery log to ``WEBHOOK_LOG_DAYS`` (daily)."""
    return webhooks.prune_log()


@db_periodic_task(crontab(minute="*"))
def send_live_reminders():
    """Send the reminder e-mails that are due (``reminders.send_due_reminders``)."""
    return reminders.send_due_reminders()


@db_task()
def send_went_live_notices(session_id):
    """Tell everyone waiting that a session is live, right after it starts."""
    session = LiveSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    return reminders.send_went_live_notices(session)
