"""A real nginx for tests: free ports, the generated config, start, wait, stop.

Shared by the test modules that put nginx in front of a live Django server
(tests/test_delivery_nginx.py, tests/test_playback_nginx.py, tests/test_private_files_nginx.py).
"""

import contextlib
import io
import os
import shutil
import socket
import subprocess
import time

from django.core.management import call_command

from tests.utils import require

#: Where Debian's libnginx-mod-rtmp puts the RTMP module.
MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
#: The internal location through which nginx sends the files Django allows (X-Accel-Redirect).
ACCEL = "/_live_media/"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def use_accel_redirect(settings, media):
    """Point the site at ``media`` (MEDIA_ROOT) with nginx sending files through ``ACCEL``."""
    settings.MEDIA_ROOT = str(media)
    settings.WAGTAIL_LIVE = {
        "NGINX_SECRET": "a-test-secret-of-some-length",
        "ACCEL_REDIRECT_PREFIX": ACCEL,
    }
    return media


def full_config(site_url, prefix, media, http_port):
    """The text of ``live_nginx_config --full`` for these paths, with HTTP on ``http_port``."""
    config = io.StringIO()
    call_command(
        "live_nginx_config",
        "--full",
        f"--site-url={site_url}",
        f"--rtmp-port={free_port()}",
        f"--http-port={http_port}",
        f"--prefix={prefix}",
        f"--media-root={media}",
        f"--module-path={MODULE}",
        stdout=config,
    )
    return config.getvalue()


@contextlib.contextmanager
def running_nginx(prefix, config, port, rtmp=False):
    """Run a real nginx with ``config`` (written to ``prefix``/nginx.conf) for the ``with`` block.

    Skips (or fails under WAGTAIL_LIVE_REQUIRE_ALL=1) without nginx, or without the RTMP
    module when ``rtmp``; waits up to 10 s for ``port`` to accept connections, failing with
    nginx's stderr if it exits; stops nginx when the block ends.
    """
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if rtmp:
        require(os.path.exists(binary) and os.path.exists(MODULE), "nginx with libnginx-mod-rtmp")
    else:
        require(os.path.exists(binary), "nginx")
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(config)
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        assert process.poll() is None, process.stderr.read().decode()
        yield
    finally:
        process.terminate()
        process.wait(10)
