"""The writers of the SQLite stress test, each run as its own process.

``python -m tests.services.sqlite_stress <step> [args]`` with
``DJANGO_SETTINGS_MODULE=tests.services.sqlite_stress_settings``; prints one JSON line.

- ``setup``: a host, a webhook, and the live session the chat goes to.
- ``chat <session> <seconds> <threads>``: threads posting chat messages, storing viewer
  samples and peak counts (what the hub does every second), and asking Wagtail to update the
  reference index (one of Wagtail's own background tasks, through ``TASKS``).
- ``transitions <count> <source>``: sessions started and ended back to back, each with a
  recording (a copy of ``source``) handed off by ``finish_session``, twice (a second delivery
  of the same hand-off must do nothing).
- ``report``: what the database holds afterwards.

Every error is counted and reported, not raised, so the test can say how many there were.
"""

import json
import shutil
import sys
import threading
import time
import traceback

import django


def setup():
    from django.contrib.auth import get_user_model

    from wagtail_live.models import LiveSession, Webhook

    host = get_user_model().objects.create_superuser("host", "host@example.com", "password")
    Webhook.objects.create(
        name="Closed port",
        url="http://127.0.0.1:9/hook",
        secret="s" * 32,
        events=[e.value for e in Webhook.Event],
    )
    session = LiveSession.objects.create(title="Chat under load", owner=host)
    session.start()
    return {"session": session.pk, "host": host.pk}


def chat(session_pk, seconds, threads):
    from asgiref.sync import async_to_sync
    from django.db import connection
    from wagtail.models import Page
    from wagtail.tasks import update_reference_index_task

    from wagtail_live import chat as chat_service
    from wagtail_live import hub
    from wagtail_live.models import LiveSession

    deadline = time.monotonic() + float(seconds)
    sent, samples, indexed, errors = [0], [0], [0], []
    lock = threading.Lock()

    def writer(n):
        try:
            session = LiveSession.objects.get(pk=session_pk)
            user = session.owner
            page_pk = Page.objects.filter(depth=2).values_list("pk", flat=True).first()
            i = 0
            while time.monotonic() < deadline:
                i += 1
                try:
                    chat_service.send_message(session, user, f"thread {n} message {i}")
                    with lock:
                        sent[0] += 1
                    if i % 5 == 0:  # the hub: a viewer sample and the peak, every so often
                        async_to_sync(hub._store_sample)(session_pk, i, i)
                        async_to_sync(hub._store_counts)(session_pk, {"peak_viewers": i})
                        with lock:
                            samples[0] += 1
                    if i % 10 == 0 and page_pk:
                        update_reference_index_task.enqueue("wagtailcore", "page", str(page_pk))
                        with lock:
                            indexed[0] += 1
                except Exception:
                    with lock:
                        errors.append(traceback.format_exc(limit=3))
        finally:
            connection.close()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"sent": sent[0], "samples": samples[0], "indexed": indexed[0], "errors": errors}


def transitions(count, source):
    from wagtail_live.ingest.base import finish_session, recording_path
    from wagtail_live.models import LiveSession

    made, errors = [], []
    for n in range(int(count)):
        try:
            session = LiveSession.objects.create(title=f"Back to back {n}")
            session.issue_stream_key()
            session.start()
            path = recording_path(session)
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, path)
            finish_session(LiveSession.objects.get(pk=session.pk))
            finish_session(LiveSession.objects.get(pk=session.pk))  # a second delivery
            made.append(session.pk)
        except Exception:
            errors.append(traceback.format_exc(limit=3))
    return {"sessions": made, "errors": errors}


def report(*pks):
    from wagtail.models import ReferenceIndex

    from wagtail_live.models import (
        ChatMessage,
        LiveSession,
        Recording,
        SessionFigures,
        ViewerSample,
        Webhook,
        WebhookDelivery,
    )

    pks = [int(pk) for pk in pks]
    sessions = LiveSession.objects.filter(pk__in=pks)
    return {
        "ended": sessions.filter(status=LiveSession.Status.ENDED).count(),
        "figures": SessionFigures.objects.filter(session__in=pks).count(),
        "recordings": {
            str(pk): list(Recording.objects.filter(session=pk).values_list("status", flat=True))
            for pk in pks
        },
        "recording_errors": list(
            Recording.objects.exclude(error="").values_list("error", flat=True)
        ),
        # One delivery per event (its retries are more rows with a higher ``attempt``).
        "ended_webhooks": sorted(
            json.loads(body)["session"]["id"]
            for body in WebhookDelivery.objects.filter(
                event=Webhook.Event.SESSION_ENDED, attempt=1
            ).values_list("body", flat=True)
        ),
        "webhook_errors": list(
            WebhookDelivery.objects.exclude(error="").values_list("error", flat=True).distinct()
        ),
        "webhook_attempts": WebhookDelivery.objects.exclude(
            state=WebhookDelivery.State.PENDING
        ).count(),
        "chat_messages": ChatMessage.objects.count(),
        "samples": ViewerSample.objects.count(),
        "references": ReferenceIndex.objects.count(),
    }


if __name__ == "__main__":
    django.setup()
    step, *args = sys.argv[1:]
    steps = {"setup": setup, "chat": chat, "transitions": transitions, "report": report}
    print(json.dumps(steps[step](*args)))
