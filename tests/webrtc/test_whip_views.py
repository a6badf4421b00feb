"""The WHIP endpoint's refusals (before Janus hears of anything) and the Janus helpers' parsing.

The real Janus, publisher and ffmpeg are in ``test_whip_janus.py``; here every
refusal is checked against the view itself, with Janus pointed at a closed port so
that any request reaching it would show up as a 503.
"""

import socket

import pytest
from django.test import override_settings

from wagtail_live.ingest import janus
from wagtail_live.views.whip import candidates_of

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 H264/90000\r\n"
)
CANDIDATE = "a=candidate:1 1 udp 2130706431 10.254.0.2 40000 typ host\r\n"
ANSWER = (
    "v=0\r\no=- 1 1 IN IP4 10.254.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 103 104\r\na=mid:1\r\na=rtpmap:103 H264/90000\r\n"
    "a=rtpmap:104 rtx/90000\r\n"
    "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n"
)


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def webrtc_on():
    settings = {
        "WEBRTC": "janus",
        "JANUS_URL": f"http://127.0.0.1:{closed_port()}/janus",
        "JANUS_API_SECRET": "never-shown",
    }
    with override_settings(WAGTAIL_LIVE=settings):
        yield


def post_offer(client, pk, key, body=OFFER, content_type="application/sdp"):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return client.post(f"/live/whip/{pk}/", body, content_type=content_type, headers=headers)


@pytest.mark.django_db
def test_whip_is_off_unless_webrtc_is_set(client, session):
    key = session.issue_stream_key()
    response = post_offer(client, session.pk, key)
    assert response.status_code == 404
    assert b"not enabled" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("token", [None, "", "wrong-key"])
def test_a_missing_or_wrong_key_is_refused_with_401(client, session, webrtc_on, token):
    session.issue_stream_key()
    response = post_offer(client, session.pk, token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_a_revoked_key_is_refused(client, session, webrtc_on):
    key = session.issue_stream_key()
    session.revoke_stream_key()
    assert post_offer(client, session.pk, key).status_code == 401


@pytest.mark.django_db
def test_a_replaced_key_is_refused(client, session, webrtc_on):
    old = session.issue_stream_key()
    session.issue_stream_key()
    assert post_offer(client, session.pk, old).status_code == 401


@pytest.mark.django_db
def test_an_expired_key_is_refused(client, session, webrtc_on):
    from datetime import timedelta

    with override_settings(
        WAGTAIL_LIVE={"WEBRTC": "janus", "STREAM_KEY_TTL": timedelta(seconds=-1)}
    ):
        key = session.issue_stream_key()
        assert post_offer(client, session.pk, key).status_code == 401


@pytest.mark.django_db
def test_another_sessions_key_is_refused(client, session, host, webrtc_on):
    from tests.utils import make_session

    other = make_session("Other", owner=host)
    key = other.issue_stream_key()
    assert post_offer(client, session.pk, key).status_code == 401


@pytest.mark.django_db
def test_the_offer_must_be_sdp(client, session, webrtc_on):
    key = session.issue_stream_key()
    assert post_offer(client, session.pk, key, content_type="application/json").status_code == 415
    assert post_offer(client, session.pk, key, body="hello").status_code == 400
    huge = OFFER + "a=x:" + "y" * 70_000 + "\r\n"
    assert post_offer(client, session.pk, key, body=huge).status_code == 413


@pytest.mark.django_db
def test_janus_down_is_a_503_without_secrets(client, session, webrtc_on, caplog):
    key = session.issue_stream_key()
    response = post_offer(client, session.pk, key)
    assert response.status_code == 503
    assert b"never-shown" not in response.content
    assert "never-shown" not in caplog.text
    session.refresh_from_db()
    assert session.status == session.Status.READY  # nothing went live


@pytest.mark.django_db
def test_resource_requests_need_a_signed_resource_and_the_key(client, session, webrtc_on):
    from django.core import signing

    from wagtail_live.views.whip import RESOURCE_SALT

    key = session.issue_stream_key()
    forged = f"/live/whip/{session.pk}/not-signed/"
    assert client.delete(forged, headers={"Authorization": f"Bearer {key}"}).status_code == 404
    other = signing.dumps({"p": session.pk + 1, "s": 1, "h": 2}, salt=RESOURCE_SALT)
    url = f"/live/whip/{session.pk}/{other}/"
    assert client.delete(url, headers={"Authorization": f"Bearer {key}"}).status_code == 404
    mine = signing.dumps({"p": session.pk, "s": 1, "h": 2}, salt=RESOURCE_SALT)
    url = f"/live/whip/{session.pk}/{mine}/"
    assert client.delete(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.generic(
        "PATCH", url, "a=candidate:1", content_type="text/plain",
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    assert response.status_code == 415


@pytest.mark.django_db
def test_delete_ends_the_session(client, session, webrtc_on):
    from django.core import signing

    from wagtail_live.views.whip import RESOURCE_SALT

    key = session.issue_stream_key()
    session.start()
    resource = signing.dumps({"p": session.pk, "s": 1, "h": 2}, salt=RESOURCE_SALT)
    url = f"/live/whip/{session.pk}/{resource}/"
    assert client.delete(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    session.refresh_from_db()
    assert session.status == session.Status.ENDED
    # A late DELETE (the key died with the session) is still answered.
    assert client.delete(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_trickle_fragment_candidates():
    fragment = (
        "a=ice-ufrag:abcd\r\na=ice-pwd:efgh\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
        "a=candidate:1 1 udp 2130706431 10.254.0.2 50000 typ host\r\n"
        "m=video 9 RTP/AVP 0\r\na=mid:1\r\n"
        "a=candidate:2 1 udp 2130706431 10.254.0.2 50002 typ host\r\na=end-of-candidates\r\n"
    )
    assert candidates_of(fragment) == [
        {"candidate": "candidate:1 1 udp 2130706431 10.254.0.2 50000 typ host",
         "sdpMLineIndex": 0, "sdpMid": "0"},
        {"candidate": "candidate:2 1 udp 2130706431 10.254.0.2 50002 typ host",
         "sdpMLineIndex": 1, "sdpMid": "1"},
        {"completed": True},
    ]  # fmt: skip


def test_negotiated_streams_and_ffmpeg_sdp():
    streams = janus.negotiated_streams(ANSWER)
    assert streams == [
        {"type": "audio", "mid": "0", "codec": "opus"},
        {"type": "video", "mid": "1", "codec": "h264"},
    ]
    streams[0]["port"], streams[1]["port"] = 5000, 5002
    sdp = janus.ffmpeg_sdp("127.0.0.1", streams)
    assert "m=audio 5000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2" in sdp
    assert "m=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000" in sdp


def test_janus_config_loads_only_what_the_app_uses(tmp_path):
    path = janus.write_janus_config(tmp_path, api_secret="s3cret", admin_key="k3y")
    core = path.read_text()
    assert 'api_secret = "s3cret"' in core
    assert "libjanus_websockets.so" in core and "libjanus_echotest.so" in core  # disabled
    http = (tmp_path / "janus.transport.http.jcfg").read_text()
    assert "admin_http = false" in http and 'ip = "127.0.0.1"' in http
    assert 'admin_key = "k3y"' in (tmp_path / "janus.plugin.videoroom.jcfg").read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_chunked_answers_are_decoded():
    assert janus.dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") == b"hello world"


def test_janus_url_must_be_http():
    with pytest.raises(janus.JanusError):
        janus.JanusClient("ftp://example.invalid/janus", api_secret="")


@pytest.mark.django_db
def test_go_live_screen_shows_the_whip_url_and_token_beside_rtmp(client, session, host):
    from django.urls import reverse

    key = session.issue_stream_key()
    client.force_login(host)
    url = reverse("wagtail_live_admin:go_live", args=[session.pk])
    assert b"live-whip-url" not in client.get(url).content  # WebRTC off: nothing shown
    with override_settings(WAGTAIL_LIVE={"WEBRTC": "janus", "JANUS_API_SECRET": "never-shown"}):
        page = client.get(url).content.decode()
    assert f"http://testserver/live/whip/{session.pk}/" in page
    assert f'id="live-whip-token" type="password" readonly value="{key}"' in page
    assert "live-rtmp-url" in page
    assert "never-shown" not in page


@pytest.mark.django_db
def test_whip_token_is_hidden_from_who_may_not_see_the_key(client, session):
    from django.urls import reverse

    from tests.utils import make_editor

    session.issue_stream_key()
    client.force_login(make_editor("goer", "go_live"))  # may go live, may not see the key
    with override_settings(WAGTAIL_LIVE={"WEBRTC": "janus"}):
        page = client.get(reverse("wagtail_live_admin:go_live", args=[session.pk]))
    assert page.status_code == 200
    assert b"live-whip-url" in page.content
    assert b'id="live-whip-token"' not in page.content
    assert b"data-live-low-latency" not in page.content
    assert b"Only the host can see the stream key." in page.content


def test_live_janus_config_writes_the_files_without_printing_secrets(tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="JANUS_API_SECRET"):
        call_command("live_janus_config", str(tmp_path / "none"))
    out = StringIO()
    secrets = {"JANUS_API_SECRET": "api-s3cret", "JANUS_ADMIN_KEY": "adm-k3y"}
    with override_settings(WAGTAIL_LIVE=secrets):
        call_command("live_janus_config", str(tmp_path / "janus"), "--public-ip", "203.0.113.5",
                     stdout=out)  # fmt: skip
    assert "api-s3cret" not in out.getvalue() and "adm-k3y" not in out.getvalue()
    core = (tmp_path / "janus" / "janus.jcfg").read_text()
    assert 'api_secret = "api-s3cret"' in core and 'nat_1_1_mapping = "203.0.113.5"' in core


@pytest.mark.django_db
def test_webrtc_viewers_need_webrtc_on_and_a_valid_grant(client, session, webrtc_on):
    from wagtail_live import grants

    forged = client.post(f"/live/webrtc/{session.pk}/1-{'A' * 43}/")
    assert forged.status_code == 403 and forged.json()["fallback"] == "hls"
    token = grants.issue(session).token
    down = client.post(f"/live/webrtc/{session.pk}/{token}/")  # Janus at a closed port
    assert down.status_code == 503 and down.json()["fallback"] == "hls"
    with override_settings(WAGTAIL_LIVE={}):
        off = client.post(f"/live/webrtc/{session.pk}/{token}/")
    assert off.status_code == 404 and off.json()["fallback"] == "hls"


@pytest.mark.django_db
def test_webrtc_viewer_resources_are_signed_and_keepalives_need_a_live_grant(
    client, session, webrtc_on
):
    from django.core import signing

    from wagtail_live import grants
    from wagtail_live.views.webrtc_watch import RESOURCE_SALT

    token = grants.issue(session).token
    assert client.post(f"/live/webrtc/{session.pk}/{token}/forged/").status_code == 404
    resource = signing.dumps({"p": session.pk, "s": 1, "h": 2}, salt=RESOURCE_SALT)
    expired = f"/live/webrtc/{session.pk}/1-{'A' * 43}/{resource}/"
    response = client.post(expired, {"type": "keepalive"}, content_type="application/json")
    assert response.status_code == 403  # no renewed grant: Janus drops the viewer
    url = f"/live/webrtc/{session.pk}/{token}/{resource}/"
    response = client.post(url, {"type": "dance"}, content_type="application/json")
    assert response.status_code == 400
    response = client.post(url, "not json", content_type="application/json")
    assert response.status_code == 400


def test_janus_errors_never_carry_the_api_secret():
    import asyncio

    client = janus.JanusClient(f"http://127.0.0.1:{closed_port()}/janus", api_secret="s3cret")
    with pytest.raises(janus.JanusError) as raised:
        asyncio.run(client.events(123))  # the long poll puts the secret in its query
    assert "s3cret" not in str(raised.value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fragment",
    [
        "a=mid:0\r\na=candidate:1 1 udp 1 10.0.0.\x001 9 typ host\r\n",  # NUL
        "a=mid:0\r\na=candidate:1 1 udp 1 10.0.0.1 9 typ host \x7f\r\n",  # DEL
        "a=mid:0\r\na=candidate:1 1 udp 1 10.0.0.1 9 typ host " + "x" * 600 + "\r\n",
        "a=mid:0\r\n" + "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n" * 51,
        "a=mid:\x01\r\na=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n",
    ],
)
def test_a_malformed_trickle_fragment_is_a_400_before_janus_hears_of_it(
    client, session, webrtc_on, fragment
):
    from django.core import signing

    from wagtail_live.views.whip import RESOURCE_SALT

    key = session.issue_stream_key()
    resource = signing.dumps({"p": session.pk, "s": 1, "h": 2}, salt=RESOURCE_SALT)
    response = client.generic(
        "PATCH", f"/live/whip/{session.pk}/{resource}/", fragment.encode(),
        content_type="application/trickle-ice-sdpfrag",
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    assert response.status_code == 400  # Janus (a closed port) would have made it a 503


@pytest.mark.parametrize(
    "options",
    [
        {"api_secret": "with space"},
        {"admin_key": "back\\slash"},
        {"ip": "127.0.0.1\n"},
        {"nat_1_1_mapping": "203.0.113.5,nonsense"},
        {"stun_server": "stun.example.org:99999"},
        {"stun_server": 'stun"x'},
        {"rtp_port_range": "20000-40000\nx"},
        {"libraries": '/usr/lib"'},
        {"ice_enforce_list": 'eth0"'},
    ],
)
def test_janus_config_refuses_values_that_are_not_plain(tmp_path, options):
    with pytest.raises(ValueError):
        janus.write_janus_config(tmp_path / "janus", **options)
    assert not (tmp_path / "janus").exists()


def test_janus_config_accepts_plain_values_and_keeps_files_private(tmp_path):
    existing = tmp_path / "janus.jcfg"
    existing.write_text("old")
    existing.chmod(0o644)
    path = janus.write_janus_config(
        tmp_path,
        api_secret=janus.new_secret(),
        nat_1_1_mapping="2001:db8::5",
        stun_server="stun.example.org",
    )
    assert 'stun_server = "stun.example.org"' in path.read_text()
    assert "stun_port = 3478" in path.read_text()
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in tmp_path.iterdir())


def test_one_address_holds_at_most_its_anonymous_share_of_webrtc_places():
    from django.core.cache import cache

    from wagtail_live.views.webrtc_watch import admit_viewer, viewers_key

    cache.delete(viewers_key(99999))
    with override_settings(WAGTAIL_LIVE={"ANONYMOUS_VIEWERS_PER_ADDRESS": 2}):
        admitted = [
            admit_viewer(99999, f"visitor:{n}", str(n), 10, "192.0.2.1")[0] for n in range(4)
        ]
        assert admitted == [True, True, False, False]
        assert admit_viewer(99999, "visitor:other", "o", 10, "192.0.2.2")[0]
        assert admit_viewer(99999, "user:1", "u", 10, None)[0]  # users are not capped by address
    cache.delete(viewers_key(99999))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fragment, headers, status",
    [
        # New ICE credentials, alone or with candidates: an ICE restart.
        ("a=ice-ufrag:new1\r\na=ice-pwd:newnewnewnewnewnewnewnew\r\n", {}, 422),
        ("a=ice-ufrag:new1\r\na=ice-pwd:p\r\na=mid:0\r\n" + CANDIDATE, {}, 422),
        # RFC 9725 marks a restart with If-Match: *, whatever the body.
        ("a=mid:0\r\n" + CANDIDATE, {"If-Match": "*"}, 422),
        # The offer's own ufrag, or none: candidates for Janus (a closed port here: 503).
        ("a=ice-ufrag:Hk3T\r\na=ice-pwd:p\r\na=mid:0\r\n" + CANDIDATE, {}, 503),
        ("a=mid:0\r\n" + CANDIDATE, {}, 503),
    ],
)
def test_an_ice_restart_patch_is_a_422_before_janus_hears_of_it(
    client, session, webrtc_on, fragment, headers, status
):
    from django.core import signing

    from wagtail_live.views.whip import RESOURCE_SALT

    key = session.issue_stream_key()
    resource = signing.dumps({"p": session.pk, "s": 1, "h": 2, "u": "Hk3T"}, salt=RESOURCE_SALT)
    response = client.generic(
        "PATCH", f"/live/whip/{session.pk}/{resource}/", fragment.encode(),
        content_type="application/trickle-ice-sdpfrag",
        headers={"Authorization": f"Bearer {key}", **headers},
    )  # fmt: skip
    assert response.status_code == status, response.content


def test_the_offers_ice_ufrag_is_found_for_the_resource():
    from wagtail_live.views.whip import ice_ufrag

    assert ice_ufrag(OFFER) is None
    assert ice_ufrag(OFFER + "a=ice-ufrag:Hk3T\r\na=ice-ufrag:other\r\n") == "Hk3T"


def media_event(mid, receiving):
    return {"janus": "media", "mid": mid, "type": "audio", "receiving": receiving}


def silent_publisher_watcher():
    """A :class:`janus.JanusBroadcast` with no Janus behind it (only its media bookkeeping)."""
    from types import SimpleNamespace

    broadcast = SimpleNamespace(session=SimpleNamespace(pk=1))
    return janus.JanusBroadcast(broadcast, None, 1, 2, 3, ANSWER)


async def test_a_publisher_is_silent_only_while_no_stream_receives():
    watcher = silent_publisher_watcher()
    watcher.note_media(media_event("0", True))
    watcher.note_media(media_event("1", True))
    watcher.note_media(media_event("0", False))
    assert watcher.silence_deadline() is None  # video still comes in
    watcher.note_media(media_event("1", False))
    deadline = watcher.silence_deadline()
    assert watcher.silence.is_set() and deadline is not None
    watcher.note_media(media_event("0", False))  # the silence keeps its start
    assert watcher.silence_deadline() == deadline
    watcher.note_media(media_event("1", True))
    assert watcher.silence_deadline() is None and not watcher.silence.is_set()


@pytest.mark.parametrize("receiving, replaced", [(False, True), (True, False)])
async def test_a_new_publish_replaces_only_a_silent_publisher(monkeypatch, receiving, replaced):
    import asyncio
    from types import SimpleNamespace

    monkeypatch.setattr(janus, "REPLACE_WAIT", 0.2)
    watcher = silent_publisher_watcher()
    watcher._task = asyncio.create_task(asyncio.sleep(30))  # stands in for run()
    watcher.note_media(media_event("0", True))
    session = SimpleNamespace(pk=424242)
    monkeypatch.setitem(
        janus.Broadcast._active, session.pk, SimpleNamespace(whip_publisher=watcher)
    )
    if not receiving:
        watcher.note_media(media_event("0", False))
    await janus.replace_silent_publisher(session)
    assert watcher._task.cancelled() is replaced
    watcher._task.cancel()
