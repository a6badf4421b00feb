"""The test ASGI application plus static files, for the server that tests/live_site.py starts."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from tests.asgi import application as site_application
from wagtail_live.delivery import HLSVerifier

# daphne and uvicorn, unlike runserver, serve no static files; the browser tests need ours and
# Wagtail's. The handler goes inside the verifier, which stays outermost as docs/installation.md
# composes it: that is where uvicorn's wagtail_live.servers protocol finds it.
application = HLSVerifier(ASGIStaticFilesHandler(site_application.app))
