"""The Huey face of the recording service (tests run Huey in immediate mode), and its admin."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from wagtailmedia.models import get_media_model

from tests.recording_media import make_media
from tests.utils import make_editor, make_session
from wagtail_live import recordings, tasks
from wagtail_live.models import Recording, RecordingPage
from wagtail_live.storage import private_storage, working_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def stored_recording(session, tmp_path, kind="h264_aac", name="recording.ts", **fields):
    local = make_media(tmp_path / name, kind)
    source = working_storage().save(session.media_path(name), ContentFile(local.read_bytes()))
    return Recording.objects.create(session=session, source=source, **fields)


def test_task_processes_the_recording(session, tmp_path):
    recording = stored_recording(session, tmp_path)
    result = tasks.process_recording(recording.pk)
    assert result.get() == Recording.Status.READY
    recording.refresh_from_db()
    assert recording.status == Recording.Status.READY
    assert get_media_model().objects.count() == 1


def test_task_for_a_deleted_recording_does_nothing():
    assert tasks.process_recording.call_local(12345) is None


def test_task_retries_transient_failures_with_backoff():
    task = tasks.process_recording.task_class
    assert task.default_retries == tasks.RECORDING_RETRIES > 0
    assert task.default_retry_delay == tasks.RECORDING_RETRY_DELAY
    assert task.default_retry_backoff > 1


def test_a_transient_storage_error_marks_failed_and_raises_for_a_retry(
    session, tmp_path, monkeypatch
):
    recording = stored_recording(session, tmp_path)

    def flaky_upload(storage, name, path):
        raise OSError("storage is down")

    monkeypatch.setattr(recordings, "upload", flaky_upload)
    with pytest.raises(recordings.TransientRecordingError):
        tasks.process_recording.call_local(recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert "will retry" in recording.error and "storage is down" in recording.error
    assert working_storage().exists(recording.source.name)
    assert not default_storage.exists(recordings.output_names(recording, ".mp4")["media"])
    assert get_media_model().objects.count() == 0 and RecordingPage.objects.count() == 0

    monkeypatch.undo()
    tasks.process_recording.call_local(recording.pk)  # what Huey's retry does
    recording.refresh_from_db()
    assert recording.status == Recording.Status.READY
    assert recording.attempts == 2


def test_sweep_requeues_pending_and_abandoned_recordings_only(session, tmp_path):
    abandoned = stored_recording(
        session,
        tmp_path,
        name="a.ts",
        status=Recording.Status.PROCESSING,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    busy = stored_recording(
        session,
        tmp_path,
        name="b.ts",
        status=Recording.Status.PROCESSING,
        heartbeat_at=timezone.now(),
    )
    failed = stored_recording(session, tmp_path, name="c.ts", status=Recording.Status.FAILED)
    lost = stored_recording(session, tmp_path, name="d.ts")  # its task vanished with Redis
    Recording.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    queued = stored_recording(session, tmp_path, name="e.ts", heartbeat_at=timezone.now())
    tasks.resume_stalled_recordings.call_local()
    for recording in (abandoned, busy, failed, lost, queued):
        recording.refresh_from_db()
    assert abandoned.status == Recording.Status.READY
    assert lost.status == Recording.Status.READY
    assert busy.status == Recording.Status.PROCESSING
    assert failed.status == Recording.Status.FAILED
    assert queued.status == Recording.Status.PENDING, "still in the queue: not queued twice"


# --- admin ------------------------------------------------------------------------------


def test_recordings_listing_shows_status_error_links_and_retry(
    client, superuser, session, tmp_path
):
    ready = stored_recording(session, tmp_path)
    recordings.process_recording(ready)
    failed = Recording.objects.create(
        session=session, source=session.media_path("broken.flv"), status="failed", error="Boom."
    )
    client.force_login(superuser)
    response = client.get(reverse("wagtail_live_recordings:index"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Boom." in html
    assert reverse("wagtailmedia:edit", args=[ready.media_id]) in html
    assert reverse("wagtailadmin_pages:edit", args=[ready.page_id]) in html
    assert reverse("wagtail_live_recordings:retry", args=[failed.pk]) in html
    assert reverse("wagtail_live_recordings:retry", args=[ready.pk]) not in html
    assert "0:02" in html  # duration


def test_retry_button_queues_a_failed_recording_again(client, superuser, session, tmp_path):
    recording = stored_recording(session, tmp_path, status=Recording.Status.FAILED, error="x")
    client.force_login(superuser)
    url = reverse("wagtail_live_recordings:retry", args=[recording.pk])
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 302
    recording.refresh_from_db()
    # Queued on commit; the test transaction never commits, so it waits as pending.
    assert recording.status == Recording.Status.PENDING and recording.error == ""


def test_retry_on_a_ready_recording_changes_nothing(client, superuser, session, tmp_path):
    recording = stored_recording(session, tmp_path)
    recordings.process_recording(recording)
    client.force_login(superuser)
    client.post(reverse("wagtail_live_recordings:retry", args=[recording.pk]))
    recording.refresh_from_db()
    assert recording.status == Recording.Status.READY and recording.attempts == 1


def test_retry_needs_the_change_permission(client, session, tmp_path):
    recording = stored_recording(session, tmp_path, status=Recording.Status.FAILED)
    client.force_login(make_editor("nobody"))
    client.post(reverse("wagtail_live_recordings:retry", args=[recording.pk]))
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED


def test_session_edit_page_links_to_its_recording(client, superuser, session, tmp_path):
    client.force_login(superuser)
    edit_url = reverse("wagtailsnippets_wagtail_live_livesession:edit", args=[session.pk])
    assert "/recordings/inspect/" not in client.get(edit_url).content.decode()
    recording = stored_recording(session, tmp_path)
    inspect = reverse("wagtail_live_recordings:inspect", args=[recording.pk])
    assert inspect in client.get(edit_url).content.decode()
    assert client.get(inspect).status_code == 200


def test_recording_page_renders_download_link_only_when_allowed(client, session, tmp_path):
    recording = stored_recording(session, tmp_path)
    recordings.process_recording(recording)
    page = recording.page.specific
    page.save_revision().publish()
    html = client.get(page.url).content.decode()
    assert recording.media.url in html and "<video" in html
    assert "download>" not in html
    page.allow_downloads = True
    page.save_revision().publish()
    assert "download>" in client.get(page.url).content.decode()


def test_private_recording_page_hides_the_video_from_visitors(client, host, tmp_path):
    session = make_session(owner=host, privacy="private")
    recording = stored_recording(session, tmp_path)
    recordings.process_recording(recording)
    page = recording.page.specific
    page.save_revision().publish()
    html = client.get(page.url).content.decode()
    members_url = reverse("wagtail_live:recording_media", args=[recording.pk])
    assert recording.media.url not in html and members_url not in html
    assert "members only" in html
    assert client.get(members_url).status_code == 403

    client.force_login(host)
    html = client.get(page.url).content.decode()
    # Members get the file's URL signed with a playback grant (docs/delivery.md).
    granted_url = recordings.granted_recording_url(recording)
    assert granted_url.startswith(f"/live/delivery/{session.pk}/") and granted_url in html
    assert recording.media.url not in html, "the storage URL of a private recording stays hidden"
    response = client.get(members_url)
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    body = b"".join(response.streaming_content)
    # A private session's MP4 is kept in the private storage, not in MEDIA_ROOT.
    assert not default_storage.exists(recording.media.file.name)
    with private_storage().open(recording.media.file.name, "rb") as stored:
        assert body == stored.read()


def test_private_recording_behind_nginx_uses_x_accel_redirect(client, host, tmp_path, settings):
    session = make_session(owner=host, privacy="private")
    recording = stored_recording(session, tmp_path)
    recordings.process_recording(recording)
    settings.WAGTAIL_LIVE = {"ACCEL_REDIRECT_PREFIX": "/protected-live/"}
    client.force_login(host)
    response = client.get(reverse("wagtail_live:recording_media", args=[recording.pk]))
    assert response["X-Accel-Redirect"] == (
        f"/protected-live/{session.pk}/recording-{recording.pk}.mp4"
    )


def test_recording_media_view_refuses_what_is_not_ready(client, superuser, session):
    recording = Recording.objects.create(session=session, source="x.ts")
    client.force_login(superuser)
    url = reverse("wagtail_live:recording_media", args=[recording.pk])
    assert client.get(url).status_code == 404
    assert client.get(url.replace(str(recording.pk), "999")).status_code == 404


def test_player_block_shows_the_recording_once_the_page_is_published(rf, session, tmp_path):
    from wagtail_live.blocks import player_context

    session.start()
    session.end()
    recording = stored_recording(session, tmp_path)
    recordings.process_recording(recording)
    request = rf.get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    assert player_context(session, request).get("recording_page") is None
    recording.page.specific.save_revision().publish()
    assert player_context(session, request)["recording_page"].pk == recording.page_id


def test_prepare_live_saves_the_categories_the_recording_page_gets(client, superuser):
    from wagtail_live.models import LiveCategory, LiveSession

    music = LiveCategory.objects.create(name="Music", slug="music")
    client.force_login(superuser)
    response = client.post(
        reverse("wagtailsnippets_wagtail_live_livesession:add"),
        {"title": "Concert", "privacy": "public", "categories": [music.pk], "tags": "live"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    session = LiveSession.objects.get(title="Concert")
    assert list(session.categories.all()) == [music]


def test_add_recording_imports_a_file_and_processes_it(
    client, superuser, session, tmp_path, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    made = make_media(tmp_path / "imported.flv", "h264_aac")
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("wagtail_live_recordings:add"),
            {
                "session": session.pk,
                "source": SimpleUploadedFile("imported.flv", made.read_bytes()),
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    recording = Recording.objects.get()
    # Apart from the outputs, under a name the uploader did not choose (docs/security.md).
    folder, name = recording.source.name.rsplit("/", 1)
    assert folder == session.media_path("sources")
    assert name.startswith("upload-") and name.endswith(".flv") and "imported" not in name
    # Kept under PRIVATE_ROOT, not in MEDIA_ROOT's publicly served tree.
    assert working_storage().exists(recording.source.name)
    assert not default_storage.exists(recording.source.name)
    assert recording.status == Recording.Status.READY, recording.error
    assert RecordingPage.objects.count() == 1


def test_manage_py_check_reports_an_unfindable_parent_page(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.WAGTAIL_LIVE = {"RECORDING_PARENT_PAGE": "/nowhere/"}
    with pytest.raises(SystemCheckError, match="wagtail_live.E601"):
        call_command("check")


def test_plays_of_a_published_recording_are_counted_and_shown_in_analytics(client, host, tmp_path):
    from wagtail_live import analytics

    session = make_session(owner=host)
    recording = stored_recording(session, tmp_path)
    recordings.process_recording(recording)
    played = reverse("wagtail_live:recording_played", args=[recording.pk])
    assert client.post(played).status_code == 404, "a draft recording counts no plays"
    assert analytics.session_figures(session)["recording_plays"] is None

    page = recording.page.specific
    page.save_revision().publish()
    assert f'data-plays-url="{played}"' in client.get(page.url).content.decode()
    assert client.get(played).status_code == 405
    for _ in range(3):
        assert client.post(played).status_code == 204
    recording.refresh_from_db()
    assert recording.plays == 3
    assert analytics.session_figures(session)["recording_plays"] == 3

    client.force_login(host)
    html = client.get(reverse("wagtail_live_admin:analytics", args=[session.pk])).content.decode()
    assert '<dd data-figure="plays">3</dd>' in html


def test_plays_of_a_private_recording_need_a_member(client, host, tmp_path):
    session = make_session(owner=host, privacy="private")
    recording = stored_recording(session, tmp_path)
    recordings.process_recording(recording)
    recording.page.specific.save_revision().publish()
    played = reverse("wagtail_live:recording_played", args=[recording.pk])
    assert client.post(played).status_code == 403
    client.force_login(host)
    assert client.post(played).status_code == 204
