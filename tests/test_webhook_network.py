"""Webhooks connect to the address they checked: DNS rebinding, address spellings, TLS.

The resolver is patched so a name answers differently on each lookup; the
receivers are real HTTP(S) servers on loopback.
"""

import http.server
import socket
import ssl
import subprocess
import threading

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from tests.webhook_receiver import SECRET, Receiver
from wagtail_live import webhooks
from wagtail_live.models import Webhook, WebhookDelivery

PUBLIC = "93.184.215.14"

real_getaddrinfo = socket.getaddrinfo


class Resolver:
    """A resolver for ``name`` whose answers change from one lookup to the next."""

    def __init__(self, name, *answers):
        self.name = name
        self.answers = list(answers)
        self.lookups = 0

    def __call__(self, host, port, *args, **kwargs):
        if host != self.name:
            return real_getaddrinfo(host, port, *args, **kwargs)
        answer = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        infos = []
        for address in answer:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
            infos.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return infos


@pytest.fixture
def connections(monkeypatch):
    """Record every address a delivery connects to; public ones are refused (no Internet here)."""
    made = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        made.append(address[0])
        if address[0] == PUBLIC:
            raise ConnectionRefusedError("refused (test)")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(webhooks.socket, "create_connection", create_connection)
    return made


def deliver_to(url, **fields):
    webhook = Webhook.objects.create(
        name="Bot", url=url, secret=SECRET, events=["session.started"], **fields
    )
    delivery = WebhookDelivery.objects.create(webhook=webhook, event="session.started", body="{}")
    return webhooks.deliver(delivery.pk)


# -- rebinding ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("second", ["127.0.0.1", "::ffff:127.0.0.1", "10.0.0.5", "169.254.169.254"])
def test_a_rebinding_name_never_reaches_the_private_address(monkeypatch, connections, second):
    with Receiver() as loopback:
        port = loopback.server.server_port
        resolver = Resolver("rebind.test", [PUBLIC], [second])
        monkeypatch.setattr(webhooks.socket, "getaddrinfo", resolver)
        delivery = deliver_to(f"http://rebind.test:{port}/hook")
    assert loopback.requests == []
    assert connections == [PUBLIC], "the connection went to the checked address only"
    assert resolver.lookups == 1, "the name was resolved once, by the check"
    assert "Could not connect" in delivery.error


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE={"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT": 2})
def test_delivery_goes_to_the_checked_address_with_the_names_host_header(monkeypatch, connections):
    with Receiver() as receiver:
        port = receiver.server.server_port
        # Checked as loopback (allowed here); a second lookup would say a black hole.
        resolver = Resolver("hooks.test", ["127.0.0.1"], ["10.255.255.1"])
        monkeypatch.setattr(webhooks.socket, "getaddrinfo", resolver)
        delivery = deliver_to(f"http://hooks.test:{port}/hook?x=1")
    assert delivery.state == WebhookDelivery.State.SUCCEEDED, delivery.error
    assert connections == ["127.0.0.1"] and resolver.lookups == 1
    (request,) = receiver.requests
    assert request["valid"]
    assert request["headers"]["Host"] == f"hooks.test:{port}"


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE={"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT": 2})
def test_the_next_checked_address_is_tried_when_one_refuses(monkeypatch, connections):
    with Receiver() as receiver:
        port = receiver.server.server_port
        monkeypatch.setattr(
            webhooks.socket, "getaddrinfo", Resolver("two.test", [PUBLIC, "127.0.0.1"])
        )
        delivery = deliver_to(f"http://two.test:{port}/hook")
    assert delivery.state == WebhookDelivery.State.SUCCEEDED, delivery.error
    assert connections == [PUBLIC, "127.0.0.1"]


# -- address spellings ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1/hook",  # octal
        "http://2130706433/hook",  # one decimal number
        "http://0x7f.1/hook",  # hex, short form
        "http://127.1/hook",
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
        "http://[::ffff:10.0.0.1]/hook",
        "http://[::127.0.0.1]/hook",  # IPv4-compatible IPv6
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[fd00::1]/hook",  # unique local
        "http://[fe80::1]/hook",  # link-local
        "http://[::]/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://LOCALHOST/hook",
    ],
)
def test_private_spellings_are_refused(url):
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url(url)
    assert refused.value.code in ("private", "resolve")


def test_a_name_with_one_private_answer_among_public_ones_is_refused(monkeypatch):
    monkeypatch.setattr(
        webhooks.socket, "getaddrinfo", Resolver("mixed.test", [PUBLIC, "127.0.0.1"])
    )
    with pytest.raises(ValidationError) as refused:
        webhooks.check_url("https://mixed.test/hook")
    assert refused.value.code == "private"


def test_check_url_returns_the_addresses_to_use(monkeypatch):
    monkeypatch.setattr(webhooks.socket, "getaddrinfo", Resolver("pub.test", [PUBLIC, PUBLIC]))
    assert [str(a) for a in webhooks.check_url("https://pub.test/hook")] == [PUBLIC]


# -- TLS: the name, not the address, is what the certificate is checked against -------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for ``hooks.test`` (made by the openssl CLI)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TLSReceiver:
    """An HTTPS server on loopback that records the SNI name of each handshake."""

    def __init__(self, cert, key):
        self.server_names = []
        self.requests = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trusting(monkeypatch, certificate):
    cert, _key = certificate

    def context():
        trusted = ssl.create_default_context()
        trusted.load_verify_locations(cafile=str(cert))
        return trusted

    monkeypatch.setattr(webhooks, "tls_context", context)
    return certificate


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE={"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT": 2})
def test_https_sends_the_name_and_verifies_the_certificate_for_it(monkeypatch, trusting):
    with TLSReceiver(*trusting) as receiver:
        port = receiver.server.server_address[1]
        resolver = Resolver("hooks.test", ["127.0.0.1"], ["10.255.255.1"])
        monkeypatch.setattr(webhooks.socket, "getaddrinfo", resolver)
        delivery = deliver_to(f"https://hooks.test:{port}/hook")
    assert delivery.state == WebhookDelivery.State.SUCCEEDED, delivery.error
    assert receiver.server_names == ["hooks.test"]
    assert receiver.requests[0]["Host"] == f"hooks.test:{port}"
    assert resolver.lookups == 1


@pytest.mark.django_db
@override_settings(WAGTAIL_LIVE={"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_TIMEOUT": 2})
def test_https_refuses_a_certificate_for_another_name(monkeypatch, trusting):
    with TLSReceiver(*trusting) as receiver:
        port = receiver.server.server_address[1]
        monkeypatch.setattr(webhooks.socket, "getaddrinfo", Resolver("other.test", ["127.0.0.1"]))
        delivery = deliver_to(f"https://other.test:{port}/hook")
    assert receiver.requests == []
    assert "Could not connect" in delivery.error
    assert "certificate" in delivery.error.lower() or "hostname" in delivery.error.lower()
