"""Playback delivery benchmark: the grant verifiers against nginx, on a real live stream.

One run starts the example site (settings ``benchmarks/fanout_settings.py``, a fresh SQLite
and media root in a temporary folder), a public live session fed by the demo stream
(``manage.py live_rtmp`` + ``manage.py live_demo_stream``: 720p30 H.264/AAC at 2.5 Mbit/s,
1 s segments written by the real pipeline), and every way of serving its files at once:

* ``old view``: the ``wagtail_live:hls`` Django view (``/live/sessions/<pk>/hls/...``);
* ``bare``: benchmarks/bare_hls_asgi.py, the same files from memory with no checks;
* ``embedded``: ``wagtail_live.delivery.HLSVerifier`` with a real grant (example_site/asgi.py);
  under uvicorn with ``--http wagtail_live.servers:HttpToolsProtocol`` (as ``make demo`` runs it:
  remembered answers go out from the connection) and, as ``embedded (uvicorn ASGI only)``,
  with uvicorn's own protocol;
* ``nginx static``: nginx sending the files with no checks;
* ``nginx grants``: nginx checking the grant itself (``secure_link_md5``, the block that
  ``manage.py live_nginx_config --http`` writes);

each Python one under daphne and under uvicorn (uvloop + httptools). nginx runs one worker
process, the Python servers one process each, so every figure is per server process.

Two measurements, interleaved target by target, each repeated ``--rounds`` times:

1. **Throughput**: ``wrk -t1 -c50 -d<seconds>s --timeout 10s`` on the live playlist and on one
   of the stream's segments (copied to ``hls/bench-00001.ts`` beside the others: the live ones
   are deleted ~7 s after they are listed, and a 404 is cheaper than a segment); the server's
   CPU during each wrk run gives requests per server CPU-second as well, the fair figure where
   wrk (one core) rather than the server is the limit.
2. **Viewers** (``--viewers``): simulated hls.js viewers, each on one keep-alive connection,
   asking for the playlist every target duration and fetching each new segment once; the
   count doubles until the p99 segment fetch (request sent → last byte) reaches 1 s or a
   request fails. Reports the most viewers sustained and the server CPU per 100 viewers.

With ``--pin`` (the default on a machine with 2+ cores) the servers run on CPU 0 and the
load generators (wrk, the viewers) on CPU 1; the stream's encoder is not pinned.

Quick run:  python benchmarks/playback_delivery.py --rounds 1 --seconds 3 --no-viewers
Full run:   python benchmarks/playback_delivery.py --rounds 3 --seconds 8
"""

import argparse
import asyncio
import getpass
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procstat import process_cpu_seconds  # benchmarks/ is on sys.path as the script's folder

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_site" / "manage.py"
SITE_APP = "example_site.asgi:application"
BARE_APP = "benchmarks.bare_hls_asgi:application"
GRANT_SECONDS = 6 * 3600
P99_LIMIT = 1.0  # seconds: a segment fetch slower than this stalls a 1 s-segment player
WARM_SECONDS = 3
MEASURE_SECONDS = 10

SETUP = """
import django, json
django.setup()
from django.contrib.auth import get_user_model
from wagtail_live import grants
from wagtail_live.models import LiveSession
from wagtail_live.conf import live_settings
from wagtail_live.storage import private_root
host = get_user_model().objects.create_superuser("bench-host", "host@example.com", "x")
session = LiveSession.objects.create(title="Delivery benchmark", owner=host)
session.start()
grant = grants.issue(session, seconds=%(seconds)d)
key = grants.grant_key()
md5 = grants.nginx_md5_signer(grants.message(session.pk, grant.expires), key)
print("@@" + json.dumps({
    "session": session.pk,
    "live_root": str(private_root() / live_settings.MEDIA_SUBDIR.strip("/")),
    "token": grant.token,
    "md5_token": f"{grant.expires}-{md5}",
    "key": key,
}))
"""

NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{static_port};
        location /static/ {{
            alias {live_root}/;
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
        }}
    }}
{secure}
}}
"""


# -- processes ------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def site_environment(data_dir, **extra):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.fanout_settings",
        EXAMPLE_SITE_DATA=str(data_dir),
        DJANGO_DEBUG="0",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def prepare_site(data_dir):
    """Migrate a fresh database; create a live session, its grants and the nginx key."""
    env = site_environment(data_dir)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    done = subprocess.run(
        [sys.executable, "-c", SETUP % {"seconds": GRANT_SECONDS}],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.rsplit("@@", 1)[1])


# uvicorn's HTTP protocol: wagtail_live's (what make demo and docs/deployment.md run), or
# uvicorn's own ("uvicorn-asgi": the embedded verifier reached through ASGI only).
UVICORN_HTTP = {
    "uvicorn": "wagtail_live.servers:HttpToolsProtocol",
    "uvicorn-asgi": "httptools",
}


def server_command(server, port, app):
    """The command serving ``app`` with ``server`` (as example_site's demo command does)."""
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
    return [
        sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", UVICORN_HTTP[server], "--lifespan", "off",
        "--no-access-log", "--log-level", "warning", app,
    ]  # fmt: skip


class Processes:
    """Every process the run starts, stopped (with their children) at the end."""

    def __init__(self, data_dir, pin):
        self.data_dir = Path(data_dir)
        self.pin = pin
        self.started = []

    def start(self, name, command, env, pinned=True):
        if pinned and self.pin:
            command = ["taskset", "-c", "0", *command]
        log = (self.data_dir / f"{name}.log").open("w")
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(process)
        return process

    def stop_all(self):
        for process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for_http(port, path, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answers on port {port}")


def process_tree_cpu(pid):
    """CPU seconds of ``pid`` and its children (nginx: master + worker)."""
    total = process_cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += process_cpu_seconds(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


# -- the targets --------------------------------------------------------------------


def build_targets(info, ports, pids):
    """name -> (port, base path of the session's folder, server pid)."""
    pk = info["session"]
    return {
        "old view (daphne)": (ports["site-daphne"], f"/live/sessions/{pk}/", pids["site-daphne"]),
        "old view (uvicorn)": (
            ports["site-uvicorn"],
            f"/live/sessions/{pk}/",
            pids["site-uvicorn"],
        ),
        "bare (daphne)": (ports["bare-daphne"], f"/{pk}/", pids["bare-daphne"]),
        "bare (uvicorn)": (ports["bare-uvicorn"], f"/{pk}/", pids["bare-uvicorn"]),
        "embedded (daphne)": (
            ports["site-daphne"],
            f"/live/delivery/{pk}/{info['token']}/",
            pids["site-daphne"],
        ),
        "embedded (uvicorn)": (
            ports["site-uvicorn"],
            f"/live/delivery/{pk}/{info['token']}/",
            pids["site-uvicorn"],
        ),
        "embedded (uvicorn ASGI only)": (
            ports["site-uvicorn-asgi"],
            f"/live/delivery/{pk}/{info['token']}/",
            pids["site-uvicorn-asgi"],
        ),
        "nginx static": (ports["nginx-static"], f"/static/{pk}/", pids["nginx"]),
        "nginx grants": (
            ports["nginx-grants"],
            f"/live/delivery/{pk}/{info['md5_token']}/",
            pids["nginx"],
        ),
    }


def start_everything(data_dir, info, pin):
    """Stream, sites, bare apps and nginx; returns (Processes, ports, pids). Whatever started
    is stopped again if one of them does not come up."""
    processes = Processes(data_dir, pin)
    try:
        return processes, *start_processes(processes, data_dir, info)
    except BaseException:
        processes.stop_all()
        raise


def start_processes(processes, data_dir, info):
    """Start everything under ``processes``; (ports, pids) by name once all answer."""
    env = site_environment(data_dir)
    rtmp_port = free_port()
    # The stream is not pinned: it is the same load for every target in the run.
    processes.start(
        "rtmp",
        [sys.executable, str(MANAGE), "live_rtmp", "--host", "127.0.0.1", "--port", str(rtmp_port)],
        env,
        pinned=False,
    )
    time.sleep(1.5)
    processes.start(
        "stream",
        [
            sys.executable, str(MANAGE), "live_demo_stream", "--session", str(info["session"]),
            "--url", f"rtmp://127.0.0.1:{rtmp_port}/live",
        ],
        env,
        pinned=False,
    )  # fmt: skip
    ports, pids = {}, {}
    for server in ("daphne", "uvicorn"):
        port = ports[f"site-{server}"] = free_port()
        pids[f"site-{server}"] = processes.start(
            f"site-{server}", server_command(server, port, SITE_APP), env
        ).pid
        port = ports[f"bare-{server}"] = free_port()
        bare_env = site_environment(data_dir, BARE_HLS_ROOT=info["live_root"])
        # The anchor runs on uvicorn's own protocol (ours would find no verifier in it anyway).
        bare_server = "uvicorn-asgi" if server == "uvicorn" else server
        pids[f"bare-{server}"] = processes.start(
            f"bare-{server}", server_command(bare_server, port, BARE_APP), bare_env
        ).pid
    port = ports["site-uvicorn-asgi"] = free_port()
    pids["site-uvicorn-asgi"] = processes.start(
        "site-uvicorn-asgi", server_command("uvicorn-asgi", port, SITE_APP), env
    ).pid
    ports["nginx-static"], ports["nginx-grants"] = free_port(), free_port()
    pids["nginx"] = start_nginx(processes, data_dir, info, ports).pid
    # Three Django sites start at once on one pinned core: give them time.
    for name, port in ports.items():
        try:
            wait_for_http(port, "/")
        except RuntimeError:
            log = Path(data_dir) / f"{name.split('-static')[0].split('-grants')[0]}.log"
            tail = log.read_text()[-2000:] if log.exists() else "(no log)"
            raise RuntimeError(f"{name} does not answer on port {port}; its log ends:\n{tail}")
    return ports, pids


def start_nginx(processes, data_dir, info, ports):
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.fanout_settings")
    os.environ["EXAMPLE_SITE_DATA"] = str(data_dir)
    import django

    django.setup()
    from wagtail_live.delivery import nginx_server_block

    secure = nginx_server_block(
        live_root=info["live_root"],
        key=info["key"],
        site_url=f"http://127.0.0.1:{ports['site-uvicorn']}",
        listen=f"127.0.0.1:{ports['nginx-grants']}",
    )
    conf = Path(data_dir) / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            # Run as root, nginx's worker would drop to nobody, who cannot read the temporary folder.
            user=f"user {getpass.getuser()};" if os.getuid() == 0 else "",
            dir=data_dir,
            static_port=ports["nginx-static"],
            live_root=info["live_root"],
            secure=secure,
        )
    )
    command = ["nginx", "-p", str(data_dir), "-e", str(Path(data_dir) / "nginx-error.log")]
    return processes.start("nginx", [*command, "-c", str(conf)], os.environ.copy())


def wait_for_stream(live_root, pk, segments=4, timeout=90):
    """Wait until the live playlist lists ``segments`` segments; return its path."""
    playlist = Path(live_root) / str(pk) / "hls" / "index.m3u8"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if playlist.exists() and len(segment_names(playlist.read_text())) >= segments:
            return playlist
        time.sleep(0.5)
    raise RuntimeError("the demo stream wrote no playlist; see rtmp.log and stream.log")


def segment_names(playlist_text):
    return [line for line in playlist_text.splitlines() if line and not line.startswith("#")]


# -- 1. throughput with wrk -----------------------------------------------------------

WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_BAD = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk(url, seconds, connections, pin):
    # wrk's default 2 s timeout would drop the old view's slowest answers instead of counting them.
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", url]
    if pin:
        command = ["taskset", "-c", "1", *command]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(WRK_RATE.search(output).group(1))
    bad = WRK_BAD.search(output)
    errors = WRK_ERRORS.search(output)
    failed = (int(bad.group(1)) if bad else 0) + (
        sum(int(n) for n in errors.groups()) if errors else 0
    )
    if failed:
        # Which kind (status, connect/read/write, wrk's 2 s timeout) is worth seeing at once.
        detail = " ".join(
            line.strip() for line in output.splitlines() if "rror" in line or "2xx" in line
        )
        print(f"    {url}: {detail}", flush=True)
    return rate, failed


BENCH_SEGMENT = "bench-00001.ts"


def keep_a_segment(playlist_path):
    """Copy the stream's newest segment to ``BENCH_SEGMENT`` in its folder; return its size."""
    newest = playlist_path.parent / segment_names(playlist_path.read_text())[-1]
    body = newest.read_bytes()
    (playlist_path.parent / BENCH_SEGMENT).write_bytes(body)
    return len(body)


def throughput_round(targets, args):
    """{target: {"playlist": req/s, "segment": req/s, "failed": n}} for one round."""
    results = {}
    for name, (port, base, pid) in targets.items():
        row = {"failed": 0}
        for kind, file in (("playlist", "index.m3u8"), ("segment", BENCH_SEGMENT)):
            url = f"http://127.0.0.1:{port}{base}hls/{file}"
            cpu = process_tree_cpu(pid)
            rate, failed = wrk(url, args.seconds, args.connections, args.pin)
            # Requests per server CPU-second: what a core buys, even when wrk is the limit.
            used = process_tree_cpu(pid) - cpu
            row[kind] = rate
            row[kind + "_per_cpu"] = rate * args.seconds / used if used > 0 else float("inf")
            row["failed"] += failed
        results[name] = row
        print(f"  {name:30} playlist {row['playlist']:8.0f}/s ({row['playlist_per_cpu']:6.0f}"
              f"/CPU-s)  segment {row['segment']:8.0f}/s ({row['segment_per_cpu']:6.0f}/CPU-s)"
              f"  failed {row['failed']}", flush=True)  # fmt: skip
    return results


# -- 2. simulated hls.js viewers --------------------------------------------------------


class Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; a GET at a time; bodies counted, kept on request."""

    def __init__(self):
        self.transport = None
        self.waiter = None

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed by the server"))

    async def get(self, host, path, keep):
        self.head, self.left, self.parts, self.keep = b"", None, [], keep
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        return await self.waiter

    def data_received(self, data):
        if self.left is None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[:end], self.head[end + 4 :]
            self.status = int(head[9:12])
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            self.left = int(length.group(1)) if length else 0
        if self.keep:
            self.parts.append(data)
        self.left -= len(data)
        if self.left <= 0 and not self.waiter.done():
            self.waiter.set_result((self.status, b"".join(self.parts)))


async def viewer(port, base, delay, state):
    """An hls.js-like viewer: the playlist every target duration, each new segment once."""
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    try:
        _transport, client = await loop.create_connection(Client, "127.0.0.1", port)
    except OSError:
        state["errors"] += 1
        return
    host = f"127.0.0.1:{port}"
    seen = None
    while not state["stop"]:
        started = time.monotonic()
        try:
            status, body = await client.get(host, base + "hls/index.m3u8", keep=True)
            if status != 200:
                raise ConnectionError(f"playlist {status}")
            text = body.decode()
            names = segment_names(text)
            target = float(re.search(r"#EXT-X-TARGETDURATION:(\d+)", text).group(1))
            # Joining, hls.js starts near the live edge: the newest segment only.
            new = names[-1:] if seen is None else [n for n in names if n not in seen]
            seen = set(names)
            for name in new:
                asked = time.monotonic()
                status, _ = await client.get(host, base + "hls/" + name, keep=False)
                if status != 200:
                    raise ConnectionError(f"segment {status}")
                if state["measuring"]:
                    state["latencies"].append(time.monotonic() - asked)
        except (ConnectionError, OSError, AttributeError, ValueError) as error:
            state["errors"] += 1
            state.setdefault("error", repr(error))
            return
        await asyncio.sleep(max(0.0, started + target - time.monotonic()))
    client.transport.close()


async def viewers_step(port, base, count, pid):
    """Run ``count`` viewers; (p99 segment fetch s, failed, server CPU s/s, generator CPU s/s)."""
    state = {"stop": False, "measuring": False, "latencies": [], "errors": 0}
    tasks = [
        asyncio.create_task(viewer(port, base, index / count, state)) for index in range(count)
    ]
    await asyncio.sleep(1 + WARM_SECONDS)
    cpu, own, wall = process_tree_cpu(pid), time.process_time(), time.monotonic()
    state["measuring"] = True
    await asyncio.sleep(MEASURE_SECONDS)
    state["measuring"] = False
    elapsed = time.monotonic() - wall
    server = (process_tree_cpu(pid) - cpu) / elapsed
    generator = (time.process_time() - own) / elapsed
    state["stop"] = True
    await asyncio.wait(tasks, timeout=5)
    for task in tasks:
        task.cancel()
    latencies = sorted(state["latencies"])
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("inf")
    return {
        "viewers": count,
        "p99": p99,
        "p50": statistics.median(latencies) if latencies else float("inf"),
        "segments": len(latencies),
        "failed": state["errors"],
        "error": state.get("error"),
        "server_cpu": server,
        "generator_cpu": generator,
    }


def doubling(args):
    counts, count = [], args.start_viewers
    while count <= args.max_viewers:
        counts.append(count)
        count *= 2
    return counts


def viewers_ramp(port, base, pid, counts):
    """Try each viewer count in turn until a step misses (p99 ≥ 1 s or a failure)."""
    steps = []
    for count in counts:
        step = asyncio.run(viewers_step(port, base, count, pid))
        step["sustained"] = step["p99"] < P99_LIMIT and step["failed"] == 0
        steps.append(step)
        print(f"    {count:5} viewers: p50 {step['p50'] * 1000:6.0f} ms  p99 "
              f"{step['p99'] * 1000:6.0f} ms  failed {step['failed']}  server CPU "
              f"{step['server_cpu']:.2f}  load generator CPU {step['generator_cpu']:.2f}",
              flush=True)  # fmt: skip
        if not step["sustained"]:
            break
    return steps


# -- report ---------------------------------------------------------------------------

RATIOS = [
    ("embedded (uvicorn)", "bare (uvicorn)", 0.7),
    ("embedded (uvicorn ASGI only)", "bare (uvicorn)", 0.7),
    ("embedded (daphne)", "bare (daphne)", 0.7),
    ("embedded (uvicorn)", "old view (uvicorn)", 25),
    ("embedded (daphne)", "old view (daphne)", 25),
    ("embedded (uvicorn)", "nginx static", 0.5),
    ("embedded (uvicorn ASGI only)", "nginx static", 0.5),
    ("embedded (daphne)", "nginx static", 0.5),
    ("nginx grants", "nginx static", 0.8),
]


def report_throughput(rounds):
    print("\nThroughput, median over rounds (req/s):")
    names = list(rounds[0])
    for name in names:
        playlist = statistics.median(r[name]["playlist"] for r in rounds)
        segment = statistics.median(r[name]["segment"] for r in rounds)
        failed = sum(r[name]["failed"] for r in rounds)
        print(f"  {name:30} playlist {playlist:8.0f}  segment {segment:8.0f}  failed {failed}")
    print("\nRequests per server CPU-second, median over rounds:")
    for name in names:
        playlist = statistics.median(r[name]["playlist_per_cpu"] for r in rounds)
        segment = statistics.median(r[name]["segment_per_cpu"] for r in rounds)
        print(f"  {name:30} playlist {playlist:8.0f}  segment {segment:8.0f}")
    print("\nRatios (median of the per-round ratios; goal):")
    for name, anchor, goal in RATIOS:
        for kind in ("playlist", "segment", "playlist_per_cpu", "segment_per_cpu"):
            ratio = statistics.median(r[name][kind] / r[anchor][kind] for r in rounds)
            met = "met" if ratio >= goal else "NOT met"
            print(f"  {name} / {anchor}, {kind}: {ratio:.2f}x (goal {goal}x, {met})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per URL")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--no-viewers", dest="viewers", action="store_false")
    parser.add_argument(
        "--viewer-rounds", type=int, default=1, help="rounds that also run the viewer ramp"
    )
    parser.add_argument("--no-throughput", dest="throughput", action="store_false")
    parser.add_argument(
        "--steps", help="comma-separated viewer counts to try in turn (instead of doubling)"
    )
    parser.add_argument("--start-viewers", type=int, default=100)
    parser.add_argument("--max-viewers", type=int, default=3200)
    parser.add_argument(
        "--viewer-targets",
        default="embedded (uvicorn),embedded (daphne),nginx grants,nginx static",
        help="comma-separated targets for the viewer ramp",
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    args.pin = args.pin and (os.cpu_count() or 1) >= 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()}, pinned: {args.pin}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="wl-delivery-") as data_dir:
        info = prepare_site(data_dir)
        processes, ports, pids = start_everything(data_dir, info, args.pin)
        try:
            playlist = wait_for_stream(info["live_root"], info["session"])
            size = keep_a_segment(playlist)
            print(f"segment for wrk: {size} bytes", flush=True)
            if args.pin:
                os.sched_setaffinity(0, {1})
            targets = build_targets(info, ports, pids)
            steps = [int(n) for n in args.steps.split(",")] if args.steps else doubling(args)
            results = {"throughput": [], "viewers": []}
            for number in range(args.rounds):
                print(f"\nRound {number + 1}: wrk -t1 -c{args.connections} -d{args.seconds}s, "
                      f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
                if args.throughput:
                    results["throughput"].append(throughput_round(targets, args))
                if args.viewers and number < args.viewer_rounds:
                    ramps = {}
                    for name in args.viewer_targets.split(","):
                        port, base, pid = targets[name]
                        print(f"  viewers, {name}:", flush=True)
                        ramps[name] = viewers_ramp(port, base, pid, steps)
                    results["viewers"].append(ramps)
            if args.throughput:
                report_throughput(results["throughput"])
            if args.viewers:
                report_viewers(results["viewers"])
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        finally:
            processes.stop_all()


def report_viewers(rounds):
    print("\nViewers sustained with p99 segment fetch < 1 s (median over rounds):")
    for name in rounds[0]:
        best, cpu = [], []
        for ramps in rounds:
            sustained = [s for s in ramps[name] if s["sustained"]]
            top = sustained[-1] if sustained else None
            best.append(top["viewers"] if top else 0)
            if top:
                cpu.append(100 * top["server_cpu"] / top["viewers"])
        per100 = f"{statistics.median(cpu):.3f}" if cpu else "-"
        print(f"  {name:30} {statistics.median(best):6.0f} viewers, server CPU per 100 "
              f"viewers {per100} cores")  # fmt: skip


if __name__ == "__main__":
    main()
