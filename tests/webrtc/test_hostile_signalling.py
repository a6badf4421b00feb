"""Hostile input and a silent Janus against the WebRTC viewer signalling and the Janus client.

Each test failed when a security review wrote it (hostile JSON, offers racing the audience
cap, one visitor repeating offers, a Janus that never answers, secrets in error text). Janus is pointed at a closed port (as in
tests/webrtc/test_whip_views.py), so nothing here needs Janus running.
"""

import asyncio
import logging
import socket

import pytest
from django.core import signing
from django.test import Client, override_settings

from wagtail_live import grants
from wagtail_live.ingest import janus
from wagtail_live.views.webrtc_watch import RESOURCE_SALT

SECRET = "janus-api-secret-never-shown"


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def webrtc_on():
    settings = {
        "WEBRTC": "janus",
        "JANUS_URL": f"http://127.0.0.1:{closed_port()}/janus",
        "JANUS_API_SECRET": SECRET,
    }
    with override_settings(WAGTAIL_LIVE=settings):
        yield


def viewer_url(session):
    """A viewer resource URL as the watch view hands it out, under a valid grant."""
    grant = grants.issue(session)
    resource = signing.dumps({"p": session.pk, "s": 1, "h": 2}, salt=RESOURCE_SALT)
    return f"/live/webrtc/{session.pk}/{grant.token}/{resource}/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "[]",  # JSON, but not an object
        '"keepalive"',
        "1",
        "null",
        "[" * 100_000 + "]" * 100_000,  # nested past the decoder's recursion limit
    ],
)
def test_a_viewer_message_that_is_not_a_json_object_is_a_400_not_a_500(session, webrtc_on, body):
    """POST to a viewer resource with a valid grant and JSON that is not an object.

    ``views/webrtc_watch.viewer`` does ``json.loads(...)`` then ``message.get(...)``: a list,
    string or number raises AttributeError, deep nesting RecursionError (not ValueError):
    a 500 with a traceback instead of the client error the security rule asks for.
    """
    client = Client(raise_request_exception=False)
    response = client.post(viewer_url(session), body, content_type="application/json")
    assert response.status_code == 400, response.status_code
    assert response.json()["fallback"] == "hls"


def test_a_janus_long_poll_error_does_not_carry_the_api_secret(caplog):
    """``JanusClient.events`` long-polls ``GET /<session>?maxev=10&apisecret=<secret>``.

    When Janus is down (or answers non-200) the JanusError's message repeats that path, so
    the API secret lands in every log that prints the error (``JanusBroadcast.follow`` logs
    "Janus session gone (%s)"; ``subscribe`` errors are logged by the watch view).
    """
    client = janus.JanusClient(
        url=f"http://127.0.0.1:{closed_port()}/janus", api_secret=SECRET, timeout=5
    )
    with pytest.raises(janus.JanusError) as raised:
        asyncio.run(client.events(1234))
    logging.getLogger("wagtail_live.ingest.janus").warning("Janus session gone (%s)", raised.value)
    assert SECRET not in str(raised.value)
    assert SECRET not in caplog.text


# -- the WebRTC audience cap -------------------------------------------------------------


class FakeJanus:
    """A Janus HTTP API (https://janus.conf.meetecho.com/docs/rest.html) on a free port that
    knows one VideoRoom publisher and offers every subscriber after ``delay`` seconds.

    Only what ``janus.subscribe`` asks: create, attach, listparticipants, join, the
    long-poll with the offer, destroy. Real enough for the cap, which lives in Django.
    """

    def __init__(self, delay=0.5):
        import itertools
        import json
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        ids = itertools.count(1000)
        fake = self
        self.subscribers = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, data):
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                kind, parts = request.get("janus"), self.path.split("?")[0].strip("/").split("/")
                if kind in ("create", "attach"):
                    new = next(ids)
                    if kind == "attach":
                        fake.handles[int(parts[1])] = new
                    return self.answer({"janus": "success", "data": {"id": new}})
                body = request.get("body") or {}
                if body.get("request") == "listparticipants":
                    data = {"participants": [{"id": 7, "publisher": True}]}
                    return self.answer({"janus": "success", "plugindata": {"data": data}})
                if body.get("request") == "join":
                    fake.subscribers += 1
                return self.answer({"janus": "ack" if len(parts) > 2 else "success"})

            def do_GET(self):
                time.sleep(fake.delay)
                session = int(self.path.split("?")[0].strip("/").split("/")[1])
                if fake.silent:  # a Janus that never offers: every poll comes back empty
                    return self.answer([])
                sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                event = {
                    "janus": "event",
                    "sender": fake.handles.get(session),
                    "jsep": {"type": "offer", "sdp": sdp},
                }
                self.answer([event])

        self.delay = delay
        self.handles = {}
        self.silent = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/janus"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_janus():
    from django.core.cache import cache

    janus_server = FakeJanus()
    settings = {"WEBRTC": "janus", "JANUS_URL": janus_server.url, "WEBRTC_MAX_VIEWERS": 2}
    cache.clear()
    with override_settings(WAGTAIL_LIVE=settings):
        yield janus_server
    janus_server.stop()
    cache.clear()


def watch_url(session):
    return f"/live/webrtc/{session.pk}/{grants.issue(session).token}/"


@pytest.mark.django_db(transaction=True)
def test_offers_at_once_cannot_exceed_the_webrtc_audience_cap(session, fake_janus):
    """WEBRTC_MAX_VIEWERS = 2; six viewers POST at the same moment.

    ``watch`` reads the count, then waits for Janus's offer, and only then counts the
    viewer: every request that arrives while the first ones wait passes the check, so
    Janus gets six subscribers for a cap of two.
    """
    from django.test import AsyncClient

    async def offers():
        url = watch_url(session)
        return await asyncio.gather(*(AsyncClient().post(url) for _ in range(6)))

    statuses = [response.status_code for response in asyncio.run(offers())]
    assert statuses.count(201) <= 2, statuses
    assert fake_janus.subscribers <= 2, fake_janus.subscribers


@pytest.mark.django_db
def test_one_visitor_repeating_its_offer_does_not_fill_the_webrtc_audience(session, fake_janus):
    """One visitor POSTs watch again and again (a reload loop, or on purpose): each POST
    is a new Janus subscriber counted as another viewer, so one person takes every
    place of WEBRTC_MAX_VIEWERS and everyone else is sent to HLS. The security rule:
    counts count people, not sockets (the chat's presence uses the visitor cookie).
    """
    one = Client()
    url = watch_url(session)
    for _ in range(3):
        one.post(url)
    someone_else = Client().post(url)
    assert someone_else.status_code == 201, someone_else.content


@pytest.mark.django_db
def test_a_janus_that_never_offers_is_a_503_fallback_not_a_500(session, fake_janus):
    """Janus answers create/attach/join but never sends the subscriber's offer (overloaded,
    or the publisher just left). ``subscribe`` waits inside ``asyncio.timeout``, whose
    TimeoutError is no JanusError: the watch view lets it out as a 500 with a traceback
    instead of ``"fallback": "hls"`` (the player then shows an error instead of HLS).
    """
    fake_janus.silent = True
    fake_janus.delay = 0.2
    response = Client(raise_request_exception=False).post(watch_url(session))
    assert response.status_code == 503, response.status_code
    assert response.json()["fallback"] == "hls"


@pytest.mark.django_db
def test_a_whip_offer_janus_never_answers_is_a_503_not_a_500(session, fake_janus):
    """The same wait in WHIP: Janus takes the offer (ack) but never sends the answer event.

    ``join_and_publish`` waits inside ``asyncio.timeout``; its TimeoutError is no
    JanusError, so ``whip_endpoint`` answers 500 (an encoder sees a server fault, not
    "try again"), and nothing says why in a clear message.
    """
    key = session.issue_stream_key()
    fake_janus.silent = True
    fake_janus.delay = 0.2
    offer = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 H264/90000\r\n"
    )
    response = Client(raise_request_exception=False).post(
        f"/live/whip/{session.pk}/",
        offer,
        content_type="application/sdp",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 503, response.status_code
    assert key.encode() not in response.content
    session.refresh_from_db()
    assert session.status == session.Status.READY
