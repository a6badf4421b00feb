#!/usr/bin/env bash
# The outside acceptance path: build the wheel from a clean export of HEAD, install it into a
# fresh virtualenv, create a brand-new Wagtail site that follows only the README's install
# section, then migrate and check it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir export
git -C "$repo" archive HEAD | tar -x -C export
"$repo/.venv/bin/python" -m build --wheel --no-isolation --outdir dist export >/dev/null
python3 -m venv venv
venv/bin/python -m pip install --quiet dist/*.whl
venv/bin/wagtail start mysite >/dev/null
cd mysite
venv=../venv/bin/python
$venv - <<'PY'
from pathlib import Path
settings = Path("mysite/settings/base.py")
text = settings.read_text().replace(
    "INSTALLED_APPS = [\n",
    'INSTALLED_APPS = [\n    "wagtail_live",\n    "wagtailmedia",\n    "channels",\n', 1)
text += ('\nASGI_APPLICATION = "mysite.asgi.application"\n'
         'CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}\n'
         'DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE",'
         ' "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"}\n')
settings.write_text(text)
urls = Path("mysite/urls.py")
urls.write_text(urls.read_text().replace(
    "urlpatterns = [\n", 'urlpatterns = [\n    path("live/", include("wagtail_live.urls")),\n', 1))
Path("mysite/asgi.py").write_text('''import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings.dev")
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application
django_asgi_app = get_asgi_application()
import wagtail_live.routing
application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(
        AuthMiddlewareStack(URLRouter(wagtail_live.routing.websocket_urlpatterns))),
})
''')
PY
$venv manage.py migrate --verbosity 0
$venv manage.py check --fail-level WARNING
$venv manage.py makemigrations --check --dry-run
$venv manage.py shell -c "
from wagtail_live.models import LiveSession
s = LiveSession.objects.create(title='Acceptance')
key = s.issue_stream_key()
assert LiveSession.objects.for_stream_key(key) == s
s.start(); s.end()
assert LiveSession.objects.for_stream_key(key) is None
from django.urls import reverse
print('install check: ok', reverse('wagtail_live_admin:go_live', args=[s.pk]))
"
