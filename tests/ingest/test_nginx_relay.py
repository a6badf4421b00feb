"""nginx-rtmp's WebRTC relay without the real parts: the config lines, the relay's checks.

``live_nginx_config`` adds ``exec_push … live_janus_relay $name`` when the site has WebRTC;
``live_janus_relay`` refuses anything but a stream nginx is publishing. The relay with a real
nginx, Janus and a WebRTC viewer is tests/webrtc/test_nginx_streaming_relay.py.
"""

import asyncio
import getpass
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command

from tests.utils import make_session, require
from wagtail_live.ingest import nginx_rtmp
from wagtail_live.ingest.base import build_rtp_relay_args
from wagtail_live.ingest.nginx_rtmp import RelayRefused, StreamCodecs, relay_session
from wagtail_live.management.commands.live_nginx_config import settings_root
from wagtail_live.storage import private_root

ROOT = Path(__file__).resolve().parent.parent.parent
MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
SECRET = "a-test-secret-of-some-length"
JANUS = {"WEBRTC": "janus", "JANUS_URL": "http://127.0.0.1:8088/janus"}
RELAY = {"host": "127.0.0.1", "video_port": 5000, "audio_port": 5002}
H264_AAC = StreamCodecs("h264", "aac", b_frames=False)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def nginx_settings(settings, media_root):
    settings.WAGTAIL_LIVE = {"NGINX_SECRET": SECRET, **JANUS}
    (private_root() / "uploads" / "live").mkdir(parents=True)
    return settings


def printed_config(*options):
    out = io.StringIO()
    call_command("live_nginx_config", "--rtmp-port=19350", *options, stdout=out)
    return out.getvalue()


def application_block(config):
    return re.search(r"application live \{(.*?)\n        \}", config, re.S)[1]


# -- live_nginx_config ---------------------------------------------------------------------


@pytest.mark.django_db
def test_with_webrtc_the_config_runs_the_relay_per_stream_and_lets_only_loopback_play(
    nginx_settings, tmp_path
):
    config = printed_config("--full", f"--prefix={tmp_path}", "--relay-env=DATABASE_URL")
    application = application_block(config)
    exec_push = re.search(r"^\s*exec_push (.*);$", application, re.M)[1].split(" ")
    assert exec_push[1:5] == ["-m", "django", "live_janus_relay", "$name"]
    assert os.path.isabs(exec_push[0])  # nginx gives its children no PATH
    assert exec_push[5:] == [
        "--settings=tests.settings",
        f"--pythonpath={ROOT}",
        "--rtmp-port=19350",
        f"--log-file={tmp_path / 'janus-relay.log'}",
    ]
    lines = [line.strip() for line in application.splitlines()]
    # SIGTERM (nginx's default is SIGKILL) lets the relay destroy its mountpoint.
    assert "exec_kill_signal term;" in lines and "respawn off;" in lines
    assert lines.index("allow play 127.0.0.1;") < lines.index("deny play all;")
    assert "idle_streams off;" in lines
    # nginx clears its workers' environment: the relay gets what the env lines name.
    assert config.index("env DATABASE_URL;\n") < config.index("rtmp {")


@pytest.mark.django_db
def test_without_webrtc_or_with_no_janus_relay_nobody_plays_from_nginx(nginx_settings, settings):
    for config in (
        printed_config("--no-janus-relay"),
        _without_webrtc(settings) or printed_config(),
    ):
        application = application_block(config)
        assert "exec_push" not in config and "allow play" not in config
        assert "deny play all;" in application and "env " not in config


def _without_webrtc(settings):
    settings.WAGTAIL_LIVE = {"NGINX_SECRET": SECRET}


@pytest.mark.django_db
def test_the_relay_can_be_forced_on_its_log_chosen_and_odd_paths_are_quoted(
    nginx_settings, tmp_path
):
    odd = tmp_path / "a dir; with {braces}" / "relay.log"
    config = printed_config("--janus-relay", f"--relay-log={odd}")
    assert f'"--log-file={odd}";' in config
    assert "janus-relay.log" not in config  # no default log without --full


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["A=B", "FOO;", "1ST", "", "PATH }"])
def test_relay_env_takes_variable_names_only(nginx_settings, name):
    with pytest.raises(CommandError, match="not an environment variable name"):
        printed_config(f"--relay-env={name}")


def test_settings_root_is_where_the_settings_module_is_imported_from():
    assert settings_root("tests.settings") == ROOT
    assert settings_root("tests") == ROOT  # a settings package


@pytest.mark.services
@pytest.mark.django_db
def test_the_config_with_the_relay_passes_nginx_t(nginx_settings, tmp_path):
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    require(os.path.exists(binary) and os.path.exists(MODULE), "nginx with libnginx-mod-rtmp")
    config = io.StringIO()
    call_command(
        "live_nginx_config",
        "--full",
        f"--prefix={tmp_path}",
        f"--rtmp-port={free_port()}",
        "--relay-env=HOME",
        stdout=config,
    )
    (tmp_path / "nginx.conf").write_text(config.getvalue())
    checked = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


ODD_ARGS = [
    "--pythonpath=/srv/my$site/x",  # nginx-rtmp's variable $site (empty) without the escape
    "--settings=${name}",
    "--log-file=C:\\dir\\new.log",  # nginx-rtmp's escape character
    '--log-file=/var/log/it\'s "q" {a}; #x',
    "--log-file=/var/log/a\tb",
    "--rtmp-port=$",
]


@pytest.mark.parametrize("arg", ["2>/tmp/x", ">>log", "<in", "12>&1"])
def test_an_argument_nginx_rtmp_takes_as_a_redirection_is_refused(arg):
    with pytest.raises(ValueError, match="redirection"):
        nginx_rtmp.exec_push_words(["/usr/bin/python3", arg])


@pytest.mark.django_db
def test_a_relay_path_with_a_dollar_is_escaped_in_the_printed_config(nginx_settings):
    config = printed_config("--janus-relay", "--relay-log=/var/log/my$site.log")
    assert " $name " in config  # the stream name stays nginx-rtmp's variable
    assert '"--log-file=/var/log/my\\\\$site.log";' in config


@pytest.mark.services
def test_nginx_rtmp_runs_the_relay_with_the_arguments_it_was_given(tmp_path):
    """A real nginx-rtmp runs exec_push_words' line: the argv arrives as it was, $name filled."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    require(os.path.exists(binary) and os.path.exists(MODULE), "nginx with libnginx-mod-rtmp")
    from wagtail_live.ffmpeg import ffmpeg_binary

    record = tmp_path / "record.py"
    record.write_text(
        "import json, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    argv = [shutil.which("python3"), str(record), nginx_rtmp.STREAM_NAME_VARIABLE, *ODD_ARGS]
    port = free_port()
    (tmp_path / "nginx.conf").write_text(
        f"load_module {MODULE};\nuser {getpass.getuser()};\nworker_processes 1;\n"
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log notice;\nevents {{ worker_connections 32; }}\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on;\n"
        f"exec_push {nginx_rtmp.exec_push_words(argv)};\n}} }} }}\n"
    )
    nginx = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"]
    )
    try:
        publish = [ffmpeg_binary(), "-loglevel", "error", "-re", "-f", "lavfi"]
        publish += ["-i", "testsrc=size=64x48:rate=10", "-t", "2", "-c:v", "libx264"]
        publish += ["-rtmp_app", "live", "-rtmp_playpath", "5/hls", "-f", "flv"]
        for _attempt in range(20):  # until nginx listens
            if subprocess.run([*publish, f"rtmp://127.0.0.1:{port}/live"]).returncode == 0:
                break
        recorded = tmp_path / "argv.json"
        for _attempt in range(50):
            if recorded.exists():
                break
            time.sleep(0.1)
        assert json.loads(recorded.read_text()) == ["5/hls", *ODD_ARGS]
    finally:
        nginx.terminate()
        nginx.wait(10)


@pytest.mark.services
@pytest.mark.django_db
def test_odd_paths_stay_one_word_and_nginx_t_passes(nginx_settings, tmp_path):
    """A private root, prefix or module path with a space, ``;``, quote or brace is quoted."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    require(os.path.exists(binary) and os.path.exists(MODULE), "nginx with libnginx-mod-rtmp")
    odd = tmp_path / "it's a dir; deny all {x}"
    (odd / "uploads" / "live").mkdir(parents=True)
    module = odd / "rtmp.so"
    shutil.copy(MODULE, module)
    config = printed_config(
        "--full",
        f"--prefix={odd}",
        f"--private-root={odd}",
        f"--module-path={module}",
        f"--http-port={free_port()}",
    )
    assert f'hls_path "{odd}/uploads/live";' in config and f'pid "{odd}/nginx.pid";' in config
    assert f'alias "{odd}/uploads/live/";' in config and f'load_module "{module}";' in config
    (odd / "nginx.conf").write_text(config)
    checked = subprocess.run(
        [binary, "-t", "-p", str(odd), "-c", str(odd / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    "option", ["--private-root=/srv/a\nexec_push /x", "--prefix=/srv/\r", "--user=a\tb"]
)
def test_a_path_with_a_control_character_is_refused(nginx_settings, option):
    with pytest.raises(CommandError, match="control character"):
        printed_config("--full", option)


@pytest.mark.django_db
def test_a_dollar_in_the_public_media_alias_is_refused(nginx_settings, tmp_path):
    nginx_settings.MEDIA_ROOT = str(tmp_path / "media$x")
    nginx_settings.WAGTAIL_LIVE = {**nginx_settings.WAGTAIL_LIVE, "PLAYBACK_FROM_MEDIA_URL": True}
    with pytest.raises(CommandError, match="variable"):
        printed_config()


# -- live_janus_relay: which streams it relays ----------------------------------------------


def publishing(session, client="7"):
    """``session`` as on_publish leaves it: nginx's connection ``client`` noted."""
    nginx_rtmp.note_publisher(session, client)
    return session


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        "../{pk}/hls",
        "{pk}/hls/../x",
        "{pk}/hls/",
        "{pk}",
        "{pk}/HLS",
        " {pk}/hls",
        "0{pk}/hls",
        "\u0661/hls",  # ARABIC-INDIC DIGIT ONE: a digit to \d and int(), not to nginx
        "\uff11/hls",  # FULLWIDTH DIGIT ONE
        "9" * 13 + "/hls",  # longer than any id
        "1" * 5000 + "/hls",  # int() would refuse it with ValueError
        "{pk}/hls?key=x",
        "{pk}/hls\n",
        "",
        None,
    ],
)
def test_the_relay_refuses_any_name_but_a_session_s_stream(media_root, name):
    session = publishing(make_session())
    with pytest.raises(RelayRefused) as refused:
        relay_session(name.format(pk=session.pk) if name else name)
    assert str(refused.value) == "Not a stream name: nginx publishes <session id>/hls."


@pytest.mark.django_db
def test_the_relay_refuses_a_missing_an_ended_or_an_unpublished_session(media_root):
    with pytest.raises(RelayRefused, match="No live session 999999999999"):
        relay_session("999999999999/hls")
    ended = publishing(make_session())
    ended.end()
    with pytest.raises(RelayRefused, match="has ended"):
        relay_session(f"{ended.pk}/hls")
    quiet = make_session()  # no on_publish noted an encoder: nginx is not publishing it
    with pytest.raises(RelayRefused, match="not publishing"):
        relay_session(f"{quiet.pk}/hls")
    live = publishing(make_session())
    assert relay_session(f"{live.pk}/hls") == live


@pytest.mark.django_db
def test_the_command_refuses_with_a_message_and_without_echoing_the_name(
    settings, media_root, caplog
):
    settings.WAGTAIL_LIVE = JANUS
    hostile = "1/hls/../../etc?key=s3cr3t-key"
    with caplog.at_level(logging.INFO), pytest.raises(CommandError, match="Not a stream name"):
        call_command("live_janus_relay", hostile)
    assert "s3cr3t" not in caplog.text and "etc" not in caplog.text
    settings.WAGTAIL_LIVE = {}
    with pytest.raises(CommandError, match="WEBRTC"):
        call_command("live_janus_relay", "1/hls")


@pytest.mark.django_db
def test_the_command_logs_to_the_file_it_is_given(settings, media_root, tmp_path):
    settings.WAGTAIL_LIVE = JANUS
    log = tmp_path / "relay.log"
    with pytest.raises(CommandError):
        call_command("live_janus_relay", "999999999999/hls", f"--log-file={log}")
    assert "nginx relay refused: No live session 999999999999." in log.read_text()
    logger = logging.getLogger("wagtail_live")
    for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
        logger.removeHandler(handler)
        handler.close()


# -- the relay's loop, with Janus and ffmpeg stood in for ----------------------------------


class Stand:
    """Records what relay_to_janus asked of Janus and ffmpeg; ``codecs`` is what it probes."""

    def __init__(self, monkeypatch, codecs=H264_AAC, relay=RELAY):
        from wagtail_live.ingest import janus

        self.calls = []
        self.stopping = None

        async def open_relay(session):
            self.calls.append("open")
            return relay

        async def close_relay(session):
            self.calls.append("close")

        async def run_ffmpeg(session, input_args, relay, codecs, stopping):
            self.calls.append(("ffmpeg", codecs))
            stopping.set()  # nginx's SIGTERM at the publish's end

        monkeypatch.setattr(janus, "open_streaming_relay", open_relay)
        monkeypatch.setattr(janus, "close_streaming_relay", close_relay)
        monkeypatch.setattr(nginx_rtmp, "run_relay_ffmpeg", run_ffmpeg)
        monkeypatch.setattr(nginx_rtmp, "stream_codecs", lambda *source: codecs)
        monkeypatch.setattr(nginx_rtmp, "RELAY_RETRY_SECONDS", (0.01, 0.02))

    def run(self, session, stop_after=None):
        async def relay():
            self.stopping = asyncio.Event()
            if stop_after is not None:
                asyncio.get_running_loop().call_later(stop_after, self.stopping.set)
            await nginx_rtmp.relay_to_janus(session, 1935, self.stopping)

        asyncio.run(relay())
        return self.calls


@pytest.mark.django_db(transaction=True)
def test_the_relay_opens_the_mountpoint_runs_ffmpeg_and_destroys_it_at_the_end(
    monkeypatch, media_root
):
    session = publishing(make_session())
    calls = Stand(monkeypatch).run(session)
    assert calls == ["open", ("ffmpeg", H264_AAC), "close"]


@pytest.mark.django_db(transaction=True)
def test_with_janus_down_the_relay_keeps_trying_and_has_nothing_to_destroy(monkeypatch, media_root):
    session = publishing(make_session())
    calls = Stand(monkeypatch, relay=None).run(session, stop_after=0.2)
    assert calls.count("open") >= 3 and "close" not in calls
    assert not any(isinstance(call, tuple) for call in calls)  # no ffmpeg without a mountpoint


@pytest.mark.django_db(transaction=True)
def test_an_audio_only_stream_is_not_relayed(monkeypatch, media_root):
    session = publishing(make_session())
    assert Stand(monkeypatch, codecs=StreamCodecs(None, "aac", False)).run(session, 0.1) == []


@pytest.mark.django_db(transaction=True)
def test_a_newer_publish_keeps_the_mountpoint_it_made(monkeypatch, media_root):
    session = publishing(make_session(), client="7")
    stand = Stand(monkeypatch)

    async def run_ffmpeg(session, input_args, relay, codecs, stopping):
        nginx_rtmp.note_publisher(session, "8")  # the encoder reconnected at once
        stopping.set()

    monkeypatch.setattr(nginx_rtmp, "run_relay_ffmpeg", run_ffmpeg)
    assert stand.run(session) == ["open"]


def _meanwhile(session, what):
    """What happens while the relay probes the stream (a second or more): ``what``."""
    if what == "another publish":  # the encoder reconnected: its own relay makes the mountpoint
        nginx_rtmp.note_publisher(session, "8")
    elif what == "publish over":
        nginx_rtmp.forget_publisher(session, "7")
    elif what == "session ended":
        type(session).objects.get(pk=session.pk).end()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("what", ["another publish", "publish over", "session ended", "SIGTERM"])
def test_a_relay_whose_publish_is_over_by_the_end_of_its_probe_makes_no_mountpoint(
    monkeypatch, media_root, what
):
    # A late relay would destroy the current publish's mountpoint and make one nobody feeds.
    session = publishing(make_session(), client="7")
    stand = Stand(monkeypatch)
    loop = None

    def probe(*source):
        if what == "SIGTERM":
            loop.call_soon_threadsafe(stand.stopping.set)
        else:
            _meanwhile(session, what)
        return H264_AAC

    async def relay():
        nonlocal loop
        loop = asyncio.get_running_loop()
        stand.stopping = asyncio.Event()
        await nginx_rtmp.relay_to_janus(session, 1935, stand.stopping)

    monkeypatch.setattr(nginx_rtmp, "stream_codecs", probe)
    asyncio.run(asyncio.wait_for(relay(), 5))
    assert stand.calls == []


@pytest.mark.django_db(transaction=True)
def test_the_relay_stops_when_the_session_is_ended(monkeypatch, media_root):
    session = publishing(make_session())
    stand = Stand(monkeypatch)

    async def run_ffmpeg(session, input_args, relay, codecs, stopping):
        stand.calls.append("ffmpeg")
        await sync_to_async(lambda: type(session).objects.get(pk=session.pk).end())()

    monkeypatch.setattr(nginx_rtmp, "run_relay_ffmpeg", run_ffmpeg)
    assert stand.run(session) == ["open", "ffmpeg", "close"]


@pytest.mark.django_db(transaction=True)
def test_a_mountpoint_janus_lost_is_made_again(monkeypatch, media_root):
    session = publishing(make_session())
    stand = Stand(monkeypatch)
    lost = [True, False]

    async def run_ffmpeg(session, input_args, relay, codecs, stopping):
        stand.calls.append("ffmpeg")
        if not lost[0]:
            stopping.set()
        return lost.pop(0)

    monkeypatch.setattr(nginx_rtmp, "run_relay_ffmpeg", run_ffmpeg)
    assert stand.run(session) == ["open", "ffmpeg", "open", "ffmpeg", "close"]


def test_the_mountpoint_counts_as_lost_only_when_janus_answers_without_it(monkeypatch):
    from types import SimpleNamespace

    from wagtail_live.ingest import janus

    answers = [janus.JanusError("down"), True, janus.JanusError("down"), False]

    async def exists(session):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(janus, "mountpoint_exists", exists)
    monkeypatch.setattr(nginx_rtmp, "RELAY_CHECK_SECONDS", 0)
    asyncio.run(asyncio.wait_for(nginx_rtmp.mountpoint_lost(SimpleNamespace(pk=3)), 5))
    assert answers == []


# -- the relay's ffmpeg arguments -----------------------------------------------------------


def test_the_relay_s_ffmpeg_copies_h264_and_sends_opus_to_the_mountpoint_only():
    args = build_rtp_relay_args(["-f", "live_flv", "-i", "rtmp://x/live"], RELAY)
    assert args[args.index("-i") + 1] == "rtmp://x/live"
    assert args[args.index("-c:v") + 1] == "copy"
    assert args[args.index("-c:a:0") + 1] == "libopus"
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "-map"] == ["0:v:0", "0:a:0"]
    assert args[-2:] == [
        "tee",
        "[f=rtp:select=0:onfail=ignore:payload_type=96]rtp\\://127.0.0.1\\:5000?pkt_size=1200"
        "|[f=rtp:select=1:onfail=ignore:payload_type=111]rtp\\://127.0.0.1\\:5002?pkt_size=1200",
    ]


def test_the_relay_s_ffmpeg_transcodes_other_video_and_goes_without_audio_when_there_is_none():
    args = build_rtp_relay_args(["-i", "x"], RELAY, video_codec="vp8", audio=False)
    assert args[args.index("-c:v") + 1] == "libx264" and "-an" in args
    assert "libopus" not in args and "0:a:0" not in args
    assert "select=1" not in args[-1] and "5002" not in args[-1]


def test_the_relay_s_ffmpeg_transcodes_h264_with_b_frames():
    args = build_rtp_relay_args(["-i", "x"], RELAY, transcode=True)
    assert args[args.index("-c:v") + 1] == "libx264"
    assert args[args.index("-tune") + 1] == "zerolatency"  # no B-frames out
    assert args[args.index("-c:a:0") + 1] == "libopus"


@pytest.mark.parametrize(
    ("encoder", "expected"),
    [
        (["-c:v", "libx264", "-preset", "ultrafast", "-bf", "2"], H264_AAC._replace(b_frames=True)),
        (["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"], H264_AAC),
        (["-vn"], StreamCodecs(None, "aac", False)),
    ],
)
def test_stream_codecs_tells_video_audio_and_b_frames(tmp_path, encoder, expected):
    from wagtail_live.ffmpeg import ffmpeg_binary

    path = tmp_path / "stream.flv"
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15",
         "-f", "lavfi", "-i", "sine", "-t", "2", *encoder, "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    assert nginx_rtmp.stream_codecs(str(path), "flv", {"protocol_whitelist": "file"}) == expected
    assert nginx_rtmp.stream_codecs(str(tmp_path / "none.flv"), "flv", {}) is None


def test_the_relay_plays_the_stream_name_from_loopback_with_only_rtmp_allowed():
    from types import SimpleNamespace

    url, demuxer, options = nginx_rtmp.relay_source(SimpleNamespace(pk=12), 19350)
    assert (url, demuxer) == ("rtmp://127.0.0.1:19350/live", "live_flv")
    assert options["rtmp_playpath"] == "12/hls" and options["protocol_whitelist"] == "rtmp,tcp"
    args = nginx_rtmp.ffmpeg_input_args(url, demuxer, options)
    assert args[-4:] == ["-f", "live_flv", "-i", url] and "-rtmp_playpath" in args
