"""Steps of the Huey consumer test that need Django on the consumer's database.

Run as ``python -m tests.services.huey_scenario <step> [args]`` with
``DJANGO_SETTINGS_MODULE=tests.services.huey_settings``; prints one JSON line.
"""

import json
import sys

import django


def enqueue(source_path):
    """A session, its recording in storage, and the task on the real queue."""
    from django.core.files import File

    from wagtail_live.models import LiveSession, Recording
    from wagtail_live.recordings import queue_processing
    from wagtail_live.storage import working_storage

    session = LiveSession.objects.create(title="Killed mid-task")
    with open(source_path, "rb") as handle:
        name = working_storage().save(session.media_path("recording.webm"), File(handle))
    recording = Recording.objects.create(session=session, source=name)
    queue_processing(recording)
    return {"recording": recording.pk}


def enqueue_wagtail_task(path):
    """One of Wagtail's own background tasks, through Django's task API onto the Huey queue."""
    from django.core.files.storage import default_storage
    from wagtail.tasks import delete_file_from_storage_task

    result = delete_file_from_storage_task.enqueue(default_storage.deconstruct(), path)
    return {"task": str(result.id), "backend": result.backend}


def counts():
    from wagtailmedia.models import get_media_model

    from wagtail_live.models import Recording, RecordingPage

    recording = Recording.objects.get()
    return {
        "status": recording.status,
        "attempts": recording.attempts,
        "error": recording.error,
        "media": get_media_model().objects.count(),
        "pages": RecordingPage.objects.count(),
    }


if __name__ == "__main__":
    django.setup()
    step, *args = sys.argv[1:]
    print(
        json.dumps(
            {"enqueue": enqueue, "wagtail": enqueue_wagtail_task, "counts": counts}[step](*args)
        )
    )
