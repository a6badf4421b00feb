from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WagtailLiveAppConfig(AppConfig):
    name = "wagtail_live"
    label = "wagtail_live"
    verbose_name = _("Wagtail Live")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # checks registers the system checks by being imported.
        from . import analytics, checks, reminders, webhooks  # noqa: F401

        # Audience (issue 7): session events become webhook deliveries and reminder e-mails.
        webhooks.connect_signal_handlers()
        reminders.connect_signal_handlers()
        analytics.connect_signal_handlers()
