"""Chat fan-out benchmark: N viewers + 1 sender at R messages/s, delivered % and latency.

Starts the example site under one daphne process (fresh SQLite in a temporary
directory), connects N websocket viewers to a live session and one host who
sends R chat messages a second for D seconds, and reports the share of
(viewer, message) pairs delivered and the p50/p99 latency. In the same run it
measures, under the same load:

* ``naive``: a Channels consumer doing one ``group_send`` per message with one
  channel per socket (benchmarks/naive_asgi.py), and
* ``floor``: a bare ``websockets`` broadcast server without Django
  (benchmarks/floor_server.py),

and a join storm: J viewers joining within 10 s while one observer counts the
``viewers`` broadcasts it receives.

Quick run:   python benchmarks/chat_fanout.py --viewers 50 --rate 5 --duration 3 --join 50
Full run:    python benchmarks/chat_fanout.py --viewers 2000 --rate 20 --duration 10 --join 1000
Results go to stdout (and --json FILE); docs/benchmarks.md has the numbers.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets
from procstat import process_cpu_seconds  # benchmarks/ is on sys.path as the script's folder

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(
    r"(?:Listening on (?:TCP address [\d.]+:)?|Uvicorn running on http://[\d.]+:)(\d+)"
)
CONNECT_CONCURRENCY = 50
CONNECT_ATTEMPTS = 3
LATENCY_SAMPLE = 10  # one viewer in ten times its messages
# The servers write "type": "chat.message" with or without a space; the text never has a quote.
CHAT_MARK = 'chat.message"'
VIEWERS_MARK = ':"viewers"'

SETUP = """
import django, json
django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from wagtail_live.models import LiveSession
host = get_user_model().objects.create_superuser("bench-host", "host@example.com", "x")
session = LiveSession.objects.create(title="Benchmark", owner=host)
session.start()
store = SessionStore()
store[SESSION_KEY] = str(host.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = host.get_session_auth_hash()
store.save()
print("@@" + json.dumps({"session": session.pk, "cookie": "sessionid=" + store.session_key}))
"""


# -- servers -----------------------------------------------------------------------


def site_environment(data_dir):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.fanout_settings",
        EXAMPLE_SITE_DATA=str(data_dir),
        DJANGO_DEBUG="0",
        PYTHONPATH=str(ROOT),
    )
    return env


def prepare_site(data_dir):
    """Migrate a fresh example-site database; create a live session and its host's cookie."""
    env = site_environment(data_dir)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    done = subprocess.run(
        [sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.rsplit("@@", 1)[1])


def server_command(server, app):
    """``server`` (daphne or uvicorn with uvloop + httptools) serving ``app`` on a free port."""
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "0",
            "--loop", "uvloop", "--http", "httptools", "--lifespan", "off", "--no-access-log", app,
        ]  # fmt: skip
    return [sys.executable, "-m", "daphne", "-e", "tcp:0:interface=127.0.0.1", app]


def start_server(kind, data_dir, server="daphne"):
    """Start ``hub`` (the example site), ``naive`` or ``floor``; return (process, port)."""
    if kind == "floor":
        command = [sys.executable, str(ROOT / "benchmarks" / "floor_server.py"), "0"]
    else:
        app = (
            "example_site.asgi:application"
            if kind == "hub"
            else "benchmarks.naive_asgi:application"
        )
        command = server_command(server, app)
    log_path = Path(data_dir) / f"{kind}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=site_environment(data_dir),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = LISTENING.search(log_path.read_text())
        if match:
            return process, int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.1)
    stop_server(process)
    raise RuntimeError(f"{kind} server did not start:\n{log_path.read_text()}")


def stop_server(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- viewers (in worker processes, so the load generator is not the bottleneck) -----


def messages_of(frame):
    data = json.loads(frame)
    return data if isinstance(data, list) else [data]


async def run_viewers(url, origin, count, spread, ready, stop, results):
    """Connect ``count`` viewers (over ``spread`` seconds), record chat latency until ``stop``."""
    latencies = []
    viewers_frames = []
    received = 0
    failed = 0
    semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)
    connections = []
    start = time.monotonic()

    async def viewer(index):
        nonlocal received
        if spread:
            await asyncio.sleep(spread * index / max(1, count))
        nonlocal failed
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                async with semaphore:
                    connection = await websockets.connect(
                        url, origin=origin, max_size=None, max_queue=None, open_timeout=60
                    )
                break
            except (OSError, TimeoutError, websockets.WebSocketException) as error:
                if attempt == CONNECT_ATTEMPTS - 1:
                    failed += 1
                    print(f"viewer {index} could not connect: {error!r}", file=sys.stderr)
                    return
                await asyncio.sleep(1 + attempt)
        connections.append(connection)
        counts = 0
        # Parsing every frame in the load generator would measure the load generator:
        # every viewer counts chat messages with a substring search, one in
        # LATENCY_SAMPLE parses frames to time them.
        timed = index % LATENCY_SAMPLE == 0
        try:
            async for frame in connection:
                if timed:
                    now = time.time()
                    for message in messages_of(frame):
                        if message.get("type") == "chat.message":
                            latencies.append(now - float(message["text"].split()[2]))
                received += frame.count(CHAT_MARK)
                counts += frame.count(VIEWERS_MARK)
        except websockets.ConnectionClosed:
            pass
        viewers_frames.append(counts)

    tasks = [asyncio.create_task(viewer(i)) for i in range(count)]
    while len(connections) + failed < count:
        await asyncio.sleep(0.05)
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.05)
    for connection in connections:
        await connection.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    results.put(
        {
            "received": received,
            "latencies": latencies,
            "viewers_frames": viewers_frames,
            "connect_seconds": time.monotonic() - start,
            "failed": failed,
        }
    )


def viewer_process(url, origin, count, spread, ready, stop, results):
    raise_file_limit()
    asyncio.run(run_viewers(url, origin, count, spread, ready, stop, results))


def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ViewerPool:
    """``count`` viewers split over ``processes`` worker processes."""

    def __init__(self, url, origin, count, processes, spread=0.0):
        self.stop = multiprocessing.Event()
        self.results = multiprocessing.Queue()
        self.readies = []
        self.workers = []
        shares = [
            count // processes + (1 if i < count % processes else 0) for i in range(processes)
        ]
        for share in shares:
            if not share:
                continue
            ready = multiprocessing.Event()
            worker = multiprocessing.Process(
                target=viewer_process,
                args=(url, origin, share, spread, ready, self.stop, self.results),
                daemon=True,
            )
            worker.start()
            self.readies.append(ready)
            self.workers.append(worker)

    def wait_ready(self, timeout=300):
        deadline = time.monotonic() + timeout
        for ready in self.readies:
            if not ready.wait(max(0.1, deadline - time.monotonic())):
                raise RuntimeError("viewers did not connect in time")

    def finish(self):
        self.stop.set()
        results = [self.results.get(timeout=120) for _ in self.workers]
        for worker in self.workers:
            worker.join(10)
        return {
            "received": sum(r["received"] for r in results),
            "latencies": [x for r in results for x in r["latencies"]],
            "viewers_frames": [x for r in results for x in r["viewers_frames"]],
            "failed": sum(r["failed"] for r in results),
        }


# -- the sender ----------------------------------------------------------------------


async def send_messages(url, origin, cookie, rate, duration):
    headers = {"Cookie": cookie} if cookie else {}
    # The sender is a viewer too; it does not read, so do not wait for a clean close.
    async with websockets.connect(
        url, origin=origin, additional_headers=headers, max_queue=None, close_timeout=0.1
    ) as sender:
        sent = 0
        start = time.monotonic()
        total = int(rate * duration)
        for seq in range(total):
            # An absolute schedule: a slow send does not lower the offered rate.
            delay = start + seq / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await sender.send(
                json.dumps({"type": "chat.send", "text": f"bench {seq} {time.time():.6f}"})
            )
            sent += 1
        return sent


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def fanout_run(kind, port, args, site, server_pid):
    origin = f"http://127.0.0.1:{port}"
    path = {
        "hub": f"/ws/live/{site['session'] if site else 0}/",
        "naive": "/ws/naive/",
        "floor": "/",
    }[kind]
    url = f"ws://127.0.0.1:{port}{path}"
    pool = ViewerPool(url, origin, args.viewers, args.client_processes)
    pool.wait_ready()
    time.sleep(args.settle)
    started = time.monotonic()
    cpu_before = process_cpu_seconds(server_pid)
    sent = asyncio.run(
        send_messages(
            url,
            origin,
            site["cookie"] if site and kind == "hub" else None,
            args.rate,
            args.duration,
        )
    )
    send_seconds = time.monotonic() - started
    time.sleep(args.drain)
    server_cpu = process_cpu_seconds(server_pid) - cpu_before
    result = pool.finish()
    expected = sent * (args.viewers - result["failed"])
    latencies = result["latencies"]
    return {
        "server": kind,
        "viewers": args.viewers,
        "failed_to_connect": result["failed"],
        "rate": args.rate,
        "sent": sent,
        "delivered": result["received"],
        "delivered_pct": round(100.0 * result["received"] / expected, 2) if expected else None,
        "delivered_per_s": round(result["received"] / (send_seconds + args.drain), 1),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 1) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(1000 * max(latencies), 1) if latencies else None,
        # CPU the server used while sending and draining, per second of wall time:
        # near 1.0 means one core saturated; far below means it was waiting for CPU.
        "server_cpu_per_s": round(server_cpu / (send_seconds + args.drain), 2),
        "server_cpu_us_per_delivery": round(1e6 * server_cpu / max(1, result["received"]), 1),
        "send_seconds": round(send_seconds, 1),
    }


def join_storm(port, args, site):
    """J viewers join within 10 s; how many ``viewers`` frames does each of them receive?"""
    origin = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/ws/live/{site['session']}/"
    observer = ViewerPool(url, origin, 1, 1)
    observer.wait_ready()
    pool = ViewerPool(url, origin, args.join, args.client_processes, spread=args.join_seconds)
    pool.wait_ready(timeout=args.join_seconds + 120)
    time.sleep(2)
    joined = pool.finish()
    watched = observer.finish()
    frames = joined["viewers_frames"]
    return {
        "joiners": args.join,
        "join_seconds": args.join_seconds,
        "observer_viewers_frames": watched["viewers_frames"][0]
        if watched["viewers_frames"]
        else None,
        "per_joiner_mean": round(statistics.mean(frames), 1) if frames else None,
        "per_joiner_max": max(frames) if frames else None,
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--viewers", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20, help="chat messages per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds of sending")
    parser.add_argument(
        "--join", type=int, default=1000, help="viewers in the join storm (0: skip)"
    )
    parser.add_argument("--join-seconds", type=float, default=10)
    parser.add_argument(
        "--servers", default="hub,naive,floor", help="which of hub,naive,floor to measure"
    )
    parser.add_argument(
        "--asgi-servers",
        default="daphne",
        help="comma-separated ASGI servers for hub and naive (daphne, uvicorn), run in turn",
    )
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--drain", type=float, default=5.0)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (logs)")
    args = parser.parse_args()
    raise_file_limit()

    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_before": os.getloadavg(),
        },
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="wagtail-live-bench-") as temporary:
        data_dir = tempfile.mkdtemp(prefix="wagtail-live-bench-") if args.keep else temporary
        print(json.dumps({"data_dir": data_dir}), flush=True)
        site = prepare_site(data_dir)
        plan = [
            (kind, server)
            for kind in args.servers.split(",")
            for server in (["-"] if kind == "floor" else args.asgi_servers.split(","))
        ]
        for kind, server in plan:
            process, port = start_server(kind, data_dir, server)
            try:
                run = fanout_run(kind, port, args, site, process.pid)
                run["asgi_server"] = server
                print(json.dumps(run), flush=True)
                report["runs"].append(run)
                if kind == "hub" and args.join:
                    storm = join_storm(port, args, site)
                    print(json.dumps({"join_storm": storm}), flush=True)
                    report["join_storm"] = storm
            finally:
                stop_server(process)
    runs = {run["server"]: run for run in report["runs"]}
    if "hub" in runs and "naive" in runs and runs["naive"]["delivered"]:
        # Same offered load for both: the ratio of what each actually delivered.
        report["hub_vs_naive"] = round(runs["hub"]["delivered"] / runs["naive"]["delivered"], 2)
        print(json.dumps({"hub_vs_naive_delivered": report["hub_vs_naive"]}))

    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
