"""Attacks on the WebRTC viewer signalling and the Janus client (security review, issue: WHIP/WebRTC).

Each test here failed when written: it shows one fault found by trying hostile input and
dependencies that are down. Janus is pointed at a closed port (as in
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
