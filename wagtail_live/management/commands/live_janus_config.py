"""``manage.py live_janus_config DIRECTORY``: write the Janus config WebRTC ingest needs."""

from django.core.management.base import BaseCommand, CommandError

from wagtail_live.conf import live_settings
from wagtail_live.ingest.janus import write_janus_config


class Command(BaseCommand):
    help = (
        "Write janus.jcfg, janus.transport.http.jcfg and the VideoRoom/Streaming plugin files "
        "into DIRECTORY for WHIP ingest and WebRTC playback (docs/ingest-backends.md, Janus). "
        'The API secret and admin key are WAGTAIL_LIVE["JANUS_API_SECRET"] and ["JANUS_ADMIN_KEY"]; '
        "start Janus with `janus -F DIRECTORY -C DIRECTORY/janus.jcfg`."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "directory", help="Folder to write the files into (created if missing)."
        )
        parser.add_argument("--port", type=int, default=8088, help="Janus API port (%(default)s).")
        parser.add_argument(
            "--ip",
            default="127.0.0.1",
            help="Address the Janus API binds (%(default)s): only the site may reach it.",
        )
        parser.add_argument(
            "--rtp-port-range",
            default="20000-40000",
            help="UDP ports Janus uses for WebRTC media (%(default)s): open them in the firewall.",
        )
        parser.add_argument(
            "--public-ip",
            default=None,
            help="The host's public address when Janus runs behind 1:1 NAT (a cloud VM).",
        )
        parser.add_argument("--stun-server", default=None, help="host[:port] of a STUN server.")
        parser.add_argument(
            "--libraries",
            default="/usr/lib/x86_64-linux-gnu/janus",
            help="Folder with Janus's plugins/ and transports/ (%(default)s, Debian's).",
        )

    def handle(self, *args, directory, **options):
        if not live_settings.JANUS_API_SECRET or not live_settings.JANUS_ADMIN_KEY:
            raise CommandError(
                'Set WAGTAIL_LIVE["JANUS_API_SECRET"] and ["JANUS_ADMIN_KEY"] first (long random '
                'strings, e.g. python -c "import secrets; print(secrets.token_urlsafe(24))"): '
                "without them anyone reaching Janus's API could publish or create rooms."
            )
        try:
            path = write_janus_config(
                directory,
                port=options["port"],
                ip=options["ip"],
                api_secret=live_settings.JANUS_API_SECRET,
                admin_key=live_settings.JANUS_ADMIN_KEY,
                rtp_port_range=options["rtp_port_range"],
                libraries=options["libraries"],
                nat_1_1_mapping=options["public_ip"],
                stun_server=options["stun_server"],
            )
        except ValueError as error:
            # A quote or newline would write other Janus settings: nothing is written.
            raise CommandError(str(error)) from error
        # The secrets are in the files (mode 600), never printed.
        self.stdout.write(f"Wrote {path.parent}/ (janus.jcfg and its plugin files, mode 600).")
        self.stdout.write(f"Start Janus with: janus -F {path.parent} -C {path}")
        self.stdout.write(
            f'Set WAGTAIL_LIVE["WEBRTC"] = "janus" and ["JANUS_URL"] = '
            f'"http://{options["ip"]}:{options["port"]}/janus".'
        )
