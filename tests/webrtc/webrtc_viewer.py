"""A scripted WebRTC viewer (aiortc): the player's signalling, then counts decoded frames.

    python tests/webrtc/webrtc_viewer.py WATCH_URL [--frames 30] [--hold SECONDS]

POSTs to the watch URL (views/webrtc_watch.py), answers Janus's offer, decodes
``--frames`` video frames, optionally stays ``--hold`` seconds (sending keepalives)
and DELETEs its resource. Prints JSON lines: ``{"step": "watch", "status": 201}``,
``{"step": "frames", "count": 30, "width": 640}``, ``{"step": "delete", "status": 200}``.
"""

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from urllib.parse import urljoin

from aiortc import RTCPeerConnection, RTCSessionDescription


def say(**fields):
    print(json.dumps(fields), flush=True)


COOKIES = {}


def http(method, url, payload=None):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if COOKIES.get("visitor"):
        request.add_header("Cookie", f"wagtail_live_visitor={COOKIES['visitor']}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read().decode()
            return response.status, json.loads(body) if body else {}
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        return error.code, json.loads(body) if body.startswith("{") else {"error": body}


async def watch(url, frames, hold):
    status, answer = await asyncio.to_thread(http, "POST", url)
    say(step="watch", status=status, **{k: v for k, v in answer.items() if k != "sdp"})
    if status != 201:
        return 1
    resource = urljoin(url, answer["resource"])
    pc = RTCPeerConnection()
    video = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track):
        if track.kind == "video" and not video.done():
            video.set_result(track)

    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    status, _body = await asyncio.to_thread(
        http, "POST", resource, {"type": "answer", "sdp": pc.localDescription.sdp}
    )
    say(step="answer", status=status)
    track = await asyncio.wait_for(video, 20)
    count = width = 0
    async with asyncio.timeout(40):
        while count < frames:
            frame = await track.recv()
            count, width = count + 1, frame.width
    say(step="frames", count=count, width=width)
    if hold:
        await asyncio.sleep(hold)
        status, _body = await asyncio.to_thread(http, "POST", resource, {"type": "keepalive"})
        say(step="keepalive", status=status)
    status, _body = await asyncio.to_thread(http, "DELETE", resource)
    say(step="delete", status=status)
    await pc.close()
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--hold", type=float, default=0)
    parser.add_argument("--visitor", default=None, help="a signed visitor id: who this viewer is")
    args = parser.parse_args()
    COOKIES["visitor"] = args.visitor
    sys.exit(asyncio.run(watch(args.url, args.frames, args.hold)))


if __name__ == "__main__":
    main()
