from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class WagtailLiveAppConfig(AppConfig):
    name = "wagtail_live"
    label = "wagtail_live"
    verbose_name = _("Wagtail Live")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        use_inline_tasks_unless_huey_is_configured()
        # checks registers the system checks by being imported.
        from . import analytics, checks, reminders, webhooks  # noqa: F401

        # Audience (issue 7): session events become webhook deliveries and reminder e-mails.
        webhooks.connect_signal_handlers()
        reminders.connect_signal_handlers()
        analytics.connect_signal_handlers()
        # A session's recordings follow its privacy between the public and private storages.
        from . import private_files

        private_files.connect_signal_handlers()


#: Huey's settings when a site sets no ``HUEY``: tasks run inline, in the process that
#: enqueues them, so a site that followed only the install steps needs no consumer (and
#: no Redis, Huey's own default). docs/installation.md says what that costs.
INLINE_HUEY = {"huey_class": "huey.MemoryHuey", "name": "wagtail_live", "immediate": True}


def use_inline_tasks_unless_huey_is_configured():
    if getattr(settings, "HUEY", None) is None:
        settings.HUEY = dict(INLINE_HUEY)
        settings.WAGTAIL_LIVE_INLINE_TASKS = True
