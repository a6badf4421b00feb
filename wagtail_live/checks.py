"""System checks: ``manage.py check`` says clearly what a site still has to set up."""

from django.apps import apps
from django.conf import settings
from django.core import checks

from .conf import DEFAULTS, live_settings


@checks.register()
def check_installed_apps(app_configs, **kwargs):
    errors = []
    for app, why in (
        ("wagtailmedia", "recordings become wagtailmedia items"),
        ("channels", "chat, likes and viewer counts use Django Channels"),
    ):
        if not apps.is_installed(app):
            errors.append(
                checks.Error(
                    f"'{app}' is not in INSTALLED_APPS; wagtail_live needs it because {why}.",
                    hint=f"Add '{app}' to INSTALLED_APPS.",
                    id="wagtail_live.E001",
                )
            )
    return errors


@checks.register()
def check_channels_setup(app_configs, **kwargs):
    warnings = []
    if not getattr(settings, "CHANNEL_LAYERS", None):
        warnings.append(
            checks.Warning(
                "No channel layer is configured, so viewers get no live chat, likes, viewer "
                "counts or status updates.",
                hint="Set CHANNEL_LAYERS, e.g. {'default': {'BACKEND': "
                "'channels.layers.InMemoryChannelLayer'}} for one process, or channels_redis "
                "for several (see docs/installation.md).",
                id="wagtail_live.W001",
            )
        )
    if not getattr(settings, "ASGI_APPLICATION", None):
        warnings.append(
            checks.Warning(
                "ASGI_APPLICATION is not set, so the live websockets are not served.",
                hint="Point ASGI_APPLICATION at your asgi.py application and route "
                "wagtail_live.routing.websocket_urlpatterns there (see docs/installation.md).",
                id="wagtail_live.W002",
            )
        )
    return warnings


@checks.register()
def check_live_settings(app_configs, **kwargs):
    unknown = live_settings._unknown
    if not unknown:
        return []
    return [
        checks.Warning(
            f"WAGTAIL_LIVE has unknown key(s): {', '.join(unknown)}.",
            hint="Known keys: " + ", ".join(sorted(DEFAULTS)) + " (docs/settings.md).",
            id="wagtail_live.W003",
        )
    ]
