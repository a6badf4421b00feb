"""Stream end → draft page ready, against a raw ``ffmpeg -c copy -movflags +faststart``, same run.

    .venv/bin/python benchmarks/recording_pipeline.py [--repeat 3] [--long-minutes 10]

Makes a 60 s 720p30 H.264/AAC MPEG-TS with ffmpeg's ``lavfi`` sources (what the embedded
pipeline records), and a 10 min one by looping it with stream copy (encoding 10 minutes of
720p would dominate the run and measure nothing of ours). For each, it times the raw remux
and the whole job: ``enqueue_recording`` (what the ingest calls when the stream ends) with
Huey in immediate mode, through probe, remux, poster, Media and draft page. Goal (issue 6):
job ≤ 1.5 × raw remux + 1 s. Prints a Markdown table for docs/benchmarks.md.

Runs on its own SQLite database and MEDIA_ROOT in a temporary directory.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(tempfile.mkdtemp(prefix="wagtail-live-bench-"))


def configure_django():
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["default"]["NAME"] = str(WORK / "db.sqlite3")
    settings.MEDIA_ROOT = str(WORK / "media")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_sources(long_minutes):
    from tests.recording_media import make_media
    from wagtail_live.ffmpeg import ffmpeg_binary

    # 2.5 Mbit/s: what OBS's 720p30 presets send.
    rate = ["-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k"]
    short = make_media(
        WORK / "60s.ts", "h264_aac", seconds=60, size="1280x720", rate=30, extra=rate
    )
    long = WORK / f"{long_minutes}min.ts"
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-stream_loop"]
        + [str(long_minutes - 1), "-i", str(short), "-c", "copy", str(long)],
        check=True,
    )
    return {"60 s": short, f"{long_minutes} min": long}


def raw_remux(source):
    from wagtail_live.ffmpeg import ffmpeg_binary

    output = WORK / "raw.mp4"
    started = time.perf_counter()
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
        + ["-c", "copy", "-movflags", "+faststart", str(output)],
        check=True,
    )
    elapsed = time.perf_counter() - started
    output.unlink()
    return elapsed


def whole_job(source, n):
    from django.core.files import File
    from django.db import transaction

    from wagtail_live.models import LiveSession, Recording
    from wagtail_live.recordings import enqueue_recording
    from wagtail_live.storage import working_storage

    session = LiveSession.objects.create(title=f"Benchmark {n}")
    with open(source, "rb") as handle:  # the ingest already wrote this file: not timed
        name = working_storage().save(session.media_path("recording.ts"), File(handle))
    started = time.perf_counter()
    with transaction.atomic():
        enqueue_recording(session, name)  # the task runs on commit (Huey immediate mode)
    elapsed = time.perf_counter() - started
    recording = Recording.objects.get(session=session)
    assert recording.status == Recording.Status.READY, recording.error
    assert recording.conversion == Recording.Conversion.REMUX
    assert recording.page is not None and not recording.page.live
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--long-minutes", type=int, default=10)
    args = parser.parse_args()
    configure_django()
    rows = []
    n = 0
    for label, source in make_sources(args.long_minutes).items():
        raw, job = [], []
        for _ in range(args.repeat):
            n += 1
            raw.append(raw_remux(source))
            job.append(whole_job(source, n))
        raw_s, job_s = statistics.median(raw), statistics.median(job)
        goal = 1.5 * raw_s + 1
        size = source.stat().st_size / 1e6
        rows.append(
            f"| {label} ({size:.0f} MB) | {raw_s:.2f} s | {job_s:.2f} s | {goal:.2f} s "
            f"| {'yes' if job_s <= goal else 'NO'} |"
        )
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"Median of {args.repeat} runs each.\n")
    print("| recording | raw `ffmpeg -c copy +faststart` | stream end → draft page | goal | met |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
