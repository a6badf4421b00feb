"""A webhook receiver on a free loopback port that checks every signature (for the tests)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from wagtail_live import webhooks

SECRET = "s3cret-for-tests"


class Receiver:
    """A webhook receiver on a free loopback port: checks signatures, answers as told."""

    def __init__(self, answer=200, secret=SECRET, delay=0.0):
        # One status for every request, or a list: one per request, the last one repeated.
        self.answers = list(answer) if isinstance(answer, (list, tuple)) else [answer]
        self.secret = secret
        self.delay = delay
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signature = self.headers.get(webhooks.SIGNATURE_HEADER)
                valid = webhooks.verify(body, receiver.secret, signature)
                receiver.requests.append(
                    {"body": body, "headers": dict(self.headers), "valid": valid}
                )
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = (
                    receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                )
                code = answer if valid else 401
                if code in (301, 302):
                    self.send_response(code)
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                    self.end_headers()
                    return
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"nope")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def payloads(self):
        return [json.loads(request["body"]) for request in self.requests]
