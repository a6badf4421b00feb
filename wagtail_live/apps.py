from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WagtailLiveAppConfig(AppConfig):
    name = "wagtail_live"
    label = "wagtail_live"
    verbose_name = _("Wagtail Live")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
