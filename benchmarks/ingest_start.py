"""Ingest benchmarks: encoder start -> first playable playlist, and ingest CPU for 720p30.

Run from the repository root::

    .venv/bin/python benchmarks/ingest_start.py [--rounds 3] [--cpu-seconds 20]

One run starts one real site (daphne, its own SQLite and media root), the
embedded RTMP listener (``manage.py live_rtmp``) and a real nginx-rtmp
(``manage.py live_nginx_config --full``) calling that site back, then for each
path in turn starts a real encoder (ffmpeg, lavfi 720p30, keyframe every
second) and measures the time from starting the encoder to the first playlist
that lists a segment (what a player needs to start):

* browser: WebM (H.264 + Opus, as Chromium's MediaRecorder sends it) written by
  ffmpeg in real time and sent in chunks over the ingest websocket;
* embedded RTMP and nginx-rtmp: ffmpeg publishing over RTMP.

CPU: the same 720p30 H.264/AAC input pushed in real time through the embedded
RTMP listener (listener + its ffmpeg, stream copy), against our pipeline's
libx264 transcode of the same input; both measured while the stream flows,
after a warm-up (what carrying a stream costs, not starting or finishing one).
Results go into docs/benchmarks.md by hand.
"""

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procstat import process_cpu_seconds  # noqa: E402 (benchmarks/, the script's folder)

from tests.live_site import LiveSite, migrated_database  # noqa: E402

SECRET = "benchmark-secret"
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def ffmpeg():
    import imageio_ffmpeg

    return shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# testsrc2 is unusually cheap for x264; temporal noise makes it cost what a camera does.
SOURCES = {
    "testsrc2": "testsrc2=size=1280x720:rate=30",
    "noisy": "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t+u",
}


def lavfi_720p30(seconds=None, source="testsrc2"):
    args = ["-f", "lavfi", "-i", SOURCES[source]]
    args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    if seconds:
        args += ["-t", str(seconds)]
    return args


H264 = ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"]
H264 += ["-g", "30", "-keyint_min", "30", "-b:v", "2500k"]


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def first_playable(playlist, started, timeout=20):
    """Seconds from ``started`` until ``playlist`` lists a segment."""
    while time.monotonic() - started < timeout:
        try:
            if "#EXTINF" in playlist.read_text():
                return time.monotonic() - started
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"no playlist at {playlist} after {timeout}s")


def wait_for_pipeline(parent, timeout=20):
    """The pid of the listener's ffmpeg pipeline (the child reading media from its stdin).

    Matched on the command line: the listener also runs a short-lived
    ``ffmpeg -version`` (imageio-ffmpeg checking its binary) the first time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
                command = (stat.parent / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if ppid == str(parent) and b"pipe:0" in command:
                return int(stat.parent.name)
        time.sleep(0.05)
    raise RuntimeError(f"process {parent} started no ffmpeg pipeline")


# Seconds left out at the start of a stream: connecting, the session's transition to live,
# ffmpeg probing its input. The goal is the cost of carrying a stream, not of starting one.
WARM_UP = 4


def steady_cpu(pids, seconds):
    """CPU-seconds per second of each process over ``seconds``, after the warm-up."""
    time.sleep(WARM_UP)
    before = [process_cpu_seconds(pid) for pid in pids]
    time.sleep(seconds)
    after = [process_cpu_seconds(pid) for pid in pids]
    return [(a - b) / seconds for a, b in zip(after, before, strict=True)]


class Bench:
    def __init__(self, directory):
        self.directory = Path(directory)
        self.rtmp_port = free_port()
        self.nginx_port = free_port()
        template = migrated_database(self.directory)
        self.site = LiveSite(
            self.directory / "site",
            template,
            {"NGINX_SECRET": SECRET, "RECONNECT_GRACE": 0, "RTMP_PORT": self.rtmp_port},
        ).start()
        self.site.run("User.objects.create_superuser('bench', 'bench@example.com', 'password')")
        self.cookie = self.site.login_cookie("bench")
        self.processes = []

    def manage(self, *args, **kwargs):
        return subprocess.Popen(
            [sys.executable, "-m", "django", *args], cwd=ROOT, env=self.site.env, **kwargs
        )

    def start_listener(self):
        self.listener = self.manage("live_rtmp", f"--port={self.rtmp_port}")
        self.processes.append(self.listener)
        wait_port(self.rtmp_port)

    def start_nginx(self):
        prefix = self.directory / "nginx"
        prefix.mkdir()
        (self.site.media_root / "uploads" / "live").mkdir(parents=True, exist_ok=True)
        config = subprocess.run(
            [sys.executable, "-m", "django", "live_nginx_config", "--full",
             f"--site-url={self.site.url}", f"--rtmp-port={self.nginx_port}",
             f"--prefix={prefix}", f"--module-path={NGINX_MODULE}"],
            cwd=ROOT, env=self.site.env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        (prefix / "nginx.conf").write_text(config)
        self.processes.append(
            subprocess.Popen(
                ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
            )  # fmt: skip
        )
        wait_port(self.nginx_port)

    def new_session(self, title):
        return self.site.run(
            f"""
            session = LiveSession.objects.create(title={title!r})
            result = [session.pk, session.issue_stream_key()]
            """
        )

    def playlist(self, pk):
        return self.site.media_root / "uploads" / "live" / str(pk) / "hls" / "index.m3u8"

    def rtmp_start(self, port, title):
        pk, key = self.new_session(title)
        # nginx takes the stream <pk>/hls with the key as an argument (docs/deploying-nginx-rtmp.md);
        # ffmpeg needs a name with a "/" apart from the URL.
        target = ["-rtmp_playpath", f"{pk}/hls?key={key}", f"rtmp://127.0.0.1:{port}/live"]
        if port != self.nginx_port:
            target = [f"rtmp://127.0.0.1:{port}/live/{key}"]
        started = time.monotonic()
        encoder = subprocess.Popen(
            [ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-re", *lavfi_720p30(8), *H264,
             "-c:a", "aac", "-f", "flv", *target],
        )  # fmt: skip
        try:
            return first_playable(self.playlist(pk), started)
        finally:
            encoder.kill()
            encoder.wait()

    def browser_start(self, title):
        pk, _key = self.new_session(title)
        return asyncio.run(self._browser_start(pk))

    async def _browser_start(self, pk):
        import websockets

        started = time.monotonic()
        encoder = await asyncio.create_subprocess_exec(
            ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-re", *lavfi_720p30(8), *H264,
            "-c:a", "libopus", "-f", "matroska", "-live", "1", "-cluster_time_limit", "250",
            "pipe:1",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        socket_ = await websockets.connect(
            f"{self.site.ws_url}/ws/live/{pk}/ingest/",
            additional_headers={"Cookie": self.cookie, "Origin": self.site.url},
            max_size=None,
        )

        async def pump():
            while chunk := await encoder.stdout.read(64 * 1024):
                await socket_.send(chunk)

        task = asyncio.create_task(pump())
        try:
            return await asyncio.to_thread(first_playable, self.playlist(pk), started)
        finally:
            task.cancel()
            encoder.kill()
            await encoder.wait()
            await socket_.close()

    def cpu_copy(self, source, seconds):
        """Steady-state CPU of the embedded listener and its ffmpeg while ``source`` streams."""
        pk, key = self.new_session("cpu copy")
        encoder = subprocess.Popen(
            [ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", str(source), "-c", "copy",
             "-f", "flv", f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"],
        )  # fmt: skip
        try:
            pipeline = wait_for_pipeline(self.listener.pid)
            listener, ffmpeg_cpu = steady_cpu([self.listener.pid, pipeline], seconds)
        finally:
            encoder.wait()
        return listener, ffmpeg_cpu

    def cpu_transcode(self, source, seconds):
        """Steady-state CPU of our pipeline's libx264 branch on the same input, fed in real time."""
        from wagtail_live.ingest.base import build_ffmpeg_args

        out = self.directory / "transcode"
        out.mkdir()
        args = build_ffmpeg_args(
            "flv", out, video_codec="vp8", audio_codec="aac", segment_seconds=1
        )
        feeder = subprocess.Popen(
            [ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", str(source),
             "-c", "copy", "-f", "flv", "pipe:1"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        transcoder = subprocess.Popen(
            [ffmpeg(), *args],
            stdin=feeder.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        feeder.stdout.close()
        try:
            (cpu,) = steady_cpu([transcoder.pid], seconds)
        finally:
            transcoder.wait()
            feeder.wait()
        return cpu

    def close(self):
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.site.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu-seconds", type=int, default=20)
    parser.add_argument(
        "--cpu-source", choices=sorted(SOURCES), default="testsrc2", help="input for the CPU test"
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as directory:
        bench = Bench(directory)
        try:
            bench.start_listener()
            bench.start_nginx()
            results = {"browser": [], "embedded RTMP": [], "nginx-rtmp": []}
            for round_ in range(options.rounds):
                results["browser"].append(bench.browser_start(f"browser {round_}"))
                results["embedded RTMP"].append(bench.rtmp_start(bench.rtmp_port, f"rtmp {round_}"))
                results["nginx-rtmp"].append(bench.rtmp_start(bench.nginx_port, f"nginx {round_}"))
            source = Path(directory) / "720p30.flv"
            subprocess.run(
                [ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", *lavfi_720p30(options.cpu_seconds + WARM_UP + 4, options.cpu_source),
                 *H264, "-c:a", "aac", "-f", "flv", "-y", str(source)],
                check=True,
            )  # fmt: skip
            copy = bench.cpu_copy(source, options.cpu_seconds)
            transcode = bench.cpu_transcode(source, options.cpu_seconds)
        finally:
            bench.close()

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"ffmpeg: {ffmpeg()}")
    print("encoder start -> first playable playlist (s), median of", options.rounds)
    medians = {}
    for name, values in results.items():
        medians[name] = statistics.median(values)
        rounded = ", ".join(f"{value:.2f}" for value in values)
        print(f"  {name:14s} median {medians[name]:.2f}  ({rounded})")
    nginx = medians["nginx-rtmp"]
    for name in ("browser", "embedded RTMP"):
        print(f"  {name} / nginx-rtmp: {medians[name] / nginx:.2f}x")
    print(f"ingest CPU for 720p30 ({options.cpu_source}), CPU-seconds per media second:")
    listener, pipeline = copy
    print(f"  stream copy, embedded RTMP listener (Python): {listener:.3f}")
    print(f"  stream copy, its ffmpeg (HLS + recording):     {pipeline:.3f}")
    print(f"  libx264 transcode (same input, same pipeline): {transcode:.3f}")
    print(f"  copy (both) / transcode: {(listener + pipeline) / transcode:.1%}")


if __name__ == "__main__":
    main()
