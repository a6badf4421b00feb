"""``manage.py live_nginx_config``: print the nginx-rtmp configuration for this site."""

import argparse
import contextlib
import getpass
import os
from importlib import import_module
from pathlib import Path

from django.conf import ENVIRONMENT_VARIABLE, settings
from django.core.management.base import BaseCommand, CommandError

from wagtail_live.conf import live_settings
from wagtail_live.delivery import nginx_server_block
from wagtail_live.grants import grant_key
from wagtail_live.ingest.janus import get_webrtc_backend
from wagtail_live.ingest.nginx_rtmp import nginx_config, relay_command
from wagtail_live.storage import private_root


class Command(BaseCommand):
    help = (
        "Print the nginx `rtmp {}` block and HTTP locations (HLS, private X-Accel, the site) "
        "for ingest through nginx-rtmp; --full prints a complete nginx.conf."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--site-url",
            default="http://127.0.0.1:8000",
            help="Where nginx reaches this site for the callbacks (default %(default)s).",
        )
        parser.add_argument("--rtmp-port", type=int, default=None, help="RTMP port (RTMP_PORT).")
        parser.add_argument(
            "--secret", default=None, help='Callback secret (default WAGTAIL_LIVE["NGINX_SECRET"]).'
        )
        parser.add_argument("--media-root", default=None, help="MEDIA_ROOT as nginx sees it.")
        parser.add_argument(
            "--private-root",
            default=None,
            help='WAGTAIL_LIVE["PRIVATE_ROOT"] as nginx sees it: where nginx-rtmp writes HLS and '
            "recordings, served only through the site's checks. Default: this site's.",
        )
        parser.add_argument(
            "--user",
            default=None,
            help="nginx worker user (--full); it must be able to write the media directory. "
            "Default: the user running this command, i.e. the site's user.",
        )
        parser.add_argument("--full", action="store_true", help="Print a complete nginx.conf.")
        parser.add_argument(
            "--http",
            action="store_true",
            help="Print only an HTTP server block in which nginx verifies signed playback grants "
            'and serves the files itself (needs GRANT_SIGNER "nginx-md5"; docs/delivery.md). '
            "It listens on --listen and proxies the rest to --site-url.",
        )
        parser.add_argument(
            "--listen",
            default="80",
            help="nginx's listen address of the --http server block (default %(default)s).",
        )
        parser.add_argument("--prefix", default=None, help="Directory for pid and logs (--full).")
        parser.add_argument(
            "--module-path",
            default="/usr/lib/nginx/modules/ngx_rtmp_module.so",
            help="The RTMP module to load (--full; Debian: libnginx-mod-rtmp).",
        )
        parser.add_argument(
            "--http-port", type=int, default=None, help="Also serve HTTP on this port (--full)."
        )
        parser.add_argument(
            "--janus-relay",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Have nginx run live_janus_relay for every published stream, so viewers can "
            'watch over WebRTC (default: on when WAGTAIL_LIVE["WEBRTC"] is set).',
        )
        parser.add_argument(
            "--relay-env",
            action="append",
            default=[],
            metavar="NAME",
            help="An environment variable nginx passes on to the relay (nginx clears its "
            "workers' environment): repeat for each one your settings read.",
        )
        parser.add_argument(
            "--relay-log",
            default=None,
            help="The relay's log file, writable by nginx's worker user (default with --full: "
            "<prefix>/janus-relay.log; else none: only your LOGGING's handlers).",
        )
        parser.add_argument(
            "--callback-port",
            type=int,
            default=None,
            help="Loopback port of the server that adds the secret to nginx-rtmp's callbacks "
            "(default: the RTMP port + 1).",
        )

    def handle(self, *args, **options):
        if options["http"]:
            self.stdout.write(self.http_server_block(options))
            return
        secret = options["secret"] or live_settings.NGINX_SECRET
        if not secret:
            raise CommandError(
                'Set WAGTAIL_LIVE["NGINX_SECRET"] (a long random string) or pass --secret: '
                "nginx sends it with every callback and the site refuses callbacks without it."
            )
        rtmp_port = options["rtmp_port"] or live_settings.RTMP_PORT
        # nginx-rtmp writes HLS and recordings there but creates only the folders below it.
        live_root = Path(options["private_root"] or private_root()) / live_settings.MEDIA_SUBDIR
        with contextlib.suppress(OSError):  # nginx may run on another host: its own job then
            live_root.mkdir(parents=True, exist_ok=True)
        janus_relay = None
        if options["janus_relay"] is None:
            options["janus_relay"] = get_webrtc_backend() is not None
        if options["janus_relay"]:
            log_file = options["relay_log"]
            if log_file is None and options["full"]:
                log_file = Path(options["prefix"] or os.getcwd()) / "janus-relay.log"
            # None under override_settings (tests): the module the process was started with.
            module = settings.SETTINGS_MODULE or os.environ.get(ENVIRONMENT_VARIABLE)
            if not module:
                raise CommandError(
                    "The relay needs this site's settings module (DJANGO_SETTINGS_MODULE); "
                    "pass --no-janus-relay to leave it out."
                )
            janus_relay = relay_command(
                rtmp_port=rtmp_port,
                settings_module=module,
                pythonpath=settings_root(module),
                log_file=log_file,
            )
        try:
            config = nginx_config(
                site_url=options["site_url"],
                secret=secret,
                media_root=options["media_root"],
                rtmp_port=rtmp_port,
                user=options["user"] or (getpass.getuser() if options["full"] else None),
                full=options["full"],
                prefix=options["prefix"],
                module_path=options["module_path"],
                http_port=options["http_port"],
                callback_port=options["callback_port"],
                private_root=options["private_root"],
                janus_relay=janus_relay,
                relay_env=options["relay_env"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(config)

    def http_server_block(self, options):
        """The grant-checking ``server {}`` (``wagtail_live.delivery.nginx_server_block``)."""
        if live_settings.GRANT_SIGNER != "nginx-md5":
            raise CommandError(
                'Set WAGTAIL_LIVE["GRANT_SIGNER"] = "nginx-md5": nginx\'s secure_link module '
                "checks MD5 signatures only, so the site must sign grants that way."
            )
        live_root = Path(options["private_root"] or private_root()) / live_settings.MEDIA_SUBDIR
        try:
            return nginx_server_block(
                live_root=live_root,
                key=grant_key(),
                site_url=options["site_url"],
                listen=options["listen"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from error


def settings_root(settings_module):
    """The directory ``settings_module`` (dotted) is imported from: the relay's ``--pythonpath``."""
    path = Path(import_module(settings_module).__file__).resolve()
    if path.name == "__init__.py":  # a settings package
        path = path.parent
    for _part in settings_module.split("."):
        path = path.parent
    return path
