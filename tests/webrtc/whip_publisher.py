"""A scripted WHIP publisher standing in for OBS: aiortc sends a test picture and a tone.

    python tests/webrtc/whip_publisher.py URL KEY --seconds 8 [--end delete|vanish|none]
        [--trickle]

POSTs the offer (RFC 9725) with ``KEY`` as the bearer token, streams ``--seconds``
of ffmpeg's ``testsrc`` (H.264, what OBS sends) and a 440 Hz sine (Opus), then
ends with ``DELETE`` (``delete``), by closing the PeerConnection without a word
(``vanish``: the encoder's app closed it) or not at all (``none``: streams until
killed; a SIGKILL is an encoder whose machine or network went away). With
``--trickle`` the offer carries no candidates: they follow in one ``PATCH``
(``application/trickle-ice-sdpfrag``, RFC 8840) to the ``Location``. Prints one JSON
line per step:
``{"step": "post", "status": 201, "location": ...}``, ``{"step": "patch", "status":
204}``, ``{"step": "connected"}``, ``{"step": "delete", "status": 200}``.
"""

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from urllib.parse import urljoin

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer


def say(**fields):
    print(json.dumps(fields), flush=True)


def http(method, url, key, body=b"", content_type=None):
    request = urllib.request.Request(url, data=body or None, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def without_candidates(sdp):
    """``sdp`` with its ``a=candidate`` and ``a=end-of-candidates`` lines left out."""
    lines = [line for line in sdp.splitlines() if not is_candidate_line(line)]
    return "\r\n".join(lines) + "\r\n"


def is_candidate_line(line):
    return line.startswith(("a=candidate:", "a=end-of-candidates"))


def trickle_fragment(sdp):
    """The RFC 8840 fragment of ``sdp``'s candidates: ICE credentials, then per m-line its
    ``a=mid`` and candidates, ended by ``a=end-of-candidates``."""
    session, *sections = sdp.replace("\r\n", "\n").split("\nm=")
    credentials = [
        line
        for line in (session + "\n" + sections[0]).splitlines()
        if line.startswith(("a=ice-ufrag:", "a=ice-pwd:"))
    ][:2]
    fragment = list(credentials)
    for section in sections:
        first, *lines = section.splitlines()
        fragment.append("m=" + first)
        fragment += [line for line in lines if line.startswith("a=mid:") or is_candidate_line(line)]
    return "\r\n".join(fragment) + "\r\n"


async def publish(url, key, seconds, end, trickle=False):
    video = MediaPlayer("testsrc=size=640x360:rate=30", format="lavfi")
    audio = MediaPlayer("sine=frequency=440:sample_rate=48000", format="lavfi")
    pc = RTCPeerConnection()
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "connected":
            connected.set()

    pc.addTrack(audio.audio)
    transceiver = pc.addTransceiver(video.video, direction="sendonly")
    h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.name == "H264"]
    transceiver.setCodecPreferences(h264)
    await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate first
    offer = pc.localDescription.sdp
    status, headers, body = await asyncio.to_thread(
        http, "POST", url, key, (without_candidates(offer) if trickle else offer).encode(),
        "application/sdp",
    )  # fmt: skip
    location = headers.get("Location")
    say(step="post", status=status, location=location, body=body if status != 201 else "")
    if status != 201:
        await pc.close()
        return 1
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    if trickle:
        status, _headers, text = await asyncio.to_thread(
            http, "PATCH", urljoin(url, location), key,
            trickle_fragment(offer).encode(), "application/trickle-ice-sdpfrag",
        )  # fmt: skip
        say(step="patch", status=status, body=text)
    try:
        await asyncio.wait_for(connected.wait(), 20)
    except TimeoutError:
        say(step="not-connected", state=pc.connectionState)
        await pc.close()
        return 1
    say(step="connected")
    if end == "none":
        await asyncio.Event().wait()
    await asyncio.sleep(seconds)
    if end == "delete":
        status, _headers, _body = await asyncio.to_thread(
            http, "DELETE", urljoin(url, location), key
        )
        say(step="delete", status=status)
    await pc.close()
    video.video.stop()
    audio.audio.stop()
    say(step="closed")
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--end", choices=["delete", "vanish", "none"], default="delete")
    parser.add_argument("--trickle", action="store_true")
    args = parser.parse_args()
    sys.exit(asyncio.run(publish(args.url, args.key, args.seconds, args.end, args.trickle)))


if __name__ == "__main__":
    main()
