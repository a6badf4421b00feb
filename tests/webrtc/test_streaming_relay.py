"""The RTP relay to Janus's Streaming plugin (ingest/base.py, ingest/janus.py), without Janus.

Real ffmpeg sends to UDP sockets of the test: what a mountpoint would receive. The
end-to-end path (RTMP → Janus → a WebRTC viewer) is in test_rtmp_streaming.py.
"""

import os
import shutil
import socket
import subprocess

import pytest

from tests.ingest.streams import encode_file, probe
from tests.utils import make_session, require
from wagtail_live.ffmpeg import ffmpeg_binary
from wagtail_live.ingest import janus
from wagtail_live.ingest.base import Broadcast, build_ffmpeg_args

STAP_A, FU_A, SPS, PPS, IDR = 24, 28, 7, 8, 5


def relay_to(video_port, audio_port):
    return {"host": "127.0.0.1", "video_port": video_port, "audio_port": audio_port}


def test_the_relay_adds_rtp_outputs_and_keeps_hls_and_the_recording_as_they_were():
    plain = build_ffmpeg_args("flv", "/tmp/x", segment_prefix="s")
    args = build_ffmpeg_args("flv", "/tmp/x", segment_prefix="s", rtp_relay=relay_to(5000, 5002))
    outputs = args[-1].split("|")
    assert outputs[:2] == [
        plain[-1].split("|")[0].replace("]", ":select=0\\,1]", 1),
        "[f=mpegts:select=0\\,1]pipe\\:1",
    ]
    assert outputs[2:] == [
        "[f=rtp:select=0:onfail=ignore:payload_type=96]rtp\\://127.0.0.1\\:5000?pkt_size=1200",
        "[f=rtp:select=2:onfail=ignore:payload_type=111]rtp\\://127.0.0.1\\:5002?pkt_size=1200",
    ]
    assert args[args.index("-c:a:1") + 1] == "libopus"
    assert args.count("0:a:0?") == 2


def test_an_audio_only_broadcast_is_not_relayed():
    args = build_ffmpeg_args("flv", "/tmp/x", video_codec=None, rtp_relay=relay_to(5000, 5002))
    assert "rtp" not in args[-1] and "-c:a:1" not in args


def udp_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def received(sock):
    packets = []
    while True:
        try:
            packets.append(sock.recv(4096))
        except BlockingIOError:
            return packets


def nal_types(packets):
    """The H.264 NAL unit types in RTP payloads (RFC 6184: single, STAP-A, FU-A starts)."""
    types = set()
    for packet in packets:
        payload = packet[12:]  # ffmpeg sends no CSRC or header extension
        kind = payload[0] & 0x1F
        if kind == STAP_A:
            offset = 1
            while offset + 2 < len(payload):
                size = int.from_bytes(payload[offset : offset + 2], "big")
                types.add(payload[offset + 2] & 0x1F)
                offset += 2 + size
        elif kind == FU_A:
            if payload[1] & 0x80:
                types.add(payload[1] & 0x1F)
        else:
            types.add(kind)
    return types


def run_pipeline(tmp_path, source, input_format, relay, **codecs):
    directory = tmp_path / "hls"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    with open(tmp_path / "recording.mpegts", "wb") as recording:
        fd = recording.fileno()
        args = build_ffmpeg_args(
            input_format, directory, recording_fd=fd, rtp_relay=relay, **codecs
        )
        done = subprocess.run(
            [ffmpeg_binary(), *args],
            input=source,
            pass_fds=(fd,),
            capture_output=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (directory / "index.m3u8").read_text().count(".ts") >= 2
    return probe(tmp_path / "recording.mpegts")


@pytest.mark.parametrize(
    "input_format, encoders, codecs",
    [
        ("flv", {"video": "libx264", "audio": "aac"}, {"video_codec": "h264"}),
        ("webm", {"video": "libvpx", "audio": "libopus"}, {"video_codec": "vp8"}),
    ],
    ids=["rtmp", "browser"],
)
def test_video_goes_out_with_its_parameter_sets_and_the_audio_as_opus(
    tmp_path, input_format, encoders, codecs
):
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    source = encode_file(tmp_path / f"in.{input_format}", 3, container=input_format, **encoders)
    video, audio = udp_socket(), udp_socket()
    relay = relay_to(video.getsockname()[1], audio.getsockname()[1])
    audio_codec = "opus" if input_format == "webm" else "aac"
    try:
        recorded = run_pipeline(
            tmp_path, source, input_format, relay, audio_codec=audio_codec, **codecs
        )
        video_packets, audio_packets = received(video), received(audio)
    finally:
        video.close()
        audio.close()
    assert recorded[0] == ["aac", "h264"]  # no Opus in the recording
    assert {packet[1] & 0x7F for packet in video_packets} == {janus.VIDEO_PT}
    assert {packet[1] & 0x7F for packet in audio_packets} == {janus.AUDIO_PT}
    # A viewer joining at any keyframe can decode: SPS and PPS travel with the IDR.
    assert {SPS, PPS, IDR} <= nal_types(video_packets)


def test_nothing_listening_on_the_relay_ports_stops_neither_hls_nor_the_recording(tmp_path):
    require(os.path.exists(ffmpeg_binary()), "an ffmpeg binary")
    source = encode_file(tmp_path / "in.flv", 3)
    ports = []
    for _ in range(2):
        sock = udp_socket()
        ports.append(sock.getsockname()[1])
        sock.close()  # Janus down: nobody there
    codecs, duration = run_pipeline(tmp_path, source, "flv", relay_to(*ports))
    assert codecs == ["aac", "h264"] and duration > 2


@pytest.mark.django_db(transaction=True)
async def test_janus_unreachable_gives_no_relay_and_no_error(settings, caplog):
    from asgiref.sync import sync_to_async

    with socket.socket() as closed:  # a TCP port nothing listens on once closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.WAGTAIL_LIVE = {"WEBRTC": "janus", "JANUS_URL": f"http://127.0.0.1:{port}/janus"}
    session = await sync_to_async(make_session)()
    broadcast = Broadcast(session)
    assert await broadcast.open_webrtc_relay("h264") is None
    assert "no WebRTC playback" in caplog.text
    await janus.close_streaming_relay(session)  # logged, not raised


def test_the_mountpoint_pin_is_per_session_and_not_the_secret():
    class Session:
        def __init__(self, pk):
            self.pk = pk

    one, two = Session(1), Session(2)
    assert janus.mountpoint_password(one, "pin") != janus.mountpoint_password(two, "pin")
    assert janus.mountpoint_password(one, "pin") != janus.mountpoint_password(one, "secret")
    assert len(janus.mountpoint_password(one, "pin")) == 32
