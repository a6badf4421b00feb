"""The key real-process paths under both supported ASGI servers (docs/deployment.md).

uvicorn (uvloop + httptools) is what ``make demo`` and the deployment docs use; daphne stays
supported. The rest of the suite runs on ``WAGTAIL_LIVE_TEST_SERVER`` (daphne by default), so
this module runs the paths a site cannot live without on each server: a chat message from
the host reaching a viewer's socket, a websocket from another origin refused, a live playlist
and segment through the embedded verifier with a grant (again and again on one kept-alive
connection, which under uvicorn wagtail_live.servers answers from memory), and 403 with no
bytes for a forged one.
"""

import asyncio
import http.client
import json

import pytest
import websockets

from tests.live_site import SERVERS
from tests.utils import raw_get

pytestmark = [pytest.mark.slow]

PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg-00001.ts\n"
SEGMENT = b"\x47" * 188 * 4


@pytest.fixture(scope="module", params=SERVERS)
def site(request, tmp_path_factory):
    from tests.live_site import LiveSite, migrated_database

    directory = tmp_path_factory.mktemp(request.param)
    site = LiveSite(directory, migrated_database(directory), server=request.param)
    site.pk = site.run(
        f"""
        from tests.utils import make_editor, make_session
        host = make_editor("host")
        make_editor("member")
        session = make_session("Both servers", owner=host, privacy=LiveSession.Privacy.PRIVATE)
        session.start()
        hls = session.media_dir / "hls"
        hls.mkdir(parents=True)
        (hls / "index.m3u8").write_text({PLAYLIST!r})
        (hls / "seg-00001.ts").write_bytes({SEGMENT!r})
        result = session.pk
        """
    )
    site.start()
    yield site
    site.stop()


def member_grant(site):
    cookie = site.login_cookie("member")
    code, _headers, body = raw_get(
        site.port, f"/live/sessions/{site.pk}/status.json", {"Cookie": cookie}, timeout=15
    )
    assert code == 200, body
    return json.loads(body)["grant"]


def test_the_server_is_the_one_asked_for(site):
    assert ("Uvicorn running" in site.log()) == (site.server == "uvicorn")
    command = " ".join(site.process.args)
    assert ("wagtail_live.servers:HttpToolsProtocol" in command) == (site.server == "uvicorn")


def test_hls_through_the_embedded_verifier(site):
    grant = member_grant(site)
    code, headers, body = raw_get(site.port, grant["playlist_url"], timeout=15)
    assert (code, body.decode()) == (200, PLAYLIST)
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    code, headers, body = raw_get(site.port, grant["base_url"] + "hls/seg-00001.ts", timeout=15)
    assert (code, body) == (200, SEGMENT)
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_one_connection_asking_again_and_again_gets_the_same_answers(site):
    grant = member_grant(site)
    signature = grant["signature"]
    forged_base = grant["base_url"].replace(signature, signature[::-1])
    segment = grant["base_url"] + "hls/seg-00001.ts"
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=15)
    answers = []
    try:
        for path in [grant["playlist_url"], segment] * 3 + [forged_base + "hls/seg-00001.ts"]:
            connection.request("GET", path)
            response = connection.getresponse()
            answers.append((response.status, response.getheader("Cache-Control"), response.read()))
    finally:
        connection.close()
    playlist = (200, "public, max-age=1", PLAYLIST.encode())
    segment = (200, "public, max-age=31536000, immutable", SEGMENT)
    assert answers[:6] == [playlist, segment] * 3
    assert answers[6][0] == 403 and SEGMENT not in answers[6][2]


def test_a_forged_grant_gets_403_and_no_bytes(site):
    grant = member_grant(site)
    signature = grant["signature"]
    forged_signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    for name in ("hls/index.m3u8", "hls/seg-00001.ts"):
        url = grant["base_url"].replace(signature, forged_signature) + name
        code, _headers, body = raw_get(site.port, url, timeout=15)
        assert code == 403 and SEGMENT not in body and b"EXTM3U" not in body


def test_chat_reaches_a_viewer_and_other_origins_are_refused(site):
    url = f"{site.ws_url}/ws/live/{site.pk}/"
    host_cookie = site.login_cookie("host")
    member_cookie = site.login_cookie("member")

    async def next_of(connection, kind):
        while True:
            frame = await asyncio.wait_for(connection.recv(), 15)
            data = json.loads(frame)
            for message in data if isinstance(data, list) else [data]:
                if message.get("type") == kind:
                    return message

    async def scenario():
        headers = {"Cookie": member_cookie}
        async with websockets.connect(url, origin=site.url, additional_headers=headers) as viewer:
            await next_of(viewer, "state")
            host_headers = {"Cookie": host_cookie}
            async with websockets.connect(
                url, origin=site.url, additional_headers=host_headers
            ) as host:
                await next_of(host, "state")
                await host.send(json.dumps({"type": "chat.send", "text": "hello from the host"}))
                message = await next_of(viewer, "chat.message")
        assert message["text"] == "hello from the host"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, origin="http://elsewhere.example", open_timeout=15)
        assert refused.value.response.status_code == 403

    asyncio.run(scenario())
