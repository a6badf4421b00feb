"""The recording job with real ffmpeg on lavfi-made files: good input, bad input, idempotency."""

import re
import threading
from datetime import timedelta
from pathlib import Path

import av
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from wagtail import hooks
from wagtail.images import get_image_model
from wagtail.models import Page
from wagtailmedia.models import get_media_model

from tests.recording_media import make_media, truncate
from tests.utils import make_session, require
from wagtail_live import recordings
from wagtail_live.models import LiveCategory, Recording, RecordingPage
from wagtail_live.recordings import enqueue_recording, process_recording
from wagtail_live.signals import recording_ready
from wagtail_live.storage import working_storage

pytestmark = pytest.mark.django_db

Media = get_media_model()


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def workdir(tmp_path):
    path = tmp_path / "made"
    path.mkdir()
    return path


def store_source(session, local_path, name=None):
    """Put a local file into storage where an ingest backend would have written it."""
    name = session.media_path(name or f"recording{local_path.suffix}")
    with open(local_path, "rb") as handle:
        # Sources live under PRIVATE_ROOT, as the ingest writes them (Recording.source's storage).
        return working_storage().save(name, ContentFile(handle.read()))


def recording_of(session, local_path, name=None):
    return Recording.objects.create(session=session, source=store_source(session, local_path, name))


def probe(name):
    with default_storage.open(name, "rb") as handle, av.open(handle) as container:
        return {
            "video": [s.codec_context.name for s in container.streams.video],
            "audio": [s.codec_context.name for s in container.streams.audio],
            "duration": container.duration / 1_000_000,
        }


def moov_before_mdat(name):
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


def assert_failed_and_source_kept(recording, *words):
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    for word in words:
        assert word in recording.error.lower(), recording.error
    assert recording.media is None and recording.page is None
    assert Media.objects.count() == 0
    assert RecordingPage.objects.count() == 0
    # Nothing half-done is left beside the source (no partial MP4, poster, work directory).
    directory = recording.session.media_path()
    if working_storage().exists(recording.source.name):
        assert working_storage().listdir(directory) == (
            [],
            [recording.source.name.rsplit("/", 1)[1]],
        )
    if default_storage.exists(directory):
        assert default_storage.listdir(directory) == ([], [])


# --- good input --------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["ts", "flv"])
def test_h264_aac_is_stream_copied_into_a_faststart_mp4_with_media_poster_and_draft_page(
    session, workdir, container
):
    session.description = "First line.\n\nSecond <b>paragraph</b>."
    session.save()
    recording = recording_of(session, make_media(workdir / f"in.{container}", "h264_aac"))

    result = process_recording(recording)

    assert result is recording
    assert recording.status == Recording.Status.READY, recording.error
    assert recording.conversion == Recording.Conversion.REMUX
    assert recording.attempts == 1
    assert recording.progress == 100.0
    assert 1.8 < recording.duration < 2.3
    assert recording.size > 0 and recording.source_size > 0
    media = recording.media
    assert media.type == "video"
    assert media.title == session.title
    assert (media.width, media.height) == (320, 240)
    assert 1.8 < media.duration < 2.3
    assert media.file.name == session.media_path(f"recording-{recording.pk}.mp4")
    assert media.thumbnail.name and default_storage.exists(media.thumbnail.name)
    assert probe(media.file.name)["video"] == ["h264"]
    assert probe(media.file.name)["audio"] == ["aac"]
    assert moov_before_mdat(media.file.name)
    poster = recording.poster
    assert (poster.width, poster.height) == (320, 240)
    assert default_storage.exists(poster.file.name)
    page = recording.page.specific
    assert isinstance(page, RecordingPage)
    assert not page.live and page.has_unpublished_changes
    assert page.latest_revision is not None
    assert page.get_parent().pk == default_site_root().pk
    assert page.title == session.title
    assert page.media == media and page.poster == poster and page.session == session
    assert page.intro == "<p>First line.</p><p>Second &lt;b&gt;paragraph&lt;/b&gt;.</p>"
    assert working_storage().exists(recording.source.name), "the source is kept by default"


def test_vp8_opus_webm_is_transcoded_to_h264_aac(session, workdir):
    recording = recording_of(session, make_media(workdir / "in.webm", "vp8_opus"))
    process_recording(recording)
    assert recording.status == Recording.Status.READY, recording.error
    assert recording.conversion == Recording.Conversion.TRANSCODE
    streams = probe(recording.media.file.name)
    assert streams["video"] == ["h264"] and streams["audio"] == ["aac"]
    assert moov_before_mdat(recording.media.file.name)


def test_conversion_progress_is_written_on_the_recording(session, workdir, monkeypatch):
    """ffmpeg's -progress lines become the percentage the admin listing shows."""
    recording = recording_of(session, make_media(workdir / "in.webm", "vp8_opus", seconds=3))
    seen = []
    heartbeat = recordings.heartbeat

    def spy(rec, progress=None):
        heartbeat(rec, progress)
        if progress is not None:
            seen.append(Recording.objects.get(pk=rec.pk).progress)

    monkeypatch.setattr(recordings, "PROGRESS_INTERVAL", 0)
    monkeypatch.setattr(recordings, "heartbeat", spy)
    process_recording(recording)
    assert recording.status == Recording.Status.READY, recording.error
    assert seen and all(0 <= value <= 100 for value in seen)
    assert seen == sorted(seen) and seen[-1] > 50
    assert recording.progress == 100.0


@pytest.mark.parametrize("kind,container", [("h264_opus", "mkv"), ("h264_mp3", "ts")])
def test_only_the_audio_is_converted_when_only_the_audio_needs_it(
    session, workdir, kind, container
):
    source = make_media(workdir / f"in.{container}", kind)
    recording = recording_of(session, source)
    process_recording(recording)
    assert recording.status == Recording.Status.READY, recording.error
    assert recording.conversion == Recording.Conversion.AUDIO
    streams = probe(recording.media.file.name)
    assert streams["video"] == ["h264"] and streams["audio"] == ["aac"]
    # The video was copied, not re-encoded: the same packets come out (give or take the few
    # bytes of start codes MPEG-TS uses where MP4 uses length prefixes).
    before, after = video_packet_sizes(source), video_packet_sizes(recording.media.file.name)
    assert len(before) == len(after)
    assert all(abs(a - b) <= 8 for a, b in zip(before, after, strict=True))


def video_packet_sizes(path_or_name):
    opener = open if hasattr(path_or_name, "suffix") else default_storage.open
    with opener(path_or_name, "rb") as handle, av.open(handle) as container:
        return sorted(p.size for p in container.demux(video=0) if p.size)


@pytest.mark.parametrize("kind,conversion", [("aac_only", "remux"), ("opus_only", "audio")])
def test_audio_only_recording_becomes_an_audio_media_without_poster(
    session, workdir, kind, conversion
):
    ext = "flv" if kind == "aac_only" else "ogg"
    recording = recording_of(session, make_media(workdir / f"in.{ext}", kind))
    process_recording(recording)
    assert recording.status == Recording.Status.READY, recording.error
    assert recording.conversion == conversion
    assert recording.media.type == "audio"
    assert recording.media.file.name.endswith(".m4a")
    assert probe(recording.media.file.name) == {
        "video": [],
        "audio": ["aac"],
        "duration": pytest.approx(2, abs=0.3),
    }
    assert recording.poster is None and recording.page.specific.poster is None


def test_video_only_recording_is_copied(session, workdir):
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_only"))
    process_recording(recording)
    assert recording.status == Recording.Status.READY, recording.error
    assert recording.conversion == Recording.Conversion.REMUX
    assert probe(recording.media.file.name)["audio"] == []
    assert recording.poster is not None


def test_whole_job_runs_on_a_non_filesystem_storage(session, workdir, media_root):
    """S3-compatible storage behind a CDN has no local path: the job must only use the API."""
    local = make_media(workdir / "in.ts", "h264_aac")
    in_memory = {
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=in_memory):
        recording = recording_of(session, local)
        assert not (media_root / recording.source.name).exists()
        process_recording(recording)
        assert recording.status == Recording.Status.READY, recording.error
        assert recording.conversion == Recording.Conversion.REMUX
        assert default_storage.exists(recording.media.file.name)
        assert default_storage.exists(recording.poster.file.name)
        assert probe(recording.media.file.name)["video"] == ["h264"]
        assert working_storage().exists(recording.source.name)
        assert not media_root.exists() or not any(media_root.rglob("*")), "nothing on disk"


# --- settings -----------------------------------------------------------------------------


def test_tags_categories_and_download_choice_carry_over_to_media_and_page(session, workdir):
    session.tags.add("science", "open day")
    session.allow_downloads = True
    session.save()
    music = LiveCategory.objects.create(name="Music", slug="music")
    if hasattr(session, "categories"):
        session.categories.add(music)
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    process_recording(recording)
    page = recording.page.specific
    assert sorted(page.tags.names()) == ["open day", "science"]
    assert sorted(recording.media.tags.names()) == ["open day", "science"]
    assert page.allow_downloads is True
    if hasattr(session, "categories"):
        assert list(page.categories.all()) == [music]


def test_auto_publish_publishes_the_page(session, workdir, settings):
    settings.WAGTAIL_LIVE = {"RECORDING_AUTO_PUBLISH": True}
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    process_recording(recording)
    assert recording.page.live


def test_parent_page_by_path_and_by_callable(session, workdir, settings):
    root = default_site_root()
    parent = root.add_child(instance=Page(title="Recordings", slug="recordings"))
    settings.WAGTAIL_LIVE = {"RECORDING_PARENT_PAGE": "/recordings/"}
    assert recordings.resolve_parent_page(session).pk == parent.pk
    settings.WAGTAIL_LIVE = {"RECORDING_PARENT_PAGE": lambda s: parent.pk}
    assert recordings.resolve_parent_page(session).pk == parent.pk
    settings.WAGTAIL_LIVE = {"RECORDING_PARENT_PAGE": parent.pk}
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    process_recording(recording)
    assert recording.page.get_parent().pk == parent.pk


def test_keep_source_false_deletes_the_source_only_after_success(
    session, workdir, settings, django_capture_on_commit_callbacks
):
    settings.WAGTAIL_LIVE = {"KEEP_SOURCE": False}
    bad = recording_of(session, workdir.joinpath("empty.ts").touch() or workdir / "empty.ts")
    good = recording_of(session, make_media(workdir / "in.flv", "h264_aac"))
    with django_capture_on_commit_callbacks(execute=True):
        process_recording(bad)
        process_recording(good)
    assert bad.status == Recording.Status.FAILED
    assert working_storage().exists(bad.source.name), "a failed recording keeps its source"
    assert good.status == Recording.Status.READY
    assert not working_storage().exists(good.source.name)
    assert default_storage.exists(good.media.file.name)


# --- events ---------------------------------------------------------------------------------


def test_success_sends_event_signal_and_hook(session, workdir, django_capture_on_commit_callbacks):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from wagtail_live.events import group_name

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(session.pk), channel)
    signalled, hooked = [], []

    def on_signal(sender, recording, **kwargs):
        signalled.append(recording.pk)

    recording_ready.connect(on_signal)
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    try:
        with hooks.register_temporarily("after_live_recording_ready", hooked.append):
            with django_capture_on_commit_callbacks(execute=True):
                process_recording(recording)
    finally:
        recording_ready.disconnect(on_signal)
    message = async_to_sync(layer.receive)(channel)
    assert message["event"] == {
        "type": "status",
        "state": "recording_ready",
        "recording": recording.pk,
        "published": False,
    }
    assert signalled == [recording.pk]
    assert [r.pk for r in hooked] == [recording.pk]


def test_publishing_the_page_tells_viewers_where_the_recording_is(session, workdir):
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    process_recording(recording)
    assert recordings.published_recording_page(session) is None
    recording.page.specific.save_revision().publish()
    recording.refresh_from_db()
    page = recordings.published_recording_page(session)
    assert page.pk == recording.page_id
    event = recordings.recording_ready_event(recording)
    assert event["published"] is True
    assert event["media_url"] == recording.media.url
    assert event["page_url"] == page.url


# --- bad input ----------------------------------------------------------------------------


def test_zero_byte_file_fails_with_a_clear_message(session, workdir):
    empty = workdir / "recording.ts"
    empty.touch()
    recording = recording_of(session, empty)
    process_recording(recording)
    assert_failed_and_source_kept(recording, "empty")
    assert working_storage().exists(recording.source.name)


def test_truncated_flv_fails_and_keeps_the_source(session, workdir):
    source = truncate(make_media(workdir / "recording.flv", "h264_aac", seconds=4))
    recording = recording_of(session, source)
    process_recording(recording)
    assert_failed_and_source_kept(recording, "truncated")
    assert working_storage().size(recording.source.name) == source.stat().st_size


def test_flv_cut_just_before_its_end_fails_too(session, workdir):
    """Only the last packet is cut: the length check cannot see it, the demuxer's warning does."""
    source = truncate(make_media(workdir / "recording.flv", "h264_aac", seconds=4), 0.97)
    recording = recording_of(session, source)
    process_recording(recording)
    assert_failed_and_source_kept(recording, "truncated or damaged", "middle of a packet")


def test_a_file_that_is_not_media_fails(session, workdir):
    junk = workdir / "recording.flv"
    junk.write_bytes(b"this is not a video, just some text " * 100)
    recording = recording_of(session, junk)
    process_recording(recording)
    assert_failed_and_source_kept(recording, "not a media file")
    assert working_storage().exists(recording.source.name)


def test_missing_source_fails(session):
    recording = Recording.objects.create(session=session, source=session.media_path("gone.ts"))
    process_recording(recording)
    assert_failed_and_source_kept(recording, "does not exist", "gone.ts")


def test_missing_ffmpeg_fails_readably(session, workdir, settings):
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    settings.WAGTAIL_LIVE = {"FFMPEG": str(workdir / "no-such-ffmpeg")}
    process_recording(recording)
    assert_failed_and_source_kept(recording, "ffmpeg was not found")


def test_deleted_parent_page_fails_then_retry_succeeds(session, workdir, settings):
    root = default_site_root()
    parent = root.add_child(instance=Page(title="Recordings", slug="recordings"))
    settings.WAGTAIL_LIVE = {"RECORDING_PARENT_PAGE": parent.pk}
    parent.delete()
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    process_recording(recording)
    assert_failed_and_source_kept(recording, "parent page", "does not exist")
    assert recording.can_retry

    settings.WAGTAIL_LIVE = {"RECORDING_PARENT_PAGE": root.pk}
    process_recording(recording)
    assert recording.status == Recording.Status.READY
    assert recording.attempts == 2


def test_session_ended_twice_makes_one_recording_processed_once(
    session, workdir, django_capture_on_commit_callbacks
):
    name = store_source(session, make_media(workdir / "in.ts", "h264_aac"))
    with django_capture_on_commit_callbacks(execute=True):
        first = enqueue_recording(session, name)
        second = enqueue_recording(session, name)
    assert first.pk == second.pk
    assert Recording.objects.count() == 1
    first.refresh_from_db()
    # tests run Huey in immediate mode: the task ran on commit
    assert first.status == Recording.Status.READY, first.error
    assert first.attempts == 1
    assert Media.objects.count() == 1 and RecordingPage.objects.count() == 1


# --- idempotency ----------------------------------------------------------------------------


def test_running_twice_leaves_one_media_and_one_page(session, workdir):
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    process_recording(recording)
    process_recording(recording)
    assert recording.attempts == 1
    assert Media.objects.count() == 1
    assert RecordingPage.objects.count() == 1
    assert get_image_model().objects.count() == 1


def test_a_rerun_after_a_crash_halfway_replaces_the_partial_output(session, workdir, settings):
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    # A worker died after uploading half an MP4: the row says processing, heartbeat long gone.
    names = recordings.output_names(recording, ".mp4")
    default_storage.save(names["media"], ContentFile(b"half an mp4"))
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.PROCESSING,
        attempts=1,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    assert list(recordings.stalled_recordings()) == [recording]
    process_recording(recording)
    assert recording.status == Recording.Status.READY, recording.error
    assert recording.attempts == 2
    assert recording.media.file.name == names["media"]
    assert probe(names["media"])["video"] == ["h264"]
    assert Media.objects.count() == 1 and RecordingPage.objects.count() == 1
    siblings = default_storage.listdir(session.media_path())[1]
    assert sorted(siblings) == sorted([name.rsplit("/", 1)[1] for name in names.values()])


def test_a_live_worker_keeps_its_claim(session, workdir):
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    assert recordings.claim(recording)
    assert not recordings.claim(recording), "a fresh heartbeat means another worker has it"
    process_recording(recording)
    assert recording.status == Recording.Status.PROCESSING
    assert Media.objects.count() == 0


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_workers_picking_the_same_recording_make_one_media_and_one_page(workdir):
    require(connection.vendor == "postgresql", "needs PostgreSQL (WAGTAIL_LIVE_TEST_DB=postgres)")
    ensure_default_site()
    session = make_session()
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac", seconds=4))
    start = threading.Barrier(2)
    errors = []

    def worker():
        from django.db import connection as thread_connection

        try:
            start.wait()
            process_recording(Recording.objects.get(pk=recording.pk))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    recording.refresh_from_db()
    assert recording.status == Recording.Status.READY
    assert recording.attempts == 1
    assert Media.objects.count() == 1 and RecordingPage.objects.count() == 1


# --- check --------------------------------------------------------------------------------


def test_no_default_site_and_no_setting_fails_with_its_own_message(session, workdir):
    from wagtail.models import Site

    Site.objects.all().delete()
    recording = recording_of(session, make_media(workdir / "in.ts", "h264_aac"))
    process_recording(recording)
    assert_failed_and_source_kept(recording, "no default wagtail site", "recording_parent_page")


def test_check_reports_an_unfindable_parent_page(settings):
    from wagtail_live.recordings import check_recording_parent_page

    assert check_recording_parent_page(None) == []
    settings.WAGTAIL_LIVE = {"RECORDING_PARENT_PAGE": "/no/such/page/"}
    errors = check_recording_parent_page(None)
    assert [e.id for e in errors] == ["wagtail_live.E601"]
    assert "/no/such/page/" in errors[0].msg


def ensure_default_site():
    """A default site and root collection, as migrations make them.

    Transactional tests flush the database afterwards, so a transactional test that
    runs after another one finds no site unless it makes one.
    """
    from wagtail.models import Collection, Locale, Page, Site

    if not Collection.get_first_root_node():
        Collection.add_root(name="Root")  # images and media go into collections
    if Site.objects.filter(is_default_site=True).exists():
        return
    Locale.objects.get_or_create(language_code="en")
    root = Page.get_first_root_node() or Page.add_root(title="Root", slug="root")
    home = root.add_child(instance=Page(title="Home", slug="home"))
    Site.objects.create(hostname="localhost", root_page=home, is_default_site=True)


def default_site_root():
    from wagtail.models import Site

    return Site.objects.get(is_default_site=True).root_page


# -- the recording page inside the site's base template (issue 10) -----------------------------

EXAMPLE_TEMPLATES = Path(__file__).resolve().parent.parent / "example_site" / "templates"


def _recording_page(title):
    from wagtail_live.models import RecordingPage

    return default_site_root().add_child(instance=RecordingPage(title=title))


def test_recording_page_extends_the_sites_base_template(client, settings):
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(EXAMPLE_TEMPLATES)]}]
    page = _recording_page("Spring launch, recorded")
    html = client.get(page.url).content.decode()
    # The example site's base.html: its header, footer, stylesheet and title suffix.
    assert '<header class="site-header">' in html and '<footer class="site-footer">' in html
    assert "example_site.css" in html
    assert re.search(r"<title>Spring launch, recorded · ", html)
    assert 'class="wagtail-live-recording-page"' in html
    assert '<article class="wagtail-live-recording">' in html and html.count("<html") == 1


def test_the_base_template_is_a_setting(client, settings):
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(EXAMPLE_TEMPLATES)]}]
    settings.WAGTAIL_LIVE = {"BASE_TEMPLATE": "wagtail_live/base.html"}
    html = client.get(_recording_page("Own frame").url).content.decode()
    assert "site-header" not in html
    assert "<main>" in html and '<article class="wagtail-live-recording">' in html


def test_a_site_without_a_base_template_gets_a_plain_page(client):
    # The test project has no base.html: the app's own plain frame, never an error.
    response = client.get(_recording_page("No frame").url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>No frame</title>" in html and html.count("<html") == 1
