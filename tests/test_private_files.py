"""Where a private session's files live, and that no spelling of a by-path URL reaches them.

A private session with every kind of file it can have — live HLS (playlist and
segment), the pipeline's ``recording.mpegts``, nginx-rtmp's ``.flv`` (before and
after its hand-off name), the finished MP4 and its poster — must have none of them under
``MEDIA_ROOT``; whatever serves ``MEDIA_URL`` by path (Django's ``static()`` in the
example site and the test URLs, nginx in tests/test_private_files_nginx.py) then
serves none of them, in any spelling. Members reach them through the checked views.
"""

import importlib
import os
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import override_settings
from django.urls import clear_url_caches, reverse
from wagtail.images import get_image_model
from wagtailmedia.models import get_media_model

from tests.recording_media import make_media
from tests.utils import make_session
from wagtail_live.models import LiveSession, Recording
from wagtail_live.recordings import output_names, process_recording
from wagtail_live.storage import private_root, private_storage, working_storage

pytestmark = pytest.mark.django_db

PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg-abc-00001.ts\n"
SEGMENT = b"\x47" + b"\x11" * 187


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    (tmp_path / "media").mkdir()
    return tmp_path / "media"


def write_working_files(session):
    """The files an ingest leaves for a session, where the ingest writes them."""
    directory = Path(session.media_dir)
    (directory / "hls").mkdir(parents=True, exist_ok=True)
    (directory / "hls" / "index.m3u8").write_text(PLAYLIST)
    (directory / "hls" / "seg-abc-00001.ts").write_bytes(SEGMENT)
    (directory / "recording.mpegts").write_bytes(SEGMENT * 2)
    (directory / "recording.flv").write_bytes(b"FLV\x01" + b"\0" * 60)
    (directory.parent / f"{session.pk}%2Fhls.flv").write_bytes(b"FLV\x01" + b"\0" * 61)


def recorded(session, tmp_path):
    """``session`` with a processed recording (real ffmpeg), as the recordings task leaves it."""
    made = make_media(tmp_path / "made.ts", "h264_aac", seconds=2)
    name = working_storage().save(session.media_path("recording.ts"), open(made, "rb"))
    recording = process_recording(Recording.objects.create(session=session, source=name))
    assert recording.status == Recording.Status.READY, recording.error
    # Published, as visitors see it (a draft's file is for its reviewers only).
    recording.page.specific.save_revision().publish()
    return Recording.objects.select_related("page").get(pk=recording.pk)


@pytest.fixture
def private_show(host, tmp_path):
    """A private session with every kind of file: (session, recording, {relative name: bytes})."""
    session = make_session("Members' evening", owner=host, privacy=LiveSession.Privacy.PRIVATE)
    write_working_files(session)
    recording = recorded(session, tmp_path)
    files = {}
    for path in private_root().rglob("*"):
        if path.is_file() and f"/{session.pk}" in str(path):
            files[str(path.relative_to(private_root()))] = path.read_bytes()
    names = output_names(recording, ".mp4")
    # Every kind the session has, so the spellings below try each one.
    assert names["media"] in files and names["poster"] in files
    assert any(name.endswith(".m3u8") for name in files)
    assert any(name.endswith(".mpegts") for name in files)
    assert any(name.endswith("%2Fhls.flv") for name in files)
    return session, recording, files


def test_private_files_live_outside_media_root(private_show, media_root):
    session, recording, files = private_show
    assert not Path(private_root()).is_relative_to(media_root)
    under_media = [str(p) for p in media_root.rglob("*") if p.is_file()]
    assert under_media == [], "nothing of a private session may sit under MEDIA_ROOT"
    # No public Wagtail image (whose renditions anyone could fetch) and no media thumbnail.
    assert recording.poster is None and get_image_model().objects.count() == 0
    assert not get_media_model().objects.get().thumbnail
    assert not default_storage.exists(recording.media.file.name)
    assert private_storage().exists(recording.media.file.name)


def spellings(media_url, name):
    """Ways to write ``MEDIA_URL`` + ``name`` that a lax server might map onto the same file."""
    prefix = media_url.strip("/")
    subdir, rest = name.split("/", 1) if "/" in name else ("", name)
    first, _slash, tail = name.partition("/")
    upper = f"/{prefix.upper()}/{name.upper()}"
    variants = [
        f"/{prefix}/{name}",
        f"/{prefix}//{name}",
        f"/{prefix}/./{name}",
        f"/{prefix}/{first}//{tail}",
        f"/{prefix}/{first}/./{tail}",
        f"/{prefix}/%2e/{name}",
        f"/{prefix}/{first}%2F{tail}",
        f"/{prefix}/{first}%2f{tail}",
        f"/{prefix}/x/../{name}",
        f"/{prefix}/x/%2e%2e/{name}",
        f"/{prefix}/{name}.",
        f"/{prefix}/{name}%20",
        f"/{prefix}/{name}%00",
        f"/{prefix}/{name}/",
        f"/{prefix}/{name.replace('/', chr(92))}",
        f"/{prefix}/{first}%5C{tail}",
        f"/{prefix}/%252e/{name}",
        upper,
        # Out of MEDIA_ROOT towards the private root beside it.
        f"/{prefix}/../live-private/{name}",
        f"/{prefix}/..%2Flive-private/{name}",
        f"/{prefix}/%2e%2e/live-private/{name}",
        f"/{prefix}/%2e%2e%2flive-private%2f{name}",
        f"/{prefix}/..%5Clive-private%5C{name}",
        f"/live-private/{name}",
        f"/{name}",
    ]
    return list(dict.fromkeys(variants))


def by_path_urlconf(module_name):
    """Import ``module_name`` as a DEBUG site would (``static()`` serves MEDIA_URL by path)."""
    with override_settings(DEBUG=True):
        module = importlib.reload(importlib.import_module(module_name))
    serves_media = any("serve" in repr(getattr(p, "callback", "")) for p in module.urlpatterns)
    assert serves_media, f"{module_name} should serve MEDIA_URL by path in DEBUG"
    return module


@pytest.fixture
def reload_urlconfs():
    yield
    for name in ("example_site.urls", "tests.urls"):
        importlib.reload(importlib.import_module(name))
    clear_url_caches()


@pytest.mark.parametrize("urlconf", ["example_site.urls", "tests.urls"])
def test_no_spelling_of_a_by_path_url_serves_a_private_file(
    private_show, client, editor, urlconf, reload_urlconfs, settings
):
    session, recording, files = private_show
    by_path_urlconf(urlconf)
    settings.ROOT_URLCONF = urlconf
    clear_url_caches()
    leaks = []
    for user in (None, editor):  # by path, not even a member gets a private file
        client.logout()
        if user:
            client.force_login(user)
        for name, content in files.items():
            for url in spellings(settings.MEDIA_URL, name):
                response = client.get(url)
                body = (
                    b"".join(response.streaming_content) if response.streaming else response.content
                )
                if response.status_code == 200 and content in body:
                    leaks.append((user and user.username, url))
                elif response.status_code not in (301, 302, 400, 403, 404):
                    leaks.append((user and user.username, url, response.status_code))
    assert leaks == []


@pytest.mark.parametrize("urlconf", ["example_site.urls", "tests.urls"])
def test_checked_routes_serve_members_and_refuse_visitors(
    private_show, client, editor, urlconf, reload_urlconfs, settings
):
    session, recording, files = private_show
    by_path_urlconf(urlconf)
    settings.ROOT_URLCONF = urlconf
    clear_url_caches()
    checked = {
        reverse("wagtail_live:hls", args=[session.pk, "index.m3u8"]): PLAYLIST.encode(),
        reverse("wagtail_live:hls", args=[session.pk, "seg-abc-00001.ts"]): SEGMENT,
        reverse("wagtail_live:recording_media", args=[recording.pk]): None,
        reverse("wagtail_live:recording_poster", args=[recording.pk]): None,
    }
    for url in checked:
        assert client.get(url).status_code == 403, url
    client.force_login(editor)
    for url, expected in checked.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["X-Content-Type-Options"] == "nosniff"
        body = b"".join(response.streaming_content)
        if expected is not None:
            assert body == expected
        assert response["Content-Type"] in (
            "application/vnd.apple.mpegurl",
            "video/mp2t",
            "video/mp4",
            "image/jpeg",
        )
    # The recording page shows members the poster through the checked view.
    poster_url = reverse("wagtail_live:recording_poster", args=[recording.pk])
    assert recording.page.specific.visitor_poster_url() == poster_url


def test_a_session_turning_private_takes_its_recording_out_of_media_root(
    host, tmp_path, django_capture_on_commit_callbacks, media_root
):
    session = make_session("Open rehearsal", owner=host)
    recording = recorded(session, tmp_path)
    media_name = recording.media.file.name
    image = recording.poster
    rendition = image.get_rendition("width-100")
    public_files = {p for p in media_root.rglob("*") if p.is_file()}
    assert Path(default_storage.path(media_name)) in public_files
    assert Path(default_storage.path(rendition.file.name)) in public_files

    session.privacy = LiveSession.Privacy.PRIVATE
    with django_capture_on_commit_callbacks(execute=True):
        session.save()

    recording.refresh_from_db()
    assert not default_storage.exists(media_name) and private_storage().exists(media_name)
    assert recording.poster is None and not get_image_model().objects.filter(pk=image.pk).exists()
    assert private_storage().exists(output_names(recording, ".mp4")["poster"])
    left = [str(p) for p in media_root.rglob("*") if p.is_file()]
    assert left == [], "the MP4, the poster image, its renditions and the thumbnail are gone"

    # And back: the MP4 is public again; the poster stays a checked file anyone may fetch.
    session.privacy = LiveSession.Privacy.PUBLIC
    with django_capture_on_commit_callbacks(execute=True):
        session.save()
    assert default_storage.exists(media_name) and not private_storage().exists(media_name)


def test_playback_from_media_url_links_public_sessions_only(
    host, settings, media_root, django_capture_on_commit_callbacks
):
    settings.WAGTAIL_LIVE = {"PLAYBACK_FROM_MEDIA_URL": True}
    with django_capture_on_commit_callbacks(execute=True):
        public = make_session("Public", owner=host)
        private = make_session("Private", owner=host, privacy=LiveSession.Privacy.PRIVATE)
    for session in (public, private):
        write_working_files(session)
    link = media_root / public.media_path("hls")
    assert link.is_symlink() and (link / "index.m3u8").read_text() == PLAYLIST
    assert not (media_root / private.media_path("hls")).exists()
    public.privacy = LiveSession.Privacy.PRIVATE
    with django_capture_on_commit_callbacks(execute=True):
        public.save()
    assert not os.path.lexists(link), "a session turning private loses its public link at once"


def test_move_command_moves_what_older_versions_kept_under_media_root(
    host, tmp_path, media_root, django_capture_on_commit_callbacks
):
    private = make_session("Old private", owner=host, privacy=LiveSession.Privacy.PRIVATE)
    recording = recorded(private, tmp_path)
    # As an older version left it: working files and the finished MP4 under MEDIA_ROOT.
    legacy = media_root / private.media_path()
    (legacy / "hls").mkdir(parents=True)
    (legacy / "hls" / "index.m3u8").write_text(PLAYLIST)
    (legacy / "recording.mpegts").write_bytes(SEGMENT)
    (legacy.parent / f"{private.pk}%2Fhls.flv").write_bytes(b"FLV\x01")
    private_storage().delete(recording.media.file.name)
    default_storage.save(recording.media.file.name, open(tmp_path / "made.ts", "rb"))
    working_storage().delete(recording.source.name)
    default_storage.save(recording.source.name, open(tmp_path / "made.ts", "rb"))

    call_command("live_move_private_files", stdout=open(os.devnull, "w"))

    assert [str(p) for p in media_root.rglob("*") if p.is_file()] == []
    assert (Path(private.media_dir) / "hls" / "index.m3u8").read_text() == PLAYLIST
    assert working_storage().exists(recording.source.name)
    assert private_storage().exists(recording.media.file.name)
    assert (Path(private.media_dir).parent / f"{private.pk}%2Fhls.flv").exists()
    # Idempotent: a second run finds nothing to move.
    from io import StringIO

    out = StringIO()
    call_command("live_move_private_files", stdout=out)
    assert "Done: 0 file(s) moved" in out.getvalue()


# --- a privacy change never loses a recording (issue 11, kind 1) ------------------------------


def test_a_different_file_at_the_target_name_never_replaces_a_recording(
    host, tmp_path, django_capture_on_commit_callbacks
):
    """Whatever already sits at the recording's name in the private storage, the real MP4 survives."""
    session = make_session("Was public", owner=host)
    recording = recorded(session, tmp_path)
    name = recording.media.file.name
    real = Path(default_storage.path(name)).read_bytes()
    from django.core.files.base import ContentFile

    planted = private_storage().save(name, ContentFile(b"PLANTED"))
    assert planted == name

    session.privacy = LiveSession.Privacy.PRIVATE
    with django_capture_on_commit_callbacks(execute=True):
        session.save()

    recording.refresh_from_db()
    kept = recording.media.file.name
    assert kept != name and private_storage().open(kept).read() == real
    assert private_storage().open(name).read() == b"PLANTED", "neither file is deleted"
    assert not default_storage.exists(name)


def test_move_file_keeps_one_copy_of_identical_files_and_both_of_different_ones(tmp_path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import FileSystemStorage, InMemoryStorage

    from wagtail_live.private_files import move_file

    for source, target in (
        (FileSystemStorage(tmp_path / "a"), FileSystemStorage(tmp_path / "b")),
        (InMemoryStorage(), FileSystemStorage(tmp_path / "c")),
    ):
        source.save("x/same.mp4", ContentFile(b"SAME"))
        target.save("x/same.mp4", ContentFile(b"SAME"))
        assert move_file("x/same.mp4", source, target) == "x/same.mp4"
        assert not source.exists("x/same.mp4") and target.open("x/same.mp4").read() == b"SAME"

        source.save("x/other.mp4", ContentFile(b"OURS"))
        target.save("x/other.mp4", ContentFile(b"THEIRS"))
        stored = move_file("x/other.mp4", source, target)
        assert stored != "x/other.mp4" and target.open(stored).read() == b"OURS"
        assert target.open("x/other.mp4").read() == b"THEIRS"
        assert not source.exists("x/other.mp4")
        assert move_file("x/missing.mp4", source, target) == ""


def test_the_move_command_sets_older_uploads_apart_from_outputs(host):
    """Uploads older versions kept beside the outputs (``recording-7.mp4``) move to ``sources/``."""
    session = make_session("Old uploads", owner=host, privacy=LiveSession.Privacy.PRIVATE)
    write_working_files(session)
    directory = Path(session.media_dir)
    (directory / "recording-7.mp4").write_bytes(b"OLD-UPLOAD")
    upload = Recording.objects.create(session=session, source=session.media_path("recording-7.mp4"))
    pipeline = Recording.objects.create(
        session=session, source=session.media_path("recording.mpegts")
    )
    call_command("live_move_private_files")
    upload.refresh_from_db()
    pipeline.refresh_from_db()
    assert upload.source.name.startswith(session.media_path("sources", "upload-"))
    assert working_storage().open(upload.source.name).read() == b"OLD-UPLOAD"
    assert not (directory / "recording-7.mp4").exists()
    assert pipeline.source.name == session.media_path("recording.mpegts")
    call_command("live_move_private_files")  # idempotent
    assert Recording.objects.get(pk=upload.pk).source.name == upload.source.name


# --- no probing which ids exist (issue 11, kind 4) --------------------------------------------


def test_anonymous_visitors_cannot_tell_missing_from_private(client, host, editor):
    from datetime import UTC, datetime

    private = make_session(
        "Members only",
        owner=host,
        privacy=LiveSession.Privacy.PRIVATE,
        scheduled_start=datetime(2031, 1, 1, tzinfo=UTC),
    )
    recording = Recording.objects.create(session=private, source="x.ts")
    missing = 987654
    routes = [
        ("wagtail_live:session_status", private.pk),
        ("wagtail_live:session_calendar", private.pk),
        ("wagtail_live:recording_media", recording.pk),
        ("wagtail_live:recording_poster", recording.pk),
    ]
    for route, pk in routes:
        existing = client.get(reverse(route, args=[pk]))
        absent = client.get(reverse(route, args=[missing]))
        assert (existing.status_code, existing.content) == (absent.status_code, absent.content)
        assert existing.status_code == 403, route
    # Signed-in users are told a missing one is missing.
    client.force_login(editor)
    for route, _pk in routes:
        assert client.get(reverse(route, args=[missing])).status_code == 404, route
