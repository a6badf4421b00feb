"""Hostile and broken WHIP publishers and WebRTC viewers against the real Janus and daphne.

Each test is a case found in a security and robustness review: stale or malformed requests,
offers and publishers that can never stream, refused and multiplied viewers, and config
values that would write other Janus settings. Everything runs inside the namespace of
tests/webrtc/netns.py; HTTP goes through curl started inside it.
"""

import subprocess
import time

import pytest

from tests.webrtc.netns import http, janus_site
from tests.webrtc.test_whip_janus import (
    SETUP,
    new_session_with_key,
    publisher,
    read_step,
    state,
    wait_until,
)

pytestmark = pytest.mark.slow

#: Long enough for a publisher to come back within it.
GRACE = 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile-janus")
    limits = {"WEBRTC_MAX_VIEWERS": 5, "ANONYMOUS_VIEWERS_PER_ADDRESS": 2}
    with janus_site(directory, SETUP, RECONNECT_GRACE=GRACE, **limits) as parts:
        yield parts


def end_quietly(site, pk):
    """End session ``pk`` unless it has ended already (the faults here may have ended it)."""
    site.run(f"s = LiveSession.objects.get(pk={pk})\nif not s.has_ended: s.end()\nresult = None")


# ---------------------------------------------------------------------------
# WHIP resources
# ---------------------------------------------------------------------------


def test_a_stale_whip_location_does_not_end_the_resumed_publish(stack):
    """An encoder that reconnects within the grace and then DELETEs its *old* resource.

    Encoders clean up the resource they lost (RFC 9725 §4.3: DELETE ends *that* resource).
    The old Location still verifies, but names a Janus session that is no longer the
    broadcast's: only that one is dealt with (200/404) and the resumed publish stays live.
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    first = publisher(netns, site, pk, key, "--seconds", "4", "--end", "vanish")
    stale = read_step(first, "post")["location"]
    read_step(first, "closed")
    first.wait()
    second = publisher(netns, site, pk, key, "--end", "none")
    try:
        assert read_step(second, "post")["status"] == 201
        read_step(second, "connected")
        wait_until(lambda: state(site, pk)["status"] == "live")
        status, _headers, _body = http(
            netns, "DELETE", site.url + stale, headers=[f"Authorization: Bearer {key}"]
        )
        assert status in (200, 404)
        time.sleep(4)  # the watcher re-reads the session every 2 s
        assert state(site, pk)["status"] == "live", "the stale Location ended the new publish"
    finally:
        second.kill()
        second.wait()
        end_quietly(site, pk)


# A well-formed offer whose only stream is AV1 video: nothing Janus's rooms accept
# (videocodec h264,vp8,vp9; no audio at all).
FINGERPRINT = ":".join(["AB"] * 32)
AV1_ONLY_OFFER = (
    "\r\n".join(
        [
            "v=0",
            "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "m=video 9 UDP/TLS/RTP/SAVPF 45",
            "c=IN IP4 0.0.0.0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:Hk3T",
            "a=ice-pwd:9qGlWmOfa0TRkXHnsN3vZk2x",
            "a=ice-options:trickle",
            f"a=fingerprint:sha-256 {FINGERPRINT}",
            "a=setup:actpass",
            "a=mid:0",
            "a=sendonly",
            "a=rtcp-mux",
            "a=rtpmap:45 AV1/90000",
        ]
    )
    + "\r\n"
)


def test_a_whip_offer_with_nothing_usable_is_a_400_and_claims_nothing(stack):
    """An AV1-only offer: Janus rejects the one m-line, so nothing could ever be streamed.

    The encoder hears at once that its offer is unusable (400, "no usable audio/video"),
    the Janus session is destroyed and the session is not claimed.
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    status, _headers, body = http(
        netns,
        "POST",
        f"{site.url}/live/whip/{pk}/",
        AV1_ONLY_OFFER,
        [f"Authorization: Bearer {key}", "Content-Type: application/sdp"],
    )
    try:
        assert status == 400, (status, body[:500])
        assert state(site, pk)["status"] != "live"
    finally:
        end_quietly(site, pk)


# ---------------------------------------------------------------------------
# WebRTC viewers
# ---------------------------------------------------------------------------


def test_a_refused_viewer_keepalive_drops_the_viewer_at_once(stack):
    """A viewer whose grant is no longer valid (banned, expired) is refused a keepalive (403).

    The refusal ends the viewer's Janus session (and media) and frees its place at once:
    a still-valid grant for the session (grants are shared by everyone in a window) cannot
    revive it, the next keepalive is 410 whatever grant it carries.
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    valid, expired = site.run(
        "import time\nfrom wagtail_live import grants\n"
        f"result = [grants.issue({pk}).token, grants.issue({pk}, now=time.time() - 3600).token]"
    )
    live = publisher(netns, site, pk, key, "--end", "none")
    try:
        wait_until(lambda: state(site, pk)["status"] == "live")
        status, _headers, body = http(netns, "POST", f"{site.url}/live/webrtc/{pk}/{valid}/")
        assert status == 201, body
        import json

        resource = json.loads(body)["resource"].rstrip("/").rsplit("/", 1)[1]

        def keepalive(grant):
            return http(
                netns,
                "POST",
                f"{site.url}/live/webrtc/{pk}/{grant}/{resource}/",
                '{"type": "keepalive"}',
                ["Content-Type: application/json"],
            )[0]

        assert keepalive(expired) == 403
        assert keepalive(valid) == 410, "the refused viewer still holds its Janus session"
    finally:
        live.kill()
        live.wait()
        end_quietly(site, pk)


def test_one_address_minting_visitor_ids_cannot_take_the_whole_webrtc_audience(stack):
    """Signed visitor ids are free for the asking (the live socket hands one to every new
    socket); as in the live count, one address's anonymous viewers hold at most
    ``ANONYMOUS_VIEWERS_PER_ADDRESS`` (2 here) of the five WebRTC places, the rest play HLS.
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    grant = site.run(f"from wagtail_live import grants\nresult = grants.issue({pk}).token")
    minted = site.run(
        "from wagtail_live.visitors import new_visitor_cookie\n"
        "result = [new_visitor_cookie() for _ in range(5)]"
    )
    live = publisher(netns, site, pk, key, "--end", "none")
    try:
        wait_until(lambda: state(site, pk)["status"] == "live")
        admitted = 0
        for cookie in minted:
            status, _headers, _body = http(
                netns,
                "POST",
                f"{site.url}/live/webrtc/{pk}/{grant}/",
                headers=[f"Cookie: wagtail_live_visitor={cookie}"],
            )
            admitted += status == 201
        assert admitted <= 2, f"one address holds {admitted} of the 5 WebRTC places"
    finally:
        live.kill()
        live.wait()
        end_quietly(site, pk)


def test_an_unusable_whip_offer_does_not_lock_the_session_out(stack):
    """After an AV1-only offer (refused with 400) the host's real encoder is accepted at
    once (201), not refused with 409 "Another encoder is already live" by a claim nothing
    would ever release.
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    http(
        netns,
        "POST",
        f"{site.url}/live/whip/{pk}/",
        AV1_ONLY_OFFER,
        [f"Authorization: Bearer {key}", "Content-Type: application/sdp"],
    )
    real = publisher(netns, site, pk, key, "--seconds", "2", "--end", "delete")
    try:
        post = read_step(real, "post")
        assert post["status"] == 201, post
    finally:
        real.kill()
        real.wait()
        end_quietly(site, pk)


def test_a_malformed_trickle_candidate_is_a_400_not_the_resource_ended(stack):
    """A PATCH with a candidate Janus cannot parse (a NUL byte) while the resource and its
    publisher are alive is the client's error (400), not "This WHIP resource has ended."
    (404), which an encoder would take as a reason to stop or republish.
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    live = publisher(netns, site, pk, key, "--end", "none")
    try:
        location = read_step(live, "post")["location"]
        read_step(live, "connected")
        status, _headers, body = http(
            netns,
            "PATCH",
            site.url + location,
            "a=mid:0\r\na=candidate:1 1 udp 1 10.0.0.\x001 9 typ host\r\n",
            [f"Authorization: Bearer {key}", "Content-Type: application/trickle-ice-sdpfrag"],
        )
        assert status == 400, (status, body)
    finally:
        live.kill()
        live.wait()
        end_quietly(site, pk)


#: A valid H.264 offer from an encoder that dies right after its POST: no candidate ever
#: comes (no trickle PATCH), so ICE never even starts.
H264_OFFER = AV1_ONLY_OFFER.replace("SAVPF 45", "SAVPF 102").replace(
    "a=rtpmap:45 AV1/90000",
    "a=rtpmap:102 H264/90000\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
)


def test_a_publisher_that_never_connects_does_not_hold_the_session(stack):
    """An encoder gets its 201 and never connects (crashed, UDP blocked): Janus never
    reports a hangup, so the publish is hung up after ``janus.CONNECT_TIMEOUT`` and the
    session given back; the host's encoder is then accepted (201) rather than refused with
    409 "Another encoder is already live" for ever.
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    status, _headers, _body = http(
        netns,
        "POST",
        f"{site.url}/live/whip/{pk}/",
        H264_OFFER,
        [f"Authorization: Bearer {key}", "Content-Type: application/sdp"],
    )
    assert status == 201

    def real_encoder_accepted():
        real = publisher(netns, site, pk, key, "--seconds", "2", "--end", "delete")
        try:
            return read_step(real, "post")["status"] == 201
        finally:
            real.kill()
            real.wait()
            time.sleep(10)

    try:
        wait_until(real_encoder_accepted, timeout=GRACE + 60, interval=0)
    finally:
        end_quietly(site, pk)


#: Waits for one UDP datagram on the publisher's address inside the namespace: prints the
#: port it listens on, then the datagram in hex (or "none" after the timeout).
LISTEN_ONCE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.254.0.2", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(float(sys.argv[1]))
try:
    print(s.recv(2048).hex(), flush=True)
except OSError:
    print("none", flush=True)
"""


def stun_checks_to_a_candidate(netns, site, location, key, seconds=8):
    """Trickle a candidate at a fresh UDP port by PATCH with ``key``; return ``(status,
    datagram)``: what Janus's ICE agent sent there within ``seconds`` (bytes, or None)."""
    import sys

    from tests.live_site import ROOT

    listener = subprocess.Popen(
        netns.command([sys.executable, "-c", LISTEN_ONCE, str(seconds)]),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(listener.stdout.readline())
        fragment = f"a=mid:0\r\na=candidate:1 1 udp 2130706431 10.254.0.2 {port} typ host\r\n"
        status, _headers, _body = http(
            netns,
            "PATCH",
            site.url + location,
            fragment,
            [f"Authorization: Bearer {key}", "Content-Type: application/trickle-ice-sdpfrag"],
        )
        received = listener.stdout.readline().strip()
    finally:
        listener.kill()
        listener.wait()
    return status, None if received in ("", "none") else bytes.fromhex(received)


def test_trickled_candidates_reach_janus_only_with_the_key(stack):
    """A publisher whose offer had no candidate trickles one by PATCH (RFC 9725 §4.3): with a
    wrong bearer token it is refused (401) and Janus never hears of it; with the key (204)
    Janus's ICE agent sends its connectivity checks (STUN Binding requests naming the
    offer's ufrag) to that very address.
    """
    netns, _janus, site = stack
    pk, key = new_session_with_key(site)
    status, headers, _body = http(
        netns,
        "POST",
        f"{site.url}/live/whip/{pk}/",
        H264_OFFER,
        [f"Authorization: Bearer {key}", "Content-Type: application/sdp"],
    )
    try:
        assert status == 201
        location = headers["location"]
        status, datagram = stun_checks_to_a_candidate(netns, site, location, "not-the-key")
        assert status == 401 and datagram is None, (status, datagram)
        status, datagram = stun_checks_to_a_candidate(netns, site, location, key)
        assert status == 204
        assert datagram is not None, "Janus sent nothing to the trickled candidate"
        # A STUN Binding request (RFC 8489: type 0x0001) whose USERNAME is "Hk3T:<Janus's>".
        assert datagram[:2] == b"\x00\x01" and b"Hk3T:" in datagram, datagram
    finally:
        end_quietly(site, pk)


# ---------------------------------------------------------------------------
# manage.py live_janus_config
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, option",
    [
        # A secret with a quote and a newline raises Janus's debug level, which then logs
        # every HTTP request, the long polls' ?apisecret= included.
        ({"JANUS_API_SECRET": 's3cret"\n\tdebug_level = 7\n\tx = "'}, []),
        ({}, ["--stun-server", 'stun.example.org:3478"\n}\nplugins: {\n\tdisable = "']),
        ({}, ["--public-ip", '203.0.113.5"\n\tice_enforce_list = "lo']),
    ],
)
def test_live_janus_config_refuses_values_that_would_break_out_of_the_config(
    tmp_path, setting, option
):
    """Values go into the jcfg files between double quotes: a quote or a newline in a
    setting or an option would write other Janus settings (or a broken file Janus refuses
    with a parse error far from the cause). They get a clear CommandError and no files.
    """
    from django.core.management import CommandError, call_command
    from django.test import override_settings

    settings = {"JANUS_API_SECRET": "api-s3cret", "JANUS_ADMIN_KEY": "adm-k3y", **setting}
    directory = tmp_path / "janus"
    with override_settings(WAGTAIL_LIVE=settings), pytest.raises(CommandError):
        call_command("live_janus_config", str(directory), *option)
    assert not (directory / "janus.jcfg").exists()
