"""Short real media files made with ffmpeg's ``lavfi`` test sources, for the recording tests.

Plain functions: ``make_media(path, "h264_aac", seconds=2)`` writes the file and
returns its path. The container follows the file's extension.
"""

import subprocess

from wagtail_live.ffmpeg import ffmpeg_binary

VIDEO = ["-f", "lavfi", "-i", "testsrc2=size={size}:rate={rate}"]
AUDIO = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "{rate}", "-pix_fmt", "yuv420p"]

#: kind -> (inputs, codec options)
KINDS = {
    "h264_aac": (VIDEO + AUDIO, H264 + ["-c:a", "aac", "-b:a", "64k"]),
    "h264_opus": (VIDEO + AUDIO, H264 + ["-c:a", "libopus", "-b:a", "64k"]),
    "h264_mp3": (VIDEO + AUDIO, H264 + ["-c:a", "libmp3lame", "-b:a", "64k"]),
    "vp8_opus": (
        VIDEO + AUDIO,
        ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"]
        + ["-c:a", "libopus", "-b:a", "64k"],
    ),
    "aac_only": (AUDIO, ["-c:a", "aac", "-b:a", "64k"]),
    "opus_only": (AUDIO, ["-c:a", "libopus", "-b:a", "64k"]),
    "h264_only": (VIDEO, H264),
}


def make_media(path, kind="h264_aac", seconds=2, size="320x240", rate=30, extra=()):
    """Write ``seconds`` of ``kind`` test media to ``path`` (container from the extension)."""
    inputs, codecs = KINDS[kind]
    fill = {"size": size, "rate": rate}
    command = [
        ffmpeg_binary(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        *[part.format(**fill) for part in inputs],
        "-t",
        str(seconds),
        *[part.format(**fill) for part in codecs],
        *extra,
        str(path),
    ]
    subprocess.run(command, check=True, capture_output=True)
    return path


def truncate(path, keep_fraction=0.3):
    """Cut a file short, as an interrupted copy or upload would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path
