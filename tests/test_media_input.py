"""Untrusted media input: every file is read as exactly its own bytes.

Hostile files — an HLS playlist whose segment is a ``file:`` path to another
session's private recording, concat lists, an image-sequence name, HTML, SVG, a
polyglot, a file whose extension lies, an empty file — are refused by the upload
form (nothing stored) and by the recordings task (nothing copied, no Media, no page);
real recordings in every whitelisted container still go through.
"""

import subprocess
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from wagtailmedia.models import get_media_model

from tests.recording_media import make_media
from tests.utils import make_session
from wagtail_live import media_input
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest.base import build_ffmpeg_args
from wagtail_live.models import LiveSession, Recording, RecordingPage
from wagtail_live.recordings import process_recording
from wagtail_live.storage import working_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def secret_recording(tmp_path):
    """Another session's private recording: the file hostile inputs try to reach."""
    made = make_media(tmp_path / "secret.ts", "h264_aac", seconds=1)
    return made


def hostile_files(directory, secret):
    """name -> bytes of files that must never be read as media."""
    secret = Path(secret)
    segment = f"file:{secret}"
    html = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
    # A file that a browser would render as a page and that starts with a TS sync byte:
    # it must not pass as MPEG-TS on one lucky byte.
    polyglot = b"G<html><script>alert(1)</script></html>" + b" " * 400
    return {
        "playlist.m3u8": (
            f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{segment}\n#EXT-X-ENDLIST\n"
        ).encode(),
        "playlist-named.ts": (f"#EXTM3U\n#EXTINF:2.0,\n{segment}\n#EXT-X-ENDLIST\n").encode(),
        "list.ffconcat": f"ffconcat version 1.0\nfile '{secret}'\n".encode(),
        "concat-named.mp4": f"ffconcat version 1.0\nfile '{secret}'\n".encode(),
        "concat-plain.flv": f"file '{secret}'\n".encode(),
        "page.html": html,
        "page-named.mp4": html,
        "image.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "polyglot.ts": polyglot,
        "empty.ts": b"",
    }


@pytest.fixture
def image_sequence(tmp_path):
    """A JPEG named like an image-sequence pattern: img%03d.jpg expands to img001.jpg."""
    made = tmp_path / "img001.jpg"
    subprocess.run(
        [ffmpeg_binary(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48"]
        + ["-frames:v", "1", str(made)],
        check=True,
    )
    return made


# --- detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,kind,container",
    [
        ("a.ts", "h264_aac", "mpegts"),
        ("a.flv", "h264_aac", "flv"),
        ("a.mp4", "h264_aac", "mp4"),
        ("a.mov", "h264_aac", "mp4"),
        ("a.mkv", "h264_opus", "matroska"),
        ("a.webm", "vp8_opus", "matroska"),
        ("a.ogg", "opus_only", "ogg"),
    ],
)
def test_real_media_is_detected_from_its_content(tmp_path, name, kind, container):
    made = make_media(tmp_path / name, kind, seconds=1)
    assert media_input.sniff_file(made) == container
    # The name plays no part: the same bytes under another name are the same container.
    renamed = made.rename(tmp_path / "no-extension")
    assert media_input.sniff_file(renamed) == container


def test_hostile_files_are_not_media(tmp_path, secret_recording, image_sequence):
    files = hostile_files(tmp_path, secret_recording)
    files["img%03d.jpg"] = image_sequence.read_bytes()
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(media_input.UnsupportedMedia):
            media_input.sniff_file(path)
        assert media_input.detect_container(content) is None, name


# --- the recordings task -------------------------------------------------------------------


def test_the_recordings_task_refuses_hostile_sources_and_copies_nothing(
    host, tmp_path, secret_recording, image_sequence, media_root
):
    public = make_session("Public show", owner=host)
    files = hostile_files(tmp_path, secret_recording)
    files["img%03d.jpg"] = image_sequence.read_bytes()
    for name, content in files.items():
        stored = working_storage().save(public.media_path(name), _content(content))
        recording = process_recording(Recording.objects.create(session=public, source=stored))
        assert recording.status == Recording.Status.FAILED, name
        assert "not a media file" in recording.error or "empty" in recording.error, name
    assert get_media_model().objects.count() == 0 and RecordingPage.objects.count() == 0
    assert [p for p in media_root.rglob("*") if p.is_file()] == [], "nothing public was written"


def test_a_media_file_with_a_hostile_name_is_read_as_itself(host, tmp_path):
    """A TS file whose name looks like a pattern or a protocol is still read only as that file."""
    session = make_session("Odd names", owner=host)
    made = make_media(tmp_path / "made.ts", "h264_aac", seconds=1)
    for name in ("img%03d.ts", "concat:x.ts", "hls:file.ts"):
        stored = working_storage().save(session.media_path(name), _content(made.read_bytes()))
        recording = process_recording(Recording.objects.create(session=session, source=stored))
        assert recording.status == Recording.Status.READY, (name, recording.error)


def test_ffmpeg_reads_only_the_one_file(tmp_path, secret_recording):
    """Even told the wrong container, ffmpeg with ffmpeg_input never follows a playlist."""
    playlist = tmp_path / "playlist.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXTINF:1.0,\nfile:{secret_recording}\n#EXT-X-ENDLIST\n")
    args = media_input.ffmpeg_input(playlist, "mpegts")
    assert args[:4] == ["-protocol_whitelist", "file", "-f", "mpegts"]
    done = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", *args, "-c", "copy", "-f", "null", "-"],
        capture_output=True,
    )
    assert done.returncode != 0 or b"Video" not in done.stderr


def test_the_live_pipeline_forces_its_demuxer_and_only_reads_the_pipe(tmp_path):
    args = build_ffmpeg_args("flv", tmp_path)
    i = args.index("-i")
    assert args[i + 1] == "pipe:0"
    assert args[i - 4 : i] == ["-protocol_whitelist", "pipe", "-f", "flv"]


# --- uploads in the admin ---------------------------------------------------------------------


def upload(client, session, name, content):
    return client.post(
        reverse("wagtail_live_recordings:add"),
        {"session": session.pk, "source": SimpleUploadedFile(name, content)},
    )


def test_upload_refuses_hostile_files_and_stores_nothing(
    client, superuser, tmp_path, secret_recording, image_sequence
):
    session = make_session("Upload target", privacy=LiveSession.Privacy.PUBLIC)
    client.force_login(superuser)
    made_ts = make_media(tmp_path / "made.ts", "h264_aac", seconds=1).read_bytes()
    made_mp4 = make_media(tmp_path / "made.mp4", "h264_aac", seconds=1).read_bytes()
    files = hostile_files(tmp_path, secret_recording)
    files["img%03d.jpg"] = image_sequence.read_bytes()
    files["lying.mp4"] = made_ts  # MPEG-TS bytes under an MP4 name
    files["lying.ts"] = made_mp4  # and the other way round
    files["video.html"] = made_mp4  # real media, but a name a browser would render
    for name, content in files.items():
        response = upload(client, session, name, content)
        assert response.status_code == 200, name
        errors = response.context["form"].errors
        assert "source" in errors, (name, errors)
    assert Recording.objects.count() == 0
    assert not working_storage().exists(session.media_path())
    assert not default_storage.exists(session.media_path())


def test_upload_accepts_a_real_recording_and_keeps_it_private(
    client, superuser, tmp_path, django_capture_on_commit_callbacks
):
    session = make_session("Upload target")
    client.force_login(superuser)
    made = make_media(tmp_path / "made.mp4", "h264_aac", seconds=1).read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, session, "from-the-phone.mp4", made)
    assert response.status_code == 302, response.content.decode()[:1000]
    recording = Recording.objects.get()
    assert working_storage().exists(recording.source.name)
    assert not default_storage.exists(recording.source.name)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.READY, recording.error


# --- serving --------------------------------------------------------------------------------


def test_recording_files_are_served_with_safe_types(client, host, tmp_path):
    session = make_session("Served", owner=host, privacy=LiveSession.Privacy.PRIVATE)
    made = make_media(tmp_path / "made.ts", "h264_aac", seconds=1)
    stored = working_storage().save(session.media_path("recording.ts"), _content(made.read_bytes()))
    recording = process_recording(Recording.objects.create(session=session, source=stored))
    client.force_login(host)
    media = client.get(reverse("wagtail_live:recording_media", args=[recording.pk]))
    assert media["Content-Type"] == "video/mp4"
    assert media["X-Content-Type-Options"] == "nosniff"
    poster = client.get(reverse("wagtail_live:recording_poster", args=[recording.pk]))
    assert poster["Content-Type"] == "image/jpeg"
    assert poster["X-Content-Type-Options"] == "nosniff"
    # A media item an editor pointed at another kind of file goes out as a download.
    from wagtail_live.views.recording_files import _send_file

    working_storage().save("odd/page.html", _content(b"<script>alert(1)</script>"))
    response = _send_file(working_storage(), "odd/page.html", "application/octet-stream")
    assert response["Content-Disposition"] == "attachment"
    assert response["X-Content-Type-Options"] == "nosniff"


def _content(data):
    from django.core.files.base import ContentFile

    return ContentFile(data)


def test_the_admin_shows_a_private_source_without_linking_to_it(client, superuser, session):
    recording = Recording.objects.create(session=session, source=session.media_path("r.ts"))
    client.force_login(superuser)
    for view in ("inspect", "edit"):
        response = client.get(reverse(f"wagtail_live_recordings:{view}", args=[recording.pk]))
        assert response.status_code == 200, view
        assert "/media/uploads/live/" not in response.content.decode()


# --- uploads never become outputs (issue 11, kind 1 and 2) ------------------------------------


# Names an uploader could pick to pass for a file the app made for viewers.
OUTPUT_LIKE_NAMES = [
    "recording-777.mp4",
    "recording-1-web.m4v",
    "index.m3u8.mp4",
    "seg-1.ts",
    "recording-1-poster.jpg.mp4",
    "../recording-2.mp4",
    "hls/index.mp4",
    "..%2Frecording-3.mp4",
]


_MADE = {}


def made_once(suffix):
    """Bytes of a short real recording in this container, made once per test run (ffmpeg)."""
    import tempfile

    if suffix not in _MADE:
        with tempfile.TemporaryDirectory() as directory:
            _MADE[suffix] = make_media(
                Path(directory) / f"made{suffix}", "h264_aac", seconds=1
            ).read_bytes()
    return _MADE[suffix]


def delivery_get(path):
    """(status, body) of the embedded verifier for ``path`` (in process, raw path as given)."""
    import asyncio

    from wagtail_live.delivery import HLSVerifier

    sent = {"body": b""}

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        else:
            sent["body"] += message.get("body", b"")

    async def not_ours(scope, receive, send):
        raise AssertionError(f"{path} left the verifier")

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "headers": [],
        "query_string": b"",
    }
    asyncio.run(HLSVerifier(not_ours, prefix="/live/delivery/")(scope, receive, send))
    return sent["status"], sent["body"]


@pytest.mark.parametrize("name", OUTPUT_LIKE_NAMES)
def test_an_upload_is_stored_apart_from_outputs_and_no_grant_serves_it(host, tmp_path, name):
    from wagtail_live import grants
    from wagtail_live.forms import RecordingUploadForm

    session = make_session("Members", owner=host, privacy=LiveSession.Privacy.PRIVATE)
    marker = b"UPLOADER-MARKER"
    suffix = ".ts" if name.endswith(".ts") else ".mp4"
    content = made_once(suffix)
    if suffix == ".mp4":
        content += marker  # trailing bytes: still a valid MP4 the sniffer accepts
    form = RecordingUploadForm(
        data={"session": session.pk}, files={"source": SimpleUploadedFile(name, content)}
    )
    assert form.is_valid(), form.errors
    recording = form.save()
    stored = recording.source.name
    folder, base = stored.rsplit("/", 1)
    assert folder == session.media_path("sources")
    assert base.startswith("upload-") and base.endswith(Path(name).suffix)
    assert working_storage().open(stored).read() == content
    # The uploader's name appears nowhere on disk, and no grant path reaches the source.
    on_disk = [p.name for p in Path(session.media_dir).rglob("*") if p.is_file()]
    assert on_disk == [base]
    token = grants.issue(session).token
    prefix = f"/live/delivery/{session.pk}/{token}/"
    for path in (base, f"sources/{base}", name, f"hls/{base}", f"hls/../sources/{base}"):
        status, body = delivery_get(prefix + path)
        assert status in (403, 404), (path, status)
        assert marker not in body and content[:64] not in body, path


def test_outputs_never_take_a_source_name(host, tmp_path):
    """Processing an uploaded recording writes recording-<pk>.* and leaves the source alone."""
    from wagtail_live.forms import RecordingUploadForm
    from wagtail_live.recordings import output_names

    session = make_session("Members", owner=host, privacy=LiveSession.Privacy.PRIVATE)
    content = made_once(".mp4")
    form = RecordingUploadForm(
        data={"session": session.pk},
        files={"source": SimpleUploadedFile("recording-1.mp4", content)},
    )
    assert form.is_valid(), form.errors
    recording = form.save()
    names = output_names(recording, ".mp4")
    assert recording.source.name not in names.values()
    with override_keep_source():
        recording = process_recording(recording)
    assert recording.status == Recording.Status.READY, recording.error
    assert recording.media.file.name == names["media"]
    assert working_storage().open(recording.source.name).read() == content


def override_keep_source():
    from django.conf import settings
    from django.test import override_settings

    return override_settings(
        WAGTAIL_LIVE={**getattr(settings, "WAGTAIL_LIVE", {}), "KEEP_SOURCE": True}
    )
