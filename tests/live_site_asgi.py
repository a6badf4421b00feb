"""The test ASGI application plus static files, for the daphne that tests/live_site.py starts."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from tests.asgi import application as site_application

# daphne, unlike runserver, serves no static files; the browser tests need ours and Wagtail's.
application = ASGIStaticFilesHandler(site_application)
